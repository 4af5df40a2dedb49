// The store when the disk lets it down, with the real `flotilla` and flotilla-hostsim: a full
// disk during a converge (a small tmpfs of the test's own, mounted in a user and mount namespace
// for the loop alone), a damaged store file, a backup taken while the loop writes, the ledger
// check, and helper processes that end with the test that started them.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "reconciler/store/store.h"
#include "tests/support/api_loop.h"
#include "tests/support/fleet_fixture.h"
#include "tests/support/raw_db.h"
#include "tests/support/status.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kToken = "durability-token-4411";

FleetOptions DurabilityFleet() {
  FleetOptions options;
  options.hosts = 2;
  options.max_vms = 8;
  options.sim_flags = {"--latency", "create=1500ms"};
  options.reconcile_extra = "perHostConcurrency: 1";
  options.config_extra = "api: {listen: \"127.0.0.1:0\", tokenEnv: FLOTILLA_TEST_TOKEN}\n";
  return options;
}

// Whether this machine lets an unprivileged user namespace mount a tmpfs.
bool CanMountTmpfs() {
  return RunShell(
             "unshare -rm sh -c 'd=$(mktemp -d) && mount -t tmpfs -o size=1m t \"$d\"; "
             "r=$?; umount \"$d\" 2>/dev/null; rmdir \"$d\"; exit $r' >/dev/null 2>&1") == 0;
}

// `folder` as the process `pid` sees it (through its mount namespace).
fs::path SeenBy(pid_t pid, const fs::path& folder) {
  return fs::path("/proc") / std::to_string(pid) / "root" / folder.relative_path();
}

// Writes `file` until its file system has no byte left.
bool FillUp(const fs::path& file) {
  const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return false;
  }
  const std::vector<char> block(size_t{64} * 1024, 'x');
  for (const size_t size : {block.size(), size_t{4096}, size_t{512}, size_t{1}}) {
    while (write(fd, block.data(), size) == static_cast<ssize_t>(size)) {
    }
  }
  const bool full = errno == ENOSPC;
  close(fd);
  return full;
}

// Whether the process has ended (a zombie nobody reaped has, too).
bool Gone(pid_t pid) {
  if (kill(pid, 0) != 0) {
    return true;
  }
  const std::vector<std::string> fields = ProcStatFields("/proc/" + std::to_string(pid) + "/stat");
  return !fields.empty() && fields[0] == "Z";
}

// Journal rows of create attempts that got as far as the host could be asked (attempt >= 1),
// through the loop's API (its store is on a file system only the loop sees).
int JournalledCreates(ApiLoop& loop) {
  int n = 0;
  for (const nlohmann::json& run : loop.Runs()) {
    const nlohmann::json detail =
        loop.GetJson("/api/v1/runs/" + std::to_string(run.value("id", int64_t{0})));
    for (const nlohmann::json& action : detail["actions"]) {
      const std::string kind = action.value("kind", "");
      n += (kind == "create" || kind == "replace") && action.value("attempt", 0) >= 1 ? 1 : 0;
    }
  }
  return n;
}

std::set<std::string> Names(const std::vector<HostVm>& vms) {
  std::set<std::string> names;
  for (const HostVm& vm : vms) {
    names.insert(vm.name);
  }
  return names;
}

