// tart run (Commands/Run.swift validate() and run(), VM.swift start()/run()/guestDidStop).
//
// The order matters and is Tart's: validate (a missing VM is "Error: ...", exit 1, because it
// is thrown from validate()), the global TART_HOME lock, the MAC clash check, the VM's lock
// (from here `list` says "running"), release the global lock, restore a suspended state, and
// only then "start" the VM: that is where the VM limit, the Keychain and VZ errors surface,
// printed bare on stderr with exit 1. A started VM runs until SIGINT (`tart stop`), SIGUSR1
// (`tart suspend`), a guest shutdown, or a kill; SIGTERM has no handler and kills it outright.

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "providers/tart/tartsim/commands.h"
#include "providers/tart/tartsim/dhcp_leases.h"
#include "providers/tart/tartsim/fs_util.h"
#include "providers/tart/tartsim/guest_net.h"

namespace flotilla::tartsim {
namespace {

OptionSpec Flag(const char* name) { return OptionSpec{.long_name = name}; }
OptionSpec Valued(const char* name, const char* value_name) {
  return OptionSpec{.long_name = name, .takes_value = true, .value_name = value_name};
}

const CommandSpec kRunSpec{
    .usage = {.command = "run", .synopsis = "tart run [<options>] <name>"},
    .options = {Flag("no-graphics"),
                Flag("serial"),
                Valued("serial-path", "serial-path"),
                Flag("graphics"),
                Flag("no-audio"),
                Flag("no-clipboard"),
                Flag("recovery"),
                Flag("vnc"),
                Flag("vnc-experimental"),
                Valued("disk", "path[:options]"),
                Valued("rosetta", "tag"),
                Valued("dir", "[name:]path[:options]"),
                Flag("nested"),
                Valued("net-bridged", "interface name"),
                Flag("net-softnet"),
                Valued("net-softnet-allow", "comma-separated CIDRs"),
                Valued("net-softnet-block", "comma-separated CIDRs"),
                Valued("net-softnet-expose", "comma-separated port specifications"),
                Flag("net-host"),
                Valued("root-disk-opts", "options"),
                Flag("suspendable"),
                Flag("capture-system-keys"),
                Flag("no-trackpad"),
                Flag("no-pointer"),
                Flag("no-keyboard")},
    .positionals = {"name"},
};

void Say(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// Swift's description of a [String]: ["en0", "en1"].
std::string SwiftArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    out += (i == 0 ? "\"" : ", \"") + items[i] + "\"";
  }
  return out + "]";
}

int HostMajor(const FakeConfig& config) { return std::atoi(config.host.os_version.c_str()); }

// The running VM: what it needs between start and exit.
class RunningVm {
 public:
  RunningVm(const Context& ctx, std::string name, VmDir dir, VmConfig config, bool suspendable)
      : ctx_(ctx),
        name_(std::move(name)),
        dir_(std::move(dir)),
        config_(std::move(config)),
        suspendable_(suspendable),
        state_dir_(ctx.home.vm_state(name_)) {}

  ~RunningVm() {
    // The guest is gone: its agent and its listeners with it. (The DHCP lease stays, as
    // bootpd's does.)
    net_.reset();
    unlink((state_dir_ + "/listeners").c_str());
    unlink((state_dir_ + "/agent-ready").c_str());
    unlink((state_dir_ + "/shutdown-requested").c_str());
  }

  // After a successful start: boot, lease, then wait for the end. Returns the exit code.
  int Run(bool interrupted) {
    const int64_t boot = ctx_.config.Jittered(ctx_.config.latency_ms.boot);
    if (interrupted || SleepUnlessInterrupted(boot)) {
      return Stop();
    }
    MakeDirs(state_dir_);
    WriteFileAtomic(state_dir_ + "/agent-ready", std::to_string(getpid()) + "\n");
    struct timespec booted {};
    clock_gettime(CLOCK_MONOTONIC, &booted);
    if (SleepUnlessInterrupted(ctx_.config.Jittered(ctx_.config.latency_ms.ip))) {
      return Stop();
    }
    if (!ctx_.config.faults.no_lease) {
      const std::string ip = AssignLease(ctx_.home.leases(), name_, config_.mac_address,
                                         SharedNetAddress(ctx_.config, ctx_.home.root),
                                         ctx_.config.faults.duplicate_ip);
      if (!ip.empty()) {
        // The guest's services, on its address (guest_net.h).
        net_ = std::make_unique<GuestNet>(ip, ctx_.config.guest_ports, state_dir_ + "/listeners");
      }
    }
    return Wait(booted);
  }

