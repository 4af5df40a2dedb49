#include "reconciler/store/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <type_traits>
#include <utility>

#include "reconciler/store/host_snapshot.h"
#include "reconciler/store/migrations.h"

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

// ---------------------------------------------------------------------------------------------
// Schema. Migration i takes a file from user_version i-1 to i. A migration, once released, is
// never edited: files in the field were written by it. Spellings in CHECK constraints are the
// ToString() spellings of the enums (a test round-trips every value).
//
// Times are INTEGER milliseconds since the Unix epoch. AUTOINCREMENT keeps ids of pruned rows
// from being reused, so a run or action id in a log line never names a different row later.

constexpr const char* kMigrationV1 = R"sql(
CREATE TABLE ledger (
  vm            TEXT PRIMARY KEY NOT NULL,
  vmset         TEXT NOT NULL,
  pool          TEXT NOT NULL,
  host          TEXT NOT NULL,
  provider_id   TEXT NOT NULL DEFAULT '',
  template_hash TEXT NOT NULL DEFAULT '',
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
CREATE TABLE vmset_prune (
  vmset TEXT PRIMARY KEY NOT NULL,
  prune INTEGER NOT NULL CHECK (prune IN (0, 1))
);
CREATE TABLE revisions (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  sha          TEXT NOT NULL,
  attempted_at INTEGER NOT NULL,
  outcome      TEXT NOT NULL CHECK (outcome IN ('applied', 'rejected', 'failed')),
  reason       TEXT NOT NULL DEFAULT ''
);
CREATE TABLE runs (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  "trigger"   TEXT NOT NULL,
  revision    TEXT NOT NULL,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  outcome     TEXT NOT NULL
              CHECK (outcome IN ('running', 'succeeded', 'partial', 'failed', 'cancelled')),
  planned     INTEGER NOT NULL DEFAULT 0,
  succeeded   INTEGER NOT NULL DEFAULT 0,
  failed      INTEGER NOT NULL DEFAULT 0,
  abandoned   INTEGER NOT NULL DEFAULT 0,
  findings    INTEGER NOT NULL DEFAULT 0,
  message     TEXT NOT NULL DEFAULT ''
);
CREATE TABLE actions (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id            INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  plan_action_id    INTEGER NOT NULL,
  kind              TEXT NOT NULL CHECK (kind IN ('create', 'replace', 'start', 'stop', 'delete')),
  vm                TEXT NOT NULL,
  vmset             TEXT NOT NULL DEFAULT '',
  pool              TEXT NOT NULL DEFAULT '',
  host              TEXT NOT NULL DEFAULT '',
  from_host         TEXT NOT NULL DEFAULT '',
  template_hash     TEXT NOT NULL DEFAULT '',
  predecessor_id    TEXT NOT NULL DEFAULT '',
  create_first      INTEGER NOT NULL DEFAULT 0 CHECK (create_first IN (0, 1)),
  attempt           INTEGER NOT NULL DEFAULT 1,
  state             TEXT NOT NULL
                    CHECK (state IN ('intended', 'running', 'succeeded', 'failed', 'abandoned')),
  error             TEXT NOT NULL DEFAULT '',
  pending_temp_name TEXT NOT NULL DEFAULT '',
  pending_job_id    TEXT NOT NULL DEFAULT '',
  started_at        INTEGER NOT NULL,
  finished_at       INTEGER
);
CREATE INDEX actions_by_state ON actions(state);
CREATE INDEX actions_by_run ON actions(run_id);
CREATE TABLE hosts (
  name      TEXT PRIMARY KEY NOT NULL,
  pool      TEXT NOT NULL,
  last_seen INTEGER,
  snapshot  TEXT NOT NULL
);
CREATE TABLE events (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  at      INTEGER NOT NULL,
  level   TEXT NOT NULL,
  kind    TEXT NOT NULL,
  subject TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL
);
)sql";

