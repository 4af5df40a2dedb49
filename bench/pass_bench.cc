// bench/pass: whole reconcile passes of the controller, in process, with the fleet converged.
//
// The controller runs with the real SQLite store (a scratch folder, durability full as by
// default), the real planner and a `fake` provider whose every pool forwards to one in-memory
// FakeProvider (providers/fake_provider.h): observations are answered from memory at once, so
// the hosts are never the bottleneck, and what is measured is the controller's own work. H hosts
// in pools of 100 (maxVMs V), VMSets of 100 running Linux replicas totalling H*V VMs. The fleet
// is first converged by the controller itself (passes with Execute, durability normal to save
// time), then P idle passes run as the loop runs them at every resync: Sync (the revision is
// unchanged) and Prepare (observe every host, recover, check the ledger, plan, publish the
// snapshot); the plan must be empty. Reported per pass: wall time, the process's CPU time
// (CLOCK_PROCESS_CPUTIME_ID: every thread, the observation workers included), and a breakdown of
// the parts the controller does not time itself, each measured alone on the same inputs after
// the passes (so: an estimate of where the time goes). Peak RSS (getrusage ru_maxrss) after
// the fleet is built and at the end.
//
// Then the journal: J actions of one pass (half creates, half starts, as converging J/2 VMs
// takes) written to a fresh store with the calls the executor makes through the controller's
// journal (create: intended, running, pending, doing, ledger row, finished; start: intended,
// running, finished), at durability full and normal, from 1 thread (one action after the other)
// and from 32 and 200 threads at once (the executor's concurrencies: each thread writes its share
// of the actions one after another, as a worker does, but without waiting on any host in
// between, so the store is never idle). Their time is set against the wall time such a pass
// takes at the converge benchmark's simulated latencies (bench/converge_bench.cc: list 100 ms +
// clone 2 s + set 200 ms + rename 200 ms + start 1 s = 3.5 s per VM) with its concurrencies 32
// and 200 (the lower bound of converge_bench: every host holds V VMs, at most 2 actions per host
// at once).
//
// At durability full every commit is synced, which on a slow disk makes J actions take long:
// durability full is timed on the first F actions only and the time per action (the writes are
// alike; the file grows) is taken for all J.
//
// Usage: bench_pass [hosts=1000] [vms_per_host=10] [passes=10] [journal_actions=100000]
//          [full_sample=5000]

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "providers/fake_provider.h"
#include "reconciler/controller/controller.h"
#include "reconciler/model/normalize.h"
#include "reconciler/model/template_hash.h"
#include "reconciler/planner/planner.h"
#include "tests/support/fake_factory.h"
#include "tests/support/process.h"

namespace {

using namespace flotilla;
using Seconds = std::chrono::duration<double>;

constexpr uint64_t kGi = uint64_t{1} << 30;
constexpr const char* kImage = "catalog://LINUX/v1";

// CPU time of the whole process (all threads), in seconds.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

long PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

std::string Name(const char* prefix, int i) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%s-%05d", prefix, i);
  return buffer;
}

// One revision, always the tip.
class FixedSource final : public controller::DesiredSource {
 public:
  explicit FixedSource(Desired desired) {
    loaded_.desired = std::move(desired);
    loaded_.documents = loaded_.desired.pools.size() + loaded_.desired.sets.size();
    loaded_.files = 1;
  }
  Result<std::string> Poll() override { return std::string(40, 'a'); }
  Result<manifest::LoadResult> Load(const std::string& /*sha*/) override { return loaded_; }
  std::string Describe() const override { return "bench"; }

 private:
  manifest::LoadResult loaded_;
};

