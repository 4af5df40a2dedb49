// The SQLite store against real files in a scratch folder (store.h): opening and migrating,
// the ledger, revisions, runs and the action journal. store_data_test.cc has the rest.

#include "reconciler/store/store.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "reconciler/store/schema.h"
#include "tests/support/status.h"
#include "tests/unit/store_fixture.h"

namespace flotilla::store::store_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;

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

}  // namespace
}  // namespace flotilla::store::store_test