// Actions may pre-stage an image ('prepull'), and say what they are doing, as their provider
// says (a pull's step and progress). SQLite cannot change a CHECK constraint: the table is made
// again and its rows copied.
constexpr const char* kMigrationV2 = R"sql(
CREATE TABLE actions_v2 (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id            INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  plan_action_id    INTEGER NOT NULL,
  kind              TEXT NOT NULL
                    CHECK (kind IN ('create', 'replace', 'start', 'stop', 'delete', 'prepull')),
  vm                TEXT NOT NULL,
  vmset             TEXT NOT NULL DEFAULT '',
  pool              TEXT NOT NULL DEFAULT '',
  host              TEXT NOT NULL DEFAULT '',
  from_host         TEXT NOT NULL DEFAULT '',
  template_hash     TEXT NOT NULL DEFAULT '',
  predecessor_id    TEXT NOT NULL DEFAULT '',
  create_first      INTEGER NOT NULL DEFAULT 0 CHECK (create_first IN (0, 1)),
  attempt           INTEGER NOT NULL DEFAULT 1,
  state             TEXT NOT NULL
                    CHECK (state IN ('intended', 'running', 'succeeded', 'failed', 'abandoned')),
  error             TEXT NOT NULL DEFAULT '',
  pending_temp_name TEXT NOT NULL DEFAULT '',
  pending_job_id    TEXT NOT NULL DEFAULT '',
  started_at        INTEGER NOT NULL,
  finished_at       INTEGER,
  doing             TEXT NOT NULL DEFAULT ''
);
INSERT INTO actions_v2 (id, run_id, plan_action_id, kind, vm, vmset, pool, host, from_host,
                        template_hash, predecessor_id, create_first, attempt, state, error,
                        pending_temp_name, pending_job_id, started_at, finished_at)
  SELECT id, run_id, plan_action_id, kind, vm, vmset, pool, host, from_host, template_hash,
         predecessor_id, create_first, attempt, state, error, pending_temp_name, pending_job_id,
         started_at, finished_at
  FROM actions;
DROP TABLE actions;
ALTER TABLE actions_v2 RENAME TO actions;
CREATE INDEX actions_by_state ON actions(state);
CREATE INDEX actions_by_run ON actions(run_id);
)sql";

// Actions may adopt an existing VM ('adopt': a ledger write, no call to the host). Runs record
// a person's approval to pass the deletion guards, and how many desired VMs were held by VMs
// Flotilla does not own (conflicts) and how many deletions the empty-fleet guard refused.
constexpr const char* kMigrationV3 = R"sql(
CREATE TABLE actions_v3 (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id            INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  plan_action_id    INTEGER NOT NULL,
  kind              TEXT NOT NULL
                    CHECK (kind IN ('create', 'replace', 'start', 'stop', 'delete', 'prepull',
                                    'adopt')),
  vm                TEXT NOT NULL,
  vmset             TEXT NOT NULL DEFAULT '',
  pool              TEXT NOT NULL DEFAULT '',
  host              TEXT NOT NULL DEFAULT '',
  from_host         TEXT NOT NULL DEFAULT '',
  template_hash     TEXT NOT NULL DEFAULT '',
  predecessor_id    TEXT NOT NULL DEFAULT '',
  create_first      INTEGER NOT NULL DEFAULT 0 CHECK (create_first IN (0, 1)),
  attempt           INTEGER NOT NULL DEFAULT 1,
  state             TEXT NOT NULL
                    CHECK (state IN ('intended', 'running', 'succeeded', 'failed', 'abandoned')),
  error             TEXT NOT NULL DEFAULT '',
  pending_temp_name TEXT NOT NULL DEFAULT '',
  pending_job_id    TEXT NOT NULL DEFAULT '',
  started_at        INTEGER NOT NULL,
  finished_at       INTEGER,
  doing             TEXT NOT NULL DEFAULT ''
);
INSERT INTO actions_v3 SELECT * FROM actions;
DROP TABLE actions;
ALTER TABLE actions_v3 RENAME TO actions;
CREATE INDEX actions_by_state ON actions(state);
CREATE INDEX actions_by_run ON actions(run_id);
ALTER TABLE runs ADD COLUMN approval TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN conflicts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
)sql";

constexpr std::array kMigrations = {kMigrationV1, kMigrationV2, kMigrationV3};
static_assert(kMigrations.size() == kSchemaVersion, "one migration per schema version");

// ---------------------------------------------------------------------------------------------
// Values <-> columns.

