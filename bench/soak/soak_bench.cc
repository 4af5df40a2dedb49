// bench/soak: a chaos soak with counted invariants. `flotilla run` converges a fleet on H
// flotilla-hostsim processes (one host each) for N minutes while a seeded driver:
//   - keeps faults on every host (POST /_sim/chaos): a share `rate` of API calls answer 500
//     before they run, rate/4 lose their answer after they ran (the connection breaks
//     mid-answer), rate/10 answer 6 s late (past the loop's 5 s observation deadline);
//   - commits random fleet changes to the Git repository the loop pulls (replicas up and down,
//     template changes rolled out one VM at a time, sets added and removed with and without
//     prune, prune flipped, a host cordoned and uncordoned);
//   - takes hosts offline for 5-45 s (the loop declares a host lost after 30 s), expires hosts'
//     login tokens, and stops and deletes managed VMs and creates unmanaged ones out of band,
//     some with names the fleet wants (conflicts), some in place of a managed VM just deleted
//     (same name, same host), some with similar names;
//   - kills the loop with SIGKILL every 10-60 s and starts it again on the same state directory.
// The deletion budget is lifted (maxDeletionsPerRun: 100%): deletions it held back would look
// like VMs left unpruned.
// Then faults stop, hosts come back, one last change is committed, and once the loop has
// converged it counts the invariants (soak_count.h) and the journal's actions, prints a table
// and fails when an invariant is not 0.
//
// Usage: soak_bench [minutes=30] [fault_rate=0.10] [hosts=4] [seed=1]
// $SOAK_FLOTILLA_BIN names another flotilla binary to run (default: the build's).
// It uses the test fixture (a real Git repository, a real store, flotilla-hostsim); it is not
// part of the test suite.

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/soak/soak_count.h"
#include "bench/soak/soak_fleet.h"
#include "reconciler/model/text.h"
#include "reconciler/store/store.h"
#include "tests/support/fleet_fixture.h"

namespace flotilla::soak {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using testing::FleetFixture;
using testing::HostVm;

struct Args {
  double minutes = 30;
  double fault_rate = 0.10;
  int hosts = 4;
  uint64_t seed = 1;
};
Args& TheArgs() {
  static Args args;  // NOLINT: set once by main before the soak runs
  return args;
}

constexpr const char* kTokenEnv = "FLOTILLA_SOAK_TOKEN";
constexpr uint32_t kMaxVms = 8;
// Every host operation takes a moment, so that kills and faults land mid-operation.
constexpr const char* kLatency =
    "create=500ms,pull=2s,clone=500ms,start=300ms,stop=300ms,delete=300ms,rename=100ms,list=20ms";

// A free loopback port for the loop's API (fixed across restarts, so the soak can find it).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

double LoadAverage() {
  double one = 0;
  std::ifstream("/proc/loadavg") >> one;
  return one;
}

class Soak {
 public:
  explicit Soak(const Args& args)
      : args_(args),
        port_(FreePort()),
        token_("soak-" + std::to_string(args.seed) + "-" + std::to_string(getpid())),
        fixture_(testing::FleetOptions{
            .hosts = args.hosts,
            .shards = args.hosts,
            .sim_flags = {"--cpu", "24", "--memory", "48Gi", "--keep-alive", "5s", "--latency",
                          kLatency},
            .max_vms = kMaxVms,
            .config_extra = "api: {listen: \"127.0.0.1:" + std::to_string(port_) +
                            "\", tokenEnv: " + kTokenEnv + "}\nstore: {retainRuns: 0}\n",
            .reconcile_extra = "hostLostAfter: 30s\n  actionTimeout: 30s\n  createTimeout: 2m\n"
                               "  maxDeletionsPerRun: 100%",
            .sim_seed = args.seed * 1000 + 1}),
        fleet_(fixture_, args.hosts, kMaxVms),
        rng_(args.seed),
        start_(Clock::now()) {}

