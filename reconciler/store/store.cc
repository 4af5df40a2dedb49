#include "reconciler/store/store.h"

#include <array>
#include <atomic>
#include <mutex>
#include <utility>

#include "reconciler/store/group_commit.h"
#include "reconciler/store/host_snapshot.h"
#include "reconciler/store/schema.h"
#include "reconciler/store/sqlite.h"

namespace flotilla::store {

std::string_view ToString(RevisionOutcome outcome) {
  switch (outcome) {
    case RevisionOutcome::kApplied:
      return "applied";
    case RevisionOutcome::kRejected:
      return "rejected";
    case RevisionOutcome::kFailed:
      return "failed";
  }
  return "failed";
}

std::string_view ToString(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::kRunning:
      return "running";
    case RunOutcome::kSucceeded:
      return "succeeded";
    case RunOutcome::kPartial:
      return "partial";
    case RunOutcome::kFailed:
      return "failed";
    case RunOutcome::kCancelled:
      return "cancelled";
  }
  return "failed";
}

std::string_view ToString(ActionState state) {
  switch (state) {
    case ActionState::kIntended:
      return "intended";
    case ActionState::kRunning:
      return "running";
    case ActionState::kSucceeded:
      return "succeeded";
    case ActionState::kFailed:
      return "failed";
    case ActionState::kAbandoned:
      return "abandoned";
  }
  return "failed";
}

bool IsFinished(ActionState state) {
  return state == ActionState::kSucceeded || state == ActionState::kFailed ||
         state == ActionState::kAbandoned;
}