int64_t ToMillis(Time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Time FromMillis(int64_t ms) { return Time{std::chrono::milliseconds{ms}}; }

// SQLite's LIMIT: negative means none.
int64_t SqlLimit(size_t limit) {
  return limit == 0 || limit > static_cast<size_t>(INT64_MAX) ? -1 : static_cast<int64_t>(limit);
}

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

// The Status for a failed SQLite call: "<file>: <what>: <SQLite's message>", coded so that
// callers can tell a busy file (retry) from a broken or unwritable one.
Status SqliteStatus(int rc, const std::string& path, std::string_view what,
                    std::string_view detail) {
  std::string message = path + ": " + std::string(what) + ": " + std::string(detail);
  switch (rc & 0xff) {  // the primary code of an extended one
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(std::move(message));
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return Status::PermissionDenied(std::move(message));
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return Status::ResourceExhausted(std::move(message));
    case SQLITE_CANTOPEN:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CONSTRAINT:
      return Status::FailedPrecondition(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

// ---------------------------------------------------------------------------------------------
// RAII wrappers over the C API.

class Statement;

// One connection; closed when destroyed.
class Db {
 public:
  Db(sqlite3* handle, std::string path) : db_(handle), path_(std::move(path)) {}
  ~Db() { sqlite3_close_v2(db_); }  // a no-op on nullptr
  Db(Db&& other) noexcept : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}
  Db& operator=(Db&&) = delete;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  const std::string& path() const { return path_; }

  Status Error(int rc, std::string_view what) const {
    return SqliteStatus(rc, path_, what, sqlite3_errmsg(db_));
  }

  // Runs one or more statements that return no rows.
  Status Exec(const std::string& sql, std::string_view what) {
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : Error(rc, what);
  }

  // A statement with `args` bound to ?1, ?2, ...
  template <typename... Args>
  Result<Statement> Prepare(std::string_view sql, std::string_view what, const Args&... args);

  // Prepares, binds and runs a statement that returns no rows.
  template <typename... Args>
  Status Run(std::string_view sql, std::string_view what, const Args&... args);

  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
  int64_t Changes() const { return sqlite3_changes(db_); }
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

 private:
  sqlite3* db_;
  std::string path_;
};

// One prepared statement; finalized when destroyed. Column readers record the first value they
// cannot make sense of in `read_error()` instead of failing on the spot, so that row readers
// stay plain sequences of assignments.
class Statement {
 public:
  Statement(Db& db, sqlite3_stmt* stmt, std::string_view what)
      : db_(&db), stmt_(stmt), what_(what) {}
  ~Statement() { sqlite3_finalize(stmt_); }  // a no-op on nullptr
  Statement(Statement&& other) noexcept
      : db_(other.db_),
        stmt_(std::exchange(other.stmt_, nullptr)),
        what_(std::move(other.what_)),
        error_(std::move(other.error_)) {}
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  template <typename... Args>
  void Bind(const Args&... args) {
    int index = 0;
    (BindOne(++index, args), ...);
  }

  // Advances to the next row: true when there is one, false when there are no more.
  Result<bool> Step() {
    if (!error_.ok()) {
      return error_;
    }
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc == SQLITE_DONE) {
      return false;
    }
    return db_->Error(rc, what_);
  }

  // Runs a statement that returns no rows.
  Status Run() {
    Result<bool> row = Step();
    return row.ok() ? Status::Ok() : row.status();
  }

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool Bool(int column) const { return Int(column) != 0; }
  Time TimeAt(int column) const { return FromMillis(Int(column)); }
  std::optional<Time> OptionalTime(int column) const {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) {
      return std::nullopt;
    }
    return TimeAt(column);
  }
  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) {
      return "";
    }
    return {reinterpret_cast<const char*>(text),
            static_cast<size_t>(sqlite3_column_bytes(stmt_, column))};
  }

  // The enum value whose ToString() is the column's text.
  template <typename E, size_t N>
  E Enum(int column, const std::array<E, N>& values) {
    const std::string text = Text(column);
    for (E value : values) {
      if (ToString(value) == text) {
        return value;
      }
    }
    if (error_.ok()) {
      error_ = Status::FailedPrecondition(db_->path() + ": " + what_ + ": column " +
                                          sqlite3_column_name(stmt_, column) +
                                          " holds an unknown value \"" + text + "\"");
    }
    return values[0];
  }

  // The first problem met while binding or reading; OK when none.
  const Status& error() const { return error_; }

 private:
  template <typename T>
  void BindOne(int index, const T& value) {
    int rc = SQLITE_OK;
    if constexpr (std::is_same_v<T, bool>) {
      rc = sqlite3_bind_int(stmt_, index, value ? 1 : 0);
    } else if constexpr (std::is_integral_v<T>) {
      rc = sqlite3_bind_int64(stmt_, index, static_cast<sqlite3_int64>(value));
    } else if constexpr (std::is_same_v<T, Time>) {
      rc = sqlite3_bind_int64(stmt_, index, ToMillis(value));
    } else if constexpr (std::is_same_v<T, std::optional<Time>>) {
      rc = value ? sqlite3_bind_int64(stmt_, index, ToMillis(*value))
                 : sqlite3_bind_null(stmt_, index);
    } else {
      const std::string_view text(value);
      // A null pointer would bind SQL NULL; an empty string must stay ''.
      rc = sqlite3_bind_text64(stmt_, index, text.data() == nullptr ? "" : text.data(), text.size(),
                               SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    if (rc != SQLITE_OK && error_.ok()) {
      error_ = db_->Error(rc, what_);
    }
  }

  Db* db_;
  sqlite3_stmt* stmt_;
  std::string what_;
  Status error_;
};

template <typename... Args>
Result<Statement> Db::Prepare(std::string_view sql, std::string_view what, const Args&... args) {
  sqlite3_stmt* stmt = nullptr;
  const int rc =
      sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), 0, &stmt, nullptr);
  Statement statement(*this, stmt, what);
  if (rc != SQLITE_OK) {
    return Error(rc, what);
  }
  statement.Bind(args...);
  return statement;
}

