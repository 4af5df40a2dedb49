// The SQLite store against real files in a scratch folder (store.h).

#include "reconciler/store/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "reconciler/store/host_snapshot.h"
#include "reconciler/store/schema.h"
#include "tests/support/process.h"
#include "tests/support/status.h"

namespace flotilla::store {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;

// Times with millisecond precision: the store keeps milliseconds.
const Time kT0 = Time{milliseconds{1'750'000'000'123}};

// A second, raw connection to a store's file, to look under the store's API.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // Empty when it worked, SQLite's message otherwise.
  std::string Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) == SQLITE_OK) {
      return "";
    }
    std::string message = error != nullptr ? error : "failed";
    sqlite3_free(error);
    return message;
  }

  // The first column of the first row as text; "<none>" or "<error: ...>" otherwise.
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      return "<error: " + std::string(sqlite3_errmsg(db_)) + ">";
    }
    std::string value = "<none>";
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      value = text != nullptr ? reinterpret_cast<const char*>(text) : "<null>";
    }
    sqlite3_finalize(stmt);
    return value;
  }

  int64_t Int(const std::string& sql) { return std::stoll("0" + Text(sql)); }

 private:
  sqlite3* db_ = nullptr;
};

class StoreTest : public ::testing::Test {
 protected:
  // In a folder that does not exist yet: Open creates it.
  std::string DbPath() const { return (dir_.path() / "state" / "flotilla.db").string(); }

  std::unique_ptr<Store> OpenStore(const StoreOptions& options = {}) {
    Result<std::unique_ptr<Store>> store = Store::Open(DbPath(), options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  flotilla::testing::ScratchDir dir_;
};

LedgerEntry Entry(const std::string& vm, const std::string& host = "mini-01") {
  return LedgerEntry{.vm = vm,
                     .vmset = "ios",
                     .pool = "macs",
                     .host = host,
                     .provider_id = "uuid-" + vm,
                     .template_hash = "sha256:aaaa"};
}

ActionRecord Action(int64_t run_id, const std::string& vm,
                    ActionState state = ActionState::kIntended) {
  return ActionRecord{.run_id = run_id,
                      .plan_action_id = 1,
                      .kind = ActionKind::kCreate,
                      .vm = vm,
                      .vmset = "ios",
                      .pool = "macs",
                      .host = "mini-01",
                      .template_hash = "sha256:aaaa",
                      .state = state,
                      .started_at = kT0};
}

// --- opening and migrating ---

TEST_F(StoreTest, OpenCreatesFolderAndFileAtCurrentSchema) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(std::filesystem::exists(DbPath()));
  EXPECT_EQ(store->path(), DbPath());
  EXPECT_EQ(store->schema_version(), kSchemaVersion);
  RawDb raw(DbPath());
  EXPECT_EQ(raw.Int("PRAGMA user_version"), kSchemaVersion);
}

TEST_F(StoreTest, FileIsInWalMode) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  RawDb raw(DbPath());  // the journal mode is a property of the file, so any connection sees it
  EXPECT_EQ(raw.Text("PRAGMA journal_mode"), "wal");
}

TEST_F(StoreTest, ForeignKeysAreEnforced) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> id = store->InsertAction(Action(/*run_id=*/42, "ios-0"));
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(id.status().message().find(DbPath()), std::string::npos) << id.status().ToString();
  EXPECT_NE(id.status().message().find("FOREIGN KEY"), std::string::npos) << id.status().ToString();
}

TEST_F(StoreTest, UpgradesFromEveryEarlierVersionKeepingData) {
  for (int version = 0; version < kSchemaVersion; ++version) {
    SCOPED_TRACE("from schema " + std::to_string(version));
    const std::string path =
        (dir_.path() / ("v" + std::to_string(version)) / "flotilla.db").string();
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    ASSERT_OK(MigrateForTesting(path, version));
    {
      RawDb raw(path);
      ASSERT_EQ(raw.Int("PRAGMA user_version"), version);
      if (version >= 1) {  // the ledger exists from schema 1 on, with these columns
        ASSERT_EQ(raw.Exec("INSERT INTO ledger (vm, vmset, pool, host, provider_id, "
                           "template_hash, created_at, updated_at) VALUES ('old-0', 'old', "
                           "'macs', 'mini-01', 'uuid-old-0', 'sha256:old', 1000, 2000)"),
                  "");
        // A journalled action, to see it survive the rebuild of the actions table (schema 2).
        ASSERT_EQ(raw.Exec("INSERT INTO runs (id, \"trigger\", revision, started_at, outcome) "
                           "VALUES (7, 'timer', 'abc', 1000, 'succeeded')"),
                  "");
        ASSERT_EQ(raw.Exec("INSERT INTO actions (id, run_id, plan_action_id, kind, vm, state, "
                           "pending_temp_name, started_at) VALUES (41, 7, 1, 'create', 'old-0', "
                           "'running', 'old-0.flotilla-1', 1000)"),
                  "");
      }
    }
    Result<std::unique_ptr<Store>> store = Store::Open(path);
    ASSERT_OK(store);
    EXPECT_EQ((*store)->schema_version(), kSchemaVersion);
    EXPECT_EQ(RawDb(path).Int("PRAGMA user_version"), kSchemaVersion);
    Result<Ledger> ledger = (*store)->LoadLedger();
    ASSERT_OK(ledger);
    if (version >= 1) {
      ASSERT_EQ(ledger->entries.size(), 1U);
      EXPECT_EQ(ledger->entries[0], (LedgerEntry{.vm = "old-0",
                                                 .vmset = "old",
                                                 .pool = "macs",
                                                 .host = "mini-01",
                                                 .provider_id = "uuid-old-0",
                                                 .template_hash = "sha256:old"}));
    } else {
      EXPECT_TRUE(ledger->entries.empty());
    }
    ASSERT_OK((*store)->UpsertLedger(Entry("new-0"), kT0));  // and it is writable
    if (version >= 1) {
      Result<std::vector<ActionRecord>> kept = (*store)->UnfinishedActions();
      ASSERT_OK(kept);
      ASSERT_EQ(kept->size(), 1U);
      EXPECT_EQ((*kept)[0].id, 41);
      EXPECT_EQ((*kept)[0].pending_temp_name, "old-0.flotilla-1");
      EXPECT_EQ((*kept)[0].doing, "");
      Result<std::optional<RunRecord>> old_run = (*store)->Run(7);  // nobody asked for it
      ASSERT_OK(old_run);
      ASSERT_TRUE(old_run->has_value());
      EXPECT_EQ((*old_run)->actor, "");
      // Ids go on after the old ones (AUTOINCREMENT survives the rebuild), and the new kind
      // is accepted.
      ActionRecord prepull = Action(/*run_id=*/7, "");
      prepull.kind = ActionKind::kPrepull;
      Result<int64_t> next = (*store)->InsertAction(prepull);
      ASSERT_OK(next);
      EXPECT_GT(*next, 41);
    }
    ASSERT_OK((*store)->CheckIntegrity());
  }
}

