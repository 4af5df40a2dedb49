#pragma once

// The store: one SQLite file (default <stateDir>/flotilla.db) that remembers what Flotilla owns
// and what it did (DESIGN sections 3 and 5).
//
//   ledger        every VM Flotilla created or adopted (name, VMSet, pool, host, provider id,
//                 template hash, created/updated)
//   vmset_prune   the `prune` each VMSet had when it was last applied
//   revisions     every revision the loop attempted: sha, when, applied/rejected/failed, why
//   runs          one row per reconcile: trigger, revision, start/finish, outcome, counts, the
//                 approval it had and the API token (by name) that asked for it
//   actions       the journal: one row per action attempt of a run, written before the provider
//                 is called (`intended`) and updated as it goes
//   hosts         the last observation of every host (facts and VMs), so that a restart and
//                 `diff --inventory` have an inventory before any host answers; rewritten only
//                 when the observation changed
//   host_seen     when each host last answered (its last_seen, to the millisecond), apart from
//                 the snapshot, so that a pass where nothing else changed writes only this
//   events        short messages for people (a host went offline, a revision was rejected)
//
// The file is opened in WAL mode with foreign keys on; its schema is migrated forward by
// `PRAGMA user_version` when opened. Old runs (with their actions) and events are pruned to the
// configured retention. Nothing secret is ever written: callers pass redacted messages, and the
// store holds no credentials.
//
// Thread-safety: a Store may be used from many threads at once (calls are serialised inside).
// The journal's writes (InsertAction, UpdateAction*, UpsertLedger, RemoveLedger), which the
// executor's workers make at the same time, are group-committed: writes handed in while a commit
// is under way share the next commit (group_commit.h), and each call returns once the commit that
// holds its own write is done, with that write's outcome alone. Only one process should write a
// store at a time: hold an OwnerLock (owner_lock.h).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/observed.h"
#include "reconciler/model/plan.h"
#include "reconciler/model/result.h"
#include "reconciler/model/status.h"

namespace flotilla::store {

using Time = std::chrono::system_clock::time_point;

// Copies the store at `path` to `destination` with SQLite's online backup API: a consistent copy
// of one moment even while a loop writes the file (readers do not block the writer under WAL).
// The copy is written to a temporary file beside `destination`, synced, and renamed into place.
// Refuses to replace an existing `destination` unless `replace`.
Status BackupStore(const std::string& path, const std::string& destination, bool replace);

// The schema version this build writes. Opening a newer file fails (downgrades are refused).
inline constexpr int kSchemaVersion = 5;

// How hard a commit holds on to the disk (PRAGMA synchronous, with WAL journaling).
enum class Durability {
  kFull,    // every commit is synced: a committed transaction survives a power cut
  kNormal,  // synced at checkpoints: a crash of the process loses nothing, a power cut may
            // lose the last commits
};

// Whether the store can record what the loop does. While it cannot, no host is called
// (docs/operations.md, "When the store cannot be written").
struct StoreHealth {
  bool writable = true;
  // The file was unlinked or replaced under the running process: what it writes now is lost.
  // Only a restart (after restoring the file) ends this.
  bool moved = false;
  std::string problem;    // why not writable: names the file and the reason; empty when writable
  uint64_t failures = 0;  // writes that failed on the file itself since the store opened
};

struct StoreOptions {
  size_t retain_runs = 1000;     // newest runs kept (with their actions); 0: keep all
  size_t retain_events = 10000;  // newest events kept; 0: keep all
  // How long a statement waits for a lock held by another connection before failing.
  std::chrono::milliseconds busy_timeout{5000};
  // For the commands that only look (status, history, hosts, vms, plan): the file must exist
  // and have exactly this build's schema; nothing is created, migrated or written, and every
  // write fails.
  bool read_only = false;
  // The config's store.durability.
  Durability durability = Durability::kFull;
};

enum class RevisionOutcome { kApplied, kRejected, kFailed };
std::string_view ToString(RevisionOutcome outcome);  // "applied", "rejected", "failed"

struct RevisionRecord {
  int64_t id = 0;
  std::string sha;  // may be empty when the source could not be read at all
  Time attempted_at;
  RevisionOutcome outcome = RevisionOutcome::kFailed;
  std::string reason;  // why rejected or failed; empty when applied
};

enum class RunOutcome {
  kRunning,    // not finished (or the process died while it ran)
  kSucceeded,  // every action succeeded (or there was nothing to do)
  kPartial,    // some actions failed or were abandoned
  kFailed,     // the reconcile could not run (no revision, no store, ...)
  kCancelled,  // superseded by a newer revision or stopped by a signal
};
std::string_view ToString(RunOutcome outcome);  // "running", "succeeded", ...

struct RunCounts {
  int64_t planned = 0;
  int64_t succeeded = 0;
  int64_t failed = 0;
  int64_t abandoned = 0;
  int64_t findings = 0;
  int64_t conflicts = 0;  // desired VMs whose name a VM Flotilla does not own holds
  int64_t refused = 0;    // deletions refused by the empty-fleet guard