template <typename... Args>
Status Db::Run(std::string_view sql, std::string_view what, const Args&... args) {
  Result<Statement> statement = Prepare(sql, what, args...);
  if (!statement.ok()) {
    return statement.status();
  }
  return statement->Run();
}

// Every row of `statement`, each turned into a T by `read`.
template <typename T, typename Read>
Result<std::vector<T>> ReadAll(Result<Statement> statement, Read read) {
  if (!statement.ok()) {
    return statement.status();
  }
  std::vector<T> rows;
  while (true) {
    Result<bool> row = statement->Step();
    if (!row.ok()) {
      return row.status();
    }
    if (!*row) {
      return rows;
    }
    T value = read(*statement);
    if (!statement->error().ok()) {
      return statement->error();
    }
    rows.push_back(std::move(value));
  }
}

// The first row of `statement` as a T, or nullopt when there is none.
template <typename T, typename Read>
Result<std::optional<T>> ReadFirst(Result<Statement> statement, Read read) {
  Result<std::vector<T>> rows = ReadAll<T>(std::move(statement), read);
  if (!rows.ok()) {
    return rows.status();
  }
  if (rows->empty()) {
    return std::optional<T>();
  }
  return std::optional<T>(std::move(rows->front()));
}

// Whether `statement` yields any row.
Result<bool> AnyRow(Result<Statement> statement) {
  Result<std::optional<int64_t>> first =
      ReadFirst<int64_t>(std::move(statement), [](Statement& s) { return s.Int(0); });
  if (!first.ok()) {
    return first.status();
  }
  return first->has_value();
}