TEST_F(StoreTest, MigrateForTestingStopsAtTheVersionAsked) {
  for (int version = 0; version <= kSchemaVersion; ++version) {
    const std::string path = (dir_.path() / ("m" + std::to_string(version) + ".db")).string();
    ASSERT_OK(MigrateForTesting(path, version));
    EXPECT_EQ(RawDb(path).Int("PRAGMA user_version"), version);
  }
  EXPECT_TRUE(MigrateForTesting(DbPath(), kSchemaVersion + 1).IsInvalidArgument());
  EXPECT_TRUE(MigrateForTesting(DbPath(), -1).IsInvalidArgument());
}

TEST_F(StoreTest, RefusesAFileFromANewerBuild) {
  { ASSERT_NE(OpenStore(), nullptr); }
  ASSERT_EQ(RawDb(DbPath()).Exec("PRAGMA user_version = " + std::to_string(kSchemaVersion + 1)),
            "");
  Result<std::unique_ptr<Store>> store = Store::Open(DbPath());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kFailedPrecondition);
  const std::string& message = store.status().message();
  EXPECT_NE(message.find(DbPath()), std::string::npos) << message;
  EXPECT_NE(message.find("newer flotilla (schema " + std::to_string(kSchemaVersion + 1) + ")"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("reads up to " + std::to_string(kSchemaVersion)), std::string::npos)
      << message;
  // And the file is left as it was.
  EXPECT_EQ(RawDb(DbPath()).Int("PRAGMA user_version"), kSchemaVersion + 1);
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

TEST_F(StoreTest, ReadOnlyReadsAndChangesNothing) {
  {
    auto store = OpenStore();
    ASSERT_OK(store->UpsertLedger(Entry("ios-0"), kT0));
  }
  const std::string before = FileBytes(DbPath());
  ASSERT_FALSE(before.empty());
  {
    Result<std::unique_ptr<Store>> store = Store::Open(DbPath(), StoreOptions{.read_only = true});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ((*store)->LoadLedger()->entries.size(), 1U);
    EXPECT_FALSE((*store)->UpsertLedger(Entry("ios-1"), kT0).ok());
    EXPECT_FALSE((*store)->AddEvent(EventRecord{.at = kT0, .level = "info", .kind = "x"}).ok());
  }
  EXPECT_EQ(FileBytes(DbPath()), before);
  // Nothing is created where there is no store.
  const std::string missing = (dir_.path() / "none" / "flotilla.db").string();
  EXPECT_FALSE(Store::Open(missing, StoreOptions{.read_only = true}).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "none"));
}

TEST_F(StoreTest, ReadOnlyRefusesAnotherSchemaAndMigratesNothing) {
  ASSERT_OK(MigrateForTesting(DbPath(), kSchemaVersion - 1));
  Result<std::unique_ptr<Store>> older = Store::Open(DbPath(), StoreOptions{.read_only = true});
  ASSERT_FALSE(older.ok());
  EXPECT_NE(older.status().message().find("has store schema " + std::to_string(kSchemaVersion - 1)),
            std::string::npos)
      << older.status().message();
  EXPECT_EQ(RawDb(DbPath()).Int("PRAGMA user_version"), kSchemaVersion - 1);
  ASSERT_EQ(RawDb(DbPath()).Exec("PRAGMA user_version = " + std::to_string(kSchemaVersion + 1)),
            "");
  Result<std::unique_ptr<Store>> newer = Store::Open(DbPath(), StoreOptions{.read_only = true});
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.status().message().find("newer flotilla"), std::string::npos)
      << newer.status().message();
}

TEST_F(StoreTest, RefusesAFileThatIsNotADatabase) {
  std::filesystem::create_directories(std::filesystem::path(DbPath()).parent_path());
  std::ofstream(DbPath()) << "this is not an SQLite file, not even close; it is plain text\n";
  Result<std::unique_ptr<Store>> store = Store::Open(DbPath());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(DbPath()), std::string::npos)
      << store.status().ToString();
}

TEST_F(StoreTest, CheckIntegrityPassesOnAHealthyFile) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->UpsertLedger(Entry("ios-0"), kT0));
  ASSERT_OK(store->CheckIntegrity());
}

// --- ledger ---

TEST_F(StoreTest, UpsertReplacesFieldsButKeepsCreatedAt) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->UpsertLedger(Entry("ios-0", "mini-01"), kT0));
  LedgerEntry moved = Entry("ios-0", "mini-02");
  moved.provider_id = "uuid-2";
  moved.template_hash = "sha256:bbbb";
  ASSERT_OK(store->UpsertLedger(moved, kT0 + minutes(5)));

  Result<Ledger> ledger = store->LoadLedger();
  ASSERT_OK(ledger);
  ASSERT_EQ(ledger->entries.size(), 1U);
  EXPECT_EQ(ledger->entries[0], moved);
  RawDb raw(DbPath());
  EXPECT_EQ(raw.Int("SELECT created_at FROM ledger WHERE vm = 'ios-0'"), 1'750'000'000'123);
  EXPECT_EQ(raw.Int("SELECT updated_at FROM ledger WHERE vm = 'ios-0'"),
            1'750'000'000'123 + 300'000);  // five minutes later
}

TEST_F(StoreTest, LedgerLoadsSortedByVmAndRemoves) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (const char* vm : {"ios-2", "android-0", "ios-10", "ios-1"}) {
    ASSERT_OK(store->UpsertLedger(Entry(vm), kT0));
  }
  ASSERT_OK(store->RemoveLedger("ios-1"));
  ASSERT_OK(store->RemoveLedger("never-there"));  // removing is idempotent
  // With a host, only the row on that host: a replaced VM's old copy, deleted on its old host,
  // leaves the row of its successor on the new one.
  ASSERT_OK(store->RemoveLedger("ios-2", "mini-99"));
  ASSERT_NE(store->LoadLedger()->Find("ios-2"), nullptr);

  Result<Ledger> ledger = store->LoadLedger();
  ASSERT_OK(ledger);
  std::vector<std::string> names;
  for (const LedgerEntry& e : ledger->entries) {
    names.push_back(e.vm);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"android-0", "ios-10", "ios-2"}));
  EXPECT_NE(ledger->Find("ios-10"), nullptr);
}