TEST(DurabilityTest, AFullDiskStopsEveryHostCallUntilSpaceReturns) {
  if (!CanMountTmpfs()) {
    GTEST_SKIP() << "this machine does not let a user namespace mount a tmpfs (unshare -rm)";
  }
  FleetFixture fx(DurabilityFleet());
  ASSERT_TRUE(fx.ready());
  fs::create_directories(fx.state_dir());
  // The loop's state directory is a 16 MiB tmpfs only the loop sees.
  fx.SetLoopPrefix("unshare -rm sh -c 'mount -t tmpfs -o size=16m flotilla-state " +
                   fx.state_dir().string() + " && exec \"$0\" \"$@\"'");
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2));
  fx.Commit("two VMs");
  ApiLoop loop(fx, kToken, "FLOTILLA_TEST_TOKEN");
  ASSERT_TRUE(loop.ok()) << fx.LoopLog();
  ASSERT_TRUE(loop.Ready()) << fx.LoopLog();
  ASSERT_TRUE(WaitUntil([&] { return Names(ListAll(fx, 2)).size() == 2; }, 90s)) << fx.LoopLog();
  const fs::path filler = SeenBy(loop.process().pid(), fx.state_dir()) / "filler";

  // Six more; the disk fills as soon as the first of them is asked for.
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 8));
  fx.Commit("eight VMs");
  const int before = fx.CountOnAllHosts("create_jobs");
  ASSERT_TRUE(WaitUntil([&] { return fx.CountOnAllHosts("create_jobs") > before; }, 60s))
      << fx.LoopLog();
  ASSERT_TRUE(FillUp(filler)) << "cannot fill " << filler;

  // The loop says so: /readyz, status and the metric.
  ASSERT_TRUE(WaitUntil(
      [&] {
        httplib::Result r = loop.Get("/readyz", "");
        return r && r->status == 503 && Contains(r->body, "store");
      },
      60s))
      << fx.LoopLog();
  const nlohmann::json status = loop.GetJson("/api/v1/status");
  EXPECT_FALSE(status["store"].value("writable", true)) << status.dump(2);
  EXPECT_TRUE(Contains(status["store"].value("problem", ""), "full")) << status.dump(2);
  httplib::Result metrics = loop.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_TRUE(Contains(metrics->body, "flotilla_store_writable 0")) << metrics->body;
  std::ofstream(fx.dir() / "token") << kToken << "\n";
  const Outcome cli = RunCommand("NO_COLOR=1 " FLOTILLA_BIN " status --server " + loop.url() +
                                     " --token-file " + (fx.dir() / "token").string(),
                                 fx.dir());
  EXPECT_TRUE(Contains(cli.out, "CANNOT BE WRITTEN")) << cli.out << cli.err;

  // Creates already asked for finish on the host; nothing new is asked while the disk is full,
  // over several passes.
  std::this_thread::sleep_for(5s);
  const int at_failure = fx.CountOnAllHosts("create_jobs");
  std::this_thread::sleep_for(8s);
  EXPECT_EQ(fx.CountOnAllHosts("create_jobs"), at_failure)
      << "a host was asked for a VM while the store could not be written\n"
      << fx.LoopLog();

  // Room again: the loop resumes by itself and converges, with no VM twice and none left over.
  fs::remove(filler);
  ASSERT_TRUE(WaitUntil(
      [&] {
        httplib::Result r = loop.Get("/readyz", "");
        return r && r->status == 200;
      },
      60s))
      << fx.LoopLog();
  std::set<std::string> expected;
  for (int i = 0; i < 8; ++i) {
    expected.insert("ci-" + std::to_string(i));
  }
  ASSERT_TRUE(WaitUntil([&] { return Names(ListAll(fx, 2)) == expected; }, 120s))
      << Describe(ListAll(fx, 2)) << fx.LoopLog();
  const std::vector<HostVm> vms = ListAll(fx, 2);
  EXPECT_EQ(vms.size(), 8u) << Describe(vms);
  EXPECT_TRUE(loop.GetJson("/api/v1/status")["store"].value("writable", false));

  // Journal first: every create a host was asked for has its journal row.
  const int asked = fx.CountOnAllHosts("create_jobs");
  const int journalled = JournalledCreates(loop);
  EXPECT_GE(asked, 8);
  EXPECT_GE(journalled, asked) << "a host was asked for more creates than the journal recorded";
}

TEST(DurabilityTest, ADamagedStoreFileIsRefusedWithTheWayOut) {
  FleetFixture fx(DurabilityFleet());
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("one VM");
  fs::create_directories(fx.state_dir());
  std::ofstream(fx.store_path()) << std::string(8192, 'G');  // not a SQLite file

  const Outcome apply = fx.Apply();
  EXPECT_EQ(apply.exit_code, 1) << apply.out << apply.err;
  EXPECT_TRUE(Contains(apply.err, fx.store_path().string())) << apply.err;
  EXPECT_TRUE(Contains(apply.err, "flotilla store backup")) << apply.err;
  EXPECT_EQ(fx.CountOnAllHosts("create_jobs"), 0) << "a host was changed";

  const Outcome check = fx.Flotilla("store check");
  EXPECT_EQ(check.exit_code, 1) << check.out << check.err;
  EXPECT_TRUE(Contains(check.err, "damaged")) << check.err;
}