// BEGIN IMMEDIATE ... COMMIT, rolled back when destroyed uncommitted. IMMEDIATE takes the write
// lock at once: a deferred transaction that reads and then writes can fail with SQLITE_BUSY
// half way when another connection wrote in between, and busy_timeout does not help there.
class Transaction {
 public:
  explicit Transaction(Db& db) : db_(db) {}
  ~Transaction() {
    if (db_.InTransaction()) {
      db_.Exec("ROLLBACK", "roll back");
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Status Begin() { return db_.Exec("BEGIN IMMEDIATE", "begin a transaction"); }
  Status Commit() { return db_.Exec("COMMIT", "commit"); }

 private:
  Db& db_;
};

// ---------------------------------------------------------------------------------------------
// Opening and migrating.

Result<Db> OpenDb(const std::string& path, std::chrono::milliseconds busy_timeout,
                  bool read_only = false) {
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (!folder.empty() && !read_only) {
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) {
      return Status::FailedPrecondition(path + ": cannot create its folder: " + ec.message());
    }
  }
  sqlite3* handle = nullptr;
  // No SQLite mutex: Store::Impl::mu serialises every use of the connection.
  const int flags =
      (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &handle, flags, nullptr);
  Db db(handle, path);  // owns the handle even when opening failed
  if (rc != SQLITE_OK) {
    return db.Error(rc, "cannot open");
  }
  const auto timeout_ms = std::min<int64_t>(busy_timeout.count(), INT_MAX);
  sqlite3_busy_timeout(handle, static_cast<int>(std::max<int64_t>(timeout_ms, 0)));
  return db;
}

// WAL lets readers (status, history) run beside the loop's writes, and a commit is one append.
// synchronous=NORMAL with WAL does not sync on every commit: a committed transaction survives
// the process crashing, which is what the journal needs (an action's intent is recorded before
// the provider is called), but the last transactions may be lost if the machine loses power.
// Then the store looks as if those actions never started; recovery re-observes the hosts and
// adopts VMs by name, so nothing is deleted or duplicated because of it.
Status Configure(Db& db) {
  // The pragma answers with the mode now in force; SQLite keeps the old one if WAL is impossible.
  Result<std::vector<std::string>> mode =
      ReadAll<std::string>(db.Prepare("PRAGMA journal_mode = WAL", "switch to WAL"),
                           [](Statement& s) { return s.Text(0); });
  if (!mode.ok()) {
    return mode.status();
  }
  // ":memory:" (a preview with no store: plan) keeps its own journal; nothing there must last.
  const bool in_memory = db.path() == ":memory:";
  if (mode->empty() || (mode->front() != "wal" && !(in_memory && mode->front() == "memory"))) {
    return Status::FailedPrecondition(db.path() +
                                      ": cannot use WAL journaling on this file system");
  }
  return db.Exec("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", "configure");
}

Result<int> UserVersion(Db& db) {
  Result<std::vector<int64_t>> version =
      ReadAll<int64_t>(db.Prepare("PRAGMA user_version", "read the schema version"),
                       [](Statement& s) { return s.Int(0); });
  if (!version.ok()) {
    return version.status();
  }
  return version->empty() ? 0 : static_cast<int>(version->front());
}

Status NewerSchema(const Db& db, int version) {
  return Status::FailedPrecondition(db.path() + " was written by a newer flotilla (schema " +
                                    std::to_string(version) + "); this build reads up to " +
                                    std::to_string(kSchemaVersion));
}

// Applies migrations until the file is at `target`, one transaction per version. The version is
// read again inside each transaction, so two processes opening a new file at once do not both
// run the same migration.
Result<int> MigrateTo(Db& db, int target) {
  // Most opens find the file current; they need no write lock.
  if (Result<int> version = UserVersion(db); !version.ok() || *version == target) {
    return version;
  }
  while (true) {
    Transaction transaction(db);
    if (Status s = transaction.Begin(); !s.ok()) {
      return s;
    }
    Result<int> version = UserVersion(db);
    if (!version.ok()) {
      return version.status();
    }
    if (*version > kSchemaVersion) {
      return NewerSchema(db, *version);
    }
    if (*version > target) {
      return Status::FailedPrecondition(db.path() + " already has schema " +
                                        std::to_string(*version));
    }
    if (*version == target) {
      return version;  // the transaction rolls back; it wrote nothing
    }
    const int next = *version + 1;
    const std::string what = "migrate to schema " + std::to_string(next);
    if (Status s = db.Exec(kMigrations[next - 1], what); !s.ok()) {
      return s;
    }
    if (Status s = db.Exec("PRAGMA user_version = " + std::to_string(next), what); !s.ok()) {
      return s;
    }
    if (Status s = transaction.Commit(); !s.ok()) {
      return s;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Row readers; each matches the column list beside it.

constexpr const char* kRevisionColumns = "id, sha, attempted_at, outcome, reason";

RevisionRecord ReadRevision(Statement& s) {
  return RevisionRecord{.id = s.Int(0),
                        .sha = s.Text(1),
                        .attempted_at = s.TimeAt(2),
                        .outcome = s.Enum(3, kRevisionOutcomes),
                        .reason = s.Text(4)};
}

constexpr const char* kRunColumns =
    "id, \"trigger\", revision, started_at, finished_at, outcome, planned, succeeded, failed, "
    "abandoned, findings, message, approval, conflicts, refused";

RunRecord ReadRun(Statement& s) {
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
                   .approval = s.Text(12)};
}

constexpr const char* kActionColumns =
    "id, run_id, plan_action_id, kind, vm, vmset, pool, host, from_host, template_hash, "
    "predecessor_id, create_first, attempt, state, error, pending_temp_name, pending_job_id, "
    "started_at, finished_at, doing";

ActionRecord ReadAction(Statement& s) {
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

EventRecord ReadEvent(Statement& s) {
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
  Impl(Db connection, const StoreOptions& store_options, int version)
      : db(std::move(connection)), options(store_options), schema_version(version) {}

  // Callers hold `mu`.
  Status Prune();

  Db db;
  const StoreOptions options;
  const int schema_version;
  std::mutex mu;  // serialises every use of `db`
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, const StoreOptions& options) {
  Result<Db> db = OpenDb(path, options.busy_timeout, options.read_only);
  if (!db.ok()) {
    return db.status();
  }
  if (options.read_only) {
    // Look, never change: a loop of another version may own this file.
    Result<int> version = UserVersion(*db);
    if (!version.ok()) {
      return version.status();
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
  if (Status s = Configure(*db); !s.ok()) {
    return s;
  }
  Result<int> version = MigrateTo(*db, kSchemaVersion);
  if (!version.ok()) {
    return version.status();
  }
  return std::unique_ptr<Store>(
      new Store(std::make_unique<Impl>(std::move(*db), options, *version)));
}

Status MigrateForTesting(const std::string& path, int version) {
  if (version < 0 || version > kSchemaVersion) {
    return Status::InvalidArgument("no schema version " + std::to_string(version));
  }
  Result<Db> db = OpenDb(path, std::chrono::seconds(5));
  if (!db.ok()) {
    return db.status();
  }
  if (version == 0) {
    return Status::Ok();  // an empty file: what a build without a store leaves
  }
  if (Status s = Configure(*db); !s.ok()) {
    return s;
  }
  Result<int> reached = MigrateTo(*db, version);
  return reached.ok() ? Status::Ok() : reached.status();
}

const std::string& Store::path() const { return impl_->db.path(); }
int Store::schema_version() const { return impl_->schema_version; }

// --- ledger ---

Result<Ledger> Store::LoadLedger() {
  std::lock_guard lock(impl_->mu);
  Ledger ledger;
  Result<std::vector<LedgerEntry>> entries = ReadAll<LedgerEntry>(
      impl_->db.Prepare("SELECT vm, vmset, pool, host, provider_id, template_hash FROM ledger "
                        "ORDER BY vm",
                        "read the ledger"),
      [](Statement& s) {
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
  Result<std::vector<std::pair<std::string, bool>>> prune = ReadAll<std::pair<std::string, bool>>(
      impl_->db.Prepare("SELECT vmset, prune FROM vmset_prune", "read vmset_prune"),
      [](Statement& s) { return std::pair(s.Text(0), s.Bool(1)); });
  if (!prune.ok()) {
    return prune.status();
  }
  ledger.vmset_prune.insert(prune->begin(), prune->end());
  return ledger;
}

Status Store::UpsertLedger(const LedgerEntry& entry, Time now) {
  std::lock_guard lock(impl_->mu);
  return impl_->db.Run(
      "INSERT INTO ledger (vm, vmset, pool, host, provider_id, template_hash, created_at, "
      "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) "
      "ON CONFLICT (vm) DO UPDATE SET vmset = excluded.vmset, pool = excluded.pool, "
      "host = excluded.host, provider_id = excluded.provider_id, "
      "template_hash = excluded.template_hash, updated_at = excluded.updated_at",
      "record VM " + entry.vm + " in the ledger", entry.vm, entry.vmset, entry.pool, entry.host,
      entry.provider_id, entry.template_hash, now);
}

Status Store::RemoveLedger(std::string_view vm) {
  std::lock_guard lock(impl_->mu);
  return impl_->db.Run("DELETE FROM ledger WHERE vm = ?1",
                       "remove VM " + std::string(vm) + " from the ledger", vm);
}

Status Store::SetVmsetPrune(const std::map<std::string, bool>& prune) {
  std::lock_guard lock(impl_->mu);
  Db& db = impl_->db;
  Transaction transaction(db);
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
  return ReadFirst<RevisionRecord>(
      impl_->db.Prepare(Select(kRevisionColumns,
                               "FROM revisions WHERE outcome = 'applied' ORDER BY id DESC LIMIT 1"),
                        "read the last applied revision"),
      ReadRevision);
}

Result<std::optional<RevisionRecord>> Store::LastAttempted() {
  std::lock_guard lock(impl_->mu);
  return ReadFirst<RevisionRecord>(
      impl_->db.Prepare(Select(kRevisionColumns, "FROM revisions ORDER BY id DESC LIMIT 1"),
                        "read the last attempted revision"),
      ReadRevision);
}

Result<std::vector<RevisionRecord>> Store::Revisions(size_t limit) {
  std::lock_guard lock(impl_->mu);
  return ReadAll<RevisionRecord>(
      impl_->db.Prepare(Select(kRevisionColumns, "FROM revisions ORDER BY id DESC LIMIT ?1"),
                        "read revisions", SqlLimit(limit)),
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
  return ReadAll<RunRecord>(
      impl_->db.Prepare(Select(kRunColumns, "FROM runs ORDER BY id DESC LIMIT ?1"), "read runs",
                        SqlLimit(limit)),
      ReadRun);
}

Result<std::optional<RunRecord>> Store::Run(int64_t run_id) {
  std::lock_guard lock(impl_->mu);
  return ReadFirst<RunRecord>(impl_->db.Prepare(Select(kRunColumns, "FROM runs WHERE id = ?1"),
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
  std::lock_guard lock(impl_->mu);
  Status s = impl_->db.Run(
      "INSERT INTO actions (run_id, plan_action_id, kind, vm, vmset, pool, host, from_host, "
      "template_hash, predecessor_id, create_first, attempt, state, error, pending_temp_name, "
      "pending_job_id, started_at, finished_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
      "journal " + std::string(ToString(a.kind)) + " " + a.vm + " of run " +
          std::to_string(a.run_id),
      a.run_id, a.plan_action_id, ToString(a.kind), a.vm, a.vmset, a.pool, a.host, a.from_host,
      a.template_hash, a.predecessor_id, a.create_first, a.attempt, ToString(a.state), a.error,
      a.pending_temp_name, a.pending_job_id, a.started_at, a.finished_at);
  if (!s.ok()) {
    return s;
  }
  return impl_->db.LastInsertId();
}

Status Store::UpdateActionState(int64_t action_id, ActionState state, std::string_view error,
                                std::optional<Time> finished_at) {
  std::lock_guard lock(impl_->mu);
  const std::string what = "update action " + std::to_string(action_id);
  Status s =
      impl_->db.Run("UPDATE actions SET state = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
                    what, action_id, ToString(state), error, finished_at);
  if (s.ok() && impl_->db.Changes() == 0) {
    return Status::NotFound(impl_->db.path() + ": " + what + ": no such action");
  }
  return s;
}

Status Store::UpdateActionPending(int64_t action_id, std::string_view temp_name,
                                  std::string_view job_id) {
  std::lock_guard lock(impl_->mu);
  const std::string what = "update action " + std::to_string(action_id);
  Status s =
      impl_->db.Run("UPDATE actions SET pending_temp_name = ?2, pending_job_id = ?3 WHERE id = ?1",
                    what, action_id, temp_name, job_id);
  if (s.ok() && impl_->db.Changes() == 0) {
    return Status::NotFound(impl_->db.path() + ": " + what + ": no such action");
  }
  return s;
}

Status Store::UpdateActionDoing(int64_t action_id, std::string_view doing) {
  std::lock_guard lock(impl_->mu);
  const std::string what = "update action " + std::to_string(action_id);
  Status s = impl_->db.Run("UPDATE actions SET doing = ?2 WHERE id = ?1", what, action_id, doing);
  if (s.ok() && impl_->db.Changes() == 0) {
    return Status::NotFound(impl_->db.path() + ": " + what + ": no such action");
  }
  return s;
}

Result<std::vector<ActionRecord>> Store::Actions(int64_t run_id) {
  std::lock_guard lock(impl_->mu);
  return ReadAll<ActionRecord>(
      impl_->db.Prepare(Select(kActionColumns, "FROM actions WHERE run_id = ?1 ORDER BY id"),
                        "read the actions of run " + std::to_string(run_id), run_id),
      ReadAction);
}

Result<std::vector<ActionRecord>> Store::UnfinishedActions() {
  std::lock_guard lock(impl_->mu);
  return ReadAll<ActionRecord>(
      impl_->db.Prepare(Select(kActionColumns, "FROM actions WHERE state IN (?1, ?2) ORDER BY id"),
                        "read unfinished actions", ToString(ActionState::kIntended),
                        ToString(ActionState::kRunning)),
      ReadAction);
}

Result<std::vector<ActionRecord>> Store::ResumableCreates() {
  std::lock_guard lock(impl_->mu);
  return ReadAll<ActionRecord>(
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
  return ReadAll<ActionRecord>(
      impl_->db.Prepare(Select(kActionColumns,
                               "FROM actions WHERE kind = ?1 AND state = ?2 AND finished_at >= ?3 "
                               "ORDER BY finished_at"),
                        "read recent deletions", ToString(ActionKind::kDelete),
                        ToString(ActionState::kSucceeded), since),
      ReadAction);
}

Result<bool> Store::MadeOn(const std::string& vm, const std::string& host) {
  std::lock_guard lock(impl_->mu);
  return AnyRow(
      impl_->db.Prepare("SELECT 1 FROM actions WHERE vm = ?1 AND host = ?2 AND kind IN (?3, ?4) "
                        "AND pending_temp_name != '' AND state != ?5 LIMIT 1",
                        "read the journal of a VM", vm, host, ToString(ActionKind::kCreate),
                        ToString(ActionKind::kReplace), ToString(ActionState::kSucceeded)));
}

Result<bool> Store::AskedFor(const std::string& temp_name, const std::string& host) {
  std::lock_guard lock(impl_->mu);
  return AnyRow(
      impl_->db.Prepare("SELECT 1 FROM actions WHERE pending_temp_name = ?1 AND host = ?2 LIMIT 1",
                        "read the journal of a temporary VM", temp_name, host));
}

// --- host inventory ---

Status Store::SaveHosts(const Observed& observed) {
  // Rendered before taking the lock: JSON is the slow part.
  std::vector<std::string> snapshots;
  for (const auto& [name, host] : observed.hosts) {
    Result<std::string> snapshot = RenderHostSnapshot(host);
    if (!snapshot.ok()) {
      return snapshot.status().WithContext(path());
    }
    snapshots.push_back(std::move(*snapshot));
  }
  std::lock_guard lock(impl_->mu);
  Db& db = impl_->db;
  Transaction transaction(db);
  if (Status s = transaction.Begin(); !s.ok()) {
    return s;
  }
  size_t i = 0;
  for (const auto& [name, host] : observed.hosts) {
    if (Status s = db.Run("INSERT OR REPLACE INTO hosts (name, pool, last_seen, snapshot) "
                          "VALUES (?1, ?2, ?3, ?4)",
                          "save host " + name, name, host.pool, host.last_seen, snapshots[i++]);
        !s.ok()) {
      return s;
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
    return ReadAll<Row>(
        impl_->db.Prepare("SELECT name, last_seen, snapshot FROM hosts ORDER BY name",
                          "read hosts"),
        [](Statement& s) {
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
    host->last_seen = row.last_seen;  // the snapshot keeps whole seconds; the column keeps ms
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
  return ReadAll<EventRecord>(
      impl_->db.Prepare(Select(kEventColumns, "FROM events ORDER BY id DESC LIMIT ?1"),
                        "read events", SqlLimit(limit)),
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
  Transaction transaction(db);
  if (Status s = transaction.Begin(); !s.ok()) {
    return s;
  }
  if (options.retain_runs > 0) {
    const int64_t retain = SqlLimit(options.retain_runs);
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
                   "prune events", SqlLimit(options.retain_events));
        !s.ok()) {
      return s;
    }
  }
  return transaction.Commit();
}

Status Store::CheckIntegrity() {
  std::lock_guard lock(impl_->mu);
  Result<std::vector<std::string>> problems =
      ReadAll<std::string>(impl_->db.Prepare("PRAGMA integrity_check", "check integrity"),
                           [](Statement& s) { return s.Text(0); });
  if (!problems.ok()) {
    return problems.status();
  }
  if (problems->size() == 1 && problems->front() == "ok") {
    return Status::Ok();
  }
  std::string message = impl_->db.path() + ": integrity check failed:";
  for (const std::string& problem : *problems) {
    message += " " + problem + ";";
  }
  message.pop_back();
  return Status::FailedPrecondition(std::move(message));
}

}  // namespace flotilla::store
