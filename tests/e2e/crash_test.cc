// Crash safety and failure handling of `flotilla apply` and `flotilla run` against
// flotilla-hostsim: applies killed at random moments, random host faults, a host that goes
// offline mid-apply, and a stuck create superseded by a newer commit; then three deterministic
// cases the random one found (a resumed create of an older template, temporary VMs of a removed
// VMSet, the prune of a set whose first apply was killed). After each, the fleet must converge
// with no VM twice, no temporary VM left behind, and a ledger that matches the hosts.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "reconciler/store/store.h"
#include "tests/support/fleet_fixture.h"
#include "tests/support/status.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// `flotilla <args> --config F` as a shell command line with its output to files.
std::string FlotillaCommand(FleetFixture& f, const std::string& args, const fs::path& out,
                            const fs::path& err) {
  return "env NO_COLOR=1 " FLOTILLA_BIN " " + args + " --config " + f.config().string() +
         " </dev/null >" + out.string() + " 2>" + err.string();
}

// Runs flotilla to completion, killing it after `limit` (exit code -2 then).
Outcome RunBounded(FleetFixture& f, const std::string& args, milliseconds limit = 60s) {
  const fs::path out = f.dir() / "bounded.out";
  const fs::path err = f.dir() / "bounded.err";
  Process child(ShellArgv(FlotillaCommand(f, args, out, err)));
  std::optional<int> code = child.Wait(limit);
  if (!code) {
    child.Signal(SIGKILL);
    child.Wait(10s);
  }
  return Outcome{.exit_code = code.value_or(-2), .out = Slurp(out), .err = Slurp(err)};
}