namespace {

// Every value of each enum a column holds, for sqlite::Statement::Enum.
constexpr std::array kRevisionOutcomes = {RevisionOutcome::kApplied, RevisionOutcome::kRejected,
                                          RevisionOutcome::kFailed};
constexpr std::array kRunOutcomes = {RunOutcome::kRunning, RunOutcome::kSucceeded,
                                     RunOutcome::kPartial, RunOutcome::kFailed,
                                     RunOutcome::kCancelled};
constexpr std::array kActionStates = {ActionState::kIntended, ActionState::kRunning,
                                      ActionState::kSucceeded, ActionState::kFailed,
                                      ActionState::kAbandoned};
constexpr std::array kActionKinds = {
    ActionKind::kCreate, ActionKind::kReplace, ActionKind::kStart, ActionKind::kStop,
    ActionKind::kDelete, ActionKind::kPrepull, ActionKind::kAdopt};

// Row readers; each matches the column list beside it.

constexpr const char* kRevisionColumns = "id, sha, attempted_at, outcome, reason";

RevisionRecord ReadRevision(sqlite::Statement& s) {
  return RevisionRecord{.id = s.Int(0),
                        .sha = s.Text(1),
                        .attempted_at = s.TimeAt(2),
                        .outcome = s.Enum(3, kRevisionOutcomes),
                        .reason = s.Text(4)};
}

constexpr const char* kRunColumns =
    "id, \"trigger\", revision, started_at, finished_at, outcome, planned, succeeded, failed, "
    "abandoned, findings, message, approval, conflicts, refused, actor";

RunRecord ReadRun(sqlite::Statement& s) {
  return RunRecord{.id = s.Int(0),
                   .trigger = s.Text(1),
                   .revision = s.Text(2),
                   .started_at = s.TimeAt(3),
                   .finished_at = s.OptionalTime(4),
                   .outcome = s.Enum(5, kRunOutcomes),
                   .counts = RunCounts{.planned = s.Int(6),
                                       .succeeded = s.Int(7),
                                       .failed = s.Int(8),
                                       .abandoned = s.Int(9),
                                       .findings = s.Int(10),
                                       .conflicts = s.Int(13),
                                       .refused = s.Int(14)},
                   .message = s.Text(11),
                   .approval = s.Text(12),
                   .actor = s.Text(15)};
}

constexpr const char* kActionColumns =
    "id, run_id, plan_action_id, kind, vm, vmset, pool, host, from_host, template_hash, "
    "predecessor_id, create_first, attempt, state, error, pending_temp_name, pending_job_id, "
    "started_at, finished_at, doing";

ActionRecord ReadAction(sqlite::Statement& s) {
  return ActionRecord{.id = s.Int(0),
                      .run_id = s.Int(1),
                      .plan_action_id = static_cast<int>(s.Int(2)),
                      .kind = s.Enum(3, kActionKinds),
                      .vm = s.Text(4),
                      .vmset = s.Text(5),
                      .pool = s.Text(6),
                      .host = s.Text(7),
                      .from_host = s.Text(8),
                      .template_hash = s.Text(9),
                      .predecessor_id = s.Text(10),
                      .create_first = s.Bool(11),
                      .attempt = static_cast<int>(s.Int(12)),
                      .state = s.Enum(13, kActionStates),
                      .error = s.Text(14),
                      .pending_temp_name = s.Text(15),
                      .pending_job_id = s.Text(16),
                      .doing = s.Text(19),
                      .started_at = s.TimeAt(17),
                      .finished_at = s.OptionalTime(18)};
}

constexpr const char* kEventColumns = "id, at, level, kind, subject, message";

EventRecord ReadEvent(sqlite::Statement& s) {
  return EventRecord{.id = s.Int(0),
                     .at = s.TimeAt(1),
                     .level = s.Text(2),
                     .kind = s.Text(3),
                     .subject = s.Text(4),
                     .message = s.Text(5)};
}

std::string Select(const char* columns, const char* rest) {
  return std::string("SELECT ") + columns + " " + rest;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct Store::Impl {
  Impl(sqlite::Db connection, const StoreOptions& store_options, int version)
      : db(std::move(connection)), options(store_options), schema_version(version) {
    sqlite3_commit_hook(db.handle(), &CountCommit, &commits);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Callers hold `mu`.
  Status Prune();

  // SQLite's commit hook: counts the transactions committed (returning 0 lets each commit).
  static int CountCommit(void* commits) {
    static_cast<std::atomic<int64_t>*>(commits)->fetch_add(1, std::memory_order_relaxed);
    return 0;
  }

  sqlite::Db db;
  const StoreOptions options;
  const int schema_version;
  std::mutex mu;  // serialises every use of `db`
  std::atomic<int64_t> commits{0};
  // The journal's writes (actions and ledger rows), which the executor's workers make at the
  // same time: they share commits.
  GroupCommit journal{db, mu};
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

namespace {

// A file SQLite cannot read as a database gets the way out spelled.
Status ExplainDamage(sqlite::Db& db, Status status) {
  const int rc = sqlite3_errcode(db.handle()) & 0xff;
  if (rc != SQLITE_NOTADB && rc != SQLITE_CORRUPT) {
    return status;
  }
  return Status::FailedPrecondition(
      status.message() + ". The store file " + db.path() +
      " is damaged. Stop flotilla, then replace it with a copy made by 'flotilla store backup' "
      "(see 'flotilla store check'), or move it aside to start with an empty store: the hosts "
      "keep their VMs, and VMs Flotilla made are then reported as conflicts until adopted "
      "(apply --adopt). docs/operations.md, \"A damaged store\"");
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, const StoreOptions& options) {
  Result<sqlite::Db> db = sqlite::OpenDb(path, options.busy_timeout, options.read_only);
  if (!db.ok()) {
    return db.status();
  }
  if (options.read_only) {
    // Look, never change: a loop of another version may own this file.
    Result<int> version = UserVersion(*db);
    if (!version.ok()) {
      return ExplainDamage(*db, version.status());
    }
    if (*version > kSchemaVersion) {
      return NewerSchema(*db, *version);
    }
    if (*version < kSchemaVersion) {
      return Status::FailedPrecondition(
          path + " has store schema " + std::to_string(*version) + "; this build reads schema " +
          std::to_string(kSchemaVersion) +
          ". It is migrated when this build's 'flotilla run' or 'apply' opens it; until then, "
          "read it with the flotilla that wrote it");
    }
    return std::unique_ptr<Store>(
        new Store(std::make_unique<Impl>(std::move(*db), options, *version)));
  }
  if (Status s = ConfigureFile(*db, options.durability); !s.ok()) {
    return ExplainDamage(*db, s);
  }
  Result<int> version = MigrateTo(*db, kSchemaVersion);
  if (!version.ok()) {
    return ExplainDamage(*db, version.status());
  }
  return std::unique_ptr<Store>(
      new Store(std::make_unique<Impl>(std::move(*db), options, *version)));
}

const std::string& Store::path() const { return impl_->db.path(); }
int Store::schema_version() const { return impl_->schema_version; }

int64_t Store::Writes() {
  std::lock_guard lock(impl_->mu);
  return impl_->db.TotalChanges();
}

int64_t Store::Commits() { return impl_->commits.load(std::memory_order_relaxed); }

// --- ledger ---

Result<Ledger> Store::LoadLedger() {
  std::lock_guard lock(impl_->mu);
  Ledger ledger;
  Result<std::vector<LedgerEntry>> entries = sqlite::ReadAll<LedgerEntry>(
      impl_->db.Prepare("SELECT vm, vmset, pool, host, provider_id, template_hash FROM ledger "
                        "ORDER BY vm",
                        "read the ledger"),
      [](sqlite::Statement& s) {
        return LedgerEntry{.vm = s.Text(0),
                           .vmset = s.Text(1),
                           .pool = s.Text(2),
                           .host = s.Text(3),
                           .provider_id = s.Text(4),
                           .template_hash = s.Text(5)};
      });
  if (!entries.ok()) {
    return entries.status();
  }
  ledger.entries = std::move(*entries);
  Result<std::vector<std::pair<std::string, bool>>> prune =
      sqlite::ReadAll<std::pair<std::string, bool>>(
          impl_->db.Prepare("SELECT vmset, prune FROM vmset_prune", "read vmset_prune"),
          [](sqlite::Statement& s) { return std::pair(s.Text(0), s.Bool(1)); });
  if (!prune.ok()) {
    return prune.status();
  }
  ledger.vmset_prune.insert(prune->begin(), prune->end());
  return ledger;
}

Status Store::UpsertLedger(const LedgerEntry& entry, Time now) {
  return impl_->journal.Run([&](sqlite::Db& db) {
    return db.Run(
        "INSERT INTO ledger (vm, vmset, pool, host, provider_id, template_hash, created_at, "
        "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) "
        "ON CONFLICT (vm) DO UPDATE SET vmset = excluded.vmset, pool = excluded.pool, "
        "host = excluded.host, provider_id = excluded.provider_id, "
        "template_hash = excluded.template_hash, updated_at = excluded.updated_at",
        "record VM " + entry.vm + " in the ledger", entry.vm, entry.vmset, entry.pool, entry.host,
        entry.provider_id, entry.template_hash, now);
  });
}

Status Store::RemoveLedger(std::string_view vm, std::string_view host) {
  return impl_->journal.Run([&](sqlite::Db& db) {
    return db.Run("DELETE FROM ledger WHERE vm = ?1 AND (?2 = '' OR host = ?2)",
                  "remove VM " + std::string(vm) + " from the ledger", vm, host);
  });
}

Status Store::SetVmsetPrune(const std::map<std::string, bool>& prune) {
  std::lock_guard lock(impl_->mu);
  sqlite::Db& db = impl_->db;
  sqlite::Transaction transaction(db);
  if (Status s = transaction.Begin(); !s.ok()) {
    return s;
  }
  if (Status s = db.Run("DELETE FROM vmset_prune", "replace vmset_prune"); !s.ok()) {
    return s;
  }
  for (const auto& [vmset, value] : prune) {
    if (Status s = db.Run("INSERT INTO vmset_prune (vmset, prune) VALUES (?1, ?2)",
                          "replace vmset_prune", vmset, value);
        !s.ok()) {
      return s;
    }
  }
  return transaction.Commit();
}

// --- revisions ---

Result<int64_t> Store::RecordRevision(const RevisionRecord& revision) {
  std::lock_guard lock(impl_->mu);
  Status s = impl_->db.Run(
      "INSERT INTO revisions (sha, attempted_at, outcome, reason) VALUES (?1, ?2, ?3, ?4)",
      "record revision " + revision.sha, revision.sha, revision.attempted_at,
      ToString(revision.outcome), revision.reason);
  if (!s.ok()) {
    return s;
  }
  return impl_->db.LastInsertId();
}

Result<std::optional<RevisionRecord>> Store::LastApplied() {
  std::lock_guard lock(impl_->mu);
  return sqlite::ReadFirst<RevisionRecord>(
      impl_->db.Prepare(Select(kRevisionColumns,
                               "FROM revisions WHERE outcome = 'applied' ORDER BY id DESC LIMIT 1"),
                        "read the last applied revision"),
      ReadRevision);
}

Result<std::optional<RevisionRecord>> Store::LastAttempted() {
  std::lock_guard lock(impl_->mu);
  return sqlite::ReadFirst<RevisionRecord>(
      impl_->db.Prepare(Select(kRevisionColumns, "FROM revisions ORDER BY id DESC LIMIT 1"),
                        "read the last attempted revision"),
      ReadRevision);
}

Result<std::vector<RevisionRecord>> Store::Revisions(size_t limit) {
  std::lock_guard lock(impl_->mu);
  return sqlite::ReadAll<RevisionRecord>(
      impl_->db.Prepare(Select(kRevisionColumns, "FROM revisions ORDER BY id DESC LIMIT ?1"),
                        "read revisions", sqlite::SqlLimit(limit)),
      ReadRevision);
}

// --- runs ---

Result<int64_t> Store::BeginRun(std::string_view trigger, std::string_view revision, Time now) {
  std::lock_guard lock(impl_->mu);
  Status s = impl_->db.Run(
      "INSERT INTO runs (\"trigger\", revision, started_at, outcome) VALUES (?1, ?2, ?3, ?4)",
      "begin a run", trigger, revision, now, ToString(RunOutcome::kRunning));
  if (!s.ok()) {
    return s;
  }
  return impl_->db.LastInsertId();
}

Status Store::SetRunApproval(int64_t run_id, std::string_view approval) {
  std::lock_guard lock(impl_->mu);
  const std::string what = "record the approval of run " + std::to_string(run_id);
  Status s = impl_->db.Run("UPDATE runs SET approval = ?2 WHERE id = ?1", what, run_id, approval);
  if (s.ok() && impl_->db.Changes() == 0) {
    return Status::NotFound(impl_->db.path() + ": " + what + ": no such run");
  }
  return s;
}

Status Store::SetRunActor(int64_t run_id, std::string_view actor) {
  std::lock_guard lock(impl_->mu);
  const std::string what = "record who asked for run " + std::to_string(run_id);
  Status s = impl_->db.Run("UPDATE runs SET actor = ?2 WHERE id = ?1", what, run_id, actor);
  if (s.ok() && impl_->db.Changes() == 0) {
    return Status::NotFound(impl_->db.path() + ": " + what + ": no such run");
  }
  return s;
}

Status Store::FinishRun(int64_t run_id, RunOutcome outcome, const RunCounts& counts,
                        std::string_view message, Time now) {
  std::lock_guard lock(impl_->mu);
  const std::string what = "finish run " + std::to_string(run_id);
  Status s = impl_->db.Run(
      "UPDATE runs SET outcome = ?2, finished_at = ?3, planned = ?4, succeeded = ?5, "
      "failed = ?6, abandoned = ?7, findings = ?8, message = ?9, conflicts = ?10, "
      "refused = ?11 WHERE id = ?1",
      what, run_id, ToString(outcome), now, counts.planned, counts.succeeded, counts.failed,
      counts.abandoned, counts.findings, message, counts.conflicts, counts.refused);
  if (!s.ok()) {
    return s;
  }
  if (impl_->db.Changes() == 0) {
    return Status::NotFound(impl_->db.path() + ": " + what + ": no such run");
  }
  // The run is recorded; a failure to prune only leaves old rows behind until the next run.
  return impl_->Prune().WithContext("run " + std::to_string(run_id) + " finished, but");
}

Result<std::vector<RunRecord>> Store::Runs(size_t limit) {
  std::lock_guard lock(impl_->mu);
  return sqlite::ReadAll<RunRecord>(
      impl_->db.Prepare(Select(kRunColumns, "FROM runs ORDER BY id DESC LIMIT ?1"), "read runs",
                        sqlite::SqlLimit(limit)),
      ReadRun);
}

Result<std::optional<RunRecord>> Store::Run(int64_t run_id) {
  std::lock_guard lock(impl_->mu);
  return sqlite::ReadFirst<RunRecord>(
      impl_->db.Prepare(Select(kRunColumns, "FROM runs WHERE id = ?1"),
                        "read run " + std::to_string(run_id), run_id),
      ReadRun);
}

Result<int64_t> Store::CloseStaleRuns(std::string_view message, Time now) {
  std::lock_guard lock(impl_->mu);
  // Their actions stay as they are: the executor's recovery reads them.
  Status s = impl_->db.Run(
      "UPDATE runs SET outcome = ?1, finished_at = ?2, message = ?3 WHERE outcome = ?4",
      "close stale runs", ToString(RunOutcome::kCancelled), now, message,
      ToString(RunOutcome::kRunning));
  if (!s.ok()) {
    return s;
  }
  return impl_->db.Changes();
}

// --- actions journal ---

Result<int64_t> Store::InsertAction(const ActionRecord& a) {
  int64_t id = 0;
  Status s = impl_->journal.Run([&](sqlite::Db& db) {
    Status inserted = db.Run(
        "INSERT INTO actions (run_id, plan_action_id, kind, vm, vmset, pool, host, from_host, "
        "template_hash, predecessor_id, create_first, attempt, state, error, pending_temp_name, "
        "pending_job_id, started_at, finished_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        "journal " + std::string(ToString(a.kind)) + " " + a.vm + " of run " +
            std::to_string(a.run_id),
        a.run_id, a.plan_action_id, ToString(a.kind), a.vm, a.vmset, a.pool, a.host, a.from_host,
        a.template_hash, a.predecessor_id, a.create_first, a.attempt, ToString(a.state), a.error,
        a.pending_temp_name, a.pending_job_id, a.started_at, a.finished_at);
    id = inserted.ok() ? db.LastInsertId() : 0;
    return inserted;
  });
  if (!s.ok()) {
    return s;
  }
  return id;
}

namespace {

// One statement that must change the row of `action_id`: NotFound when there is none.
template <typename... Args>
Status UpdateAction(sqlite::Db& db, int64_t action_id, std::string_view sql, const Args&... args) {
  const std::string what = "update action " + std::to_string(action_id);
  Status s = db.Run(sql, what, action_id, args...);
  if (s.ok() && db.Changes() == 0) {
    return Status::NotFound(db.path() + ": " + what + ": no such action");
  }
  return s;
}

}  // namespace

Status Store::UpdateActionState(int64_t action_id, ActionState state, std::string_view error,
                                std::optional<Time> finished_at) {
  return impl_->journal.Run([&](sqlite::Db& db) {
    return UpdateAction(db, action_id,
                        "UPDATE actions SET state = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
                        ToString(state), error, finished_at);
  });
}

Status Store::UpdateActionPending(int64_t action_id, std::string_view temp_name,
                                  std::string_view job_id) {
  return impl_->journal.Run([&](sqlite::Db& db) {
    return UpdateAction(
        db, action_id,
        "UPDATE actions SET pending_temp_name = ?2, pending_job_id = ?3 WHERE id = ?1", temp_name,
        job_id);
  });
}

Status Store::UpdateActionDoing(int64_t action_id, std::string_view doing) {
  return impl_->journal.Run([&](sqlite::Db& db) {
    return UpdateAction(db, action_id, "UPDATE actions SET doing = ?2 WHERE id = ?1", doing);
  });
}

Result<std::vector<ActionRecord>> Store::Actions(int64_t run_id) {
  std::lock_guard lock(impl_->mu);
  return sqlite::ReadAll<ActionRecord>(
      impl_->db.Prepare(Select(kActionColumns, "FROM actions WHERE run_id = ?1 ORDER BY id"),
                        "read the actions of run " + std::to_string(run_id), run_id),
      ReadAction);
}

Result<std::vector<ActionRecord>> Store::UnfinishedActions() {
  std::lock_guard lock(impl_->mu);
  return sqlite::ReadAll<ActionRecord>(
      impl_->db.Prepare(Select(kActionColumns, "FROM actions WHERE state IN (?1, ?2) ORDER BY id"),
                        "read unfinished actions", ToString(ActionState::kIntended),
                        ToString(ActionState::kRunning)),
      ReadAction);
}

Result<std::vector<ActionRecord>> Store::ResumableCreates() {
  std::lock_guard lock(impl_->mu);
  return sqlite::ReadAll<ActionRecord>(
      impl_->db.Prepare(
          Select(kActionColumns,
                 "FROM actions a WHERE a.kind IN (?1, ?2) AND a.pending_temp_name != '' "
                 "AND a.state != ?3 AND NOT EXISTS (SELECT 1 FROM actions b WHERE b.vm = a.vm "
                 "AND b.kind IN (?1, ?2) AND b.id > a.id "
                 "AND (b.pending_temp_name != '' OR b.state = ?3)) ORDER BY a.id"),
          "read resumable creates", ToString(ActionKind::kCreate), ToString(ActionKind::kReplace),
          ToString(ActionState::kSucceeded)),
      ReadAction);
}

Result<std::vector<ActionRecord>> Store::DeletionsSince(Time since) {
  std::lock_guard lock(impl_->mu);
  return sqlite::ReadAll<ActionRecord>(
      impl_->db.Prepare(Select(kActionColumns,
                               "FROM actions WHERE kind = ?1 AND state = ?2 AND finished_at >= ?3 "
                               "ORDER BY finished_at"),
                        "read recent deletions", ToString(ActionKind::kDelete),
                        ToString(ActionState::kSucceeded), since),
      ReadAction);
}

Result<bool> Store::MadeOn(const std::string& vm, const std::string& host) {
  std::lock_guard lock(impl_->mu);
  return sqlite::AnyRow(
      impl_->db.Prepare("SELECT 1 FROM actions WHERE vm = ?1 AND host = ?2 AND kind IN (?3, ?4) "
                        "AND pending_temp_name != '' AND state != ?5 AND id > "
                        "(SELECT COALESCE(MAX(id), 0) FROM actions WHERE vm = ?1 AND host = ?2 "
                        "AND kind IN (?3, ?4) AND state = ?5) LIMIT 1",
                        "read the journal of a VM", vm, host, ToString(ActionKind::kCreate),
                        ToString(ActionKind::kReplace), ToString(ActionState::kSucceeded)));
}

Result<bool> Store::AskedFor(const std::string& temp_name, const std::string& host) {
  std::lock_guard lock(impl_->mu);
  return sqlite::AnyRow(
      impl_->db.Prepare("SELECT 1 FROM actions WHERE pending_temp_name = ?1 AND host = ?2 LIMIT 1",
                        "read the journal of a temporary VM", temp_name, host));
}

// --- host inventory ---

Status Store::SaveHosts(const Observed& observed, const Observed& saved) {
  // Rendered before taking the lock: JSON is the slow part.
  struct Row {
    const ObservedHost* host;
    std::optional<std::string> snapshot;  // empty: the row stays, only last_seen moved
  };
  std::vector<Row> rows;
  for (const auto& [name, host] : observed.hosts) {
    if (const ObservedHost* before = saved.FindHost(name);
        before != nullptr && SameApartFromLastSeen(*before, host)) {
      if (before->last_seen != host.last_seen) {
        rows.push_back(Row{.host = &host, .snapshot = std::nullopt});
      }
      continue;
    }
    Result<std::string> snapshot = RenderHostSnapshot(host);
    if (!snapshot.ok()) {
      return snapshot.status().WithContext(path());
    }
    rows.push_back(Row{.host = &host, .snapshot = std::move(*snapshot)});
  }
  if (rows.empty()) {
    return Status::Ok();
  }
  std::lock_guard lock(impl_->mu);
  sqlite::Db& db = impl_->db;
  sqlite::Transaction transaction(db);
  if (Status s = transaction.Begin(); !s.ok()) {
    return s;
  }
  Result<sqlite::Statement> save =
      db.Prepare("INSERT OR REPLACE INTO hosts (name, pool, snapshot) VALUES (?1, ?2, ?3)",
                 "save a host's observation");
  Result<sqlite::Statement> seen =
      db.Prepare("INSERT OR REPLACE INTO host_seen (name, last_seen) VALUES (?1, ?2)",
                 "save when a host was last seen");
  for (Result<sqlite::Statement>* statement : {&save, &seen}) {
    if (!statement->ok()) {
      return statement->status();
    }
  }
  for (const Row& row : rows) {
    const ObservedHost& host = *row.host;
    if (row.snapshot) {
      if (Status s = save->RunAgain(host.name, host.pool, *row.snapshot); !s.ok()) {
        return s.WithContext("host " + host.name);
      }
    }
    if (Status s = seen->RunAgain(host.name, host.last_seen); !s.ok()) {
      return s.WithContext("host " + host.name);
    }
  }
  return transaction.Commit();
}

Result<Observed> Store::LoadHosts() {
  struct Row {
    std::string name;
    std::optional<Time> last_seen;
    std::string snapshot;
  };
  // Parsed after releasing the lock: JSON is the slow part.
  Result<std::vector<Row>> rows = [this] {
    std::lock_guard lock(impl_->mu);
    return sqlite::ReadAll<Row>(
        impl_->db.Prepare("SELECT hosts.name, host_seen.last_seen, hosts.snapshot FROM hosts "
                          "LEFT JOIN host_seen ON host_seen.name = hosts.name ORDER BY hosts.name",
                          "read hosts"),
        [](sqlite::Statement& s) {
          return Row{s.Text(0), s.OptionalTime(1), s.Text(2)};
        });
  }();
  if (!rows.ok()) {
    return rows.status();
  }
  Observed observed;
  for (Row& row : *rows) {
    Result<ObservedHost> host = ParseHostSnapshot(row.snapshot, row.name);
    if (!host.ok()) {
      return host.status().WithContext(path() + ": host " + row.name);
    }
    // The snapshot keeps whole seconds as of when it was written; host_seen keeps the latest, to
    // the millisecond.
    host->last_seen = row.last_seen;
    observed.hosts.emplace(row.name, std::move(*host));
  }
  return observed;
}

// --- events ---

Status Store::AddEvent(const EventRecord& event) {
  std::lock_guard lock(impl_->mu);
  return impl_->db.Run(
      "INSERT INTO events (at, level, kind, subject, message) VALUES (?1, ?2, ?3, ?4, ?5)",
      "record event " + event.kind, event.at, event.level, event.kind, event.subject,
      event.message);
}

Result<std::vector<EventRecord>> Store::Events(size_t limit) {
  std::lock_guard lock(impl_->mu);
  return sqlite::ReadAll<EventRecord>(
      impl_->db.Prepare(Select(kEventColumns, "FROM events ORDER BY id DESC LIMIT ?1"),
                        "read events", sqlite::SqlLimit(limit)),
      ReadEvent);
}

// --- maintenance ---

Status Store::Prune() {
  std::lock_guard lock(impl_->mu);
  return impl_->Prune();
}

// Each statement deletes the rows older than the newest `retain` (the row at OFFSET retain is
// the newest one to go; with fewer rows the subquery is NULL and nothing matches).
Status Store::Impl::Prune() {
  sqlite::Transaction transaction(db);
  if (Status s = transaction.Begin(); !s.ok()) {
    return s;
  }
  if (options.retain_runs > 0) {
    const int64_t retain = sqlite::SqlLimit(options.retain_runs);
    // A run that is still going, or whose actions are still intended or running, stays: the
    // executor's recovery reads those actions. Its actions go with it (ON DELETE CASCADE).
    if (Status s =
            db.Run("DELETE FROM runs WHERE id <= (SELECT id FROM runs ORDER BY id DESC LIMIT 1 "
                   "OFFSET ?1) AND outcome <> 'running' AND NOT EXISTS (SELECT 1 FROM actions "
                   "WHERE actions.run_id = runs.id AND actions.state IN ('intended', 'running'))",
                   "prune runs", retain);
        !s.ok()) {
      return s;
    }
    // As many revisions as runs, but never the newest applied one: it is the one in force.
    if (Status s =
            db.Run("DELETE FROM revisions WHERE id <= (SELECT id FROM revisions ORDER BY id DESC "
                   "LIMIT 1 OFFSET ?1) AND id IS NOT (SELECT max(id) FROM revisions "
                   "WHERE outcome = 'applied')",
                   "prune revisions", retain);
        !s.ok()) {
      return s;
    }
  }
  if (options.retain_events > 0) {
    if (Status s =
            db.Run("DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 "
                   "OFFSET ?1)",
                   "prune events", sqlite::SqlLimit(options.retain_events));
        !s.ok()) {
      return s;
    }
  }
  return transaction.Commit();
}

Status Store::CheckIntegrity() {
  std::lock_guard lock(impl_->mu);
  Result<std::vector<std::string>> problems =
      sqlite::ReadAll<std::string>(impl_->db.Prepare("PRAGMA integrity_check", "check integrity"),
                                   [](sqlite::Statement& s) { return s.Text(0); });
  if (!problems.ok()) {
    return problems.status();
  }
  if (problems->size() == 1 && problems->front() == "ok") {
    return Status::Ok();
  }
  if (problems->size() != 1 || problems->front() != "ok") {
    std::string message = impl_->db.path() + ": integrity check failed:";
    for (const std::string& problem : *problems) {
      message += " " + problem + ";";
    }
    message.pop_back();
    return Status::FailedPrecondition(std::move(message));
  }
  Result<std::vector<std::string>> orphans = sqlite::ReadAll<std::string>(
      impl_->db.Prepare("PRAGMA foreign_key_check", "check foreign keys"),
      [](sqlite::Statement& s) { return s.Text(0) + " row " + std::to_string(s.Int(1)); });
  if (!orphans.ok()) {
    return orphans.status();
  }
  if (!orphans->empty()) {
    std::string message = impl_->db.path() + ": rows refer to rows that do not exist:";
    for (const std::string& orphan : *orphans) {
      message += " " + orphan + ";";
    }
    message.pop_back();
    return Status::FailedPrecondition(std::move(message));
  }
  return Status::Ok();
}

StoreHealth Store::Health() {
  std::lock_guard lock(impl_->mu);
  sqlite::Db& db = impl_->db;
  StoreHealth health{.failures = db.storage_failures()};
  if (db.path() != ":memory:" && db.HasMoved()) {
    health.writable = false;
    health.moved = true;
    health.problem = db.path() +
                     " was removed or replaced while flotilla ran: what it records now would be "
                     "lost. Stop flotilla, put the file back (or restore a backup made with "
                     "'flotilla store backup'), and start it again";
    return health;
  }
  if (!db.storage_failure().ok()) {
    health.writable = false;
    health.problem = db.storage_failure().message();
  }
  return health;
}

}  // namespace flotilla::store