  friend bool operator==(const RunCounts&, const RunCounts&) = default;
};

struct RunRecord {
  int64_t id = 0;
  std::string trigger;   // "apply", "timer", "change", "manual", "webhook", ...
  std::string revision;  // the commit planned from; empty if none was loaded
  Time started_at;
  std::optional<Time> finished_at;
  RunOutcome outcome = RunOutcome::kRunning;
  RunCounts counts;
  std::string message;   // summary or error, for people
  std::string approval;  // a person's leave to pass the deletion guards (PassApproval::Describe)
  std::string actor;     // the name of the API token that asked for the run; empty: none did
};

enum class ActionState { kIntended, kRunning, kSucceeded, kFailed, kAbandoned };
std::string_view ToString(ActionState state);  // "intended", "running", ...
bool IsFinished(ActionState state);            // succeeded, failed or abandoned

// One attempt at one action of a run.
struct ActionRecord {
  int64_t id = 0;  // assigned by InsertAction
  int64_t run_id = 0;
  int plan_action_id = 0;  // Action::id within its plan
  ActionKind kind = ActionKind::kCreate;
  std::string vm;
  std::string vmset;
  std::string pool;
  std::string host;
  std::string from_host;       // replace: where the predecessor is
  std::string template_hash;   // create/replace
  std::string predecessor_id;  // replace: the provider id of the VM being replaced
  bool create_first = false;   // replace: new VM before the predecessor is deleted
  int attempt = 1;
  ActionState state = ActionState::kIntended;
  std::string error;              // last error (redacted by the caller)
  std::string pending_temp_name;  // create/replace: the provider's temporary VM name
  std::string pending_job_id;     // create/replace: the host's job id, if asynchronous
  std::string doing;              // what it is doing, as the provider last said (for people)
  Time started_at;
  std::optional<Time> finished_at;
};

// One line for people.
struct EventRecord {
  int64_t id = 0;
  Time at;
  std::string level;    // "info", "warn", "error"
  std::string kind;     // "host-offline", "revision-rejected", "action-failed", ...
  std::string subject;  // host, VM or revision the event is about; may be empty
  std::string message;
};

class Store {
 public:
  // Opens (creating if needed) the SQLite file at `path`, creating its folder, and migrates
  // it to kSchemaVersion; with options.read_only, opens an existing file of exactly that schema
  // and changes nothing. ":memory:" is a store that lasts as long as the object. Errors name the
  // file.
  static Result<std::unique_ptr<Store>> Open(const std::string& path,
                                             const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const;
  int schema_version() const;
  // Rows this store has written since it opened: it grows with every recorded change (a run, an
  // action's progress, an event, a revision, an observation saved), so a reader can tell that
  // something changed without reading it (the dashboard's live stream).
  int64_t Writes();
  // Transactions this store has committed since it opened (each synced at durability full):
  // writes that share a group commit count once.
  int64_t Commits();

  // --- ledger ---
  Result<Ledger> LoadLedger();
  // Inserts or replaces the row of `entry.vm` (created_at is kept when it exists).
  Status UpsertLedger(const LedgerEntry& entry, Time now);
  // Removes the row of `vm`; with `host`, only while the row names that host (the delete of a
  // replaced VM on its old host must not drop the row of its successor). OK when there is none.
  Status RemoveLedger(std::string_view vm, std::string_view host = {});
  // Replaces the whole vmset_prune table.
  Status SetVmsetPrune(const std::map<std::string, bool>& prune);

  // --- revisions ---
  Result<int64_t> RecordRevision(const RevisionRecord& revision);
  Result<std::optional<RevisionRecord>> LastApplied();
  Result<std::optional<RevisionRecord>> LastAttempted();
  Result<std::vector<RevisionRecord>> Revisions(size_t limit);  // newest first; limit 0: all

  // --- runs ---
  Result<int64_t> BeginRun(std::string_view trigger, std::string_view revision, Time now);
  // Records the approval the run went past the deletion guards with.
  Status SetRunApproval(int64_t run_id, std::string_view approval);
  // Records the name of the API token that asked for the run (never the token).
  Status SetRunActor(int64_t run_id, std::string_view actor);
  Status FinishRun(int64_t run_id, RunOutcome outcome, const RunCounts& counts,
                   std::string_view message, Time now);
  Result<std::vector<RunRecord>> Runs(size_t limit);  // newest first; limit 0: all
  Result<std::optional<RunRecord>> Run(int64_t run_id);
  // Marks runs left `running` by a dead process as cancelled; returns how many.
  Result<int64_t> CloseStaleRuns(std::string_view message, Time now);

  // --- actions journal ---
  Result<int64_t> InsertAction(const ActionRecord& action);  // returns the new id
  Status UpdateActionState(int64_t action_id, ActionState state, std::string_view error,
                           std::optional<Time> finished_at);
  Status UpdateActionPending(int64_t action_id, std::string_view temp_name,
                             std::string_view job_id);
  Status UpdateActionDoing(int64_t action_id, std::string_view doing);
  Result<std::vector<ActionRecord>> Actions(int64_t run_id);  // in id order
  // Every action still intended or running, oldest first.
  Result<std::vector<ActionRecord>> UnfinishedActions();
  // For each VM, its latest create or replace attempt that reached a host (it journalled a
  // temporary name), if that attempt did not succeed and no later attempt of the VM reached a
  // host or succeeded: work a later create of the VM on that host can resume, whatever became
  // of the attempt's row (a process killed again before resuming it leaves it abandoned).
  // Oldest first.
  Result<std::vector<ActionRecord>> ResumableCreates();
  // Deletes that succeeded at or after `since` (what the deletion budget counts), oldest first.
  Result<std::vector<ActionRecord>> DeletionsSince(Time since);
  // The journal's proof that this store may have made the `vm` now on `host` without recording
  // its id: a create or replace of it there that reached the host (it journalled a temporary
  // name) and whose success was never recorded (interrupted, abandoned or failed; a succeeded
  // one wrote its id to the ledger), and newer than the last create or replace of it there that
  // succeeded (which made, or adopted, the VM of that name there and recorded its id).
  // Retention may have removed the proof of old VMs.
  Result<bool> MadeOn(const std::string& vm, const std::string& host);
  // Whether an attempt of this store asked `host` for a VM named `temp_name` (a create's
  // temporary name, journalled before the host is asked).
  Result<bool> AskedFor(const std::string& temp_name, const std::string& host);

  // --- host inventory ---
  // Stores the observation of every host in `observed` (hosts not in it are kept), in one
  // transaction. `saved` is what the store already holds (the last observation the caller saved
  // or loaded; empty: not known): a host whose observation equals its entry there, last_seen
  // aside, keeps its row and has only its last_seen updated when that moved, or nothing written
  // at all. Every other host's row is rewritten. The caller must pass only what the store holds
  // (after a failed save, what it loads again, or nothing).
  Status SaveHosts(const Observed& observed, const Observed& saved = {});
  Result<Observed> LoadHosts();

  // --- events ---
  Status AddEvent(const EventRecord& event);
  Result<std::vector<EventRecord>> Events(size_t limit);  // newest first; limit 0: all

  // Deletes runs (and their actions), revisions and events beyond the retention. Called by
  // FinishRun. Keeps runs whose actions are still intended or running, and the newest applied
  // revision.
  Status Prune();

  // `PRAGMA integrity_check` and `PRAGMA foreign_key_check`: OK, or the problems SQLite reports.
  Status CheckIntegrity();

  // Whether writes reach the file: the last write that failed on the file itself (full disk,
  // I/O error, read-only or corrupt file) until a later write commits, and whether the file was
  // removed or replaced since it was opened. Cheap (a stat); called once per pass and by the
  // status API.
  StoreHealth Health();

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flotilla::store