TEST(DurabilityTest, ABackupTakenWhileTheLoopRunsIsWholeAndTheCheckFindsGhostRows) {
  FleetFixture fx(DurabilityFleet());
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 3));
  fx.Commit("three VMs");
  ApiLoop loop(fx, kToken, "FLOTILLA_TEST_TOKEN");
  ASSERT_TRUE(loop.ok()) << fx.LoopLog();
  ASSERT_TRUE(loop.Converged(90s)) << fx.LoopLog();

  // While the loop writes.
  const fs::path backup = fx.dir() / "backups" / "flotilla-copy.db";
  fs::create_directories(backup.parent_path());
  const Outcome made = fx.Flotilla("store backup " + backup.string());
  ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
  EXPECT_TRUE(Contains(made.out, "To restore")) << made.out;
  const Outcome again = fx.Flotilla("store backup " + backup.string());
  EXPECT_EQ(again.exit_code, 1) << "an existing backup was replaced without --force";
  EXPECT_TRUE(Contains(again.err, "--force")) << again.err;
  {
    Result<std::unique_ptr<store::Store>> copy =
        store::Store::Open(backup.string(), store::StoreOptions{.read_only = true});
    ASSERT_OK(copy);
    EXPECT_OK((*copy)->CheckIntegrity());
    Result<Ledger> ledger = (*copy)->LoadLedger();
    ASSERT_OK(ledger);
    EXPECT_EQ(ledger->entries.size(), 3u);
  }
  const Outcome healthy = fx.Flotilla("store check");
  EXPECT_EQ(healthy.exit_code, 0) << healthy.out << healthy.err;
  EXPECT_TRUE(Contains(healthy.out, "Integrity:   ok")) << healthy.out;
  EXPECT_TRUE(Contains(healthy.out, "3 VM(s)")) << healthy.out;

  // A ledger row for a VM no host has: the check names it.
  loop.process().Stop();
  ASSERT_EQ(RawDb(fx.store_path().string())
                .Exec("INSERT INTO ledger (vm, vmset, pool, host, provider_id, template_hash, "
                      "created_at, updated_at) VALUES ('ghost-0', 'ci', 'sims', 'sim-000', "
                      "'id-ghost', 'h', 0, 0)"),
            "");
  const Outcome ghost = fx.Flotilla("store check -o json");
  EXPECT_EQ(ghost.exit_code, 1) << ghost.out << ghost.err;
  const nlohmann::json doc = nlohmann::json::parse(ghost.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << ghost.out;
  ASSERT_EQ(doc["ledger_findings"].size(), 1u) << ghost.out;
  EXPECT_EQ(doc["ledger_findings"][0]["vm"], "ghost-0");
  EXPECT_EQ(doc["ledger_findings"][0]["problem"], "missing");
}

TEST(DurabilityTest, HostsimEndsWithItsParent) {
  ScratchDir dir;
  const fs::path pid_file = dir.path() / "hostsim.pid";
  const fs::path port_file = dir.path() / "port";
  // A parent that starts hostsim and is then killed outright.
  Process parent(ShellArgv("/bin/sh -c '" FLOTILLA_HOSTSIM_BIN
                           " --exit-with-parent --no-auth --listen 127.0.0.1:0 --port-file " +
                           port_file.string() + " & echo $! > " + pid_file.string() + "; wait'"));
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(port_file) && fs::exists(pid_file); }, 30s));
  const pid_t hostsim = std::stoi(Slurp(pid_file));
  ASSERT_FALSE(Gone(hostsim));
  parent.Signal(SIGKILL);  // the shell alone; hostsim shares its process group
  EXPECT_TRUE(WaitUntil([&] { return Gone(hostsim); }, 30s))
      << "flotilla-hostsim outlived its parent";
}

TEST(DurabilityTest, ATestsChildrenEndWithTheTest) {
  ScratchDir dir;
  const fs::path pid_file = dir.path() / "sleep.pid";
  // A test process that dies without cleaning up (no destructor runs) leaves no child behind.
  EXPECT_EXIT(
      {
        Process sleeper(
            ShellArgv("/bin/sh -c 'echo $$ > " + pid_file.string() + "; exec sleep 600'"));
        WaitUntil([&] { return fs::exists(pid_file) && !Slurp(pid_file).empty(); }, 30s);
        _exit(3);
      },
      ::testing::ExitedWithCode(3), "");
  ASSERT_TRUE(fs::exists(pid_file));
  const pid_t sleeper = std::stoi(Slurp(pid_file));
  EXPECT_TRUE(WaitUntil([&] { return Gone(sleeper); }, 30s)) << "the child outlived its test";
  if (!Gone(sleeper)) {
    kill(sleeper, SIGKILL);
  }
}

}  // namespace
}  // namespace flotilla::testing
