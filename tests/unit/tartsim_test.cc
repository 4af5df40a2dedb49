// flotilla-tartsim's `tart run` lifecycle: the fcntl lock, stop, the VM limit, suspend and
// resume, guest shutdowns, crashes, `ip --wait` and `exec`. Every wait has a generous deadline
// and ends on a state change, never on a fixed sleep.

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

#include "tests/unit/tartsim_fixture.h"

namespace flotilla::tartsim::testing {
namespace {

using nlohmann::json;

TEST_F(TartsimTest, RunHoldsTheLockAndStopEndsIt) {
  Clone("vm");
  const pid_t run = Boot("vm", {"--net-softnet-allow=10.0.0.0/8", "--dir=src:/tmp:ro"});
  EXPECT_EQ(State("vm"), "running");
  EXPECT_EQ(ReadText(Fake("runs/vm.argv")),
            "run\n--net-softnet-allow=10.0.0.0/8\n--dir=src:/tmp:ro\n--no-graphics\nvm\n");
  Outcome second = Run({"run", "--no-graphics", "vm"});
  EXPECT_EQ(second.code, 2);
  ExpectGolden("2.32.1/errors/run-already-running.exit2.txt", second.err);
  Outcome deleted = Run({"delete", "vm"});
  EXPECT_EQ(deleted.code, 1);
  ExpectGolden("2.32.1/errors/delete-running.exit1.txt", deleted.err);
  // `set` does not check, and the running VM keeps its lock across the in-place rewrite.
  EXPECT_EQ(Run({"set", "vm", "--memory", "16384"}).code, 0);
  EXPECT_EQ(State("vm"), "running");

  Outcome stop = Run({"stop", "vm"});
  EXPECT_EQ(stop.code, 0) << stop.err;
  EXPECT_EQ(WaitExit(run), 0);
  ExpectGolden("2.32.1/run-stopped.stdout.txt", Log("run-vm"));
  EXPECT_EQ(State("vm"), "stopped");
  EXPECT_EQ(Run({"stop", "vm"}).code, 2);
  EXPECT_EQ(Run({"delete", "vm"}).code, 0);
}

// A VM whose `tart run` does not act on SIGINT: stop SIGKILLs it after --timeout.
TEST_F(TartsimTest, StopKillsAVmThatIgnoresSigint) {
  Clone("vm");
  const pid_t run = Boot("vm");
  kill(run, SIGSTOP);  // a stopped process cannot act on SIGINT
  Outcome stop = Run({"stop", "--timeout", "1", "vm"});
  EXPECT_EQ(stop.code, 0) << stop.err;
  EXPECT_EQ(WaitExit(run), 128 + SIGKILL);
  EXPECT_EQ(State("vm"), "stopped");
}

TEST_F(TartsimTest, SigkillFreesTheLockAndSigtermHasNoHandler) {
  Clone("vm");
  const pid_t run = Boot("vm");
  kill(run, SIGKILL);
  EXPECT_EQ(WaitExit(run), 128 + SIGKILL);
  EXPECT_EQ(State("vm"), "stopped");  // the kernel dropped the lock; no clean-up happened
  const pid_t again = Boot("vm");
  kill(again, SIGTERM);
  EXPECT_EQ(WaitExit(again), 128 + SIGTERM);
  EXPECT_EQ(Log("run-vm"), "");
  EXPECT_EQ(State("vm"), "stopped");
}

// power_pid (what `flotilla dev` sets): when that process ends, every `run` stops its VM as on
// `tart stop`; a `run` started after it ended stops at once.
TEST_F(TartsimTest, RunStopsWhenThePowerProcessEnds) {
  const pid_t power = fork();
  ASSERT_GE(power, 0);
  if (power == 0) {
    pause();  // until killed
    _exit(0);
  }
  Config({{"latency_ms", {{"limitcheck", 0}}}, {"power_pid", power}});
  Clone("vm");
  const pid_t run = Boot("vm");
  EXPECT_EQ(State("vm"), "running");
  kill(power, SIGKILL);
  waitpid(power, nullptr, 0);
  EXPECT_EQ(WaitExit(run), 0);
  EXPECT_EQ(Log("run-vm"), "Stopping VM...\n");
  EXPECT_EQ(State("vm"), "stopped");

  const pid_t late = Spawn({"run", "--no-graphics", "vm"}, "run-vm");
  EXPECT_EQ(WaitExit(late), 0);
  EXPECT_EQ(Log("run-vm"), "Stopping VM...\n");
}

// The limit is checked after the lock is taken: `list` shows the VM running first.
TEST_F(TartsimTest, TheVmLimitFailsAfterTheVmShowedAsRunning) {
  Clone("a");
  Clone("b");
  Clone("c");
  Clone("linux", "ghcr.io/cirruslabs/ubuntu:latest");
  const pid_t a = Boot("a");
  const pid_t b = Boot("b");
  const pid_t linux_vm = Boot("linux");  // Linux guests do not count
  Config({{"latency_ms", {{"limitcheck", 1500}}}});
  const pid_t c = Spawn({"run", "--no-graphics", "c"}, "run-c");
  EXPECT_TRUE(Eventually([&] { return State("c") == "running"; }));
  EXPECT_EQ(WaitExit(c), 1);
  EXPECT_EQ(Log("run-c", "err"),
            "The number of VMs exceeds the system limit (other running VMs: a, b, linux)\n");
  EXPECT_EQ(State("c"), "stopped");
  for (pid_t pid : {a, b, linux_vm}) {
    kill(pid, SIGINT);
    EXPECT_EQ(WaitExit(pid), 0);
  }
}

TEST_F(TartsimTest, AStuckLimitFailsTheNextDarwinRuns) {
  Config({{"latency_ms", {{"limitcheck", 0}}}, {"faults", {{"limit_stuck", 2}}}});
  Clone("mac");
  Clone("linux", "ghcr.io/cirruslabs/ubuntu:latest");
  const pid_t linux_vm = Boot("linux");  // not affected, and leaves the count alone
  for (int i = 0; i < 2; ++i) {
    Outcome got = Run({"run", "--no-graphics", "mac"});
    EXPECT_EQ(got.code, 1);
    EXPECT_EQ(got.err, "The number of VMs exceeds the system limit (other running VMs: linux)\n");
  }
  EXPECT_EQ(json::parse(ReadText(Fake("config.json")))["faults"]["limit_stuck"], 0);
  const pid_t mac = Boot("mac");
  EXPECT_EQ(State("mac"), "running");
  for (pid_t pid : {mac, linux_vm}) {
    kill(pid, SIGINT);
    EXPECT_EQ(WaitExit(pid), 0);
  }
}

TEST_F(TartsimTest, SuspendAndResume) {
  Clone("vm");
  pid_t run = Boot("vm", {"--suspendable"});
  ASSERT_EQ(Run({"suspend", "vm"}).code, 0);
  EXPECT_EQ(WaitExit(run), 0);
  EXPECT_EQ(Log("run-vm"),
            "pausing VM to take a snapshot...\ncreating a snapshot...\nsnapshot created "
            "successfully! shutting down the VM...\n");
  EXPECT_EQ(State("vm"), "suspended");
  // Resumed by a plain run (a suspended VM is suspendable again), which deletes the state.
  run = Boot("vm");
  EXPECT_EQ(Log("run-vm"), "restoring VM state from a snapshot...\nresuming VM...\n");
  EXPECT_FALSE(std::filesystem::exists(home_ + "/vms/vm/state.vzvmsave"));
  kill(run, SIGINT);
  EXPECT_EQ(WaitExit(run), 0);
  // Without --suspendable the VM cannot be saved: `run` says so on stdout and exits 1.
  run = Boot("vm");
  ASSERT_EQ(Run({"suspend", "vm"}).code, 0);
  EXPECT_EQ(WaitExit(run), 1);
  ExpectGolden("2.32.1/run-suspend-failed.stdout.txt", Log("run-vm"));
  // `stop` on a suspended VM only forgets the saved state; Linux VMs cannot be suspendable.
  run = Boot("vm", {"--suspendable"});
  ASSERT_EQ(Run({"suspend", "vm"}).code, 0);
  EXPECT_EQ(WaitExit(run), 0);
  EXPECT_EQ(Run({"stop", "vm"}).code, 0);
  EXPECT_EQ(State("vm"), "stopped");
  Clone("linux", "ghcr.io/cirruslabs/ubuntu:latest");
  Outcome refused = Run({"run", "--suspendable", "linux"});
  EXPECT_EQ(refused.code, 64);
  ExpectGolden("2.32.1/errors/run-suspendable-linux.exit64.txt", refused.err);
}

TEST_F(TartsimTest, GuestShutdowns) {
  Clone("mac");
  Clone("linux", "ghcr.io/cirruslabs/ubuntu:latest");
  // SIGUSR2 (requestStop): a Linux guest shuts down; a macOS guest only shows a dialog.
  pid_t linux_vm = Boot("linux");
  const pid_t mac = Boot("mac");
  kill(linux_vm, SIGUSR2);
  kill(mac, SIGUSR2);
  EXPECT_EQ(WaitExit(linux_vm), 0);
  EXPECT_EQ(Log("run-linux"),
            "Requesting guest OS to stop...\nguest has stopped the virtual machine\n");
  EXPECT_TRUE(Eventually([&] { return Log("run-mac") == "Requesting guest OS to stop...\n"; }));
  EXPECT_EQ(State("mac"), "running");
  // Inside the guest: shutdown needs root; `sudo -n shutdown -h now` stops the VM.
  Outcome user = Run({"exec", "mac", "shutdown", "-h", "now"});
  EXPECT_EQ(user.code, 1);
  EXPECT_EQ(user.err, "shutdown: NOT super-user\n");
  Outcome root = Run({"exec", "mac", "sudo", "-n", "shutdown", "-h", "now"});
  EXPECT_EQ(root.code, 0) << root.err;
  EXPECT_EQ(WaitExit(mac), 0);
  ExpectGolden("2.32.1/run-guest-shutdown.stdout.txt",
               Log("run-mac").substr(std::string("Requesting guest OS to stop...\n").size()));
  // The fault: the guest goes down by itself.
  Config({{"latency_ms", {{"limitcheck", 0}}}, {"faults", {{"guest_shutdown_after_ms", 200}}}});
  linux_vm = Spawn({"run", "--no-graphics", "linux"}, "run-linux");
  EXPECT_EQ(WaitExit(linux_vm), 0);
  EXPECT_EQ(Log("run-linux"), "guest has stopped the virtual machine\n");
}

TEST_F(TartsimTest, IpWaitsForTheLease) {
  Clone("vm");
  Config({{"host", {{"shared_net_address", "192.168.64.1"}}},  // a Mac's default
          {"latency_ms", {{"limitcheck", 0}, {"ip", 1500}}}});
  const pid_t run = Spawn({"run", "--no-graphics", "vm"}, "run-vm");
  Outcome ip = Run({"ip", "--wait", "30", "vm"});
  ASSERT_EQ(ip.code, 0) << ip.err;
  EXPECT_EQ(ip.out, "192.168.64.2\n");
  EXPECT_EQ(Run({"ip", "vm", "--resolver", "agent"}).out, "192.168.64.2\n");
  kill(run, SIGINT);
  EXPECT_EQ(WaitExit(run), 0);
  // bootpd keeps the lease: a stopped VM still resolves by dhcp (a stale lease), not by agent.
  EXPECT_EQ(Run({"ip", "vm"}).out, "192.168.64.2\n");
  Outcome agent = Run({"ip", "vm", "--resolver", "agent"});
  EXPECT_EQ(agent.code, 1);
  EXPECT_EQ(agent.err,
            "no IP address found, is your VM running? (also make sure that Guest agent for Tart "
            "is running inside of a VM)\n");
}

TEST_F(TartsimTest, LeaseFaults) {
  Config({{"host", {{"shared_net_address", "192.168.64.1"}}},
          {"latency_ms", {{"limitcheck", 0}}},
          {"faults", {{"duplicate_ip", true}}}});
  Clone("a");
  Clone("b");
  const pid_t a = Boot("a");
  const pid_t b = Boot("b");
  EXPECT_EQ(Run({"ip", "a"}).out, "192.168.64.2\n");
  EXPECT_EQ(Run({"ip", "b"}).out, "192.168.64.2\n");  // bootpd handed out a taken address
  Config({{"host", {{"shared_net_address", "192.168.64.1"}}},
          {"latency_ms", {{"limitcheck", 0}}},
          {"faults", {{"no_lease", true}}}});
  Clone("linux", "ghcr.io/cirruslabs/ubuntu:latest");
  const pid_t linux_vm = Spawn({"run", "--no-graphics", "linux"}, "run-linux");
  ASSERT_TRUE(
      Eventually([&] { return std::filesystem::exists(Fake("vmstate/linux/agent-ready")); }));
  Outcome none = Run({"ip", "linux"});
  EXPECT_EQ(none.code, 1);
  EXPECT_EQ(none.err, "no IP address found\n");  // running, so no hint
  for (pid_t pid : {a, b, linux_vm}) {
    kill(pid, SIGINT);
    EXPECT_EQ(WaitExit(pid), 0);
  }
}

TEST_F(TartsimTest, ExecPassesExitCodesAndStdin) {
  Clone("vm");
  Clone("vanilla", "ghcr.io/cirruslabs/macos-sequoia-vanilla:latest");
  const pid_t run = Boot("vm");
  for (int code : {0, 1, 2, 7}) {
    Outcome got =
        Run({"exec", "vm", "sh", "-c", "echo out; echo err >&2; exit " + std::to_string(code)});
    EXPECT_EQ(got.code, code);
    EXPECT_EQ(got.out, "out\n");
    EXPECT_EQ(got.err, "err\n");
  }
  EXPECT_EQ(Run({"exec", "-i", "vm", "cat"}, "piped\n").out, "piped\n");
  EXPECT_EQ(Run({"exec", "vm", "cat"}, "not sent\n").out, "");  // stdin only with -i
  // The guest's environment is its own, its files in its home.
  Outcome env = Run({"exec", "-i", "vm", "/bin/sh", "-s"},
                    "echo \"$HOME|$USER|${FLOTILLA_SECRET:-unset}\"; pwd; touch made-here\n",
                    {"FLOTILLA_SECRET=leak"});
  EXPECT_EQ(env.out, Fake("guests/vm") + "|admin|unset\n" + Fake("guests/vm") + "\n");
  EXPECT_TRUE(std::filesystem::exists(Fake("guests/vm/made-here")));
  Outcome missing = Run({"exec", "vm", "no-such-command"});
  EXPECT_EQ(missing.code, 1);
  // An image without the guest agent.
  const pid_t vanilla = Boot("vanilla");
  Outcome no_agent = Run({"exec", "vanilla", "true"});
  EXPECT_EQ(no_agent.code, 1);
  ExpectGolden("2.32.1/errors/exec-no-agent.exit1.txt", no_agent.err);
  for (pid_t pid : {run, vanilla}) {
    kill(pid, SIGINT);
    EXPECT_EQ(WaitExit(pid), 0);
  }
}

TEST_F(TartsimTest, InterruptedCloneLeavesNothingBehind) {
  Config({{"latency_ms", {{"clone", 20000}}}});
  const pid_t clone =
      Spawn({"clone", "ghcr.io/cirruslabs/macos-sequoia-base:latest", "vm"}, "clone");
  ASSERT_TRUE(Eventually([&] {
    return std::filesystem::exists(home_ + "/tmp") && !std::filesystem::is_empty(home_ + "/tmp") &&
           Log("clone").find("pulling NVRAM...") != std::string::npos;
  }));
  kill(clone, SIGINT);
  EXPECT_EQ(WaitExit(clone), 1);
  EXPECT_EQ(Log("clone", "err"), "Error: CancellationError()\n");
  EXPECT_TRUE(std::filesystem::is_empty(home_ + "/tmp"));
  EXPECT_FALSE(std::filesystem::exists(home_ + "/vms/vm"));
}

// Tart's race: clone makes its ~/.tart/tmp folder, then locks it; any other command (not pull
// or clone) collects unlocked tmp folders first, and the clone's lock then fails (EBADF).
TEST_F(TartsimTest, ACloneWhoseTmpFolderIsCollectedFailsToLock) {
  Clone("base");
  Config({{"latency_ms", {{"tmplock", 8000}}}});  // a window wide enough for one `list`
  const pid_t clone = Spawn({"clone", "base", "vm"}, "clone");
  ASSERT_TRUE(Eventually([&] {
    return std::filesystem::exists(home_ + "/tmp") && !std::filesystem::is_empty(home_ + "/tmp");
  }));
  EXPECT_EQ(Run({"list", "-q"}).code, 0);  // its GC removes the unlocked folder
  EXPECT_TRUE(std::filesystem::is_empty(home_ + "/tmp"));
  EXPECT_EQ(WaitExit(clone), 1);
  EXPECT_NE(Log("clone", "err").find("Error: Failed(\"failed to lock file://" + home_ + "/tmp/"),
            std::string::npos)
      << Log("clone", "err");
  EXPECT_NE(Log("clone", "err").find(": Bad file descriptor\")"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(home_ + "/vms/vm"));
}

TEST_F(TartsimTest, OldVersionsStopWithACancellationError) {
  Config({{"version", "2.9.0"}, {"latency_ms", {{"limitcheck", 0}}}});
  Clone("vm");
  const pid_t run = Boot("vm");
  EXPECT_EQ(Run({"stop", "vm"}).code, 0);
  EXPECT_EQ(WaitExit(run), 1);
  EXPECT_EQ(Log("run-vm", "err"), "CancellationError()\n");
}

}  // namespace
}  // namespace flotilla::tartsim::testing
