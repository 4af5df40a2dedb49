// bench/crash_creates: how much create work survives `kill -9`. A VM set of V catalog VMs on H
// simulated hosts is applied K times, each `flotilla apply --yes` killed (SIGKILL) at a random
// moment, then applied to convergence. Measured: the creates the hosts started (hostsim's
// create_jobs counter, which counts a job whether or not its answer ever arrived) per VM that
// exists at the end, and the temporary VMs the loop had to delete (journalled cleanups): the
// creates that were really lost. The target is 1.0 host create per VM plus those.
//
// Latencies make every stage of a create killable: the async create's answer comes late
// (accept), the pull takes a while (create), and the rename too.
//
// Usage: crash_creates_bench [kills=20] [vms=20] [hosts=2] [seed=1]
//          [latency=accept=1s,create=4s,rename=300ms,list=50ms]
// With these, converging takes about 30 s of apply time and the kills (each 0.3 to 3 s into an
// apply) fall while creates are under way.
// It uses the test fixture (a real Git repository, a real store, flotilla-hostsim); it is not
// part of the test suite.

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "reconciler/store/store.h"
#include "tests/support/fleet_fixture.h"

extern char** environ;

namespace flotilla::testing {
namespace {

struct Args {
  int kills = 20;
  int vms = 20;
  int hosts = 2;
  uint64_t seed = 1;
  std::string latency = "accept=1s,create=4s,rename=300ms,list=50ms";
};
Args& TheArgs() {
  static Args args;  // NOLINT: set once by main before the benchmark runs
  return args;
}

// `flotilla apply --yes` on the fixture, as a child in its own process group.
pid_t SpawnApply(FleetFixture& f, const std::string& log) {
  const std::string script = "exec env NO_COLOR=1 " FLOTILLA_BIN
                             " apply --yes --max-deletions 100 --config " +
                             f.config().string() + " </dev/null >/dev/null 2>>" + log;
  const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  if (posix_spawn(&pid, "/bin/sh", nullptr, &attr, const_cast<char* const*>(argv), environ) != 0) {
    pid = -1;
  }
  posix_spawnattr_destroy(&attr);
  return pid;
}

// Waits for the child; kills it first when `kill_after` is set. Its exit code, 128+N if killed.
int Reap(pid_t pid, std::optional<std::chrono::milliseconds> kill_after) {
  const auto end = std::chrono::steady_clock::now() +
                   kill_after.value_or(std::chrono::milliseconds{std::chrono::minutes{5}});
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() >= end) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(CrashCreatesBench, HostCreatesPerVmAcrossRandomKills) {
  const Args& args = TheArgs();
  FleetFixture f(FleetOptions{.hosts = args.hosts,
                              .sim_flags = {"--latency", args.latency},
                              .max_vms = static_cast<uint32_t>(args.vms)});
  ASSERT_TRUE(f.ready());
  f.WriteManifest("lx.yaml", FleetFixture::VmSetYaml("lx", args.vms, "  prune: true\n",
                                                     "catalog://LINUX/v1", /*cpu=*/1));
  f.Commit("lx");
  const std::string log = (f.dir() / "apply.log").string();
  std::mt19937_64 rng(args.seed);
  // Kills spread over the life of an apply: from its start to well into its creates.
  std::uniform_int_distribution<int> after_ms(300, 3000);
  const auto creates = [&] { return f.CountOnAllHosts("create_jobs"); };
  std::printf("kill  after_ms  host_creates_so_far\n");
  for (int k = 1; k <= args.kills; ++k) {
    const int ms = after_ms(rng);
    const pid_t pid = SpawnApply(f, log);
    ASSERT_GT(pid, 0);
    Reap(pid, std::chrono::milliseconds{ms});
    std::printf("%4d  %8d  %d\n", k, ms, creates());
  }
  int exit_code = -1;
  int rounds = 0;
  while (rounds < 5 && exit_code != 0) {
    ++rounds;
    const pid_t pid = SpawnApply(f, log);
    exit_code = Reap(pid, std::nullopt);
  }
  // One more: it must find nothing to do.
  exit_code = Reap(SpawnApply(f, log), std::nullopt);
  int vms = 0;
  int temporaries = 0;
  for (int i = 0; i < args.hosts; ++i) {
    for (const auto& [name, state] : f.Vms(i)) {
      vms += name.find(".flotilla-") == std::string::npos ? 1 : 0;
      temporaries += name.find(".flotilla-") == std::string::npos ? 0 : 1;
    }
  }
  Result<std::unique_ptr<store::Store>> store = store::Store::Open(f.store_path().string());
  ASSERT_TRUE(store.ok());
  Result<std::vector<store::ActionRecord>> deletions =
      (*store)->DeletionsSince(std::chrono::system_clock::time_point{});
  ASSERT_TRUE(deletions.ok());
  int cleanups = 0;
  for (const store::ActionRecord& a : *deletions) {
    cleanups += a.vm.find(".flotilla-") != std::string::npos ? 1 : 0;
  }
  const int total = creates();
  std::printf(
      "\n%d kills, then %d apply round(s) to converge (last exit %d)\n"
      "VMs at the end: %d (desired %d); temporary VMs left: %d\n"
      "host creates: %d; temporaries deleted as leftovers: %d\n"
      "host creates per VM: %.2f (target 1.0 + %d lost / %d = %.2f)\n",
      args.kills, rounds, exit_code, vms, args.vms, temporaries, total, cleanups,
      vms == 0 ? 0.0 : static_cast<double>(total) / vms, cleanups, vms,
      vms == 0 ? 0.0 : 1.0 + static_cast<double>(cleanups) / vms);
  EXPECT_EQ(vms, args.vms);
  EXPECT_EQ(temporaries, 0);
  EXPECT_EQ(exit_code, 0);
  if (HasFailure() || std::getenv("CRASH_BENCH_LOG") != nullptr) {
    std::cout << Slurp(log) << "\n";
  }
}

}  // namespace
}  // namespace flotilla::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  flotilla::testing::Args& args = flotilla::testing::TheArgs();
  if (argc > 1) args.kills = std::atoi(argv[1]);
  if (argc > 2) args.vms = std::atoi(argv[2]);
  if (argc > 3) args.hosts = std::atoi(argv[3]);
  if (argc > 4) args.seed = std::strtoull(argv[4], nullptr, 10);
  if (argc > 5) args.latency = argv[5];
  return RUN_ALL_TESTS();
}