  // "tart stop" / Ctrl+C: VM.run() stops the VM (Tart >= 2.10; before, the cancellation
  // escaped as an error).
  int Stop() {
    net_.reset();
    if (!ctx_.config.AtLeast("2.10.0")) {
      std::fputs("CancellationError()\n", stderr);
      return 1;
    }
    Say("Stopping VM...");
    return 0;
  }

 private:
  int Wait(const struct timespec& booted) {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGUSR2);
    const int64_t shutdown_after = ctx_.config.faults.guest_shutdown_after_ms;
    for (;;) {
      int signal_number = 0;
      if (shutdown_after > 0) {
        struct timespec now {};
        clock_gettime(CLOCK_MONOTONIC, &now);
        const int64_t elapsed_ms =
            (now.tv_sec - booted.tv_sec) * 1000 + (now.tv_nsec - booted.tv_nsec) / 1000000;
        const int64_t left_ms = shutdown_after - elapsed_ms;
        if (left_ms <= 0) {
          return GuestStopped();
        }
        struct timespec wait {};
        wait.tv_sec = left_ms / 1000;
        wait.tv_nsec = (left_ms % 1000) * 1000000;
        signal_number = sigtimedwait(&signals, nullptr, &wait);
        if (signal_number < 0) {
          continue;  // timeout or EINTR: re-check the deadline
        }
      } else if (sigwait(&signals, &signal_number) != 0) {
        continue;
      }
      switch (signal_number) {
        case SIGINT:
          return Stop();
        case SIGUSR1:
          return Suspend();
        case SIGUSR2:
          if (PathExists(state_dir_ + "/shutdown-requested")) {
            return GuestStopped();  // `shutdown -h now` inside the guest
          }
          if (!ctx_.config.AtLeast("2.12.0")) {
            // No handler before Tart 2.12 (PR#842): the default action ends the process.
            signal(SIGUSR2, SIG_DFL);
            sigprocmask(SIG_UNBLOCK, &signals, nullptr);
            raise(SIGUSR2);
          }
          Say("Requesting guest OS to stop...");
          if (config_.os == "linux") {
            return GuestStopped();
          }
          break;  // a macOS guest shows a "shut down?" dialog nobody answers
        default:
          break;
      }
    }
  }

  // The guest shut itself down: guestDidStop prints this and `tart run` exits 0.
  int GuestStopped() {
    net_.reset();
    if (SleepUnlessInterrupted(ctx_.config.Jittered(ctx_.config.latency_ms.shutdown))) {
      return Stop();
    }
    Say("guest has stopped the virtual machine");
    return 0;
  }

  // SIGUSR1 (Run.swift's handler).
  int Suspend() {
    net_.reset();
    if (!suspendable_) {
      // validateSaveRestoreSupport() on a configuration with the console device (tart#803).
      Say("Failed to suspend the VM: Invalid virtual machine configuration. Unsupported console "
          "device in configuration.");
      return 1;
    }
    Say("pausing VM to take a snapshot...");
    Say("creating a snapshot...");
    WriteFileInPlace(dir_.state_path(), "flotilla-tartsim saved state of " + name_ + "\n");
    Say("snapshot created successfully! shutting down the VM...");
    if (!ctx_.config.AtLeast("2.10.0")) {
      std::fputs("CancellationError()\n", stderr);  // tart#796
      return 1;
    }
    return 0;  // paused, so VM.run() does not print "Stopping VM..."
  }

  const Context& ctx_;
  std::string name_;
  VmDir dir_;
  VmConfig config_;
  bool suspendable_;
  std::string state_dir_;
  std::unique_ptr<GuestNet> net_;  // while the guest has its address
};

