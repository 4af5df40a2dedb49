// tart ip and tart exec (Commands/IP.swift, Exec.swift, MACAddressResolver/*.swift), and the
// guest-side `sudo` and `shutdown` a `tart exec` command finds first on its PATH.
//
// The fake guest: `tart exec NAME CMD...` runs CMD on this machine, in the VM's sandbox
// TART_HOME/.fake/guests/NAME (its HOME and working directory), with
// PATH=TART_HOME/.fake/guest-bin:/usr/bin:/bin:/usr/sbin:/sbin, USER=admin, and two variables
// the helpers need (TARTSIM_TART_HOME, TARTSIM_VM); nothing of the caller's environment.
// stdin reaches CMD only with -i (otherwise it reads /dev/null), and `tart exec` exits with
// CMD's exit code (255 when CMD dies of a signal).

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "providers/tart/tartsim/commands.h"
#include "providers/tart/tartsim/dhcp_leases.h"
#include "providers/tart/tartsim/fs_util.h"

namespace flotilla::tartsim {
namespace {

// `tart ip` by version: --wait since 0.2.0, --resolver (dhcp, arp) since 1.1.0, its agent
// choice since 2.28.0.
const CommandSpec& IpSpec(const Context& ctx) {
  static const CommandSpec kResolver{
      .usage = {.command = "ip",
                .synopsis = "tart ip <name> [--wait <wait>] [--resolver <resolver>]"},
      .options = {{.long_name = "wait", .takes_value = true, .value_name = "wait"},
                  {.long_name = "resolver", .takes_value = true, .value_name = "resolver"}},
      .positionals = {"name"},
  };
  static const CommandSpec kWait{
      .usage = {.command = "ip", .synopsis = "tart ip <name> [--wait <wait>]"},
      .options = {{.long_name = "wait", .takes_value = true, .value_name = "wait"}},
      .positionals = {"name"},
  };
  static const CommandSpec kFirst{
      .usage = {.command = "ip", .synopsis = "tart ip <name>"},
      .positionals = {"name"},
  };
  if (ctx.config.AtLeast("1.1.0")) {
    return kResolver;
  }
  return ctx.config.AtLeast("0.2.0") ? kWait : kFirst;
}

const CommandSpec kExecSpec{
    .usage = {.command = "exec", .synopsis = "tart exec [-i] [-t] <name> <command> ..."},
    .options = {{.short_name = 'i'}, {.short_name = 't'}},
    .positionals = {"name", "command"},
    .passthrough = true,
};

// The guest agent answers once the guest has booted, and only in images that have it.
bool AgentUp(const Context& ctx, const VmDir& dir, const std::string& name) {
  std::optional<DiskHeader> header = ReadDiskHeader(dir.disk_path());
  return header && header->agent && PathExists(ctx.home.vm_state(name) + "/agent-ready");
}

// Whether the VM's latest `tart run` used Softnet, which the host's ARP table never sees.
bool RanWithSoftnet(const Context& ctx, const std::string& name) {
  std::optional<std::string> argv = ReadFileIfExists(ctx.home.runs() + "/" + name + ".argv");
  return argv && argv->find("\n--net-softnet") != std::string::npos;
}

std::optional<std::string> Resolve(const Context& ctx, const VmDir& dir, const std::string& name,
                                   const std::string& mac, const std::string& resolver) {
  try {
    if (resolver == "arp" && RanWithSoftnet(ctx, name)) {
      return std::nullopt;
    }
    if (resolver == "agent" && (!dir.Running() || !AgentUp(ctx, dir, name))) {
      return std::nullopt;
    }
    return ResolveLease(ctx.home.leases(), mac);
  } catch (const std::runtime_error& e) {
    ThrowError(e.what());  // a malformed lease file escapes as a Swift error
  }
}

}  // namespace

int CmdIp(const Context& ctx, const Args& args) {
  const CommandSpec& spec = IpSpec(ctx);
  ParsedArgs parsed = ParseArgs(spec, args);
  if (parsed.help()) {
    std::cout << HelpText(spec);
    return 0;
  }
  const uint64_t wait = ParseUnsigned(spec, "wait", parsed.Value("wait").value_or("0"), 65535);
  const std::string resolver =
      ParseChoice(spec, "resolver", parsed.Value("resolver").value_or("dhcp"),
                  ctx.config.AtLeast("2.28.0") ? std::vector<std::string>{"dhcp", "arp", "agent"}
                                               : std::vector<std::string>{"dhcp", "arp"});
  StartCommand(ctx, true);
  const std::string& name = parsed.positionals()[0];
  const VmDir dir = OpenLocalVm(ctx, name);
  VmConfig config;
  try {
    config = ReadVmConfig(dir.config_path());
  } catch (const std::runtime_error& e) {
    ThrowError(e.what());
  }
  // repeat { resolve; sleep 1 s } while now < start + wait: at least one try and one sleep.
  const time_t until = time(nullptr) + static_cast<time_t>(wait);
  do {
    if (std::optional<std::string> ip = Resolve(ctx, dir, name, config.mac_address, resolver)) {
      std::cout << *ip << "\n";
      return 0;
    }
    if (SleepUnlessInterrupted(1000)) {
      ThrowError("CancellationError()");
    }
  } while (time(nullptr) < until);
  std::string message = "no IP address found";
  if (!dir.Running()) {
    message += ", is your VM running?";
  }
  if (resolver == "agent") {
    message += " (also make sure that Guest agent for Tart is running inside of a VM)";
  } else if (config.os == "linux" && resolver == "arp") {
    message += " (not all Linux distributions are compatible with the ARP resolver)";
  }
  ThrowRuntimeError(ctx.version(), RuntimeKind::kOther, message);
}

int CmdExec(const Context& ctx, const Args& args) {
  ParsedArgs parsed = ParseArgs(kExecSpec, args);
  if (parsed.help()) {
    std::cout << HelpText(kExecSpec);
    return 0;
  }
  if (std::atoi(ctx.config.host.os_version.c_str()) < 14) {
    ThrowRuntimeError(ctx.version(), RuntimeKind::kOther,
                      "\"tart exec\" is only available on macOS 14 (Sonoma) or newer");
  }
  StartCommand(ctx, true);
  const std::string& name = parsed.positionals()[0];
  const std::vector<std::string> command(parsed.positionals().begin() + 1,
                                         parsed.positionals().end());
  const VmDir dir = OpenLocalVm(ctx, name);
  if (!dir.Running()) {
    ThrowRuntimeError(ctx.version(), RuntimeKind::kNotRunning,
                      "VM \"" + name + "\" is not running");
  }
  if (!AgentUp(ctx, dir, name)) {
    // What GRPCConnectionPoolError's localizedDescription gives (tart#1220).
    ThrowRuntimeError(ctx.version(), RuntimeKind::kOther,
                      "Failed to connect to the VM using its control socket: The operation "
                      "couldn\u2019t be completed. (GRPC.GRPCConnectionPoolError error 1.), is the "
                      "Tart Guest Agent running?");
  }
  const std::string home = ctx.home.guest_home(name);
  MakeDirs(home);
  const std::string path = GuestBinDir(ctx) + ":/usr/bin:/bin:/usr/sbin:/sbin";
  std::vector<char*> argv;
  for (const std::string& word : command) {
    argv.push_back(const_cast<char*>(word.c_str()));
  }
  argv.push_back(nullptr);

  int report[2];  // the child writes errno here if it cannot exec
  if (pipe2(report, O_CLOEXEC) != 0) {
    ThrowError(std::string("pipe: ") + std::strerror(errno));
  }
  std::fflush(stdout);
  const pid_t child = fork();
  if (child < 0) {
    ThrowError(std::string("fork: ") + std::strerror(errno));
  }
  if (child == 0) {
    close(report[0]);
    sigprocmask(SIG_SETMASK, &ctx.original_mask, nullptr);
    if (!parsed.Flag("i")) {
      const int null = open("/dev/null", O_RDONLY);
      dup2(null, STDIN_FILENO);
      close(null);
    }
    if (chdir(home.c_str()) != 0) {
      const int e = errno;
      (void)!write(report[1], &e, sizeof(e));
      _exit(127);
    }
    clearenv();
    setenv("HOME", home.c_str(), 1);
    setenv("PATH", path.c_str(), 1);
    setenv("USER", "admin", 1);
    setenv("LOGNAME", "admin", 1);
    setenv("SHELL", "/bin/sh", 1);
    setenv("TARTSIM_TART_HOME", ctx.home.root.c_str(), 1);
    setenv("TARTSIM_VM", name.c_str(), 1);
    execvp(argv[0], argv.data());
    const int e = errno;
    (void)!write(report[1], &e, sizeof(e));
    _exit(127);
  }
  close(report[1]);
  int exec_errno = 0;
  const bool exec_failed = read(report[0], &exec_errno, sizeof(exec_errno)) == sizeof(exec_errno);
  close(report[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (exec_failed) {
    // The agent's exec error, as Tart prints a GRPCStatus.
    ThrowError("unknown (2): exec: \"" + command[0] + "\": " +
               (exec_errno == ENOENT ? std::string("executable file not found in $PATH")
                                     : std::string(std::strerror(exec_errno))));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

int GuestSudo(int argc, char** argv) {
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; ++i) {
    const std::string flag = argv[i];
    if (flag == "--") {
      ++i;
      break;
    }
    if (flag != "-n" && flag != "-E" && flag != "-H" && flag != "-S") {
      std::fprintf(stderr, "sudo: flotilla-tartsim's sudo knows only -n, -E, -H, -S, not %s\n",
                   argv[i]);
      return 1;
    }
  }
  if (i >= argc) {
    std::fputs("usage: sudo -h | -K | -k | -V\nusage: sudo [-n] command [arg ...]\n", stderr);
    return 1;
  }
  const char* user = std::getenv("USER");
  setenv("SUDO_USER", user != nullptr ? user : "admin", 1);
  setenv("USER", "root", 1);
  setenv("TARTSIM_EUID", "0", 1);
  execvp(argv[i], argv + i);
  std::fprintf(stderr, "sudo: %s: command not found\n", argv[i]);
  return 1;
}

int GuestShutdown(int argc, char** argv) {
  bool halt = false;
  bool reboot = false;
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; ++i) {
    for (const char* c = argv[i] + 1; *c != '\0'; ++c) {
      switch (*c) {
        case 'h':
        case 's':
          halt = true;
          break;
        case 'r':
          reboot = true;
          break;
        case 'k':
        case 'n':
        case 'u':
          break;
        default:
          std::fprintf(stderr, "shutdown: illegal option -- %c\n", *c);
          std::fputs(
              "usage: shutdown [-] [-h [-u] [-n] | -r [-n] | -s | -k] time "
              "[warning-message ...]\n",
              stderr);
          return 1;
      }
    }
  }
  if (i >= argc) {
    std::fputs(
        "usage: shutdown [-] [-h [-u] [-n] | -r [-n] | -s | -k] time "
        "[warning-message ...]\n",
        stderr);
    return 1;
  }
  const char* euid = std::getenv("TARTSIM_EUID");
  if (euid == nullptr || std::string(euid) != "0") {
    std::fputs("shutdown: NOT super-user\n", stderr);
    return 1;
  }
  const std::string when = argv[i];
  if (when != "now" && when != "+0" && when != "0") {
    std::fprintf(stderr, "shutdown: flotilla-tartsim supports only \"now\", not %s\n",
                 when.c_str());
    return 1;
  }
  const char* tart_home = std::getenv("TARTSIM_TART_HOME");
  const char* vm = std::getenv("TARTSIM_VM");
  if (tart_home == nullptr || vm == nullptr) {
    std::fputs("shutdown: not inside a flotilla-tartsim guest (tart exec)\n", stderr);
    return 1;
  }
  std::printf("Shutdown NOW!\nshutdown: [pid %d]\n", static_cast<int>(getpid()));
  std::fflush(stdout);
  if (reboot || !halt) {
    return 0;  // a reboot (or -k) leaves the VM running
  }
  const TartHome home{tart_home};
  const std::string state = home.vm_state(vm);
  try {
    MakeDirs(state);
    WriteFileAtomic(state + "/shutdown-requested", "");
  } catch (const FsError& e) {
    std::fprintf(stderr, "shutdown: %s\n", e.what());
    return 1;
  }
  if (std::optional<VmDir> dir = LocalVmDir(home, vm)) {
    if (const pid_t pid = dir->RunningPid(); pid != 0) {
      kill(pid, SIGUSR2);
    }
  }
  return 0;
}

}  // namespace flotilla::tartsim