std::string Tail(const std::string& text, size_t n = 3000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

// Runs `apply --yes` and kills it (SIGKILL) as soon as `moment` holds (`what` describes it). Its
// log is killed.err in the fixture's folder.
template <typename Moment>
::testing::AssertionResult ApplyKilledWhen(FleetFixture& f, const std::string& what,
                                           Moment moment) {
  const fs::path err = f.dir() / "killed.err";
  Process apply(ShellArgv(FlotillaCommand(f, "apply --yes", f.dir() / "killed.out", err)));
  if (!WaitUntil(moment, 60s)) {
    return ::testing::AssertionFailure() << "never saw " << what << "; the apply logged:\n"
                                         << Slurp(err);
  }
  apply.Signal(SIGKILL);
  if (!apply.Wait(10s).has_value()) {
    return ::testing::AssertionFailure() << "apply did not end after SIGKILL";
  }
  return ::testing::AssertionSuccess();
}

bool IsTemporary(const std::string& name) { return Contains(name, ".flotilla-"); }

// No temporary VMs; no name twice on one host; no name on two hosts.
void ExpectNoDuplicatesOrLeftovers(const std::vector<HostVm>& vms) {
  std::map<std::string, std::vector<std::string>> hosts_of;
  for (const HostVm& vm : vms) {
    EXPECT_FALSE(IsTemporary(vm.name)) << "temporary VM left on " << vm.host << ": " << vm.name;
    hosts_of[vm.name].push_back(vm.host);
  }
  for (const auto& [name, hosts] : hosts_of) {
    std::string where;
    for (const std::string& h : hosts) {
      where += " " + h;
    }
    EXPECT_EQ(hosts.size(), 1u) << "VM " << name << " exists " << hosts.size()
                                << " times, on:" << where;
  }
}

// The final names on the hosts that match `managed`.
std::set<std::string> ManagedNames(const std::vector<HostVm>& vms, const std::regex& managed) {
  std::set<std::string> names;
  for (const HostVm& vm : vms) {
    if (std::regex_match(vm.name, managed)) {
      names.insert(vm.name);
    }
  }
  return names;
}

std::set<std::string> Expected(const std::map<std::string, int>& replicas) {
  std::set<std::string> names;
  for (const auto& [set, n] : replicas) {
    for (int i = 0; i < n; ++i) {
      names.insert(set + "-" + std::to_string(i));
    }
  }
  return names;
}

std::string Join(const std::set<std::string>& names) {
  std::string text;
  for (const std::string& n : names) {
    text += (text.empty() ? "" : " ") + n;
  }
  return text;
}

// The store (after every process using it has ended) against the hosts: every ledger entry's VM
// exists on its host with the recorded id; every managed-looking VM is in the ledger there; and
// the file passes PRAGMA integrity_check.
void ExpectLedgerMatchesHosts(FleetFixture& f, const std::vector<HostVm>& vms,
                              const std::regex& managed) {
  Result<std::unique_ptr<store::Store>> opened = store::Store::Open(f.store_path().string());
  ASSERT_OK(opened);
  store::Store& s = **opened;
  EXPECT_OK(s.CheckIntegrity());
  Result<Ledger> ledger = s.LoadLedger();
  ASSERT_OK(ledger);
  std::string entries;
  for (const LedgerEntry& e : ledger->entries) {
    entries += "  " + e.vm + " on " + e.host + " (" + e.provider_id + ")\n";
  }
  for (const LedgerEntry& e : ledger->entries) {
    bool found = false;
    for (const HostVm& vm : vms) {
      if (vm.host == e.host && vm.name == e.vm) {
        found = true;
        EXPECT_EQ(vm.id, e.provider_id)
            << "ledger id of " << e.vm << " on " << e.host << " differs from the host's";
      }
    }
    EXPECT_TRUE(found) << "ledger entry " << e.vm << " on " << e.host
                       << " has no VM on that host\nhosts:\n"
                       << Describe(vms);
  }
  for (const HostVm& vm : vms) {
    if (!std::regex_match(vm.name, managed)) {
      continue;
    }
    const LedgerEntry* e = ledger->Find(vm.name);
    EXPECT_TRUE(e != nullptr && e->host == vm.host)
        << vm.name << " on " << vm.host << " is not in the ledger there\nledger:\n"
        << entries;
  }
  Result<std::vector<store::ActionRecord>> unfinished = s.UnfinishedActions();
  ASSERT_OK(unfinished);
  EXPECT_TRUE(unfinished->empty()) << unfinished->size() << " action(s) still unfinished";
}

// Waits until no host has work under way: creates, clones and state changes that a killed
// process started finish on the hosts on their own. Fails the test after a generous deadline.
void WaitForQuietHosts(FleetFixture& f) {
  EXPECT_TRUE(WaitUntil([&] { return f.sim().InFlight() == 0; }, 60s))
      << "hosts still busy after 60 s: " << f.sim().Control("GET", "/_sim/hosts").dump();
}

// Create actions of unfinished runs whose host job id is journalled, read from the store beside
// a running apply (the store is in WAL mode, so a reader does not block it); -1 if unreadable.
int UnfinishedCreatesWithAJob(FleetFixture& f) {
  sqlite3* db = nullptr;
  int n = -1;
  if (sqlite3_open_v2(f.store_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db,
                           "SELECT COUNT(*) FROM actions WHERE pending_job_id != '' AND state IN "
                           "('intended', 'running')",
                           -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      n = sqlite3_column_int(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return n;
}

// Applies (not killed) until one reports no changes and the hosts hold exactly `expected`;
// returns whether that happened within `rounds`.
bool ApplyUntilConverged(FleetFixture& f, int hosts, const std::set<std::string>& expected,
                         const std::regex& managed, int rounds, std::string& log) {
  for (int round = 1; round <= rounds; ++round) {
    const auto started = steady_clock::now();
    Outcome applied = RunBounded(f, "apply --yes --max-deletions 100", 90s);
    const auto took =
        std::chrono::duration_cast<milliseconds>(steady_clock::now() - started).count();
    log += "--- apply round " + std::to_string(round) + ": exit " +
           std::to_string(applied.exit_code) + " in " + std::to_string(took) + " ms\n" +
           Tail(applied.err, 1500) + "\n";
    if (applied.exit_code == 0 && Contains(applied.err, "No changes")) {
      const std::set<std::string> names = ManagedNames(ListAll(f, hosts), managed);
      if (names == expected) {
        return true;
      }
      log += "no changes, but the hosts hold: " + Join(names) + "\n";
    }
  }
  return false;
}

// The end of every scenario: applies (at most `rounds`) until one reports no changes and the
// hosts hold exactly `expected`, then checks the hosts and the store: no VM twice, no temporary
// VM, exactly the expected managed VMs, and a ledger that matches the hosts. Returns what the
// hosts hold, for the scenario's own checks; `log` collects the applies' output.
std::vector<HostVm> ExpectFleetConverged(FleetFixture& f, int hosts,
                                         const std::set<std::string>& expected,
                                         const std::regex& managed, int rounds, std::string& log) {
  EXPECT_TRUE(ApplyUntilConverged(f, hosts, expected, managed, rounds, log)) << Tail(log, 12000);
  std::vector<HostVm> vms = ListAll(f, hosts);
  ExpectNoDuplicatesOrLeftovers(vms);
  EXPECT_EQ(Join(ManagedNames(vms, managed)), Join(expected)) << Describe(vms);
  ExpectLedgerMatchesHosts(f, vms, managed);
  return vms;
}

// ---------------------------------------------------------------------------------------------
// 1. Crash safety: applies SIGKILLed at random moments while the desired state keeps changing.

struct FleetState {
  int web = 3;
  int db = 2;
  int batch = 2;
  bool batch_on = true;
  int web_version = 1;
  int db_version = 1;

  std::map<std::string, int> Replicas() const {
    std::map<std::string, int> r = {{"web", web}, {"db", db}};
    if (batch_on) {
      r["batch"] = batch;
    }
    return r;
  }
  std::string ToString() const {
    return "web=" + std::to_string(web) + "(v" + std::to_string(web_version) +
           ") db=" + std::to_string(db) + "(v" + std::to_string(db_version) +
           ") batch=" + (batch_on ? std::to_string(batch) : std::string("removed"));
  }
};

// Each web version also has its own cpu count (1, 2, 3), so that a VM built from an older
// template shows on the host even where the ledger says otherwise.
void WriteFleet(FleetFixture& f, const FleetState& s) {
  f.WriteManifest(
      "web.yaml",
      FleetFixture::VmSetYaml("web", s.web, "  prune: true\n",
                              "catalog://LINUX/v" + std::to_string(s.web_version), s.web_version));
  f.WriteManifest("db.yaml",
                  FleetFixture::VmSetYaml("db", s.db, "  prune: true\n",
                                          "catalog://DB/v" + std::to_string(s.db_version), 1));
  if (s.batch_on) {
    f.WriteManifest("batch.yaml", FleetFixture::VmSetYaml("batch", s.batch, "  prune: true\n",
                                                          "catalog://LINUX/v1", 1));
  } else {
    f.RemoveManifest("batch.yaml");
  }
}

TEST(CrashTest, AppliesKilledAtRandomMomentsLeaveAConsistentFleet) {
  constexpr int kHosts = 3;
  constexpr int kIterations = 24;
  // Fixed, so that a failure reproduces; FLOTILLA_CRASH_SEED explores others.
  uint32_t seed = 1;
  if (const char* env = std::getenv("FLOTILLA_CRASH_SEED")) {  // NOLINT(concurrency-mt-unsafe)
    seed = static_cast<uint32_t>(std::strtoul(env, nullptr, 10));
  }
  std::cout << "[ crash    ] seed " << seed << " (FLOTILLA_CRASH_SEED=" << seed << " to repeat)\n";
  RecordProperty("seed", std::to_string(seed));
  FleetFixture f(FleetOptions{
      .hosts = kHosts,
      .sim_flags = {"--latency",
                    "create=150ms,pull=300ms,start=50ms,stop=50ms,delete=50ms,rename=30ms",
                    "--seed", "7"},
      .max_vms = 6});
  ASSERT_TRUE(f.ready());
  const std::regex managed("^(web|db|batch)-[0-9]+$");
  std::mt19937 rng(seed);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto between = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  FleetState state;
  std::string history;
  int finished_before_kill = 0;
  for (int i = 0; i < kIterations; ++i) {
    if (i > 0) {
      state.web = between(1, 6);
      state.db = between(1, 6);
      state.batch = between(1, 4);
      if (chance(0.3)) {
        state.web_version = state.web_version % 3 + 1;  // replaces every web VM
      }
      if (chance(0.2)) {
        state.db_version = state.db_version % 2 + 1;
      }
      if (chance(0.35)) {
        state.batch_on = !state.batch_on;  // removed: its VMs are pruned
      }
    }
    WriteFleet(f, state);
    f.Commit("iteration " + std::to_string(i));
    const int delay = between(0, 1500);
    Process apply(ShellArgv(FlotillaCommand(f, "apply --yes --max-deletions 100",
                                            f.dir() / "killed.out", f.dir() / "killed.err")));
    ASSERT_TRUE(apply.running());
    std::this_thread::sleep_for(milliseconds(delay));
    apply.Signal(SIGKILL);  // the process itself, not just its group
    const std::optional<int> code = apply.Wait(10s);
    ASSERT_TRUE(code.has_value()) << "apply did not die after SIGKILL";
    if (*code != 128 + SIGKILL) {
      ++finished_before_kill;
    }
    size_t final_vms = 0;
    size_t temporary = 0;
    for (const HostVm& vm : ListAll(f, kHosts)) {
      ++(IsTemporary(vm.name) ? temporary : final_vms);
    }
    history += "iteration " + std::to_string(i) + ": " + state.ToString() + ", killed after " +
               std::to_string(delay) + " ms (status " + std::to_string(*code) +
               "); hosts: " + std::to_string(final_vms) + " VMs, " + std::to_string(temporary) +
               " temporary\n";
  }
  std::cout << history << "[ crash    ] " << finished_before_kill << " of " << kIterations
            << " applies finished before their kill\n";

  // Creates started by killed processes finish on the hosts on their own; let them land.
  WaitForQuietHosts(f);
  // (a) no duplicates, no temporary VMs, exactly the desired VMs; (b) the ledger matches the
  // hosts and the store is intact.
  SCOPED_TRACE("final desired state " + state.ToString());
  std::string log;
  const std::vector<HostVm> vms =
      ExpectFleetConverged(f, kHosts, Expected(state.Replicas()), managed, 12, log);

  // (c) plan agrees: nothing left to do.
  Outcome plan = RunBounded(f, "plan", 60s);
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;

  // (d) every VM was built from its set's current template (web's cpu follows its version).
  for (const HostVm& vm : vms) {
    if (vm.name.starts_with("web-")) {
      EXPECT_EQ(vm.cpus, state.web_version)
          << vm.name << " on " << vm.host << " was built from web's template v" << vm.cpus
          << ", not the current v" << state.web_version;
    } else if (std::regex_match(vm.name, managed)) {
      EXPECT_EQ(vm.cpus, 1) << vm.name << " on " << vm.host;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Random host faults (500s on every endpoint) are retried; repeated applies converge.

TEST(CrashTest, RandomHostFaultsConvergeWithoutDuplicates) {
  constexpr int kHosts = 3;
  FleetFixture f(FleetOptions{
      .hosts = kHosts,
      .sim_flags = {"--fault-rate", "0.2", "--latency", "create=50ms,pull=100ms", "--seed", "11"},
      .reconcile_extra = "maxAttempts: 6"});
  ASSERT_TRUE(f.ready());
  const std::regex managed("^web-[0-9]+$");
  f.WriteManifest("web.yaml",
                  FleetFixture::VmSetYaml("web", 6, "  prune: true\n", "catalog://LINUX/v1", 1));
  f.Commit("six web VMs");
  std::string log;
  ExpectFleetConverged(f, kHosts, Expected({{"web", 6}}), managed, 10, log);
}

// ---------------------------------------------------------------------------------------------
// 3. A host that goes offline while creates run on it: the apply ends (with failures) in
// bounded time, and once the host is back the next applies converge.

TEST(CrashTest, HostOfflineMidApplyFailsBoundedThenConverges) {
  constexpr int kHosts = 3;
  FleetFixture f(FleetOptions{.hosts = kHosts, .sim_flags = {"--latency", "create=1s"}});
  ASSERT_TRUE(f.ready());
  const std::regex managed("^web-[0-9]+$");
  f.WriteManifest("web.yaml",
                  FleetFixture::VmSetYaml("web", 6, "  prune: true\n", "catalog://LINUX/v1", 1));
  f.Commit("six web VMs");
  const fs::path err = f.dir() / "offline.err";
  Process apply(ShellArgv(FlotillaCommand(f, "apply --yes", f.dir() / "offline.out", err)));
  ASSERT_TRUE(apply.running());
  ASSERT_TRUE(WaitUntil([&] { return Contains(Slurp(err), "create web-"); })) << Slurp(err);
  // The creates are under way on the hosts, sim-001's among them.
  ASSERT_TRUE(WaitUntil([&] { return f.sim().Count("sim-001", "create_jobs") > 0; }, 60s))
      << Slurp(err);
  f.sim().Control("POST", "/_sim/hosts/sim-001/offline");
  const auto started = steady_clock::now();
  const std::optional<int> code = apply.Wait(90s);
  const auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - started).count();
  ASSERT_TRUE(code.has_value()) << "apply still running 90 s after sim-001 went offline\n"
                                << Tail(Slurp(err));
  std::cout << "[ offline  ] apply ended " << took << " ms after sim-001 went offline, exit "
            << *code << "\n";
  EXPECT_EQ(*code, 1) << Tail(Slurp(err));
  EXPECT_TRUE(Contains(Slurp(err), "failed")) << Tail(Slurp(err));

  f.sim().Control("POST", "/_sim/hosts/sim-001/online");
  std::string log;
  const bool converged = ApplyUntilConverged(f, kHosts, Expected({{"web", 6}}), managed, 5, log);
  EXPECT_TRUE(converged) << Tail(log, 12000);
  // Creates that ran on sim-001 while it was offline may finish late; they must not survive.
  WaitForQuietHosts(f);
  ExpectFleetConverged(f, kHosts, Expected({{"web", 6}}), managed, 3, log);
}

// ---------------------------------------------------------------------------------------------
// 4. A create stuck on a catalog pull is cancelled when a newer commit supersedes it, and the
// loop converges to the new template; SIGTERM then stops the loop promptly.

TEST(CrashTest, StuckCreateIsSupersededByANewerCommit) {
  constexpr int kHosts = 3;
  FleetFixture f(FleetOptions{.hosts = kHosts,
                              .sim_flags = {"--latency", "pull=120s", "--cached", "FAST/v1"}});
  ASSERT_TRUE(f.ready());
  const std::regex managed("^web-[0-9]+$");
  f.WriteManifest("web.yaml",
                  FleetFixture::VmSetYaml("web", 2, "  prune: true\n", "catalog://SLOW/v1", 1));
  f.Commit("slow image");
  std::unique_ptr<Process> loop = f.StartLoop("", "NO_COLOR=1");
  ASSERT_TRUE(loop->running());
  ASSERT_TRUE(WaitUntil([&] { return Contains(f.LoopLog(), "create web-"); })) << Tail(f.LoopLog());
  // Both creates' jobs have started: their pulls are under way.
  ASSERT_TRUE(WaitUntil([&] { return f.CountOnAllHosts("create_jobs") >= 2; }, 60s))
      << Tail(f.LoopLog());
  ASSERT_FALSE(loop->Wait(0ms).has_value()) << "the loop exited\n" << Tail(f.LoopLog());

  f.WriteManifest("web.yaml",
                  FleetFixture::VmSetYaml("web", 2, "  prune: true\n", "catalog://FAST/v1", 1));
  f.Commit("fast image");
  const auto committed = steady_clock::now();
  EXPECT_TRUE(WaitUntil([&] { return Contains(f.LoopLog(), "supersedes"); }, 10s))
      << Tail(f.LoopLog());
  std::vector<HostVm> vms;
  const bool converged = WaitUntil(
      [&] {
        vms = ListAll(f, kHosts);
        int running = 0;
        for (const HostVm& vm : vms) {
          running += std::regex_match(vm.name, managed) && vm.state == "running" ? 1 : 0;
        }
        return running == 2 && ManagedNames(vms, managed) == Expected({{"web", 2}});
      },
      20s);
  const auto took =
      std::chrono::duration_cast<milliseconds>(steady_clock::now() - committed).count();
  std::cout << "[ supersede] " << (converged ? "converged " : "not converged ") << took
            << " ms after the fix was committed\n";
  EXPECT_TRUE(converged) << "hosts:\n" << Describe(vms) << "loop log:\n" << Tail(f.LoopLog(), 6000);
  ExpectNoDuplicatesOrLeftovers(vms);

  loop->Signal(SIGTERM);
  const auto term = steady_clock::now();
  const std::optional<int> code = loop->Wait(10s);
  const auto stop_ms = std::chrono::duration_cast<milliseconds>(steady_clock::now() - term).count();
  ASSERT_TRUE(code.has_value()) << "flotilla run still running 10 s after SIGTERM\n"
                                << Tail(f.LoopLog());
  std::cout << "[ supersede] loop stopped " << stop_ms << " ms after SIGTERM, exit " << *code
            << "\n";
  EXPECT_EQ(*code, 0) << Tail(f.LoopLog());
  EXPECT_LT(stop_ms, 5000) << Tail(f.LoopLog());

  // The hosts hold the new template's VMs: planning against them finds nothing to do.
  Outcome plan = RunBounded(f, "plan", 60s);
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
}

// ---------------------------------------------------------------------------------------------
// 5. Deterministic: an apply killed while a create of template v1 runs on the host, then a
// commit that changes the template. The next apply must build the VM from the new template,
// not finish (rename) the v1 VM the killed process left behind.

TEST(CrashTest, KilledCreateIsNotFinishedWithAnOlderTemplate) {
  constexpr int kHosts = 1;
  FleetFixture f(FleetOptions{.hosts = kHosts, .sim_flags = {"--latency", "create=2s"}});
  ASSERT_TRUE(f.ready());
  const std::regex managed("^web-[0-9]+$");
  f.WriteManifest("web.yaml",
                  FleetFixture::VmSetYaml("web", 1, "  prune: true\n", "catalog://LINUX/v1", 1));
  f.Commit("v1, one cpu");
  const fs::path err = f.dir() / "killed.err";
  {
    Process apply(ShellArgv(FlotillaCommand(f, "apply --yes", f.dir() / "killed.out", err)));
    // The host has answered the create and the job id is journalled.
    ASSERT_TRUE(WaitUntil([&] { return UnfinishedCreatesWithAJob(f) >= 1; }, 60s)) << Slurp(err);
    apply.Signal(SIGKILL);
    ASSERT_TRUE(apply.Wait(10s).has_value());
  }
  f.WriteManifest("web.yaml",
                  FleetFixture::VmSetYaml("web", 1, "  prune: true\n", "catalog://LINUX/v2", 2));
  f.Commit("v2, two cpus");
  WaitForQuietHosts(f);  // the v1 job completes on the host
  std::string log;
  for (const HostVm& vm :
       ExpectFleetConverged(f, kHosts, Expected({{"web", 1}}), managed, 3, log)) {
    if (vm.name == "web-0") {
      EXPECT_EQ(vm.cpus, 2) << "web-0 was built from the v1 template (1 cpu) though v2 is "
                               "desired and the ledger says it is up to date\n"
                            << Tail(log, 8000);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 6. Deterministic: creates killed mid-job for VMs that the next commit no longer wants (a VM
// beyond the new replicas, a VMSet removed). Their temporary VMs land on the hosts after the
// kill; the next applies must delete them even though nothing else needs doing.

TEST(CrashTest, TemporaryVmsOfKilledCreatesAreSweptWhenNoLongerWanted) {
  constexpr int kHosts = 2;
  FleetFixture f(FleetOptions{.hosts = kHosts, .sim_flags = {"--latency", "create=1500ms"}});
  ASSERT_TRUE(f.ready());
  const std::regex managed("^(web|batch)-[0-9]+$");
  f.WriteManifest("web.yaml",
                  FleetFixture::VmSetYaml("web", 1, "  prune: true\n", "catalog://LINUX/v1", 1));
  f.Commit("one web VM");
  std::string log;
  ASSERT_TRUE(ApplyUntilConverged(f, kHosts, Expected({{"web", 1}}), managed, 3, log)) << Tail(log);
  f.WriteManifest("web.yaml",
                  FleetFixture::VmSetYaml("web", 2, "  prune: true\n", "catalog://LINUX/v1", 1));
  f.WriteManifest("batch.yaml",
                  FleetFixture::VmSetYaml("batch", 1, "  prune: true\n", "catalog://LINUX/v1", 1));
  f.Commit("web-1 and batch-0");
  const fs::path err = f.dir() / "killed.err";
  {
    Process apply(ShellArgv(FlotillaCommand(f, "apply --yes", f.dir() / "killed.out", err)));
    // The creates of web-1 and batch-0 run on the hosts, their job ids journalled.
    ASSERT_TRUE(WaitUntil([&] { return UnfinishedCreatesWithAJob(f) >= 2; }, 60s)) << Slurp(err);
    apply.Signal(SIGKILL);
    ASSERT_TRUE(apply.Wait(10s).has_value());
  }
  f.WriteManifest("web.yaml",
                  FleetFixture::VmSetYaml("web", 1, "  prune: true\n", "catalog://LINUX/v1", 1));
  f.RemoveManifest("batch.yaml");
  f.Commit("back to one web VM");
  WaitForQuietHosts(f);  // the killed creates' jobs complete on the hosts
  const std::vector<HostVm> vms =
      ExpectFleetConverged(f, kHosts, Expected({{"web", 1}}), managed, 3, log);
  if (HasFailure()) {
    std::cout << "hosts:\n" << Describe(vms) << Tail(log, 4000) << "\n";
  }
}

// ---------------------------------------------------------------------------------------------
// 7. Deterministic: the first apply of a VMSet with prune: true is killed after its VMs were
// created (and entered in the ledger). Removing the set later must delete them: the set was
// applied with prune: true.

TEST(CrashTest, VmsOfAPrunedSetAreDeletedEvenIfItsFirstApplyWasKilled) {
  constexpr int kHosts = 2;
  FleetFixture f(FleetOptions{.hosts = kHosts, .sim_flags = {"--latency", "start=5s"}});
  ASSERT_TRUE(f.ready());
  const std::regex managed("^(web|batch)-[0-9]+$");
  f.WriteManifest("web.yaml",
                  FleetFixture::VmSetYaml("web", 1, "  prune: true\n", "catalog://LINUX/v1", 1));
  f.WriteManifest("batch.yaml",
                  FleetFixture::VmSetYaml("batch", 2, "  prune: true\n", "catalog://LINUX/v1", 1));
  f.Commit("web and batch");
  const fs::path err = f.dir() / "killed.err";
  {
    Process apply(ShellArgv(
        FlotillaCommand(f, "apply --yes --max-deletions 100", f.dir() / "killed.out", err)));
    // Killed while the slow starts run: every VM exists under its final name by then.
    ASSERT_TRUE(WaitUntil([&] { return Contains(Slurp(err), "start batch-"); })) << Slurp(err);
    ASSERT_TRUE(WaitUntil([&] {
      return ManagedNames(ListAll(f, kHosts), managed) == Expected({{"web", 1}, {"batch", 2}});
    }));
    apply.Signal(SIGKILL);
    ASSERT_TRUE(apply.Wait(10s).has_value());
  }
  f.RemoveManifest("batch.yaml");
  f.Commit("batch removed");
  WaitForQuietHosts(f);  // the killed apply's starts finish on the hosts
  SCOPED_TRACE("batch (prune: true) was removed; its VMs must go");
  std::string log;
  ExpectFleetConverged(f, kHosts, Expected({{"web", 1}}), managed, 4, log);
  Outcome plan = RunBounded(f, "plan", 60s);
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  if (HasFailure()) {
    std::cout << plan.out << "\n";
  }
}

}  // namespace
}  // namespace flotilla::testing

namespace flotilla::testing {
namespace {

// Issue 18, item 0: a kill while the host renames a recreated VM into place leaves the VM with a
// new id; the ledger must learn it, or a later replace deletes the dead id and two copies live on.
TEST(CrashTest, AKillDuringTheRenameOfARecreatedVmLeavesNoDuplicateAfterAReplace) {
  constexpr int kHosts = 2;
  FleetFixture f(FleetOptions{.hosts = kHosts, .sim_flags = {"--latency", "rename=3s"}});
  ASSERT_TRUE(f.ready());
  const std::regex managed("^lx-[0-9]+$");
  auto manifest = [&](int cpu) {
    f.WriteManifest(
        "lx.yaml",
        FleetFixture::VmSetYaml("lx", 2, "  prune: true\n  updateStrategy: {maxUnavailable: 2}\n",
                                "catalog://LINUX/v1", cpu));
  };
  manifest(1);
  f.Commit("lx: 2");
  std::string log;
  ASSERT_TRUE(ApplyUntilConverged(f, kHosts, Expected({{"lx", 2}}), managed, 3, log))
      << Tail(log, 6000);

  // lx-1 deleted out of band.
  HostVm old;
  for (const HostVm& vm : ListAll(f, kHosts)) {
    old = vm.name == "lx-1" ? vm : old;
  }
  ASSERT_FALSE(old.id.empty());
  httplib::Client client(f.sim().origin());
  const httplib::Headers headers = {{"X-Api-Key", EncodeBase64(kFleetApiKey)}};
  auto deleted =
      client.Delete("/h/" + old.host + "/api/v1/machines/" + old.id + "?force=true", headers);
  ASSERT_TRUE(deleted && deleted->status < 300) << (deleted ? deleted->body : "no answer");

  // apply makes it again and is killed while the host renames it into place: the host lists the
  // new lx-1 as soon as the rename begins, and answers it 3 s later.
  ASSERT_TRUE(ApplyKilledWhen(f, "the recreated lx-1 listed (its rename under way)", [&] {
    for (const HostVm& vm : ListAll(f, kHosts)) {
      if (vm.name == "lx-1" && vm.id != old.id) {
        return true;
      }
    }
    return false;
  }));
  WaitForQuietHosts(f);
  ExpectFleetConverged(f, kHosts, Expected({{"lx", 2}}), managed, 3, log);
  ASSERT_FALSE(HasFailure());

  // A template change replaces both VMs: exactly one lx-1 remains, and Flotilla owns it.
  manifest(2);
  f.Commit("lx: 2 cpus");
  int copies = 0;
  for (const HostVm& vm : ExpectFleetConverged(f, kHosts, Expected({{"lx", 2}}), managed, 4, log)) {
    copies += vm.name == "lx-1" ? 1 : 0;
    if (vm.name == "lx-1" || vm.name == "lx-0") {
      EXPECT_EQ(vm.cpus, 2) << vm.name << " on " << vm.host;
    }
  }
  EXPECT_EQ(copies, 1) << Describe(ListAll(f, kHosts));
  Outcome plan = RunBounded(f, "plan", 60s);
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  EXPECT_FALSE(Contains(plan.out, "conflict")) << plan.out;
}

}  // namespace
}  // namespace flotilla::testing

namespace flotilla::testing {
namespace {

// Issue 18, items 1 and 5: an apply killed while its catalog create's request is in flight (the
// host has started the job, its answer is slow to come: hostsim --latency accept=3s). The
// journal has the temporary name, but no job id.
struct InFlightKill {
  static constexpr int kHosts = 2;
  FleetFixture f{FleetOptions{.hosts = kHosts, .sim_flags = {"--latency", "accept=3s,create=2s"}}};
  const std::regex managed{"^lx-[0-9]+$"};
  std::string log;

  void Write(int replicas) {
    f.WriteManifest("lx.yaml", FleetFixture::VmSetYaml("lx", replicas, "  prune: true\n",
                                                       "catalog://LINUX/v1", 1));
  }
  int Creates() { return f.CountOnAllHosts("create_jobs"); }
  // lx-0 converged; then lx-1 wanted, and the apply that creates it killed with its request in
  // flight.
  void KillWithTheCreateInFlight() {
    ASSERT_TRUE(f.ready());
    Write(1);
    f.Commit("lx: 1");
    ASSERT_TRUE(ApplyUntilConverged(f, kHosts, Expected({{"lx", 1}}), managed, 3, log))
        << Tail(log, 6000);
    ASSERT_EQ(Creates(), 1);
    Write(2);
    f.Commit("lx: 2");
    // Killed once the host has started lx-1's job: its answer is 3 s away (accept=3s).
    ASSERT_TRUE(
        ApplyKilledWhen(f, "the host starting lx-1's create job", [&] { return Creates() == 2; }));
    // The host counts a request once it is answered.
    ASSERT_EQ(f.CountOnAllHosts("create_async"), 1) << "the create was answered before the kill\n"
                                                    << Slurp(f.dir() / "killed.err");
    ASSERT_EQ(Creates(), 2);
  }
};

TEST(CrashTest, ACreateKilledInFlightIsFinishedWhereItsJobRunsWithoutASecondPull) {
  InFlightKill k;
  k.KillWithTheCreateInFlight();
  ASSERT_FALSE(HasFatalFailure());
  // At once: the host's job is still pulling, and nobody knows its id. The next apply places
  // lx-1 on that host, waits for the job and finishes its VM.
  const std::vector<HostVm> vms =
      ExpectFleetConverged(k.f, InFlightKill::kHosts, Expected({{"lx", 2}}), k.managed, 3, k.log);
  EXPECT_EQ(k.Creates(), 2) << "host creates for 2 VMs\n" << Describe(vms) << Tail(k.log, 6000);
}

TEST(CrashTest, ALeftoverOfACreateKilledInFlightIsPlannedAsADeletionAndDeleted) {
  InFlightKill k;
  k.KillWithTheCreateInFlight();
  ASSERT_FALSE(HasFatalFailure());
  k.Write(1);
  k.f.Commit("lx: back to 1");
  // The job completes: its temporary VM is on the host, and no longer wanted.
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const HostVm& vm : ListAll(k.f, InFlightKill::kHosts)) {
          if (IsTemporary(vm.name)) {
            return true;
          }
        }
        return false;
      },
      30s))
      << Describe(ListAll(k.f, InFlightKill::kHosts)) << Slurp(k.f.dir() / "killed.err");
  Outcome plan = RunBounded(k.f, "plan", 60s);
  EXPECT_EQ(plan.exit_code, 2) << plan.out << plan.err;
  EXPECT_TRUE(std::regex_search(
      plan.out, std::regex(R"(- delete +lx-1\.flotilla-[0-9a-f]+ on sim-00[01] \(left by an )"
                           R"(interrupted create of lx-1)")))
      << plan.out;
  ExpectFleetConverged(k.f, InFlightKill::kHosts, Expected({{"lx", 1}}), k.managed, 3, k.log);
  Outcome after = RunBounded(k.f, "plan", 60s);
  EXPECT_EQ(after.exit_code, 0) << after.out << after.err;
}

}  // namespace
}  // namespace flotilla::testing