// The Mac's power (FakeConfig::power_pid): once that process has ended, this `run` gets SIGINT,
// as from `tart stop`. The watching thread blocks SIGINT like every thread here (main() blocked
// it before any was started), so the VM's own waits collect it.
void WatchPower(int64_t power_pid) {
  if (power_pid <= 0) {
    return;
  }
  std::thread([pid = static_cast<pid_t>(power_pid)] {
    const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (fd >= 0) {
      pollfd ended{.fd = fd, .events = POLLIN, .revents = 0};
      while (poll(&ended, 1, -1) < 0 && errno == EINTR) {
      }
      close(fd);
    } else if (errno != ESRCH) {
      // No pidfd here (an old kernel, a seccomp filter): look for the process now and then.
      while (kill(pid, 0) == 0 || errno == EPERM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    kill(getpid(), SIGINT);
  }).detach();
}

// The VM-limit, Keychain and VZ start failures, checked once the lock is held. Returns the text
// `tart run` prints before exiting 1, or "" when the VM starts.
std::string StartFailure(const Context& ctx, const VmDir& self, const VmConfig& config) {
  if (ctx.config.faults.keychain_locked && HostMajor(ctx.config) >= 15) {
    return "SecKeyCreateRandomKey_ios failed";  // docs/faq.md "Headless machines"
  }
  if (config.os == "darwin") {
    // Never touch our own config.json here: closing any descriptor of it drops our lock.
    std::vector<std::string> others;
    int64_t darwin_running = 0;
    for (const auto& [name, dir] : ListLocalVms(ctx.home)) {
      if (dir.base() == self.base() || !dir.Running()) {
        continue;
      }
      others.push_back(name);
      try {
        darwin_running += ReadVmConfig(dir.config_path()).os == "darwin" ? 1 : 0;
      } catch (const std::exception&) {
        // an unreadable config does not count
      }
    }
    // A stuck counter (tart#1217) fails a run the real count would let through; each such run
    // uses up one of faults.limit_stuck.
    if (darwin_running >= ctx.config.faults.vm_limit ||
        ConsumeFault(ctx.home.fake_config(), "limit_stuck")) {
      if (!ctx.config.AtLeast("2.18.1")) {
        return "Error Domain=VZErrorDomain Code=6 \"The maximum supported number of active "
               "virtual machines has been reached.\" UserInfo={NSLocalizedFailure=The number of "
               "virtual machines exceeds the limit., NSLocalizedFailureReason=The maximum "
               "supported number of active virtual machines has been reached.}";
      }
      std::string hint;
      for (const std::string& name : others) {
        hint += (hint.empty() ? "" : ", ") + name;
      }
      return "The number of VMs exceeds the system limit" +
             (hint.empty() ? std::string() : " (other running VMs: " + hint + ")");
    }
  }
  if (ctx.config.faults.vz_start_failure) {
    return "Error Domain=VZErrorDomain Code=1 \"The virtual machine failed to start.\" "
           "UserInfo={NSLocalizedFailure=Internal Virtualization error., "
           "NSLocalizedFailureReason=The virtual machine failed to start.}";
  }
  return "";
}

}  // namespace

int CmdRun(const Context& ctx, const Args& args) {
  // Collected by sigwait in RunningVm::Wait. SIGUSR2 is also how the fake guest's `shutdown`
  // reaches its `tart run`, so it is blocked in every version (see Wait for Tart < 2.12).
  sigset_t run_signals;
  sigemptyset(&run_signals);
  sigaddset(&run_signals, SIGUSR1);
  sigaddset(&run_signals, SIGUSR2);
  sigprocmask(SIG_BLOCK, &run_signals, nullptr);

  ParsedArgs parsed = ParseArgs(kRunSpec, args);
  if (parsed.help()) {
    std::fputs(HelpText(kRunSpec).c_str(), stdout);
    return 0;
  }
  const std::string& name = parsed.positionals()[0];
  const Usage& usage = kRunSpec.usage;

  // validate()
  if (parsed.Flag("vnc") && parsed.Flag("vnc-experimental")) {
    ThrowValidation("--vnc and --vnc-experimental are mutually exclusive", usage);
  }
  const bool softnet = parsed.Flag("net-softnet") || parsed.Value("net-softnet-allow") ||
                       parsed.Value("net-softnet-block") || parsed.Value("net-softnet-expose");
  const std::vector<std::string> bridged = parsed.Values("net-bridged");
  if ((bridged.empty() ? 0 : 1) + (softnet ? 1 : 0) + (parsed.Flag("net-host") ? 1 : 0) > 1) {
    ThrowValidation("--net-bridged, --net-softnet and --net-host are mutually exclusive", usage);
  }
  if (parsed.Flag("graphics") && parsed.Flag("no-graphics")) {
    ThrowValidation("--graphics and --no-graphics are mutually exclusive", usage);
  }
  if ((parsed.Flag("no-graphics") || parsed.Flag("vnc") || parsed.Flag("vnc-experimental")) &&
      parsed.Flag("capture-system-keys")) {
    ThrowValidation("--captures-system-keys can only be used with the default VM view", usage);
  }
  if (parsed.Flag("nested") && HostMajor(ctx.config) < 15) {
    ThrowValidation(
        "Nested virtualization is supported on hosts starting with macOS 15 (Sequoia), and later.",
        usage);
  }
  StartCommand(ctx, false);
  // Errors of validate() that are not ValidationErrors print "Error: ...", exit 1.
  std::optional<VmDir> maybe_dir = LocalVmDir(ctx.home, name);
  if (!maybe_dir || !IsDirectory(maybe_dir->base())) {
    ThrowError("the specified VM \"" + name + "\" does not exist");
  }
  if (!maybe_dir->Initialized()) {
    ThrowError("VM is missing some of its files (config.json, disk.img or nvram.bin)");
  }
  const VmDir dir = *maybe_dir;
  dir.UpdateAccessDate();
  VmConfig config;
  try {
    config = ReadVmConfig(dir.config_path());
  } catch (const std::runtime_error& e) {
    ThrowError(e.what());
  }
  bool suspendable = parsed.Flag("suspendable") || dir.State() == VmState::kSuspended;
  if (suspendable) {
    if (config.os != "darwin") {
      ThrowValidation("You can only suspend macOS VMs", usage);
    }
    for (const char* flag : {"no-trackpad", "no-keyboard", "no-pointer"}) {
      if (parsed.Flag(flag)) {
        ThrowValidation(std::string("--") + flag + " cannot be used with --suspendable", usage);
      }
    }
  }
  if (parsed.Flag("no-trackpad") && config.os != "darwin") {
    ThrowValidation("--no-trackpad can only be used with macOS VMs", usage);
  }
  for (const std::string& disk : parsed.Values("disk")) {
    if (disk.size() >= 10 && disk.substr(disk.size() - 10) == "-amd64.iso") {
      ThrowValidation(
          "Seems you have a disk targeting x86 architecture (hence amd64 in the "
          "name). Please use an 'arm64' version of the disk.",
          usage);
    }
  }
  CollectTmpGarbage(ctx.home);

  // run()
  dir.UpdateAccessDate();
  if (config.disk_format == "asif" && HostMajor(ctx.config) < 26) {
    ThrowValidation("Disk format 'asif' is not supported on this system.", RootUsage());
  }
  SleepMs(ctx.config.Jittered(ctx.config.latency_ms.lock));
  std::optional<FileLock> global(std::in_place, ctx.home.root);
  global->Lock();
  bool clash = false;
  for (const auto& [other, other_dir] : ListLocalVms(ctx.home)) {
    try {
      clash = clash || (other != dir.name() && other_dir.Running() &&
                        other_dir.MacAddress() == config.mac_address);
    } catch (const std::exception&) {
    }
  }
  if (clash) {
    Say("There is already a running VM with the same MAC address!");
    Say("Resetting VM to assign a new MAC address...");
    config.mac_address = RandomMacAddress();
    unlink(dir.state_path().c_str());
    WriteVmConfig(dir.config_path(), config);
  }
  for (const std::string& interface : bridged) {
    const std::vector<std::string>& known = ctx.config.host.bridged_interfaces;
    if (std::find(known.begin(), known.end(), interface) == known.end()) {
      ThrowValidation("no bridge interfaces matched \"" + SwiftArray(bridged) +
                          "\", available interfaces: " + SwiftArray(known),
                      RootUsage());
    }
  }
  if (config.arch != "arm64") {
    ThrowError("UnsupportedArchitectureError()");
  }
  if (config.os == "darwin" && parsed.Flag("nested")) {
    ThrowRuntimeError(ctx.version(), RuntimeKind::kOther,
                      "macOS virtual machines do not support nested virtualization");
  }
  std::optional<PidLock> lock = PidLock::Open(dir.config_path());
  if (!lock || !lock->TryLock()) {
    ThrowRuntimeError(ctx.version(), RuntimeKind::kAlreadyRunning,
                      "VM \"" + name + "\" is already running!");
  }
  global.reset();  // now `list` says running, so the global lock can go
  WatchPower(ctx.config.power_pid);

  // The flags this run got, for tests (TART_HOME/.fake/runs/<name>.argv, one per line).
  MakeDirs(ctx.home.runs());
  std::string argv_text = "run\n";
  for (const std::string& arg : args) {
    argv_text += arg + "\n";
  }
  WriteFileAtomic(ctx.home.runs() + "/" + name + ".argv", argv_text);
  RemoveTree(ctx.home.vm_state(name));

  RunningVm vm(ctx, name, dir, config, suspendable);
  if (PathExists(dir.state_path()) && HostMajor(ctx.config) >= 14) {
    Say("restoring VM state from a snapshot...");
    unlink(dir.state_path().c_str());
    Say("resuming VM...");
  }
  // VZVirtualMachine.start(): the lock has been held (state "running") for `limitcheck` when
  // Apple's VM limit is checked.
  const bool interrupted =
      SleepUnlessInterrupted(ctx.config.Jittered(ctx.config.latency_ms.limitcheck));
  const std::string failure = StartFailure(ctx, dir, config);
  if (!failure.empty()) {
    std::fputs((failure + "\n").c_str(), stderr);
    return 1;
  }
  return vm.Run(interrupted);
}

}  // namespace flotilla::tartsim