TEST_F(StoreTest, VmsetPruneIsReplacedAsAWhole) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->SetVmsetPrune({{"ios", true}, {"android", false}}));
  ASSERT_OK(store->SetVmsetPrune({{"ios", false}, {"linux", true}}));
  Result<Ledger> ledger = store->LoadLedger();
  ASSERT_OK(ledger);
  EXPECT_EQ(ledger->vmset_prune, (std::map<std::string, bool>{{"ios", false}, {"linux", true}}));
  ASSERT_OK(store->SetVmsetPrune({}));
  ledger = store->LoadLedger();
  ASSERT_OK(ledger);
  EXPECT_TRUE(ledger->vmset_prune.empty());
}

// --- revisions ---

TEST_F(StoreTest, RevisionsRecordAndAnswerLastAppliedAndAttempted) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<std::optional<RevisionRecord>> none = store->LastApplied();
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());

  RevisionRecord applied{.sha = "aaa", .attempted_at = kT0, .outcome = RevisionOutcome::kApplied};
  RevisionRecord rejected{.sha = "bbb",
                          .attempted_at = kT0 + minutes(1),
                          .outcome = RevisionOutcome::kRejected,
                          .reason = "fleet/ios.yaml:3:5: replicas must be >= 0"};
  RevisionRecord failed{.sha = "",
                        .attempted_at = kT0 + minutes(2),
                        .outcome = RevisionOutcome::kFailed,
                        .reason = "fetch: connection refused"};
  for (RevisionRecord* r : {&applied, &rejected, &failed}) {
    Result<int64_t> id = store->RecordRevision(*r);
    ASSERT_OK(id);
    r->id = *id;
  }
  EXPECT_LT(applied.id, rejected.id);

  Result<std::optional<RevisionRecord>> last_applied = store->LastApplied();
  ASSERT_OK(last_applied);
  ASSERT_TRUE(last_applied->has_value());
  EXPECT_EQ((*last_applied)->sha, "aaa");
  EXPECT_EQ((*last_applied)->id, applied.id);
  EXPECT_EQ((*last_applied)->attempted_at, kT0);
  EXPECT_EQ((*last_applied)->outcome, RevisionOutcome::kApplied);

  Result<std::optional<RevisionRecord>> last_attempted = store->LastAttempted();
  ASSERT_OK(last_attempted);
  ASSERT_TRUE(last_attempted->has_value());
  EXPECT_EQ((*last_attempted)->id, failed.id);
  EXPECT_EQ((*last_attempted)->reason, "fetch: connection refused");
  EXPECT_EQ((*last_attempted)->outcome, RevisionOutcome::kFailed);

  Result<std::vector<RevisionRecord>> two = store->Revisions(2);
  ASSERT_OK(two);
  ASSERT_EQ(two->size(), 2U);
  EXPECT_EQ((*two)[0].id, failed.id);
  EXPECT_EQ((*two)[1].id, rejected.id);
  EXPECT_EQ((*two)[1].reason, rejected.reason);
  Result<std::vector<RevisionRecord>> all = store->Revisions(0);
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 3U);
}

// --- runs ---

