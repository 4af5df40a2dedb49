#include "reconciler/store/schema.h"

#include <array>
#include <vector>

#include "reconciler/store/sqlite.h"
#include "reconciler/store/store.h"

namespace flotilla::store {
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

// Runs record the name of the API token that asked for them (empty: the loop itself, a
// webhook, the CLI on this machine). Never the token itself.
constexpr const char* kMigrationV4 = R"sql(
ALTER TABLE runs ADD COLUMN actor TEXT NOT NULL DEFAULT '';
)sql";

// A host's last_seen moves at every pass it answers while the rest of its observation rarely
// changes: it has a narrow table of its own, so that a pass rewrites a host's snapshot only when
// the observation changed and otherwise updates one small row.
constexpr const char* kMigrationV5 = R"sql(
CREATE TABLE host_seen (
  name      TEXT PRIMARY KEY NOT NULL,
  last_seen INTEGER
);
INSERT INTO host_seen (name, last_seen) SELECT name, last_seen FROM hosts;
ALTER TABLE hosts DROP COLUMN last_seen;
)sql";

constexpr std::array kMigrations = {kMigrationV1, kMigrationV2, kMigrationV3, kMigrationV4,
                                    kMigrationV5};
static_assert(kMigrations.size() == kSchemaVersion, "one migration per schema version");

}  // namespace

// WAL lets readers (status, history) run beside the loop's writes, and a commit is one append.
// synchronous=FULL (the default) syncs the WAL on every commit, so an action whose intent was
// committed before its provider call is remembered after a power cut. NORMAL syncs only at
// checkpoints: a committed transaction survives the process crashing, but the last ones may be
// lost with the machine's power; then the store looks as if those actions never started, and
// recovery re-observes the hosts and adopts VMs by name (docs/operations.md, "Durability").
Status ConfigureFile(sqlite::Db& db, Durability durability) {
  // The pragma answers with the mode now in force; SQLite keeps the old one if WAL is impossible.
  Result<std::vector<std::string>> mode =
      sqlite::ReadAll<std::string>(db.Prepare("PRAGMA journal_mode = WAL", "switch to WAL"),
                                   [](sqlite::Statement& s) { return s.Text(0); });
  if (!mode.ok()) {
    return mode.status();
  }
  // ":memory:" (a preview with no store: plan) keeps its own journal; nothing there must last.
  const bool in_memory = db.path() == ":memory:";
  if (mode->empty() || (mode->front() != "wal" && !(in_memory && mode->front() == "memory"))) {
    return Status::FailedPrecondition(db.path() +
                                      ": cannot use WAL journaling on this file system");
  }
  return db.Exec(durability == Durability::kFull
                     ? "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL"
                     : "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL",
                 "configure");
}

Result<int> UserVersion(sqlite::Db& db) {
  Result<std::vector<int64_t>> version =
      sqlite::ReadAll<int64_t>(db.Prepare("PRAGMA user_version", "read the schema version"),
                               [](sqlite::Statement& s) { return s.Int(0); });
  if (!version.ok()) {
    return version.status();
  }
  return version->empty() ? 0 : static_cast<int>(version->front());
}

Status NewerSchema(const sqlite::Db& db, int version) {
  return Status::FailedPrecondition(db.path() + " was written by a newer flotilla (schema " +
                                    std::to_string(version) + "); this build reads up to " +
                                    std::to_string(kSchemaVersion));
}

// Applies migrations until the file is at `target`, one transaction per version. The version is
// read again inside each transaction, so two processes opening a new file at once do not both
// run the same migration.
Result<int> MigrateTo(sqlite::Db& db, int target) {
  // Most opens find the file current; they need no write lock.
  if (Result<int> version = UserVersion(db); !version.ok() || *version == target) {
    return version;
  }
  while (true) {
    sqlite::Transaction transaction(db);
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

Status MigrateForTesting(const std::string& path, int version) {
  if (version < 0 || version > kSchemaVersion) {
    return Status::InvalidArgument("no schema version " + std::to_string(version));
  }
  Result<sqlite::Db> db = sqlite::OpenDb(path, std::chrono::seconds(5));
  if (!db.ok()) {
    return db.status();
  }
  if (version == 0) {
    return Status::Ok();  // an empty file: what a build without a store leaves
  }
  if (Status s = ConfigureFile(*db); !s.ok()) {
    return s;
  }
  Result<int> reached = MigrateTo(*db, version);
  return reached.ok() ? Status::Ok() : reached.status();
}

}  // namespace flotilla::store
