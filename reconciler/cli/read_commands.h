#pragma once

// The commands that read the fleet's state, from a running loop's API or from the store:
//   status     revision in force, newest problem, last run, hosts online, owned VMs, events
//   history    runs and revisions, newest first
//   hosts      every host: pool, state, arch, VMs, resources
//   vms        every VM on the hosts, managed or not, with filters
//   reconcile  asks a running loop for a pass now (API only)
//
// With --server URL (or $FLOTILLA_SERVER) they ask the API, with the token from --token-file
// (or $FLOTILLA_TOKEN); without, they read the store of --config/--state-dir (no lock, so a
// loop may be running). `reconcile` needs a loop: without --server it asks the API that the
// configuration's loop serves (api.listen, api.tokenFile). Tables for people; `-o json` for scripts
// (the API's JSON, docs/api.md).

#include <cstddef>
#include <string>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"
#include "reconciler/cli/converge_command.h"

namespace flotilla::cli {

struct ServerFlags {
  std::string server;      // base URL of a running loop's API; empty: $FLOTILLA_SERVER
  std::string token_file;  // empty: $FLOTILLA_TOKEN
  std::string ca_file;     // PEM CA bundle for an https server; empty: the system's
};

// --server, --token-file and --ca-file on `cmd`; `store_fallback` says what happens without a
// server (the store is read, or the configured loop's API is asked).
void AddServerFlags(CLI::App& cmd, ServerFlags& api, bool store_fallback = true);
// --server, else $FLOTILLA_SERVER, without trailing '/'; empty when neither is set.
std::string ServerUrl(const ServerFlags& flags);
// The bearer token: --token-file's content, else $FLOTILLA_TOKEN, else `fallback` (trimmed).
// FailedPrecondition when the token file cannot be read.
Result<std::string> ClientToken(const ServerFlags& flags, std::string fallback = "");

// GET `path` of the API at `url` with the flags' token: its JSON, or what went wrong (as the
// read commands say it).
Result<nlohmann::json> GetFromApi(const ServerFlags& flags, const std::string& url,
                                  const std::string& path);

struct ReadOptions {
  StoreLocation where;
  ServerFlags api;
  bool json = false;  // -o json
};

struct HistoryOptions : ReadOptions {
  size_t limit = 20;
};

struct VmsOptions : ReadOptions {
  std::string pool;
  std::string vmset;
  std::string host;
  std::string state;
  std::string managed;  // "", "true" or "false"
};

struct ReconcileOptions {
  ServerFlags api;
  StoreLocation where;  // without --server: the API that the configuration's loop serves
  bool json = false;
  bool wait = false;  // until the run finishes
  size_t timeout_seconds = 3600;
  // An approval for the pass (Controller::Approve): recorded with the run, spent by it.
  std::optional<uint32_t> max_deletions;
  bool allow_empty = false;
};

// `-o, --output table|json` and `--json` (the same as -o json), setting `json_output`.
void AddOutputFlags(CLI::App& cmd, bool& json_output);

CLI::App* AddStatusCommand(CLI::App& app, ReadOptions& options);
CLI::App* AddHistoryCommand(CLI::App& app, HistoryOptions& options);
CLI::App* AddHostsCommand(CLI::App& app, ReadOptions& options);
CLI::App* AddVmsCommand(CLI::App& app, VmsOptions& options);
CLI::App* AddReconcileCommand(CLI::App& app, ReconcileOptions& options);

// Exit codes: 0 success, 1 error (unreachable server, refused token, no store); reconcile
// --wait also exits 1 when the run did not succeed.
int RunStatus(const ReadOptions& options, const Context& context);
int RunHistory(const HistoryOptions& options, const Context& context);
int RunHosts(const ReadOptions& options, const Context& context);
int RunVms(const VmsOptions& options, const Context& context);
int RunReconcile(const ReconcileOptions& options, const Context& context);

}  // namespace flotilla::cli