// Pools of (up to) 100 hosts, each with maxVMs = vms_per_host; VMSets of (up to) 100 replicas
// filling every pool. Every host is added to `fake`, roomy enough and with the image cached.
Desired BuildFleet(int host_count, int vms_per_host, providers::FakeProvider& fake) {
  Desired desired;
  for (int first = 0, p = 0; first < host_count; first += 100, ++p) {
    HostPool pool;
    pool.meta.name = Name("pool", p);
    pool.provider = "fake";
    pool.defaults.max_vms = static_cast<uint32_t>(vms_per_host);
    const int hosts = std::min(100, host_count - first);
    for (int h = 0; h < hosts; ++h) {
      const std::string name = pool.meta.name + "-" + Name("h", h);
      pool.hosts.push_back(HostSpec{.name = name, .address = name});
      fake.AddHost(name, providers::FakeHostSpec{.total = Resources{.cpu = 64,
                                                                    .memory_bytes = 512 * kGi,
                                                                    .disk_bytes = 8192 * kGi},
                                                 .cached_images = {kImage}});
    }
    int vms = hosts * vms_per_host;
    for (int s = 0; vms > 0; ++s) {
      VMSet set;
      set.meta.name = pool.meta.name + "-" + Name("set", s);
      set.pool = pool.meta.name;
      set.replicas = static_cast<uint32_t>(std::min(100, vms));
      set.prune = true;
      set.templ = VMTemplate{.image = kImage,
                             .os = GuestOs::kLinux,
                             .arch = Arch::kArm64,
                             .cpu = 1,
                             .memory = Quantity::FromBytes(2 * kGi),
                             .disk = Quantity::FromBytes(20 * kGi),
                             .state = PowerState::kRunning};
      set.image_cache_key = kImage;
      vms -= static_cast<int>(set.replicas);
      desired.sets.push_back(std::move(set));
    }
    desired.pools.push_back(std::move(pool));
  }
  Normalize(desired);
  return desired;
}

struct Stats {
  double median = 0;
  double p95 = 0;
  double max = 0;
};

Stats Of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  auto at = [&](double q) {
    return values[std::min(values.size() - 1,
                           static_cast<size_t>(q * static_cast<double>(values.size())))];
  };
  return Stats{.median = at(0.5), .p95 = at(0.95), .max = values.back()};
}

template <typename F>
double TimeIt(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return Seconds(std::chrono::steady_clock::now() - start).count();
}

// Opens the store at `path` or exits.
std::unique_ptr<store::Store> OpenStore(const std::string& path, store::Durability durability) {
  Result<std::unique_ptr<store::Store>> opened =
      store::Store::Open(path, store::StoreOptions{.durability = durability});
  if (!opened.ok()) {
    std::cerr << opened.status().ToString() << "\n";
    std::exit(1);
  }
  return std::move(*opened);
}

// Journals `actions` actions of one run as the controller's journal writes them, from `threads`
// threads at once (each writes its share of the actions one after another, as an executor
// worker does; 1: one after another); the seconds it took, the commits per action, and the
// process's CPU seconds meanwhile.
std::tuple<double, double, double> Journal(store::Store& store, int actions, int threads) {
  const auto now = std::chrono::system_clock::now();
  Result<int64_t> run = store.BeginRun("bench", std::string(40, 'a'), now);
  if (!run.ok()) {
    std::cerr << run.status().ToString() << "\n";
    std::exit(1);
  }
  const std::string hash(16, 'f');
  // One action's writes, in the executor's order; false when one failed.
  auto one = [&](int i) {
    bool ok = true;
    const bool create = i % 2 == 0;
    const std::string vm = Name("vm", i / 2);
    const std::string host = Name("host", (i / 2) % 10000);
    Result<int64_t> id = store.InsertAction(
        store::ActionRecord{.run_id = *run,
                            .plan_action_id = i,
                            .kind = create ? ActionKind::kCreate : ActionKind::kStart,
                            .vm = vm,
                            .vmset = "set",
                            .pool = "pool",
                            .host = host,
                            .template_hash = create ? hash : "",
                            .state = store::ActionState::kIntended,
                            .started_at = now});
    if (!id.ok()) {
      return false;
    }
    ok = ok && store.UpdateActionState(*id, store::ActionState::kRunning, "", std::nullopt).ok();
    if (create) {
      ok = ok && store.UpdateActionPending(*id, providers::PendingCreateName(vm, "bench"), "").ok();
      ok = ok && store.UpdateActionDoing(*id, std::string("copying ") + kImage).ok();
      ok = ok && store
                     .UpsertLedger(LedgerEntry{.vm = vm,
                                               .vmset = "set",
                                               .pool = "pool",
                                               .host = host,
                                               .provider_id = "id-" + vm,
                                               .template_hash = hash},
                                   now)
                     .ok();
    }
    return ok && store.UpdateActionState(*id, store::ActionState::kSucceeded, "", now).ok();
  };
  std::atomic<bool> ok{true};
  const int64_t commits_before = store.Commits();
  const double cpu_before = CpuSeconds();
  const double seconds = TimeIt([&] {
    std::vector<std::jthread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int i = t; i < actions; i += threads) {
          if (!one(i)) {
            ok = false;
          }
        }
      });
    }
  });
  if (!ok) {
    std::cerr << "a journal write failed\n";
    std::exit(1);
  }
  return {seconds, static_cast<double>(store.Commits() - commits_before) / actions,
          CpuSeconds() - cpu_before};
}

}  // namespace