TEST_F(StoreTest, RunsBeginFinishAndList) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> first = store->BeginRun("timer", "aaa", kT0);
  ASSERT_OK(first);
  Result<int64_t> second = store->BeginRun("webhook", "bbb", kT0 + minutes(1));
  ASSERT_OK(second);

  Result<std::optional<RunRecord>> running = store->Run(*first);
  ASSERT_OK(running);
  ASSERT_TRUE(running->has_value());
  EXPECT_EQ((*running)->trigger, "timer");
  EXPECT_EQ((*running)->revision, "aaa");
  EXPECT_EQ((*running)->started_at, kT0);
  EXPECT_EQ((*running)->outcome, RunOutcome::kRunning);
  EXPECT_FALSE((*running)->finished_at.has_value());

  const RunCounts counts{.planned = 5, .succeeded = 3, .failed = 1, .abandoned = 1, .findings = 2};
  ASSERT_OK(store->FinishRun(*first, RunOutcome::kPartial, counts, "1 failed, 1 abandoned",
                             kT0 + milliseconds(90'001)));
  Result<std::optional<RunRecord>> done = store->Run(*first);
  ASSERT_OK(done);
  ASSERT_TRUE(done->has_value());
  EXPECT_EQ((*done)->outcome, RunOutcome::kPartial);
  EXPECT_EQ((*done)->counts, counts);
  EXPECT_EQ((*done)->message, "1 failed, 1 abandoned");
  EXPECT_EQ((*done)->finished_at, kT0 + milliseconds(90'001));

  Result<std::vector<RunRecord>> runs = store->Runs(10);
  ASSERT_OK(runs);
  ASSERT_EQ(runs->size(), 2U);
  EXPECT_EQ((*runs)[0].id, *second);  // newest first
  EXPECT_EQ((*runs)[1].id, *first);

  Result<std::optional<RunRecord>> missing = store->Run(*second + 100);
  ASSERT_OK(missing);
  EXPECT_FALSE(missing->has_value());
  EXPECT_TRUE(store->FinishRun(*second + 100, RunOutcome::kSucceeded, {}, "", kT0).IsNotFound());
}

TEST_F(StoreTest, RunsRecordTheirApprovalAndTheTokenThatAskedForThem) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> asked = store->BeginRun("api", "aaa", kT0);
  Result<int64_t> timer = store->BeginRun("timer", "aaa", kT0);
  ASSERT_OK(asked);
  ASSERT_OK(timer);
  ASSERT_OK(store->SetRunApproval(*asked, "token ops: up to 2 deletions"));
  ASSERT_OK(store->SetRunActor(*asked, "ops"));
  Result<std::optional<RunRecord>> run = store->Run(*asked);
  ASSERT_OK(run);
  ASSERT_TRUE(run->has_value());
  EXPECT_EQ((*run)->approval, "token ops: up to 2 deletions");
  EXPECT_EQ((*run)->actor, "ops");
  Result<std::vector<RunRecord>> runs = store->Runs(10);
  ASSERT_OK(runs);
  ASSERT_EQ(runs->size(), 2U);
  EXPECT_EQ((*runs)[0].actor, "");  // the timer's: nobody asked
  EXPECT_EQ((*runs)[1].actor, "ops");
  EXPECT_TRUE(store->SetRunActor(*timer + 100, "ops").IsNotFound());
}

TEST_F(StoreTest, CloseStaleRunsCancelsRunningRunsAndLeavesTheirActions) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> finished = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(finished);
  ASSERT_OK(store->FinishRun(*finished, RunOutcome::kSucceeded, {}, "ok", kT0 + minutes(1)));
  Result<int64_t> stale1 = store->BeginRun("timer", "bbb", kT0 + minutes(2));
  ASSERT_OK(stale1);
  Result<int64_t> stale2 = store->BeginRun("timer", "bbb", kT0 + minutes(3));
  ASSERT_OK(stale2);
  ASSERT_OK(store->InsertAction(Action(*stale2, "ios-0", ActionState::kRunning)));

  Result<int64_t> closed = store->CloseStaleRuns("the process stopped", kT0 + minutes(10));
  ASSERT_OK(closed);
  EXPECT_EQ(*closed, 2);

  for (int64_t id : {*stale1, *stale2}) {
    Result<std::optional<RunRecord>> run = store->Run(id);
    ASSERT_OK(run);
    ASSERT_TRUE(run->has_value());
    EXPECT_EQ((*run)->outcome, RunOutcome::kCancelled);
    EXPECT_EQ((*run)->finished_at, kT0 + minutes(10));
    EXPECT_EQ((*run)->message, "the process stopped");
  }
  Result<std::optional<RunRecord>> untouched = store->Run(*finished);
  ASSERT_OK(untouched);
  EXPECT_EQ((*untouched)->outcome, RunOutcome::kSucceeded);
  EXPECT_EQ((*untouched)->message, "ok");

  Result<std::vector<ActionRecord>> unfinished = store->UnfinishedActions();
  ASSERT_OK(unfinished);
  ASSERT_EQ(unfinished->size(), 1U);
  EXPECT_EQ((*unfinished)[0].state, ActionState::kRunning);

  Result<int64_t> again = store->CloseStaleRuns("again", kT0 + minutes(11));
  ASSERT_OK(again);
  EXPECT_EQ(*again, 0);
}

// --- actions ---

TEST_F(StoreTest, ActionsAreJournaledAndUpdated) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> run = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(run);
  ActionRecord replace{.run_id = *run,
                       .plan_action_id = 7,
                       .kind = ActionKind::kReplace,
                       .vm = "ios-3",
                       .vmset = "ios",
                       .pool = "macs",
                       .host = "mini-02",
                       .from_host = "mini-01",
                       .template_hash = "sha256:cccc",
                       .predecessor_id = "uuid-old",
                       .create_first = true,
                       .attempt = 2,
                       .state = ActionState::kIntended,
                       .error = "timeout",
                       .started_at = kT0 + milliseconds(5)};
  Result<int64_t> id = store->InsertAction(replace);
  ASSERT_OK(id);
  replace.id = *id;

  Result<std::vector<ActionRecord>> actions = store->Actions(*run);
  ASSERT_OK(actions);
  ASSERT_EQ(actions->size(), 1U);
  const ActionRecord& read = (*actions)[0];
  EXPECT_EQ(read.id, replace.id);
  EXPECT_EQ(read.run_id, *run);
  EXPECT_EQ(read.plan_action_id, 7);
  EXPECT_EQ(read.kind, ActionKind::kReplace);
  EXPECT_EQ(read.vm, "ios-3");
  EXPECT_EQ(read.vmset, "ios");
  EXPECT_EQ(read.pool, "macs");
  EXPECT_EQ(read.host, "mini-02");
  EXPECT_EQ(read.from_host, "mini-01");
  EXPECT_EQ(read.template_hash, "sha256:cccc");
  EXPECT_EQ(read.predecessor_id, "uuid-old");
  EXPECT_TRUE(read.create_first);
  EXPECT_EQ(read.attempt, 2);
  EXPECT_EQ(read.state, ActionState::kIntended);
  EXPECT_EQ(read.error, "timeout");
  EXPECT_EQ(read.pending_temp_name, "");
  EXPECT_EQ(read.started_at, kT0 + milliseconds(5));
  EXPECT_FALSE(read.finished_at.has_value());

  ASSERT_OK(store->UpdateActionPending(*id, "ios-3.flotilla-3fa9", "job-17"));
  ASSERT_OK(store->UpdateActionState(*id, ActionState::kRunning, "", std::nullopt));
  ASSERT_OK(store->UpdateActionDoing(*id, "Downloading pack file 45%"));
  EXPECT_TRUE(store->UpdateActionDoing(*id + 1000, "x").IsNotFound());
  actions = store->Actions(*run);
  ASSERT_OK(actions);
  EXPECT_EQ((*actions)[0].pending_temp_name, "ios-3.flotilla-3fa9");
  EXPECT_EQ((*actions)[0].pending_job_id, "job-17");
  EXPECT_EQ((*actions)[0].doing, "Downloading pack file 45%");
  EXPECT_EQ((*actions)[0].state, ActionState::kRunning);
  EXPECT_EQ((*actions)[0].error, "");

  ASSERT_OK(
      store->UpdateActionState(*id, ActionState::kFailed, "HTTP 400: bad image", kT0 + minutes(3)));
  actions = store->Actions(*run);
  ASSERT_OK(actions);
  EXPECT_EQ((*actions)[0].state, ActionState::kFailed);
  EXPECT_EQ((*actions)[0].error, "HTTP 400: bad image");
  EXPECT_EQ((*actions)[0].finished_at, kT0 + minutes(3));

  EXPECT_TRUE(store->UpdateActionState(*id + 1, ActionState::kSucceeded, "", kT0).IsNotFound());
  EXPECT_TRUE(store->UpdateActionPending(*id + 1, "x", "y").IsNotFound());
}

TEST_F(StoreTest, UnfinishedActionsAreIntendedOrRunningInIdOrder) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> run1 = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(run1);
  Result<int64_t> run2 = store->BeginRun("apply", "bbb", kT0);
  ASSERT_OK(run2);
  std::vector<int64_t> expected;
  const std::vector<std::pair<int64_t, ActionState>> rows = {
      {*run1, ActionState::kRunning},   {*run1, ActionState::kSucceeded},
      {*run2, ActionState::kIntended},  {*run1, ActionState::kFailed},
      {*run2, ActionState::kAbandoned}, {*run1, ActionState::kIntended}};
  for (const auto& [run, state] : rows) {
    Result<int64_t> id = store->InsertAction(Action(run, "vm", state));
    ASSERT_OK(id);
    if (!IsFinished(state)) {
      expected.push_back(*id);
    }
  }
  Result<std::vector<ActionRecord>> unfinished = store->UnfinishedActions();
  ASSERT_OK(unfinished);
  std::vector<int64_t> ids;
  for (const ActionRecord& a : *unfinished) {
    ids.push_back(a.id);
  }
  EXPECT_EQ(ids, expected);
}

