#pragma once

// The JSON bodies of the API's read endpoints (docs/api.md), as pure functions of a snapshot
// and store records, so that the server, the CLI's local fallback and the tests render alike.
// Nothing here holds a secret: host addresses lose any user:password part, and the store holds
// none.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/controller/snapshot.h"
#include "reconciler/store/store.h"

namespace flotilla::api {

using controller::Snapshot;

// "2026-11-23T10:00:00Z".
std::string FormatTime(std::chrono::system_clock::time_point t);

// `address` without a user:password@ part.
std::string WithoutCredentials(std::string_view address);

// The ledger by VM name, built once per rendering: Ledger::Find scans, so a view of 100,000 VMs
// that looked each one up was quadratic. The ledger must outlive the index.
class OwnerIndex {
 public:
  explicit OwnerIndex(const Ledger& ledger);
  // The first entry of that name, as Ledger::Find; null when none.
  const LedgerEntry* Find(std::string_view vm) const;
  // The entry that owns a VM seen on `host` (its name's entry, placed on that host); else null.
  const LedgerEntry* Owner(const VmInfo& vm, const std::string& host) const;

 private:
  std::unordered_map<std::string_view, const LedgerEntry*> by_vm_;
};

struct VmFilter {
  std::string pool;
  std::string vmset;
  std::string host;
  std::string state;            // "running", "stopped", ...
  std::optional<bool> managed;  // owned by this loop (in the ledger)

  // Whether it lets every VM through.
  bool All() const {
    return pool.empty() && vmset.empty() && host.empty() && state.empty() && !managed;
  }
};

// GET /api/v1/hosts as JsonReply's text; HostsJson is it parsed.
std::string HostsText(const Snapshot& snapshot);
nlohmann::json HostsJson(const Snapshot& snapshot);
// GET /api/v1/vms: {"observed_at": ..., "vms": [...]} as JsonReply's text (the answer's body),
// written without building the document; VmsJson is the same parsed.
std::string VmsText(const Snapshot& snapshot, const VmFilter& filter);

// What one element of /api/v1/vms shows: VmsText writes them, and so does VmsPieces
// (vms_pieces.h), which keeps them from one snapshot to the next. Views into the snapshot.
struct VmRow {
  const VmInfo& vm;  // cpu, disk_bytes, id, ip, memory_bytes, name
  std::string_view pool;
  std::string_view host;
  std::string_view host_state;
  std::string_view os;
  std::string_view state;
  bool managed = false;
  std::string_view vmset;          // empty when not managed
  std::string_view template_hash;  // empty when not managed
  std::optional<bool> outdated;    // unset when not managed or its set is gone
};
// Each VM set's template hash now, by set name.
using TemplateHashes = std::map<std::string, std::string, std::less<>>;
TemplateHashes CurrentTemplateHashes(const Snapshot& snapshot);
// The row of `vm`, seen on `host` of `pool`; `owner` is its ledger entry (OwnerIndex::Owner).
VmRow VmRowOf(const VmInfo& vm, const LedgerEntry* owner, const TemplateHashes& current,
              std::string_view pool, std::string_view host, std::string_view host_state);
class JsonText;
// The row as an element of the "vms" array (JsonText's indentation of that depth).
void WriteVmRow(JsonText& out, const VmRow& row);
nlohmann::json VmsJson(const Snapshot& snapshot, const VmFilter& filter);
nlohmann::json ResourcesJson(const Snapshot& snapshot);

nlohmann::json RunJson(const store::RunRecord& run);
nlohmann::json EventJson(const store::EventRecord& event);

// GET /api/v1/events: the `limit` newest events that pass the filter, newest first.
struct EventFilter {
  size_t limit = 100;   // 0: all
  std::string level;    // exact: "info", "warn", "error"; empty: any
  std::string kind;     // exact; empty: any
  std::string subject;  // a part of the subject; empty: any
};
Result<nlohmann::json> EventsJson(store::Store& store, const EventFilter& filter);
nlohmann::json ActionJson(const store::ActionRecord& action);
nlohmann::json RevisionJson(const store::RevisionRecord& revision);

// GET /api/v1/runs and `flotilla history`: {"runs": [...]}, the `limit` newest first.
Result<nlohmann::json> RunsJson(store::Store& store, size_t limit);
// GET /api/v1/revisions and `flotilla history`: the revision in force (from `snapshot`, which
// may be null without a running loop), the last attempted and last applied, and the `limit`
// newest revisions.
Result<nlohmann::json> RevisionsJson(store::Store& store, size_t limit, const Snapshot* snapshot);

// GET /api/v1/status and `flotilla status`: the revision in force, the newest problem, the last
// run, hosts online, owned VMs, unfinished actions and recent events. Hosts come from
// `snapshot` when there is one (a running loop), else from the store's last saved observation.
Result<nlohmann::json> StatusJson(store::Store& store, const Snapshot* snapshot);

// A snapshot made from what the store saved (hosts, ledger) for commands that read the store
// without a running loop. Pools hold only the hosts observed; addresses and tags are unknown.
Result<Snapshot> SnapshotFromStore(store::Store& store);

// The Parallels DevOps orchestrator's shapes (reference section 7), for its existing clients.
nlohmann::json OrchestratorHostsJson(const Snapshot& snapshot);
nlohmann::json OrchestratorResourcesJson(const Snapshot& snapshot);
// GET /api/v1/orchestrator/machines as JsonReply's text; OrchestratorMachinesJson is it parsed.
std::string OrchestratorMachinesText(const Snapshot& snapshot);
nlohmann::json OrchestratorMachinesJson(const Snapshot& snapshot);

}  // namespace flotilla::api