  void Run() {
    ASSERT_TRUE(fixture_.ready());
    std::printf("soak: %.1f min, fault rate %.2f, %d hosts, seed %llu; state %s; %s\n",
                args_.minutes, args_.fault_rate, args_.hosts,
                static_cast<unsigned long long>(args_.seed), fixture_.dir().c_str(),
                FlotillaBin().c_str());
    fleet_.Commit("initial fleet");
    StartLoop();
    SetChaos(true);
    const auto end =
        start_ + std::chrono::milliseconds(static_cast<int64_t>(args_.minutes * 60000));
    auto next_kill = Clock::now() + Seconds(10, 60);
    auto next_load = Clock::now();
    while (Clock::now() < end) {
      std::this_thread::sleep_for(Seconds(1, 3));
      if (Clock::now() >= next_load) {
        load_samples_.push_back(LoadAverage());
        next_load += std::chrono::minutes(1);
      }
      BringBackHosts(false);
      CheckLoopAlive();
      if (Clock::now() >= next_kill) {
        KillLoop();
        next_kill = Clock::now() + Seconds(10, 60);
      }
      const int roll = std::uniform_int_distribution<int>(0, 99)(rng_);
      if (roll < 30) {
        const std::string what = fleet_.RandomChange(rng_);
        fleet_.Commit(what);
        Log("commit: " + what);
        ++events_["fleet changes committed"];
      } else if (roll < 42) {
        OutOfBandStop();
      } else if (roll < 52) {
        OutOfBandDelete();
      } else if (roll < 65) {
        OutOfBandCreate();
      } else if (roll < 75) {
        HostOffline();
      } else if (roll < 85) {
        const int host = RandomHost();
        Control(host, "POST", "/_sim/hosts/" + fixture_.SimName(host) + "/expire-tokens");
        Log("tokens expired on " + fixture_.host(host));
        ++events_["token expiries"];
      }
    }
    Finish();
  }

 private:
  std::chrono::milliseconds Seconds(int lo, int hi) {
    return std::chrono::milliseconds(
        std::uniform_int_distribution<int>(lo * 1000, hi * 1000)(rng_));
  }
  int RandomHost() { return std::uniform_int_distribution<int>(0, args_.hosts - 1)(rng_); }
  void Log(const std::string& line) {
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start_).count();
    std::printf("[%3lld:%02lld] %s\n", static_cast<long long>(s / 60),
                static_cast<long long>(s % 60), line.c_str());
    std::fflush(stdout);
  }

  // A control call to host i's process; its status (0: no answer) and JSON body.
  int Control(int host, const std::string& method, const std::string& path,
              const json& body = json::object(), json* out = nullptr) {
    httplib::Client client(fixture_.SimOf(host).origin());
    client.set_read_timeout(std::chrono::seconds(10));
    const std::string payload = body.dump();
    httplib::Result r = method == "DELETE"  ? client.Delete(path)
                        : method == "PATCH" ? client.Patch(path, payload, "application/json")
                                            : client.Post(path, payload, "application/json");
    if (!r) {
      return 0;
    }
    if (out != nullptr) {
      *out = json::parse(r->body, nullptr, false);
    }
    return r->status;
  }

  void SetChaos(bool on) {
    const json chaos = on ? json{{"fault_rate", args_.fault_rate},
                                 {"drop_rate", args_.fault_rate / 4},
                                 {"slow_rate", args_.fault_rate / 10},
                                 {"slow_ms", 6000}}
                          : json::object();
    for (int i = 0; i < args_.hosts; ++i) {
      EXPECT_EQ(Control(i, "POST", "/_sim/chaos", chaos), 200);
    }
  }

  // Host i's VMs through the DevOps API (faults and all); nullopt when it does not answer.
  std::optional<std::vector<HostVm>> ListHost(int i) {
    if (offline_.contains(i)) {
      return std::nullopt;
    }
    httplib::Headers headers = {{"X-Api-Key", EncodeBase64(testing::kFleetApiKey)}};
    for (int attempt = 0; attempt < 8; ++attempt) {
      httplib::Client client(fixture_.SimOf(i).origin());
      client.set_read_timeout(std::chrono::seconds(10));
      auto r = client.Get("/h/" + fixture_.SimName(i) + "/api/v1/machines", headers);
      const json list = r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
      if (!list.is_array()) {
        continue;
      }
      std::vector<HostVm> vms;
      for (const json& vm : list) {
        vms.push_back(testing::HostVmFromJson(fixture_.host(i), vm));
      }
      return vms;
    }
    return std::nullopt;
  }

  bool Ours(const HostVm& vm) const {
    for (const UnmanagedVm& u : unmanaged_) {
      if (u.host == vm.host && u.id == vm.id) {
        return true;
      }
    }
    return false;
  }

