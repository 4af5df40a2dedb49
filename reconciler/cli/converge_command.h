#pragma once

// The commands that change hosts or read what changed them:
//   apply    one reconcile: fetch, load, observe, plan, show, confirm, execute, record
//   run      the control loop (controller/loop.h) until SIGTERM or SIGINT
//   history  runs and revisions from the store
//   status   what the store knows now: revision in force, last run, hosts, owned VMs

#include <cstdint>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"
#include "reconciler/cli/plan_output.h"

namespace flotilla::cli {

// Where the configuration and the state live; shared by the four commands.
struct StoreLocation {
  std::string config;       // flotilla.yaml; default $FLOTILLA_CONFIG, else ./flotilla.yaml
  std::string state_dir;    // overrides the config's stateDir
  std::string secrets_dir;  // overrides the config's secretsDir
};

struct ApplyOptions {
  StoreLocation where;
  bool yes = false;
  std::string plan_file;  // apply exactly this saved plan (flotilla plan --out)
  std::optional<uint32_t> max_deletions;
  bool allow_empty = false;
  PlanFormat format = PlanFormat::kText;
};

struct RunOptions {
  StoreLocation where;
  std::string pools;  // comma-separated; empty: all
};

struct HistoryOptions {
  StoreLocation where;
  size_t limit = 20;
  bool json = false;
};

struct StatusOptions {
  StoreLocation where;
  bool json = false;
};

CLI::App* AddApplyCommand(CLI::App& app, ApplyOptions& options);
CLI::App* AddRunCommand(CLI::App& app, RunOptions& options);
CLI::App* AddHistoryCommand(CLI::App& app, HistoryOptions& options);
CLI::App* AddStatusCommand(CLI::App& app, StatusOptions& options);

// Exit codes: apply 0 applied (or nothing to do), 1 error, refused, cancelled or an action
// failed; run 0 after a clean shutdown, 1 if it could not start.
int RunApply(const ApplyOptions& options, const Context& context);
int RunLoop(const RunOptions& options, const Context& context);
int RunHistory(const HistoryOptions& options, const Context& context);
int RunStatus(const StatusOptions& options, const Context& context);

}  // namespace flotilla::cli
