#pragma once

// The `tart` subcommands of flotilla-tartsim, one function each, and the helpers they share.
// Each runs in its own process, as each `tart` invocation does; a command reports failure by
// throwing TartExit (tart_cli.h) and success by returning 0 (exec returns the guest's code).

#include <signal.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "providers/tart/tartsim/sim_config.h"
#include "providers/tart/tartsim/tart_cli.h"
#include "providers/tart/tartsim/vm_storage.h"

namespace flotilla::tartsim {

struct Context {
  TartHome home;
  FakeConfig config;
  // The signals main() blocked (SIGINT at least), to restore in an exec'd guest command.
  sigset_t original_mask;

  const std::string& version() const { return config.version; }
  // A fresh generator for "shuffle_keys", or null when keys keep their order.
  std::unique_ptr<std::mt19937> Shuffler() const;
  // Tart's defaultLogger: the CI logger when $CI is set, else the interactive one.
  bool ci_logger() const;
};

using Args = std::vector<std::string>;

int CmdList(const Context& ctx, const Args& args);
int CmdGet(const Context& ctx, const Args& args);
int CmdClone(const Context& ctx, const Args& args);
int CmdPull(const Context& ctx, const Args& args);
int CmdFqn(const Context& ctx, const Args& args);
int CmdRun(const Context& ctx, const Args& args);
int CmdStop(const Context& ctx, const Args& args);
int CmdSuspend(const Context& ctx, const Args& args);
int CmdDelete(const Context& ctx, const Args& args);
int CmdRename(const Context& ctx, const Args& args);
int CmdSet(const Context& ctx, const Args& args);
int CmdPrune(const Context& ctx, const Args& args);
int CmdIp(const Context& ctx, const Args& args);
int CmdExec(const Context& ctx, const Args& args);

// Guest-side helpers `tart exec` puts first on the guest's PATH (symlinks to this binary).
int GuestSudo(int argc, char** argv);
int GuestShutdown(int argc, char** argv);

// Host tools the provider's observe script calls on a Mac.
int HostSysctl(const FakeConfig& config, int argc, char** argv);
int HostSwVers(const FakeConfig& config, int argc, char** argv);
int HostDf(const FakeConfig& config, int argc, char** argv);

// --- shared helpers ---------------------------------------------------------------------------

// Sleeps `ms`; returns true (early) when SIGINT arrives meanwhile. SIGINT must be blocked.
bool SleepUnlessInterrupted(int64_t ms);
// Sleeps `ms` whatever happens.
void SleepMs(int64_t ms);

// VMStorageLocal.open: the VM's directory, validated (exists, has its three files), with its
// access date updated. Throws "does not exist" (RuntimeError, exit 2) or VMMissingFiles.
VmDir OpenLocalVm(const Context& ctx, const std::string& name);

// Foundation's ByteCountFormatter (file style, decimal units): "50 GB", "21.47 GB".
std::string HumanBytes(int64_t bytes);

// What every command does after parsing its arguments: Config() (create TART_HOME, cache/,
// tmp/), then the tmp/ garbage collection Root.swift runs before all but pull and clone.
void StartCommand(const Context& ctx, bool collect_garbage);

// TART_HOME/.fake/guest-bin, holding `sudo` and `shutdown` symlinks to this binary; created on
// first use.
std::string GuestBinDir(const Context& ctx);

}  // namespace flotilla::tartsim