// Issue 18, item 5: the work a create left on a host stays resumable after its row was settled
// (a process killed again before resuming it), until a later attempt of the VM reached a host
// or succeeded.
TEST_F(StoreTest, ResumableCreatesAreTheLatestAttemptsThatReachedAHost) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> run = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(run);
  auto add = [&](const std::string& vm, ActionState state, const std::string& temp) {
    ActionRecord a = Action(*run, vm, state);
    a.pending_temp_name = temp;
    Result<int64_t> id = store->InsertAction(a);
    EXPECT_TRUE(id.ok());
    if (!temp.empty()) {
      EXPECT_TRUE(store->UpdateActionPending(*id, temp, "").ok());
    }
    return id.ok() ? *id : int64_t{0};
  };
  const int64_t abandoned = add("a-0", ActionState::kAbandoned, "a-0.flotilla-1");
  add("a-0", ActionState::kAbandoned,
      "");  // killed before it reached the host: a-0.flotilla-1 stays
  add("b-0", ActionState::kFailed, "b-0.flotilla-1");
  const int64_t newer = add("b-0", ActionState::kRunning, "b-0.flotilla-2");  // the newer work
  add("c-0", ActionState::kAbandoned, "c-0.flotilla-1");
  add("c-0", ActionState::kSucceeded, "");  // made since: nothing to resume
  add("d-0", ActionState::kSucceeded, "d-0.flotilla-1");
  Result<std::vector<ActionRecord>> resumable = store->ResumableCreates();
  ASSERT_OK(resumable);
  std::vector<std::pair<int64_t, std::string>> got;
  for (const ActionRecord& a : *resumable) {
    got.emplace_back(a.id, a.pending_temp_name);
  }
  EXPECT_EQ(got, (std::vector<std::pair<int64_t, std::string>>{{abandoned, "a-0.flotilla-1"},
                                                               {newer, "b-0.flotilla-2"}}));
}

// Every enum value is accepted by the schema's CHECK constraints and reads back as itself.
TEST_F(StoreTest, EveryEnumValueRoundTrips) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> run = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(run);
  for (ActionKind kind : {ActionKind::kCreate, ActionKind::kReplace, ActionKind::kStart,
                          ActionKind::kStop, ActionKind::kDelete}) {
    for (ActionState state :
         {ActionState::kIntended, ActionState::kRunning, ActionState::kSucceeded,
          ActionState::kFailed, ActionState::kAbandoned}) {
      ActionRecord action = Action(*run, "vm", state);
      action.kind = kind;
      Result<int64_t> id = store->InsertAction(action);
      ASSERT_OK(id);
    }
  }
  Result<std::vector<ActionRecord>> actions = store->Actions(*run);
  ASSERT_OK(actions);
  ASSERT_EQ(actions->size(), 25U);
  for (size_t i = 0; i < actions->size(); ++i) {
    EXPECT_EQ(static_cast<size_t>((*actions)[i].kind), i / 5);
    EXPECT_EQ(static_cast<size_t>((*actions)[i].state), i % 5);
  }
  for (RunOutcome outcome : {RunOutcome::kRunning, RunOutcome::kSucceeded, RunOutcome::kPartial,
                             RunOutcome::kFailed, RunOutcome::kCancelled}) {
    ASSERT_OK(store->FinishRun(*run, outcome, {}, "", kT0));
    Result<std::optional<RunRecord>> read = store->Run(*run);
    ASSERT_OK(read);
    EXPECT_EQ((*read)->outcome, outcome);
  }
  for (RevisionOutcome outcome :
       {RevisionOutcome::kApplied, RevisionOutcome::kRejected, RevisionOutcome::kFailed}) {
    ASSERT_OK(store->RecordRevision({.sha = "x", .attempted_at = kT0, .outcome = outcome}));
    Result<std::optional<RevisionRecord>> read = store->LastAttempted();
    ASSERT_OK(read);
    EXPECT_EQ((*read)->outcome, outcome);
  }
}

TEST_F(StoreTest, AnUnknownValueInTheFileIsAnErrorNotACrash) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> run = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(run);
  // A value this build does not know, e.g. written by hand. CHECK constraints are off so
  // that the row can be written at all.
  RawDb raw(DbPath());
  ASSERT_EQ(raw.Exec("PRAGMA ignore_check_constraints = ON; UPDATE runs SET outcome = 'weird'"),
            "");
  Result<std::optional<RunRecord>> read = store->Run(*run);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find("weird"), std::string::npos) << read.status().ToString();
  EXPECT_NE(read.status().message().find(DbPath()), std::string::npos);
}

// --- hosts ---

ObservedHost OnlineHost() {
  ObservedHost host{
      .name = "mini-01",
      .pool = "macs",
      .online = true,
      .last_seen = kT0,
      .facts = HostFacts{
          .arch = Arch::kArm64,
          .os_name = "macOS",
          .os_version = "15.5",
          .agent_version = "1.0.5",
          .hypervisor_version = "20.2.1",
          .total = {.cpu = 12, .memory_bytes = uint64_t{32} << 30, .disk_bytes = 1'000'000'000'123},
          .system_reserved = {.cpu = 2, .memory_bytes = uint64_t{4} << 30},
          .available = {.cpu = 6,
                        .memory_bytes = uint64_t{20} << 30,
                        .disk_bytes = uint64_t{500} << 30},
          .running_macos_vms = 1,
          .cached_images = {"catalog://BASE/v1", "catalog://BASE/v2"}}};
  host.vms = {
      VmInfo{.id = "uuid-1",
             .name = "ios-0",
             .state = VmState::kRunning,
             .raw_state = "running",
             .os = GuestOs::kMacos,
             .os_raw = "macosx",
             .type = "APPLE_VZ_VM",
             .cpu = 4,
             .memory_bytes = uint64_t{8} << 30,
             .disk_bytes = uint64_t{100} << 30,
             .ip = "10.0.0.7"},
      VmInfo{.id = "uuid-2",
             .name = "ios-1.flotilla-3fa9",
             .state = VmState::kTransitional,
             .raw_state = "cloning",
             .os = GuestOs::kMacos,
             .os_raw = "macosx",
             .type = "APPLE_VZ_VM",
             .pending_create_for = "ios-1"},
      VmInfo{.id = "uuid-3",
             .name = "other",
             .state = VmState::kStopped,
             .raw_state = "stopped",
             .os_raw = "windows",
             .type = "VM",
             .cpu = 2},
  };
  return host;
}

