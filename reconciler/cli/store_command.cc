#include "reconciler/cli/store_command.h"

#include <filesystem>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/api/views.h"
#include "reconciler/cli/read_commands.h"
#include "reconciler/store/store.h"

namespace flotilla::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// The store file `where` names, without opening it.
Result<std::string> StoreFile(const StoreLocation& where, const Context& context) {
  Result<manifest::ReconcilerConfig> config = LoadReconcilerConfig(where, context);
  if (!config.ok()) {
    return config.status();
  }
  return StorePath(*config);
}

int RunBackup(const StoreCommandOptions& options, const Context& context) {
  Result<std::string> path = StoreFile(options.where, context);
  if (!path.ok()) {
    return Fail(context, path.status());
  }
  if (Status s = store::BackupStore(*path, options.backup_file, options.force); !s.ok()) {
    return Fail(context, s);
  }
  std::error_code ec;
  const auto size = fs::file_size(options.backup_file, ec);
  context.out << "Backed up " << *path << " to " << options.backup_file;
  if (!ec) {
    context.out << " (" << size / 1024 << " KiB)";
  }
  context.out << ".\nTo restore: stop flotilla, copy the backup over " << *path << " (and remove "
              << *path << "-wal and " << *path << "-shm if they are left), start flotilla.\n";
  return 0;
}

// One ledger row compared with the host it names, as last observed.
struct LedgerFinding {
  std::string vm;
  std::string host;
  std::string problem;  // "missing", "other-id", "host-unknown", "host-offline"
  std::string detail;
};

std::vector<LedgerFinding> CompareLedger(const Ledger& ledger, const Observed& observed) {
  std::vector<LedgerFinding> findings;
  for (const LedgerEntry& e : ledger.entries) {
    const ObservedHost* host = observed.FindHost(e.host);
    if (host == nullptr) {
      findings.push_back({e.vm, e.host, "host-unknown", "no observation of the host is stored"});
      continue;
    }
    if (!host->vms_known) {
      findings.push_back({e.vm, e.host, "host-offline", "the host has never answered"});
      continue;
    }
    const VmInfo* vm = host->FindVm(e.vm);
    if (vm == nullptr) {
      findings.push_back({e.vm, e.host, "missing",
                          std::string("the host did not report it") +
                              (host->online ? "" : " (when it last answered)")});
    } else if (!e.provider_id.empty() && vm->id != e.provider_id) {
      findings.push_back({e.vm, e.host, "other-id",
                          "the ledger has id " + e.provider_id + ", the host reports " + vm->id});
    }
  }
  return findings;
}

int RunCheck(const StoreCommandOptions& options, const Context& context) {
  Result<std::unique_ptr<store::Store>> opened = OpenExistingStore(options.where, context);
  if (!opened.ok()) {
    return Fail(context, opened.status());
  }
  store::Store& store = **opened;
  const Status integrity = store.CheckIntegrity();
  Result<Ledger> ledger = store.LoadLedger();
  Result<Observed> observed = store.LoadHosts();
  Result<std::vector<store::ActionRecord>> unfinished = store.UnfinishedActions();
  for (const Status& s : {ledger.status(), observed.status(), unfinished.status()}) {
    if (!s.ok()) {
      return Fail(context, s);
    }
  }
  const std::vector<LedgerFinding> findings = CompareLedger(*ledger, *observed);
  size_t wrong = 0;  // rows the hosts contradict (the loop repairs or reports them)
  for (const LedgerFinding& f : findings) {
    wrong += f.problem == "missing" || f.problem == "other-id" ? 1 : 0;
  }
  std::optional<std::chrono::system_clock::time_point> newest;
  for (const auto& [name, host] : observed->hosts) {
    if (host.last_seen && (!newest || *host.last_seen > *newest)) {
      newest = host.last_seen;
    }
  }
  const bool ok = integrity.ok() && wrong == 0;
  if (options.json) {
    json rows = json::array();
    for (const LedgerFinding& f : findings) {
      rows.push_back(
          {{"vm", f.vm}, {"host", f.host}, {"problem", f.problem}, {"detail", f.detail}});
    }
    context.out << json{{"store", store.path()},
                        {"schema", store.schema_version()},
                        {"integrity", integrity.ok() ? "ok" : integrity.message()},
                        {"ledger_rows", ledger->entries.size()},
                        {"hosts_observed", observed->hosts.size()},
                        {"observed_at", newest ? json(api::FormatTime(*newest)) : json(nullptr)},
                        {"unfinished_actions", unfinished->size()},
                        {"ledger_findings", rows},
                        {"ok", ok}}
                       .dump(2)
                << "\n";
    return ok ? 0 : 1;
  }
  context.out << "Store:       " << store.path() << " (schema " << store.schema_version() << ")\n"
              << "Integrity:   " << (integrity.ok() ? "ok" : integrity.message()) << "\n"
              << "Ledger:      " << ledger->entries.size() << " VM(s), checked against "
              << observed->hosts.size() << " host(s) as last observed"
              << (newest ? " (newest " + api::FormatTime(*newest) + ")" : std::string()) << "\n";
  for (const LedgerFinding& f : findings) {
    context.out << "  " << f.problem << ": " << f.vm << " on " << f.host << ": " << f.detail
                << "\n";
  }
  if (!unfinished->empty()) {
    context.out << "Unfinished:  " << unfinished->size()
                << " action(s) the journal left open; the loop settles them on its next pass\n";
  }
  context.out << (ok ? "OK\n"
                  : integrity.ok()
                      ? "PROBLEMS: ledger rows the hosts contradict (the loop repairs what its "
                        "journal proves and reports the rest; see flotilla status)\n"
                      : "PROBLEMS: the file is damaged; restore a backup (docs/operations.md, "
                        "\"A damaged store\")\n");
  return ok ? 0 : 1;
}

}  // namespace

CLI::App* AddStoreCommand(CLI::App& app, StoreCommandOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "store",
      "Look after the store (<stateDir>/flotilla.db): back it up, check it. Both are safe while "
      "the loop runs.");
  cmd->require_subcommand(1);
  CLI::App* backup = cmd->add_subcommand(
      "backup",
      "Copy the store to FILE with SQLite's online backup API: one consistent moment of the "
      "file, even while 'flotilla run' writes it. The copy is checked, synced and then renamed "
      "into place. Restore by copying it over flotilla.db while flotilla is stopped.");
  backup->add_option("FILE", options.backup_file, "Where the copy goes")->required();
  backup->add_flag("--force", options.force, "Replace FILE when it exists");
  AddLocationFlags(*backup, options.where);
  CLI::App* check = cmd->add_subcommand(
      "check",
      "Check the store file's integrity (SQLite's integrity and foreign key checks) and compare "
      "the ledger with the hosts as the loop last observed them (no host is asked).\n"
      "Exit status: 0 all consistent, 1 a damaged file, ledger rows the hosts contradict, or an "
      "error.");
  AddLocationFlags(*check, options.where);
  AddOutputFlags(*check, options.json);
  return cmd;
}

int RunStore(const StoreCommandOptions& options, const CLI::App& cmd, const Context& context) {
  if (cmd.get_subcommand("backup")->parsed()) {
    return RunBackup(options, context);
  }
  return RunCheck(options, context);
}

}  // namespace flotilla::cli
