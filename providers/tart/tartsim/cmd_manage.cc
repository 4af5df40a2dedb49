// tart stop, suspend, delete, rename, set and prune (Commands/Stop.swift, Suspend.swift,
// Delete.swift, Rename.swift, Set.swift, Prune.swift; VMDirectory.swift delete() and
// resizeRawDisk(); VMConfig.swift setCPU()/setMemory()).

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "providers/tart/tartsim/commands.h"
#include "providers/tart/tartsim/fs_util.h"
#include "providers/tart/tartsim/oci_storage.h"

namespace flotilla::tartsim {
namespace {

const CommandSpec kStopSpec{
    .usage = {.command = "stop", .synopsis = "tart stop <name> [--timeout <timeout>]"},
    .options =
        {{.long_name = "timeout", .short_name = 't', .takes_value = true, .value_name = "timeout"}},
    .positionals = {"name"},
};

const CommandSpec kSuspendSpec{
    .usage = {.command = "suspend", .synopsis = "tart suspend <name>"},
    .positionals = {"name"},
};

const CommandSpec kDeleteSpec{
    .usage = {.command = "delete", .synopsis = "tart delete <name> ..."},
    .positionals = {"name"},
    .last_positional_repeats = true,
};

const CommandSpec kRenameSpec{
    .usage = {.command = "rename", .synopsis = "tart rename <name> <new-name>"},
    .positionals = {"name", "new-name"},
};

const CommandSpec kSetSpec{
    .usage = {.command = "set",
              .synopsis = "tart set <name> [--cpu <cpu>] [--memory <memory>] [--display "
                          "<display>] [--display-refit] [--random-mac] [--random-serial] "
                          "[--disk <path>] [--disk-size <disk-size>]"},
    .options = {{.long_name = "cpu", .takes_value = true, .value_name = "cpu"},
                {.long_name = "memory", .takes_value = true, .value_name = "memory"},
                {.long_name = "display", .takes_value = true, .value_name = "display"},
                {.long_name = "display-refit"},
                {.long_name = "no-display-refit"},
                {.long_name = "random-mac"},
                {.long_name = "random-serial"},
                {.long_name = "disk", .takes_value = true, .value_name = "path"},
                {.long_name = "disk-size", .takes_value = true, .value_name = "disk-size"}},
    .positionals = {"name"},
};

const CommandSpec kPruneSpec{
    .usage = {.command = "prune",
              .synopsis =
                  "tart prune [--entries <entries>] [--older-than <n>] [--space-budget <n>]"},
    .options = {{.long_name = "entries", .takes_value = true, .value_name = "entries"},
                {.long_name = "older-than", .takes_value = true, .value_name = "n"},
                {.long_name = "cache-budget", .takes_value = true, .value_name = "cache-budget"},
                {.long_name = "space-budget", .takes_value = true, .value_name = "n"},
                {.long_name = "gc"}},
};

bool HandleHelp(const ParsedArgs& parsed, const CommandSpec& spec) {
  if (parsed.help()) {
    std::cout << HelpText(spec);
  }
  return parsed.help();
}

// VZVirtualMachineConfiguration.minimumAllowedCPUCount / minimumAllowedMemorySize.
constexpr int64_t kMinimumCpu = 1;
constexpr int64_t kMinimumMemory = 128LL * 1024 * 1024;

// LessThanMinimalResourcesError is an NSObject whose description ArgumentParser prints.
[[noreturn]] void LessThanMinimal(const std::string& explanation) {
  ThrowError("LessThanMinimalResourcesError: " + explanation);
}

}  // namespace

int CmdStop(const Context& ctx, const Args& args) {
  ParsedArgs parsed = ParseArgs(kStopSpec, args);
  if (HandleHelp(parsed, kStopSpec)) {
    return 0;
  }
  const uint64_t timeout =
      ParseUnsigned(kStopSpec, "timeout", parsed.Value("timeout").value_or("30"), UINT64_MAX);
  StartCommand(ctx, true);
  const std::string& name = parsed.positionals()[0];
  const VmDir dir = OpenLocalVm(ctx, name);
  switch (dir.State()) {
    case VmState::kSuspended:
      unlink(dir.state_path().c_str());
      return 0;
    case VmState::kStopped:
      ThrowRuntimeError(ctx.version(), RuntimeKind::kNotRunning,
                        "VM \"" + name + "\" is not running");
    case VmState::kRunning:
      break;
  }
  std::optional<PidLock> lock = PidLock::Open(dir.config_path());
  pid_t pid = lock ? lock->HolderPid() : 0;
  if (pid == 0) {
    ThrowRuntimeError(ctx.version(), RuntimeKind::kNotRunning,
                      "VM \"" + name + "\" is not running");
  }
  kill(pid, SIGINT);  // result ignored: the VM may be shutting down already
  // 100 ms ticks while the remaining time is above zero.
  for (uint64_t left_ms = timeout * 1000; left_ms > 0;
       left_ms -= std::min<uint64_t>(left_ms, 100)) {
    pid = lock->HolderPid();
    if (pid == 0) {
      return 0;
    }
    if (SleepUnlessInterrupted(100)) {
      ThrowError("CancellationError()");
    }
  }
  if (kill(pid, SIGKILL) != 0) {
    ThrowRuntimeError(
        ctx.version(), RuntimeKind::kOther,
        "failed to forcefully terminate the VM \"" + name + "\": " + ErrnoText(errno));
  }
  return 0;
}

int CmdSuspend(const Context& ctx, const Args& args) {
  ParsedArgs parsed = ParseArgs(kSuspendSpec, args);
  if (HandleHelp(parsed, kSuspendSpec)) {
    return 0;
  }
  StartCommand(ctx, true);
  const std::string& name = parsed.positionals()[0];
  const VmDir dir = OpenLocalVm(ctx, name);
  const pid_t pid = dir.RunningPid();
  if (pid == 0) {
    // Suspend.swift wraps an already complete message in VMNotRunning.
    ThrowRuntimeError(ctx.version(), RuntimeKind::kNotRunning,
                      "VM \"VM \"" + name + "\" is not running\" is not running");
  }
  if (kill(pid, SIGUSR1) != 0) {
    ThrowRuntimeError(ctx.version(), RuntimeKind::kOther,
                      "Failed to suspend the VM: failed to send SIGUSR1 signal to the \"tart "
                      "run\" process running VM \"" +
                          name + "\"");
  }
  return 0;
}

int CmdDelete(const Context& ctx, const Args& args) {
  ParsedArgs parsed = ParseArgs(kDeleteSpec, args);
  if (HandleHelp(parsed, kDeleteSpec)) {
    return 0;
  }
  StartCommand(ctx, true);
  for (const std::string& name : parsed.positionals()) {
    std::string error;
    if (std::optional<RemoteName> remote = RemoteName::Parse(name, &error)) {
      const std::string path = OciPath(ctx.home, *remote);
      if (!IsSymlink(path) && !PathExists(path)) {
        ThrowDoesNotExist(ctx.version(), name);
      }
      RemoveTree(path);
      CollectOciGarbage(ctx.home);
      continue;
    }
    std::optional<VmDir> dir = LocalVmDir(ctx.home, name);
    std::optional<PidLock> lock;
    if (dir) {
      lock = PidLock::Open(dir->config_path());
    }
    if (!lock) {
      ThrowDoesNotExist(ctx.version(), name);  // PIDLockMissing
    }
    if (!lock->TryLock() && ctx.config.AtLeast("2.4.1")) {
      ThrowRuntimeError(ctx.version(), RuntimeKind::kOther, "VM \"" + name + "\" is running");
    }
    RemoveTree(dir->base());
    lock->Unlock();
    RemoveTree(ctx.home.guest_home(name));
    RemoveTree(ctx.home.vm_state(name));
  }
  return 0;
}

int CmdRename(const Context& ctx, const Args& args) {
  ParsedArgs parsed = ParseArgs(kRenameSpec, args);
  if (HandleHelp(parsed, kRenameSpec)) {
    return 0;
  }
  const std::string& name = parsed.positionals()[0];
  const std::string& new_name = parsed.positionals()[1];
  if (new_name.find('/') != std::string::npos) {
    ThrowValidation("<new-name> should be a local name", kRenameSpec.usage);
  }
  StartCommand(ctx, true);
  std::optional<VmDir> from = LocalVmDir(ctx.home, name);
  std::optional<VmDir> to = LocalVmDir(ctx.home, new_name);
  // Thrown from run(): the root usage follows (Root.exit(withError:)).
  if (!from || !from->Initialized()) {
    ThrowValidation("failed to rename a non-existent local VM: " + name, RootUsage());
  }
  if (to && to->Initialized()) {
    ThrowValidation("failed to rename VM " + name + ", target VM " + new_name +
                        " already exists, delete it first!",
                    RootUsage());
  }
  if (!to) {
    ThrowError("flotilla-tartsim refuses \"" + new_name + "\" as a VM directory name");
  }
  ReplaceItem(to->base(), from->base());
  // The fake guest's files belong to the disk, so they follow it.
  RemoveTree(ctx.home.guest_home(new_name));
  if (PathExists(ctx.home.guest_home(name))) {
    ReplaceItem(ctx.home.guest_home(new_name), ctx.home.guest_home(name));
  }
  return 0;
}

int CmdSet(const Context& ctx, const Args& args) {
  ParsedArgs parsed = ParseArgs(kSetSpec, args);
  if (HandleHelp(parsed, kSetSpec)) {
    return 0;
  }
  std::optional<uint64_t> cpu;
  std::optional<uint64_t> memory;
  std::optional<uint64_t> disk_size;
  if (std::optional<std::string> v = parsed.Value("cpu")) {
    cpu = ParseUnsigned(kSetSpec, "cpu", *v, 65535);
  }
  if (std::optional<std::string> v = parsed.Value("memory")) {
    memory = ParseUnsigned(kSetSpec, "memory", *v, UINT64_MAX / (uint64_t{1024} * 1024));
  }
  if (std::optional<std::string> v = parsed.Value("disk-size")) {
    disk_size = ParseUnsigned(kSetSpec, "disk-size", *v, 65535);
  }
  StartCommand(ctx, true);
  const VmDir dir = OpenLocalVm(ctx, parsed.positionals()[0]);
  VmConfig config;
  try {
    config = ReadVmConfig(dir.config_path());
  } catch (const std::runtime_error& e) {
    ThrowError(e.what());
  }
  if (cpu) {
    const int64_t requested = static_cast<int64_t>(*cpu);
    if (config.os == "darwin" && requested < config.cpu_count_min) {
      LessThanMinimal("VM should have " + std::to_string(config.cpu_count_min) +
                      " CPU cores at minimum (requested " + std::to_string(requested) + ")");
    }
    if (requested < kMinimumCpu) {
      LessThanMinimal("VM should have " + std::to_string(kMinimumCpu) +
                      " CPU cores at minimum (requested " + std::to_string(requested) + ")");
    }
    config.cpu_count = requested;
  }
  if (memory) {
    const int64_t requested = static_cast<int64_t>(*memory * 1024 * 1024);
    if (config.os == "darwin" && requested < config.memory_size_min) {
      LessThanMinimal("VM should have " + std::to_string(config.memory_size_min) +
                      " bytes of memory at minimum (requested " + std::to_string(requested) + ")");
    }
    if (requested < kMinimumMemory) {
      LessThanMinimal("VM should have " + std::to_string(kMinimumMemory) +
                      " bytes of memory at minimum (requested " + std::to_string(requested) + ")");
    }
    config.memory_size = requested;
  }
  if (std::optional<std::string> display = parsed.Value("display")) {
    std::string text = *display;
    std::string unit;
    for (const char* suffix : {"px", "pt"}) {
      if (text.size() >= 2 && text.substr(text.size() - 2) == suffix) {
        unit = suffix;
        text.resize(text.size() - 2);
        break;
      }
    }
    const size_t x = text.find('x');
    const int64_t width = std::atoll(text.substr(0, x).c_str());
    const int64_t height = x == std::string::npos ? 0 : std::atoll(text.substr(x + 1).c_str());
    if (width > 0) {
      config.display_width = width;
    }
    if (height > 0) {
      config.display_height = height;
    }
    config.display_unit = unit;
  }
  // `vmConfig.displayRefit = displayRefit`: unset unless one of the two flags is given.
  config.display_refit.reset();
  if (parsed.Flag("display-refit")) {
    config.display_refit = true;
  } else if (parsed.Flag("no-display-refit")) {
    config.display_refit = false;
  }
  if (parsed.Flag("random-mac")) {
    config.mac_address = RandomMacAddress();
  }
  if (parsed.Flag("random-serial") && config.os == "darwin") {
    config.ecid = RandomEcid();
  }
  WriteVmConfig(dir.config_path(), config);  // saved before the disk is touched
  if (std::optional<std::string> disk = parsed.Value("disk")) {
    const std::string tmp = ctx.home.tmp() + "/set-disk-" + RandomUuid();
    try {
      CopyFileSparse(*disk, tmp);
      ReplaceItem(dir.disk_path(), tmp);
    } catch (const FsError& e) {
      unlink(tmp.c_str());
      ThrowError(e.what());
    }
  }
  if (disk_size) {
    const int64_t current = FileSize(dir.disk_path());
    const int64_t desired = static_cast<int64_t>(*disk_size) * 1000 * 1000 * 1000;
    if (config.disk_format == "asif") {
      ThrowError("flotilla-tartsim does not resize ASIF disks");
    }
    if (desired < current) {
      ThrowRuntimeError(ctx.version(), RuntimeKind::kOther,
                        "new disk size of " + HumanBytes(desired) +
                            " should be larger than the current disk size of " +
                            HumanBytes(current));
    }
    if (desired > current && truncate(dir.disk_path().c_str(), desired) != 0) {
      ThrowError("cannot resize " + dir.disk_path() + ": " + ErrnoText(errno));
    }
  }
  return 0;
}

int CmdPrune(const Context& ctx, const Args& args) {
  ParsedArgs parsed = ParseArgs(kPruneSpec, args);
  if (HandleHelp(parsed, kPruneSpec)) {
    return 0;
  }
  const std::string entries = parsed.Value("entries").value_or("caches");
  std::optional<uint64_t> older_than;
  std::optional<uint64_t> budget;
  if (std::optional<std::string> v = parsed.Value("older-than")) {
    older_than = ParseUnsigned(kPruneSpec, "older-than", *v, UINT64_MAX / 86400);
  }
  if (std::optional<std::string> v = parsed.Value("space-budget")) {
    budget = ParseUnsigned(kPruneSpec, "space-budget", *v, UINT64_MAX >> 30);
  }
  if (std::optional<std::string> v = parsed.Value("cache-budget")) {
    std::fputs("--cache-budget is deprecated, please use --space-budget\n", stderr);
    if (budget) {
      ThrowValidation("--cache-budget is deprecated, please use --space-budget", kPruneSpec.usage);
    }
    budget = ParseUnsigned(kPruneSpec, "cache-budget", *v, UINT64_MAX >> 30);
  }
  if (!older_than && !budget && !parsed.Flag("gc")) {
    ThrowValidation("at least one pruning criteria must be specified", kPruneSpec.usage);
  }
  StartCommand(ctx, true);
  if (parsed.Flag("gc")) {
    CollectOciGarbage(ctx.home);
  }
  // Prunables: OCI digest directories (the IPSW cache is always empty here), or stopped VMs.
  std::vector<VmDir> prunables;
  if (entries == "caches") {
    for (const OciEntry& entry : ListOci(ctx.home)) {
      if (!entry.is_symlink) {
        prunables.push_back(entry.dir);
      }
    }
  } else if (entries == "vms") {
    for (const auto& [name, dir] : ListLocalVms(ctx.home)) {
      if (!dir.Running()) {
        prunables.push_back(dir);
      }
    }
  } else {
    ThrowValidation("unsupported --entries value, please specify either \"caches\" or \"vms\"",
                    RootUsage());
  }
  auto remove = [&](const VmDir& dir) {
    if (entries == "vms") {
      std::optional<PidLock> lock = PidLock::Open(dir.config_path());
      if (lock && !lock->TryLock()) {
        ThrowRuntimeError(ctx.version(), RuntimeKind::kOther,
                          "VM \"" + dir.name() + "\" is running");
      }
    }
    RemoveTree(dir.base());
  };
  if (older_than) {
    const time_t limit = time(nullptr) - static_cast<time_t>(*older_than * 86400);
    for (const VmDir& dir : prunables) {
      if (dir.AccessTime() <= limit) {
        remove(dir);
      }
    }
  }
  if (budget) {
    std::sort(prunables.begin(), prunables.end(),
              [](const VmDir& a, const VmDir& b) { return a.AccessTime() > b.AccessTime(); });
    uint64_t left = *budget * 1024 * 1024 * 1024;
    for (const VmDir& dir : prunables) {
      if (!PathExists(dir.base())) {
        continue;
      }
      const uint64_t size = static_cast<uint64_t>(dir.AllocatedBytes());
      if (size <= left) {
        left -= size;
      } else {
        remove(dir);
      }
    }
  }
  return 0;
}

}  // namespace flotilla::tartsim