ObservedHost OfflineHost() {
  return ObservedHost{.name = "mini-02",
                      .pool = "macs",
                      .online = false,
                      .last_seen = kT0 - minutes(20),
                      .error = "connect: connection refused",
                      .facts = HostFacts{.arch = Arch::kX86_64, .total = {.cpu = 8}},
                      .failures = 3,
                      .failing_since = std::chrono::floor<std::chrono::seconds>(kT0) -
                                       minutes(1),  // stored in seconds
                      .error_rate = 0.25,
                      .degraded = true};
}

TEST_F(StoreTest, HostObservationsRoundTrip) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Observed observed;
  observed.hosts["mini-01"] = OnlineHost();
  observed.hosts["mini-02"] = OfflineHost();
  observed.hosts["never"] = ObservedHost{.name = "never", .pool = "linux", .error = "no route"};
  ASSERT_OK(store->SaveHosts(observed));

  Result<Observed> loaded = store->LoadHosts();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->hosts.size(), 3U);
  for (const auto& [name, host] : observed.hosts) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(loaded->hosts.contains(name));
    const ObservedHost& got = loaded->hosts.at(name);
    EXPECT_EQ(got.facts, host.facts);
    EXPECT_EQ(got.vms, host.vms);
    EXPECT_EQ(got.last_seen, host.last_seen);  // to the millisecond
    EXPECT_EQ(got, host);
  }
}

TEST_F(StoreTest, SaveHostsReplacesNamedHostsAndKeepsOthers) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Observed first;
  first.hosts["mini-01"] = OnlineHost();
  first.hosts["mini-02"] = OfflineHost();
  ASSERT_OK(store->SaveHosts(first));

  Observed second;
  ObservedHost gone = OnlineHost();
  gone.online = false;
  gone.error = "timeout";
  gone.vms.clear();
  second.hosts["mini-01"] = gone;
  ASSERT_OK(store->SaveHosts(second));

  Result<Observed> loaded = store->LoadHosts();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->hosts.size(), 2U);
  EXPECT_EQ(loaded->hosts.at("mini-01"), gone);
  EXPECT_EQ(loaded->hosts.at("mini-02"), OfflineHost());
}

TEST_F(StoreTest, SaveHostsKeepsTextThatIsNotUtf8AsReplacementCharacters) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Observed observed;
  observed.hosts["mini-01"] = OnlineHost();
  ObservedHost bad = OfflineHost();
  bad.error = "garbled \xff\xfe reply";
  observed.hosts["mini-02"] = bad;
  ASSERT_OK(store->SaveHosts(observed));
  Result<Observed> loaded = store->LoadHosts();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->hosts.size(), 2U);
  EXPECT_EQ(loaded->hosts.at("mini-02").error, "garbled \xef\xbf\xbd\xef\xbf\xbd reply");
}

TEST_F(StoreTest, SameApartFromLastSeenComparesEveryOtherField) {
  const ObservedHost a = OnlineHost();
  ObservedHost b = a;
  b.last_seen = *a.last_seen + minutes(1);
  EXPECT_TRUE(SameApartFromLastSeen(a, b));
  const std::vector<std::pair<std::string, void (*)(ObservedHost&)>> changes = {
      {"name", [](ObservedHost& h) { h.name += "x"; }},
      {"pool", [](ObservedHost& h) { h.pool += "x"; }},
      {"online", [](ObservedHost& h) { h.online = !h.online; }},
      {"error", [](ObservedHost& h) { h.error = "timeout"; }},
      {"facts", [](ObservedHost& h) { h.facts.available.cpu += 1; }},
      {"vms", [](ObservedHost& h) { h.vms[0].state = VmState::kStopped; }},
      {"vms_known", [](ObservedHost& h) { h.vms_known = !h.vms_known; }},
      {"failures", [](ObservedHost& h) { h.failures += 1; }},
      {"failing_since", [](ObservedHost& h) { h.failing_since = kT0; }},
      {"error_rate", [](ObservedHost& h) { h.error_rate = 0.05; }},
      {"degraded", [](ObservedHost& h) { h.degraded = !h.degraded; }},
  };
  for (const auto& [field, change] : changes) {
    SCOPED_TRACE(field);
    ObservedHost c = a;
    change(c);
    EXPECT_FALSE(SameApartFromLastSeen(a, c));
  }
}

// An idle pass saves the same hosts again with a later last_seen: given what the store holds,
// only the narrow last_seen rows are written, and a host whose observation changed is rewritten.
TEST_F(StoreTest, SaveHostsRewritesOnlyTheHostsWhoseObservationChanged) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Observed first;
  first.hosts["mini-01"] = OnlineHost();
  first.hosts["mini-02"] = OfflineHost();
  const int64_t empty = store->Writes();
  ASSERT_OK(store->SaveHosts(first, Observed{}));
  EXPECT_EQ(store->Writes() - empty, 4);  // each host's snapshot and last_seen

  // Nothing changed: nothing is written, not even a commit.
  int64_t writes = store->Writes();
  const int64_t commits = store->Commits();
  ASSERT_OK(store->SaveHosts(first, first));
  EXPECT_EQ(store->Writes(), writes);
  EXPECT_EQ(store->Commits(), commits);

  // mini-01 answered again, the same: its last_seen alone.
  Observed second = first;
  second.hosts["mini-01"].last_seen = *first.hosts["mini-01"].last_seen + minutes(1);
  writes = store->Writes();
  ASSERT_OK(store->SaveHosts(second, first));
  EXPECT_EQ(store->Writes() - writes, 1);
  EXPECT_EQ(store->Commits(), commits + 1);

  // mini-02 came back with a VM: its row is rewritten too.
  Observed third = second;
  third.hosts["mini-01"].last_seen = *second.hosts["mini-01"].last_seen + minutes(1);
  ObservedHost& back = third.hosts["mini-02"];
  back.online = true;
  back.error.clear();
  back.failures = 0;
  back.failing_since.reset();
  back.last_seen = third.hosts["mini-01"].last_seen;
  back.vms.push_back(VmInfo{.id = "uuid-9", .name = "ios-9", .state = VmState::kRunning});
  writes = store->Writes();
  ASSERT_OK(store->SaveHosts(third, second));
  EXPECT_EQ(store->Writes() - writes, 3);

  // What another process (or this one after a crash) reads is the latest of everything, to the
  // millisecond.
  auto reopened = Store::Open(DbPath());
  ASSERT_OK(reopened);
  Result<Observed> loaded = (*reopened)->LoadHosts();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->hosts.size(), 2U);
  EXPECT_EQ(loaded->hosts.at("mini-01"), third.hosts.at("mini-01"));
  EXPECT_EQ(loaded->hosts.at("mini-02"), third.hosts.at("mini-02"));
}

