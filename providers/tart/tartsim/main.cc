// flotilla-tartsim: a fake of Cirrus Labs' `tart` CLI for Linux tests, built from Tart's source
// (see docs/providers.md "flotilla-tartsim"). Busybox-style, the name it is called by picks the
// tool: `sysctl`, `sw_vers` and `df` answer as a Mac host would; `sudo` and `shutdown` are the
// fake guest's (see cmd_ip_exec.cc); any other name (`tart`, `flotilla-tartsim`) is tart.
// State lives under TART_HOME (default ~/.tart), the fake's knobs in TART_HOME/.fake/config.json
// (sim_config.h). Exit 70 means the fake itself was misused (bad config, unsimulated command).

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <string>

#include "providers/tart/tartsim/commands.h"
#include "providers/tart/tartsim/fs_util.h"

namespace {

using flotilla::tartsim::Args;
using flotilla::tartsim::Context;

constexpr int kFakeMisused = 70;  // EX_SOFTWARE

struct Subcommand {
  int (*run)(const Context&, const Args&);
  const char* since;  // the first Tart version that has it
};

const std::map<std::string, Subcommand>& Subcommands() {
  namespace t = flotilla::tartsim;
  static const std::map<std::string, Subcommand> kSubcommands = {
      {"clone", {t::CmdClone, "0.1.0"}}, {"run", {t::CmdRun, "0.1.0"}},
      {"set", {t::CmdSet, "0.1.0"}},     {"get", {t::CmdGet, "0.1.0"}},
      {"list", {t::CmdList, "0.1.0"}},   {"ip", {t::CmdIp, "0.1.0"}},
      {"exec", {t::CmdExec, "2.27.0"}},  {"pull", {t::CmdPull, "0.1.0"}},
      {"prune", {t::CmdPrune, "0.1.0"}}, {"rename", {t::CmdRename, "0.1.0"}},
      {"stop", {t::CmdStop, "0.1.0"}},   {"delete", {t::CmdDelete, "0.1.0"}},
      {"fqn", {t::CmdFqn, "0.1.0"}},     {"suspend", {t::CmdSuspend, "1.8.0"}},
  };
  return kSubcommands;
}

const char* const kUnsimulated[] = {"create", "login", "logout", "push", "import", "export"};

std::string RootHelp() {
  std::string help =
      "OVERVIEW: flotilla-tartsim, a fake of Tart (https://tart.run) for tests\n\n"
      "USAGE: tart <subcommand>\n\nOPTIONS:\n  --version               Show the version.\n"
      "  -h, --help              Show help information.\n\nSUBCOMMANDS:\n";
  for (const auto& [name, command] : Subcommands()) {
    help += "  " + name + "\n";
  }
  return help;
}

int Print(const flotilla::tartsim::TartExit& exit) {
  std::fputs(exit.stdout_text.c_str(), stdout);
  std::fflush(stdout);
  std::fputs(exit.stderr_text.c_str(), stderr);
  return exit.code;
}

int TartMain(int argc, char** argv) {
  namespace t = flotilla::tartsim;
  setvbuf(stdout, nullptr, _IOLBF, 0);  // Root.swift: setlinebuf(stdout)
  Context ctx;
  // Tart handles SIGINT itself (it cancels the command); here it is collected at the points
  // where Tart's command would notice the cancellation.
  sigset_t interrupt;
  sigemptyset(&interrupt);
  sigaddset(&interrupt, SIGINT);
  sigprocmask(SIG_BLOCK, &interrupt, &ctx.original_mask);
  ctx.home = t::TartHome::FromEnvironment();
  try {
    ctx.config = t::LoadFakeConfig(ctx.home.fake_config());
  } catch (const t::ConfigError& e) {
    std::fprintf(stderr, "flotilla-tartsim: %s\n", e.what());
    return kFakeMisused;
  }
  const Args all(argv + 1, argv + argc);
  if (all.empty() || all[0] == "--help" || all[0] == "-h" || all[0] == "help") {
    std::fputs(RootHelp().c_str(), stdout);
    return 0;
  }
  try {
    t::SleepMs(ctx.config.Jittered(ctx.config.latency_ms.cmd));
    if (all[0] == "--version") {
      std::printf("%s\n", ctx.config.version.c_str());
      return 0;
    }
    const std::string& name = all[0];
    for (const char* unsimulated : kUnsimulated) {
      if (name == unsimulated) {
        std::fprintf(stderr, "flotilla-tartsim: `tart %s` is not simulated\n", unsimulated);
        return kFakeMisused;
      }
    }
    auto found = Subcommands().find(name);
    const bool exists = found != Subcommands().end() && ctx.config.AtLeast(found->second.since) &&
                        !(name == "suspend" && std::atoi(ctx.config.host.os_version.c_str()) < 14);
    if (!exists) {
      t::ThrowValidation(
          (name[0] == '-' ? "Unknown option '" : "Unexpected argument '") + name + "'",
          t::RootUsage());
    }
    if (ctx.config.Hangs(name)) {
      for (;;) {
        t::SleepMs(int64_t{3600} * 1000);  // until killed; SIGINT stays blocked
      }
    }
    return found->second.run(ctx, Args(all.begin() + 1, all.end()));
  } catch (const t::TartExit& exit) {
    return Print(exit);
  } catch (const t::ConfigError& e) {
    std::fprintf(stderr, "flotilla-tartsim: %s\n", e.what());
    return kFakeMisused;
  } catch (const std::exception& e) {
    // A Foundation error from a file operation: ArgumentParser prints it as "Error: ...".
    std::fflush(stdout);
    std::fprintf(stderr, "Error: %s\n", e.what());
    return 1;
  }
}

int HostToolMain(const std::string& tool, int argc, char** argv) {
  namespace t = flotilla::tartsim;
  t::FakeConfig config;
  try {
    config = t::LoadFakeConfig(t::TartHome::FromEnvironment().fake_config());
  } catch (const t::ConfigError& e) {
    std::fprintf(stderr, "flotilla-tartsim: %s\n", e.what());
    return kFakeMisused;
  }
  if (tool == "sysctl") {
    return t::HostSysctl(config, argc, argv);
  }
  if (tool == "sw_vers") {
    return t::HostSwVers(config, argc, argv);
  }
  return t::HostDf(config, argc, argv);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string tool = flotilla::tartsim::Basename(argc > 0 ? argv[0] : "tart");
  if (tool == "sysctl" || tool == "sw_vers" || tool == "df") {
    return HostToolMain(tool, argc, argv);
  }
  if (tool == "sudo") {
    return flotilla::tartsim::GuestSudo(argc, argv);
  }
  if (tool == "shutdown") {
    return flotilla::tartsim::GuestShutdown(argc, argv);
  }
  return TartMain(argc, argv);
}