  // A VM the loop made on a random online host (not a temporary one), if any.
  std::optional<std::pair<int, HostVm>> RandomManagedVm(const std::string& state) {
    const int host = RandomHost();
    std::optional<std::vector<HostVm>> vms = ListHost(host);
    if (!vms) {
      return std::nullopt;
    }
    std::vector<HostVm> candidates;
    for (const HostVm& vm : *vms) {
      if (!Ours(vm) && !IsTemporaryName(vm.name) && (state.empty() || vm.state == state)) {
        candidates.push_back(vm);
      }
    }
    if (candidates.empty()) {
      return std::nullopt;
    }
    return std::make_pair(
        host, candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_)]);
  }

  void OutOfBandStop() {
    if (auto vm = RandomManagedVm("running")) {
      const int status =
          Control(vm->first, "PATCH",
                  "/_sim/hosts/" + fixture_.SimName(vm->first) + "/vms/" + vm->second.id,
                  {{"state", "stopped"}});
      Log("out of band: stop " + vm->second.host + "/" + vm->second.name + " -> " +
          std::to_string(status));
      ++events_["managed VMs stopped out of band"];
    }
  }

  void OutOfBandDelete() {
    if (auto vm = RandomManagedVm("")) {
      const int status =
          Control(vm->first, "DELETE",
                  "/_sim/hosts/" + fixture_.SimName(vm->first) + "/vms/" + vm->second.id);
      Log("out of band: delete " + vm->second.host + "/" + vm->second.name + " -> " +
          std::to_string(status));
      ++events_["managed VMs deleted out of band"];
    }
  }

  // An unmanaged VM: made in place of a managed one just deleted out of band (same name, same
  // host), or with a desired name (now or later), or with a name that only looks like one.
  void OutOfBandCreate() {
    if (unmanaged_.size() >= static_cast<size_t>(args_.hosts) + 2) {
      return;
    }
    if (std::bernoulli_distribution(0.2)(rng_)) {
      if (auto vm = RandomManagedVm("")) {
        const int status =
            Control(vm->first, "DELETE",
                    "/_sim/hosts/" + fixture_.SimName(vm->first) + "/vms/" + vm->second.id);
        Log("out of band: delete " + vm->second.host + "/" + vm->second.name +
            " to make another in its place -> " + std::to_string(status));
        if (status == 200) {
          MakeUnmanaged(vm->first, vm->second.name, "unmanaged VMs made in place of a managed one");
        }
      }
      return;
    }
    const int host = RandomHost();
    if (offline_.contains(host)) {
      return;
    }
    const std::vector<std::string>& sets = SoakFleet::AllSetNames();
    const std::string set = sets[std::uniform_int_distribution<size_t>(0, sets.size() - 1)(rng_)];
    const int k = std::uniform_int_distribution<int>(0, kMaxReplicas - 1)(rng_);
    const std::vector<std::string> similar = {
        set + "-" + std::to_string(k) + "-old", set + std::to_string(k),
        set + "-0" + std::to_string(k),         "x" + set + "-" + std::to_string(k),
        set + "-" + std::to_string(k + 10),     set + "-" + std::to_string(k) + ".copy"};
    if (std::bernoulli_distribution(0.3)(rng_)) {
      MakeUnmanaged(host, set + "-" + std::to_string(k), "unmanaged VMs with desired names");
    } else {
      MakeUnmanaged(host,
                    similar[std::uniform_int_distribution<size_t>(0, similar.size() - 1)(rng_)],
                    "unmanaged VMs with similar names");
    }
  }

  void MakeUnmanaged(int host, const std::string& name, const std::string& kind) {
    const std::string state = std::bernoulli_distribution(0.5)(rng_) ? "running" : "stopped";
    json vm;
    const int status = Control(host, "POST", "/_sim/hosts/" + fixture_.SimName(host) + "/vms",
                               {{"name", name},
                                {"os", "linux"},
                                {"cpu", 1},
                                {"memory_mb", 512},
                                {"disk_mb", 1024},
                                {"state", state}},
                               &vm);
    Log("out of band: create unmanaged " + fixture_.host(host) + "/" + name + " (" + state +
        ") -> " + std::to_string(status));
    if (status != 201 || !vm.is_object()) {
      return;
    }
    unmanaged_.push_back(UnmanagedVm{.host = fixture_.host(host),
                                     .id = vm.value("ID", ""),
                                     .name = name,
                                     .state = vm.value("State", state),
                                     .cpus = 1,
                                     .desired_name = kind != "unmanaged VMs with similar names"});
    ++events_[kind];
  }

  void HostOffline() {
    if (!offline_.empty()) {
      return;
    }
    const int host = RandomHost();
    Control(host, "POST", "/_sim/hosts/" + fixture_.SimName(host) + "/offline");
    const auto back = Clock::now() + Seconds(5, 45);
    offline_[host] = back;
    Log("host " + fixture_.host(host) + " offline for " +
        std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(back - Clock::now()).count()) +
        " s");
    ++events_["hosts taken offline"];
  }

  void BringBackHosts(bool all) {
    for (auto it = offline_.begin(); it != offline_.end();) {
      if (all || Clock::now() >= it->second) {
        Control(it->first, "POST", "/_sim/hosts/" + fixture_.SimName(it->first) + "/online");
        Log("host " + fixture_.host(it->first) + " back online");
        it = offline_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // --- the loop ---

  // The flotilla binary: $SOAK_FLOTILLA_BIN (a copy, so that a long soak is not switched to a
  // rebuilt binary at its next restart), or the build's.
  static std::string FlotillaBin() {
    const char* bin = std::getenv("SOAK_FLOTILLA_BIN");  // NOLINT(concurrency-mt-unsafe)
    return bin != nullptr && *bin != '\0' ? bin : FLOTILLA_BIN;
  }

  void StartLoop() {
    loop_ = std::make_unique<testing::Process>(
        testing::ShellArgv(std::string("env NO_COLOR=1 ") + kTokenEnv + "=" + token_ + " " +
                           FlotillaBin() + " run --config " + fixture_.config().string() + " >>" +
                           (fixture_.dir() / "run.out").string() + " 2>>" + LogPath()));
  }
  std::string LogPath() const { return (fixture_.dir() / "run.err").string(); }

  void KillLoop() {
    kill(-loop_->pid(), SIGKILL);
    loop_->Wait(std::chrono::seconds(10));
    ++events_["loop killed (SIGKILL) and restarted"];
    Log("kill -9 the loop, restart");
    StartLoop();
  }

  void CheckLoopAlive() {
    if (std::optional<int> code = loop_->Wait(std::chrono::milliseconds(0))) {
      ++loop_exits_;
      Log("the loop exited by itself (" + std::to_string(*code) + "); restart");
      StartLoop();
    }
  }

  // The loop's plan (JSON) through its API, or null.
  json Plan(const std::string& format = "json") {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(std::chrono::seconds(10));
    auto r = client.Get("/api/v1/plan?format=" + format, {{"Authorization", "Bearer " + token_}});
    if (!r || r->status != 200) {
      return nullptr;
    }
    return format == "json" ? json::parse(r->body, nullptr, false) : json(r->body);
  }

  int InFlight() {
    int n = 0;
    for (int i = 0; i < args_.hosts; ++i) {
      httplib::Client client(fixture_.SimOf(i).origin());
      auto r = client.Get("/_sim/hosts");
      const json hosts = r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
      if (!hosts.is_array()) {
        return -1;
      }
      for (const json& h : hosts) {
        n += h.value("in_flight", 0);
      }
    }
    return n;
  }

  // Waits until the plan of revision `sha` is empty and no host has work under way, three
  // polls in a row (at least one resync); how long that took from `since`, or nullopt.
  std::optional<double> WaitConverged(const std::string& sha, Clock::time_point since) {
    int streak = 0;
    Clock::time_point first{};
    const auto limit = Clock::now() + std::chrono::minutes(10);
    while (Clock::now() < limit) {
      CheckLoopAlive();
      const json plan = Plan();
      bool deferred = false;  // deletions held back by the budget are work still to do
      for (const json& finding : plan.is_object() ? plan["findings"] : json::array()) {
        deferred = deferred || finding.value("kind", "") == "deferred";
      }
      const bool empty = plan.is_object() &&
                         plan.value("revision", "").find(sha.substr(0, 7)) != std::string::npos &&
                         plan["actions"].empty() && !deferred && InFlight() == 0;
      streak = empty ? streak + 1 : 0;
      if (streak == 1) {
        first = Clock::now();
      }
      if (streak >= 3) {
        return std::chrono::duration<double>(first - since).count();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    }
    return std::nullopt;
  }

  void Finish() {
    Log("chaos over: faults off, every host online, one last change");
    SetChaos(false);
    BringBackHosts(true);
    CheckLoopAlive();
    fleet_.UncordonAll();
    SetSpec& web = fleet_.Set("web");
    web.replicas = web.replicas % kMaxReplicas + 1;
    const auto last_change = Clock::now();
    const std::string sha =
        fleet_.Commit("final: uncordon, web replicas " + std::to_string(web.replicas));
    const std::optional<double> converge = WaitConverged(sha, last_change);
    if (!converge) {
      json text = Plan("text");
      ADD_FAILURE() << "the loop did not converge within 10 minutes; its plan:\n"
                    << (text.is_string() ? text.get<std::string>() : "(no answer)");
    }
    Log(converge ? "converged" : "not converged");
    loop_->Stop();
    std::vector<HostVm> vms;
    for (int i = 0; i < args_.hosts; ++i) {
      std::optional<std::vector<HostVm>> host = ListHost(i);
      EXPECT_TRUE(host.has_value()) << "cannot list " << fixture_.host(i);
      if (host) {
        vms.insert(vms.end(), host->begin(), host->end());
      }
    }
    Result<std::unique_ptr<store::Store>> store =
        store::Store::Open(fixture_.store_path().string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Result<Ledger> ledger = (*store)->LoadLedger();
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    const std::vector<Count> counts = CountInvariants(vms, unmanaged_, fleet_.sets(), *ledger);
    const ActionTally tally = TallyActions(**store);
    Report(counts, tally, converge);
  }

  void Report(const std::vector<Count>& counts, const ActionTally& t,
              const std::optional<double>& converge) {
    double load = 0;
    for (double l : load_samples_) {
      load += l / static_cast<double>(load_samples_.size());
    }
    std::printf("\n=== soak: %.1f min, fault rate %.2f, %d hosts, seed %llu ===\n", args_.minutes,
                args_.fault_rate, args_.hosts, static_cast<unsigned long long>(args_.seed));
    std::printf("%-58s %6s\n", "event", "count");
    for (const auto& [what, n] : events_) {
      std::printf("%-58s %6d\n", what.c_str(), n);
    }
    std::printf("\n%-58s %6s\n", "invariant (must be 0 unless marked)", "count");
    for (const Count& c : counts) {
      std::printf("%-58s %6ld%s%s\n", c.what.c_str(), c.value, c.invariant ? "" : "  (info)",
                  c.value > 0 && !c.detail.empty() ? ("  [" + c.detail + " ]").c_str() : "");
    }
    std::printf("%-58s %6d\n", "loop exits not caused by the soak", loop_exits_);
    std::printf("\n%-58s %6ld\n", "runs", t.runs);
    std::printf("%-58s %6ld\n", "actions attempted (journal rows)", t.attempted);
    std::printf("%-58s %6ld\n", "  succeeded", t.succeeded);
    std::printf("%-58s %6ld\n", "  failed", t.failed);
    std::printf("%-58s %6ld\n", "  abandoned", t.abandoned);
    std::printf("%-58s %6ld\n", "  unfinished", t.unfinished);
    for (const auto& [kind, n] : t.by_kind) {
      std::printf("  %-56s %6ld\n", ("kind " + kind).c_str(), n);
    }
    for (const auto& [error, n] : t.failures) {
      std::printf("  failed: %-52s %6ld\n", error.c_str(), n);
    }
    if (converge) {
      std::printf("\n%-58s %6.1f s\n", "time to converge after the last change", *converge);
    }
    std::printf("%-58s %6.2f (2 cores; samples %zu)\n", "machine load (1-min average, mean)", load,
                load_samples_.size());
    std::fflush(stdout);
    for (const Count& c : counts) {
      if (c.invariant) {
        EXPECT_EQ(c.value, 0) << c.what << ":" << c.detail;
      }
    }
    EXPECT_EQ(loop_exits_, 0);
    EXPECT_TRUE(converge.has_value());
    if (HasFailure() || std::getenv("SOAK_LOG") != nullptr) {
      const std::string kept =
          "/tmp/soak-" + std::to_string(args_.seed) + "-" + std::to_string(getpid()) + "-loop.log";
      std::filesystem::copy_file(LogPath(), kept,
                                 std::filesystem::copy_options::overwrite_existing);
      std::printf("the loop's log is kept in %s\n", kept.c_str());
    }
  }

  static bool HasFailure() { return ::testing::Test::HasFailure(); }

  const Args args_;
  const int port_;
  const std::string token_;
  FleetFixture fixture_;
  SoakFleet fleet_;
  std::mt19937_64 rng_;
  const Clock::time_point start_;
  std::unique_ptr<testing::Process> loop_;
  std::map<int, Clock::time_point> offline_;  // host -> when it comes back
  std::vector<UnmanagedVm> unmanaged_;
  std::map<std::string, int> events_;
  std::vector<double> load_samples_;
  int loop_exits_ = 0;
};

TEST(SoakBench, CountedInvariantsUnderChaos) {
  Soak soak(TheArgs());
  soak.Run();
}

}  // namespace
}  // namespace flotilla::soak

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  flotilla::soak::Args& args = flotilla::soak::TheArgs();
  if (argc > 1) {
    args.minutes = std::atof(argv[1]);
  }
  if (argc > 2) {
    args.fault_rate = std::atof(argv[2]);
  }
  if (argc > 3) {
    args.hosts = std::max(1, std::atoi(argv[3]));
  }
  if (argc > 4) {
    args.seed = std::strtoull(argv[4], nullptr, 10);
  }
  return RUN_ALL_TESTS();
}