// Schema 5 moved last_seen out of the snapshot rows into host_seen.
TEST_F(StoreTest, UpgradeKeepsEachHostsLastSeen) {
  ASSERT_OK(MigrateForTesting(DbPath(), 4));
  const ObservedHost host = OnlineHost();
  Result<std::string> snapshot = RenderHostSnapshot(host);
  ASSERT_OK(snapshot);
  std::string quoted;
  for (char c : *snapshot) {
    quoted += c == '\'' ? "''" : std::string(1, c);
  }
  ASSERT_EQ(RawDb(DbPath()).Exec("INSERT INTO hosts (name, pool, last_seen, snapshot) VALUES "
                                 "('mini-01', 'macs', " +
                                 std::to_string(std::chrono::duration_cast<milliseconds>(
                                                    host.last_seen->time_since_epoch())
                                                    .count()) +
                                 ", '" + quoted + "')"),
            "");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<Observed> loaded = store->LoadHosts();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->hosts.size(), 1U);
  EXPECT_EQ(loaded->hosts.at("mini-01"), host);
}

// --- events ---

TEST_F(StoreTest, EventsAreListedNewestFirst) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->AddEvent({.at = kT0,
                             .level = "warn",
                             .kind = "host-offline",
                             .subject = "mini-02",
                             .message = "mini-02 stopped answering"}));
  ASSERT_OK(store->AddEvent({.at = kT0 + minutes(1),
                             .level = "error",
                             .kind = "revision-rejected",
                             .subject = "bbb",
                             .message = "invalid manifest"}));
  Result<std::vector<EventRecord>> events = store->Events(10);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 2U);
  EXPECT_EQ((*events)[0].kind, "revision-rejected");
  EXPECT_EQ((*events)[0].at, kT0 + minutes(1));
  EXPECT_EQ((*events)[0].level, "error");
  EXPECT_EQ((*events)[0].subject, "bbb");
  EXPECT_EQ((*events)[0].message, "invalid manifest");
  EXPECT_EQ((*events)[1].kind, "host-offline");
  EXPECT_LT((*events)[1].id, (*events)[0].id);
  Result<std::vector<EventRecord>> one = store->Events(1);
  ASSERT_OK(one);
  EXPECT_EQ(one->size(), 1U);
}

// --- retention ---

TEST_F(StoreTest, FinishRunPrunesOldRunsWithTheirActionsButKeepsUnfinishedOnes) {
  auto store = OpenStore({.retain_runs = 2, .retain_events = 100});
  ASSERT_NE(store, nullptr);
  // Run 1 is left with an intended action (its process died); it must survive pruning.
  Result<int64_t> interrupted = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(interrupted);
  ASSERT_OK(store->InsertAction(Action(*interrupted, "ios-0", ActionState::kIntended)));
  Result<int64_t> closed = store->CloseStaleRuns("stale", kT0);
  ASSERT_OK(closed);

  std::vector<int64_t> runs;
  for (int i = 0; i < 4; ++i) {
    Result<int64_t> run = store->BeginRun("timer", "aaa", kT0 + minutes(i));
    ASSERT_OK(run);
    ASSERT_OK(
        store->InsertAction(Action(*run, "ios-" + std::to_string(i), ActionState::kSucceeded)));
    ASSERT_OK(store->FinishRun(*run, RunOutcome::kSucceeded, {}, "", kT0 + minutes(i)));
    runs.push_back(*run);
  }

  Result<std::vector<RunRecord>> kept = store->Runs(0);
  ASSERT_OK(kept);
  std::vector<int64_t> ids;
  for (const RunRecord& r : *kept) {
    ids.push_back(r.id);
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{runs[3], runs[2], *interrupted}));
  RawDb raw(DbPath());
  EXPECT_EQ(raw.Int("SELECT count(*) FROM actions"), 3);  // the pruned runs' actions went too
  for (int64_t pruned : {runs[0], runs[1]}) {
    Result<std::vector<ActionRecord>> actions = store->Actions(pruned);
    ASSERT_OK(actions);
    EXPECT_TRUE(actions->empty());
  }
  Result<std::vector<ActionRecord>> unfinished = store->UnfinishedActions();
  ASSERT_OK(unfinished);
  ASSERT_EQ(unfinished->size(), 1U);
  EXPECT_EQ((*unfinished)[0].run_id, *interrupted);

  // Once its action is finished, the old run goes at the next prune.
  ASSERT_OK(store->UpdateActionState((*unfinished)[0].id, ActionState::kAbandoned, "", kT0));
  ASSERT_OK(store->Prune());
  kept = store->Runs(0);
  ASSERT_OK(kept);
  EXPECT_EQ(kept->size(), 2U);
}

TEST_F(StoreTest, PruneKeepsTheNewestEvents) {
  auto store = OpenStore({.retain_runs = 10, .retain_events = 3});
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(
        store->AddEvent({.at = kT0, .level = "info", .kind = "k", .message = std::to_string(i)}));
  }
  ASSERT_OK(store->Prune());
  Result<std::vector<EventRecord>> events = store->Events(0);
  ASSERT_OK(events);
  std::vector<std::string> messages;
  for (const EventRecord& e : *events) {
    messages.push_back(e.message);
  }
  EXPECT_EQ(messages, (std::vector<std::string>{"4", "3", "2"}));
}

