#pragma once

// The commands that change hosts:
//   apply    one reconcile: fetch, load, observe, plan, show, confirm, execute, record
//   run      the control loop (controller/loop.h) and its HTTP API until SIGTERM or SIGINT
// (status, history, hosts, vms and reconcile are in read_commands.h.)

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"
#include "reconciler/cli/plan_output.h"
#include "reconciler/manifest/config.h"
#include "reconciler/model/result.h"
#include "reconciler/store/store.h"

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
  std::string plan_file;                  // apply exactly this saved plan (flotilla plan --out)
  std::optional<uint32_t> max_deletions;  // with allow_empty: an approval for this one pass
  bool allow_empty = false;
  bool adopt = false;  // take over existing VMs with desired names in this run
  std::string pools;   // comma-separated; empty: all
  PlanFormat format = PlanFormat::kText;
};

struct RunOptions {
  StoreLocation where;
  std::string pools;   // comma-separated; empty: all
  std::string listen;  // overrides api.listen
};

// The configuration file `where` names: --config, else $FLOTILLA_CONFIG, else ./flotilla.yaml
// if it exists; empty when there is none.
std::string ConfigPath(const StoreLocation& where);

// --config, --state-dir and --secrets-dir.
void AddLocationFlags(CLI::App& cmd, StoreLocation& where);

// The `log` settings of the configuration file `where` names; empty fields when it sets none,
// or when there is no file or it does not load (the command reports that when it loads it).
manifest::ReconcilerConfig::Log ConfiguredLog(const StoreLocation& where,
                                              const manifest::SchemaValidator& validator);

// <stateDir>/flotilla.db: the store file of `config`.
std::string StorePath(const manifest::ReconcilerConfig& config);

// The store named by `where`, for commands that only read it (no lock: a loop may be running).
// NotFound when nothing has been applied from that state directory yet.
Result<std::unique_ptr<store::Store>> OpenExistingStore(const StoreLocation& where,
                                                        const Context& context);

// Prints "flotilla: <message>" and returns 1.
int Fail(const Context& context, const Status& status);

// The configuration named by `where` (--config, else $FLOTILLA_CONFIG, else ./flotilla.yaml if
// it exists, else every default), with --state-dir and --secrets-dir applied. Schema problems
// are printed to context.err, one per line.
Result<manifest::ReconcilerConfig> LoadReconcilerConfig(const StoreLocation& where,
                                                        const Context& context);

// A secret setting's value: the file's text, else the environment variable's, with trailing
// white space dropped; empty when neither is configured. FailedPrecondition when the file
// cannot be read, the variable is not set, or the value is empty. `what` names it in errors
// ("API token"); the value itself is never part of a message.
Result<std::string> ReadSecretSetting(const std::string& file, const std::string& env,
                                      std::string_view what);

CLI::App* AddApplyCommand(CLI::App& app, ApplyOptions& options);
CLI::App* AddRunCommand(CLI::App& app, RunOptions& options);

// Exit codes: apply 0 applied (or nothing to do), 1 error, refused, cancelled or an action
// failed; run 0 after a clean shutdown, 1 if it could not start.
int RunApply(const ApplyOptions& options, const Context& context);
// `ready`, if set, is called with the API's URL once it listens (`flotilla dev` prints it).
int RunLoop(const RunOptions& options, const Context& context,
            const std::function<void(const std::string& url)>& ready = {});

}  // namespace flotilla::cli