int main(int argc, char** argv) {
  const int host_count = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int vms_per_host = argc > 2 ? std::atoi(argv[2]) : 10;
  const int passes = argc > 3 ? std::atoi(argv[3]) : 10;
  const int journal_actions = argc > 4 ? std::atoi(argv[4]) : 100000;
  const int full_sample = argc > 5 ? std::atoi(argv[5]) : 5000;
  if (host_count < 1 || vms_per_host < 1 || passes < 1 || journal_actions < 0 || full_sample < 2) {
    std::cerr << "usage: bench_pass [hosts=1000] [vms_per_host=10] [passes=10] "
                 "[journal_actions=100000] [full_sample=5000]\n";
    return 2;
  }
  testing::ScratchDir dir;
  const std::string db = (dir.path() / "flotilla.db").string();
  providers::FakeProvider fake;
  const Desired desired = BuildFleet(host_count, vms_per_host, fake);
  providers::ProviderRegistry registry;
  if (Status s = registry.Register(std::make_unique<testing::FakeForwarderFactory>(fake));
      !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  FixedSource source(desired);
  SystemClock clock;
  auto logger = std::make_shared<spdlog::logger>("bench");  // no sinks: says nothing
  controller::ControllerOptions options;
  options.executor.concurrency = 200;
  options.executor.initial_backoff = std::chrono::milliseconds(1);
  std::cout << "fleet: " << desired.HostCount() << " hosts in " << desired.pools.size()
            << " pools, " << desired.DesiredVMCount() << " VMs in " << desired.sets.size()
            << " sets (observations answered from memory by the fake provider)\n";

  // Converge (not measured as idle).
  {
    std::unique_ptr<store::Store> store = OpenStore(db, store::Durability::kNormal);
    controller::Controller c(options, *store, source, registry, clock, logger);
    c.Sync();
    size_t executed = 0;
    const double seconds = TimeIt([&] {
      for (int round = 0; round < 5; ++round) {
        Result<controller::Prepared> prepared = c.Prepare();
        if (!prepared.ok()) {
          std::cerr << prepared.status().ToString() << "\n";
          std::exit(1);
        }
        if (!prepared->HasWork()) {
          break;
        }
        executed += prepared->plan.actions.size();
        c.Execute(*prepared, "bench", nullptr, {});
      }
    });
    std::printf("converged: %zu actions in %.1f s (durability normal)\n", executed, seconds);
  }
  std::printf("peak RSS after converging: %ld MiB\n", PeakRssMiB());

  // Idle passes: Sync + Prepare, as the loop runs them at every resync.
  std::unique_ptr<store::Store> store = OpenStore(db, store::Durability::kFull);
  controller::Controller c(options, *store, source, registry, clock, logger);
  std::vector<double> walls;
  std::vector<double> cpus;
  Result<controller::Prepared> last = Status::Internal("no pass");
  for (int i = 0; i <= passes; ++i) {  // the first pass warms up (providers built) and is not kept
    const double cpu0 = CpuSeconds();
    const double wall = TimeIt([&] {
      c.Sync();
      last = c.Prepare();
    });
    const double cpu = CpuSeconds() - cpu0;
    if (!last.ok() || last->HasWork()) {
      std::cerr << "an idle pass "
                << (last.ok()
                        ? "planned " + std::to_string(last->plan.actions.size()) + " action(s)"
                        : "failed: " + last.status().ToString())
                << "\n";
      return 1;
    }
    if (i > 0) {
      walls.push_back(wall);
      cpus.push_back(cpu);
    }
  }
  const Stats wall = Of(walls);
  const Stats cpu = Of(cpus);
  std::printf(
      "idle pass (%d passes): wall median %.1f ms, p95 %.1f ms; CPU median %.1f ms, "
      "p95 %.1f ms, max %.1f ms\n",
      passes, wall.median * 1e3, wall.p95 * 1e3, cpu.median * 1e3, cpu.p95 * 1e3, cpu.max * 1e3);
  std::printf("  at a 30 s resync: %.2f%% of one core\n", cpu.median / 30.0 * 100.0);

  // Where the time goes: the parts alone, on the inputs of the last pass (CPU, median of 5).
  const controller::Prepared& p = *last;
  auto part = [&](const char* what, auto&& f) {
    std::vector<double> samples;
    for (int i = 0; i < 5; ++i) {
      const double cpu0 = CpuSeconds();
      f();
      samples.push_back(CpuSeconds() - cpu0);
    }
    std::printf("  %-46s %8.1f ms CPU\n", what, Of(samples).median * 1e3);
  };
  std::printf("breakdown (each part alone, same inputs):\n");
  part("observe: every host from the fake, sequential", [&] {
    for (const HostPool& pool : p.desired.pools) {
      for (const HostSpec& host : pool.hosts) {
        (void)fake.Observe(
            providers::HostRef{.pool = pool.meta.name, .name = host.name, .address = host.address},
            providers::DeadlineIn(std::chrono::seconds(15)));
      }
    }
  });
  part("store: LoadHosts (first pass only)", [&] { (void)store->LoadHosts(); });
  part("store: SaveHosts, every host rewritten", [&] { (void)store->SaveHosts(p.observed); });
  // What an idle pass saves: the same observation as the pass before, every host seen later.
  Observed before = p.observed;
  for (auto& [name, host] : before.hosts) {
    if (host.last_seen) {
      *host.last_seen -= std::chrono::seconds(30);
    }
  }
  part("store: SaveHosts, idle (only last_seen moved)",
       [&] { (void)store->SaveHosts(p.observed, before); });
  part("store: LoadLedger", [&] { (void)store->LoadLedger(); });
  part("store: UnfinishedActions + ResumableCreates", [&] {
    (void)store->UnfinishedActions();
    (void)store->ResumableCreates();
  });
  part("plan: ComputePlan", [&] {
    (void)planner::ComputePlan(p.desired, p.observed, p.ledger, options.planner, clock.Now());
  });
  part("snapshot: copy desired, observed, ledger, plan", [&] {
    auto snapshot = std::make_shared<controller::Snapshot>(controller::Snapshot{
        .desired = p.desired, .observed = p.observed, .ledger = p.ledger, .plan = p.plan});
  });
  part("pass copies: desired and ledger into Prepared", [&] {
    Desired d = p.desired;
    Ledger l = p.ledger;
  });
  std::printf("peak RSS at the end of the idle passes: %ld MiB\n", PeakRssMiB());

  if (journal_actions > 0) {
    const int vms = journal_actions / 2;
    const double per_vm = 0.1 + 2.0 + 0.2 + 0.2 + 1.0;  // converge_bench's default latencies
    std::printf("journal: %d actions of one run (%d creates + %d starts)\n", journal_actions, vms,
                journal_actions - vms);
    for (const store::Durability durability :
         {store::Durability::kFull, store::Durability::kNormal}) {
      const char* name = durability == store::Durability::kFull ? "full" : "normal";
      for (const int threads : {1, 32, 200}) {
        const std::string path =
            (dir.path() / ("j-" + std::string(name) + "-" + std::to_string(threads) + ".db"))
                .string();
        std::unique_ptr<store::Store> journal = OpenStore(path, durability);
        const int timed = durability == store::Durability::kFull
                              ? std::min(journal_actions, full_sample & ~1)
                              : journal_actions;
        const auto [timed_seconds, commits, cpu] = Journal(*journal, timed, threads);
        const double seconds = timed_seconds / timed * journal_actions;
        const std::string sampled =
            timed < journal_actions ? ", timed on " + std::to_string(timed) + " actions" : "";
        std::printf(
            "  durability %-6s threads %3d: %.1f s (%.0f us, %.0f us CPU and %.2f commits per "
            "action%s)",
            name, threads, seconds, seconds / journal_actions * 1e6, cpu / timed * 1e6, commits,
            sampled.c_str());
        for (const int concurrency : {32, 200}) {
          // converge_bench's bound: max(per host, global), per host at 2 actions at once.
          const double per_host = std::max(vms_per_host * per_vm / 2, per_vm);
          const double pass = std::max(per_host, vms * per_vm / concurrency);
          std::printf("; pass at concurrency %d: %.0f s, store %.2f%%", concurrency, pass,
                      seconds / pass * 100.0);
        }
        std::printf("\n");
      }
    }
  }
  std::printf("peak RSS at the end: %ld MiB\n", PeakRssMiB());
  return 0;
}