TEST_F(StoreTest, PruneKeepsAsManyRevisionsAsRunsAndTheOneInForce) {
  auto store = OpenStore({.retain_runs = 2});
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->RecordRevision(
      {.sha = "old", .attempted_at = kT0, .outcome = RevisionOutcome::kApplied}));
  ASSERT_OK(store->RecordRevision(
      {.sha = "good", .attempted_at = kT0, .outcome = RevisionOutcome::kApplied}));
  for (const char* sha : {"bad1", "bad2", "bad3"}) {
    ASSERT_OK(store->RecordRevision(
        {.sha = sha, .attempted_at = kT0, .outcome = RevisionOutcome::kRejected}));
  }
  ASSERT_OK(store->Prune());
  Result<std::vector<RevisionRecord>> revisions = store->Revisions(0);
  ASSERT_OK(revisions);
  std::vector<std::string> shas;
  for (const RevisionRecord& r : *revisions) {
    shas.push_back(r.sha);
  }
  EXPECT_EQ(shas, (std::vector<std::string>{"bad3", "bad2", "good"}));
  Result<std::optional<RevisionRecord>> applied = store->LastApplied();
  ASSERT_OK(applied);
  EXPECT_EQ((*applied)->sha, "good");
}

TEST_F(StoreTest, RetentionZeroKeepsEverything) {
  auto store = OpenStore({.retain_runs = 0, .retain_events = 0});
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 5; ++i) {
    Result<int64_t> run = store->BeginRun("timer", "aaa", kT0);
    ASSERT_OK(run);
    ASSERT_OK(store->FinishRun(*run, RunOutcome::kSucceeded, {}, "", kT0));
    ASSERT_OK(store->AddEvent({.at = kT0, .level = "info", .kind = "k", .message = "m"}));
    ASSERT_OK(store->RecordRevision(
        {.sha = "s", .attempted_at = kT0, .outcome = RevisionOutcome::kRejected}));
  }
  ASSERT_OK(store->Prune());
  EXPECT_EQ(store->Runs(0)->size(), 5U);
  EXPECT_EQ(store->Events(0)->size(), 5U);
  EXPECT_EQ(store->Revisions(0)->size(), 5U);
}

// --- lifetime and threads ---

TEST_F(StoreTest, DataSurvivesCloseAndReopen) {
  int64_t run_id = 0;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->UpsertLedger(Entry("ios-0"), kT0));
    ASSERT_OK(store->SetVmsetPrune({{"ios", true}}));
    Result<int64_t> run = store->BeginRun("apply", "aaa", kT0);
    ASSERT_OK(run);
    run_id = *run;
    ASSERT_OK(store->InsertAction(Action(run_id, "ios-0", ActionState::kRunning)));
    Observed observed;
    observed.hosts["mini-01"] = OnlineHost();
    ASSERT_OK(store->SaveHosts(observed));
    ASSERT_OK(store->AddEvent({.at = kT0, .level = "info", .kind = "k", .message = "m"}));
    ASSERT_OK(store->RecordRevision(
        {.sha = "aaa", .attempted_at = kT0, .outcome = RevisionOutcome::kApplied}));
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<Ledger> ledger = store->LoadLedger();
  ASSERT_OK(ledger);
  EXPECT_EQ(ledger->entries, std::vector<LedgerEntry>{Entry("ios-0")});
  EXPECT_EQ(ledger->vmset_prune, (std::map<std::string, bool>{{"ios", true}}));
  Result<std::vector<ActionRecord>> unfinished = store->UnfinishedActions();
  ASSERT_OK(unfinished);
  ASSERT_EQ(unfinished->size(), 1U);
  EXPECT_EQ((*unfinished)[0].run_id, run_id);
  Result<Observed> hosts = store->LoadHosts();
  ASSERT_OK(hosts);
  EXPECT_EQ(hosts->hosts.at("mini-01"), OnlineHost());
  EXPECT_EQ(store->Events(0)->size(), 1U);
  EXPECT_EQ((*store->LastApplied())->sha, "aaa");
}

TEST_F(StoreTest, ManyThreadsShareOneStore) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> run = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(run);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string vm = "vm-" + std::to_string(t) + "-" + std::to_string(i);
        Result<int64_t> id = store->InsertAction(Action(*run, vm));
        if (!id.ok()) {
          errors[t] = id.status().ToString();
          return;
        }
        ids[t].push_back(*id);
        Status s = store->UpdateActionState(*id, ActionState::kSucceeded, "", kT0);
        Result<std::vector<ActionRecord>> unfinished = store->UnfinishedActions();
        if (!s.ok() || !unfinished.ok()) {
          errors[t] = s.ok() ? unfinished.status().ToString() : s.ToString();
          return;
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  std::set<int64_t> unique;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << "thread " << t;
    unique.insert(ids[t].begin(), ids[t].end());
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));
  Result<std::vector<ActionRecord>> actions = store->Actions(*run);
  ASSERT_OK(actions);
  EXPECT_EQ(actions->size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_TRUE(std::all_of(actions->begin(), actions->end(), [](const ActionRecord& a) {
    return a.state == ActionState::kSucceeded;
  }));
}

// Two connections (as with `flotilla history` reading while the loop writes) wait for each
// other instead of failing.
TEST_F(StoreTest, TwoStoresOnOneFileTakeTurns) {
  auto a = OpenStore();
  auto b = OpenStore();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::string error_a;
  std::string error_b;
  auto write = [](Store& store, const std::string& prefix, std::string& error) {
    for (int i = 0; i < 50 && error.empty(); ++i) {
      Observed observed;
      ObservedHost host = OfflineHost();
      host.name = prefix + std::to_string(i);
      observed.hosts[host.name] = host;
      Status s = store.SaveHosts(observed);
      if (s.ok()) {
        s = store.UpsertLedger(Entry(prefix + std::to_string(i)), kT0);
      }
      if (!s.ok()) {
        error = s.ToString();
      }
    }
  };
  std::thread ta([&] { write(*a, "a-", error_a); });
  std::thread tb([&] { write(*b, "b-", error_b); });
  ta.join();
  tb.join();
  EXPECT_EQ(error_a, "");
  EXPECT_EQ(error_b, "");
  Result<Ledger> ledger = a->LoadLedger();
  ASSERT_OK(ledger);
  EXPECT_EQ(ledger->entries.size(), 100U);
}

}  // namespace
}  // namespace flotilla::store
