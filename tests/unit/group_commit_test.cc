// Group commit (reconciler/store/group_commit.h) on a real SQLite file, and the store's journal
// writes through it: concurrent writes share commits, each caller gets its own write's outcome
// only once the commit holding it is done, and a write that fails fails alone.
//
// The GroupCommit tests make batches deterministic: the first writer's write blocks (holding the
// connection) until the test has seen the other writers queue behind it.

#include "reconciler/store/group_commit.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "reconciler/store/sqlite.h"
#include "reconciler/store/store.h"
#include "tests/support/process.h"
#include "tests/support/status.h"
#include "tests/unit/store_fixture.h"

// A namespace of its own: the unity build compiles this file with store_test.cc.
namespace flotilla::store::group_commit_test {
namespace {

using std::chrono::milliseconds;
using store_test::Action;
using store_test::kT0;

// Counts the commits of one connection (SQLite's commit hook).
int CountCommit(void* commits) {
  static_cast<std::atomic<int>*>(commits)->fetch_add(1);
  return 0;
}

// One file with a table `rows (id INTEGER PRIMARY KEY, value TEXT UNIQUE)`, a connection to it
// with group commit, and a count of that connection's commits.
class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<sqlite::Db> opened = sqlite::OpenDb(Path(), milliseconds{50});
    ASSERT_OK(opened);
    db_ = std::make_unique<sqlite::Db>(std::move(*opened));
    ASSERT_OK(db_->Exec("PRAGMA journal_mode = WAL", "wal"));
    ASSERT_OK(db_->Exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, value TEXT UNIQUE)", "table"));
    sqlite3_commit_hook(db_->handle(), &CountCommit, &commits_);
    commits_ = 0;
    group_ = std::make_unique<GroupCommit>(*db_, db_mu_);
  }

  std::string Path() const { return (dir_.path() / "group.db").string(); }

  // A write that inserts `value`.
  static GroupCommit::Write Insert(const std::string& value) {
    return [value](sqlite::Db& db) {
      return db.Run("INSERT INTO rows (value) VALUES (?1)", "insert " + value, value);
    };
  }

  // Runs `first` on a thread of its own, held inside its write (holding the connection) while
  // each of `others` is handed in on a thread of its own, in order, until all of them are
  // queued; then lets the first go on and returns every outcome (first, then others in order).
  std::vector<Status> RunBehindABlockedWrite(const GroupCommit::Write& first,
                                             const std::vector<GroupCommit::Write>& others) {
    std::promise<void> entered;
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    bool entered_once = false;
    GroupCommit::Write blocking = [&](sqlite::Db& db) {
      if (!entered_once) {
        entered_once = true;
        entered.set_value();
        released.wait();
      }
      return first(db);
    };
    std::vector<Status> outcomes(others.size() + 1);
    std::vector<std::thread> threads;
    threads.emplace_back([&] { outcomes[0] = group_->Run(blocking); });
    entered.get_future().wait();
    for (size_t i = 0; i < others.size(); ++i) {
      threads.emplace_back([&, i] { outcomes[i + 1] = group_->Run(others[i]); });
      // One after another, so that they queue in order. Not a timing: waits as long as it
      // takes the thread to queue.
      while (group_->Queued() < i + 1) {
        std::this_thread::sleep_for(milliseconds{1});
      }
    }
    release.set_value();
    for (std::thread& thread : threads) {
      thread.join();
    }
    return outcomes;
  }

  // The values in the file, as another connection reads them (only what was committed).
  std::set<std::string> Committed() const {
    sqlite3* raw = nullptr;
    sqlite3_open_v2(Path().c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
    std::set<std::string> values;
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(raw, "SELECT value FROM rows", -1, &stmt, nullptr);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      values.insert(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
    return values;
  }

  flotilla::testing::ScratchDir dir_;
  std::unique_ptr<sqlite::Db> db_;
  std::mutex db_mu_;
  std::atomic<int> commits_{0};
  std::unique_ptr<GroupCommit> group_;
};

TEST_F(GroupCommitTest, WritesQueuedDuringACommitShareTheNextOne) {
  std::vector<GroupCommit::Write> others;
  for (int i = 0; i < 10; ++i) {
    others.push_back(Insert("b" + std::to_string(i)));
  }
  const std::vector<Status> outcomes = RunBehindABlockedWrite(Insert("a"), others);
  for (const Status& outcome : outcomes) {
    EXPECT_OK(outcome);
  }
  // The first alone, then the ten together: 2 commits for 11 writes.
  EXPECT_EQ(commits_.load(), 2);
  EXPECT_EQ(Committed().size(), 11U);
}

TEST_F(GroupCommitTest, AWriteThatFailsInASharedCommitFailsAlone) {
  const std::vector<Status> outcomes = RunBehindABlockedWrite(
      Insert("a"), {Insert("b"), Insert("a") /* UNIQUE: fails */, Insert("c"),
                    [](sqlite::Db& db) {  // changes no row: its caller is told
                      Status s = db.Run("UPDATE rows SET value = 'x' WHERE id = 999", "update");
                      return s.ok() && db.Changes() == 0 ? Status::NotFound("no row 999") : s;
                    }});
  EXPECT_OK(outcomes[0]);
  EXPECT_OK(outcomes[1]);
  EXPECT_EQ(outcomes[2].code(), Status::Code::kFailedPrecondition)  // a constraint
      << outcomes[2].ToString();
  EXPECT_OK(outcomes[3]);
  EXPECT_TRUE(outcomes[4].IsNotFound()) << outcomes[4].ToString();
  EXPECT_EQ(commits_.load(), 2);
  EXPECT_EQ(Committed(), (std::set<std::string>{"a", "b", "c"}));
}

// When SQLite gives the shared transaction up, nothing of it is in the file: each write is run
// again alone and its caller gets what it gets alone.
TEST_F(GroupCommitTest, AGivenUpTransactionRunsEachWriteAgainAlone) {
  std::atomic<int> b_runs{0};
  const std::vector<Status> outcomes = RunBehindABlockedWrite(
      Insert("a"), {[&](sqlite::Db& db) {
                      ++b_runs;
                      return Insert("b")(db);
                    },
                    [](sqlite::Db& db) {  // as a failure of the file does: the transaction ends
                      if (db.InTransaction()) {
                        (void)db.Exec("ROLLBACK", "give up");
                        return Status::Internal("disk I/O error");
                      }
                      return Insert("c")(db);
                    },
                    Insert("d")});
  for (const Status& outcome : outcomes) {
    EXPECT_OK(outcome);
  }
  EXPECT_EQ(b_runs.load(), 2);  // in the shared transaction, then alone
  // The first alone, then b, c and d each alone.
  EXPECT_EQ(commits_.load(), 4);
  EXPECT_EQ(Committed(), (std::set<std::string>{"a", "b", "c", "d"}));
}

TEST_F(GroupCommitTest, WhenTheSharedTransactionCannotBeginEveryWriteOfItFails) {
  // Another connection holds the write lock past the busy timeout (50 ms here).
  sqlite3* other = nullptr;
  sqlite3_open_v2(Path().c_str(), &other, SQLITE_OPEN_READWRITE, nullptr);
  std::vector<Status> outcomes;
  bool first = true;
  outcomes = RunBehindABlockedWrite(
      [&](sqlite::Db& db) {
        if (first) {  // the lock is taken while the first writer holds the connection
          first = false;
          EXPECT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
        }
        return Insert("a")(db);
      },
      {Insert("b"), Insert("c")});
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  for (const Status& outcome : outcomes) {
    EXPECT_TRUE(outcome.IsUnavailable()) << outcome.ToString();
  }
  EXPECT_EQ(commits_.load(), 0);
  EXPECT_TRUE(Committed().empty());
}

TEST_F(GroupCommitTest, AWriteThatThrowsFailsItsTransactionAndLeavesNobodyWaiting) {
  const std::vector<Status> outcomes = RunBehindABlockedWrite(
      Insert("a"), {Insert("b"), [](sqlite::Db&) -> Status { throw std::runtime_error("boom"); }});
  EXPECT_OK(outcomes[0]);
  EXPECT_EQ(outcomes[1].code(), Status::Code::kInternal) << outcomes[1].ToString();
  EXPECT_EQ(outcomes[2].code(), Status::Code::kInternal) << outcomes[2].ToString();
  EXPECT_OK(group_->Run(Insert("c")));
  EXPECT_EQ(Committed(), (std::set<std::string>{"a", "c"}));
}

TEST_F(GroupCommitTest, AWriteAloneIsItsOwnCommit) {
  EXPECT_OK(group_->Run(Insert("a")));
  EXPECT_OK(group_->Run(Insert("b")));
  EXPECT_FALSE(group_->Run(Insert("a")).ok());
  EXPECT_EQ(commits_.load(), 2);
  EXPECT_EQ(Committed(), (std::set<std::string>{"a", "b"}));
}

// --- the store's journal writes ---

// A store in a scratch folder, with the store tests' records (store_fixture.h).
class StoreJournalTest : public store_test::StoreTest {};

TEST_F(StoreJournalTest, CommitsCountsTransactionsNotReads) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  const int64_t before = store->Commits();
  Result<int64_t> run = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(run);
  EXPECT_EQ(store->Commits(), before + 1);
  ASSERT_OK(store->Actions(*run));
  ASSERT_OK(store->LoadLedger());
  EXPECT_EQ(store->Commits(), before + 1);
  ASSERT_OK(store->InsertAction(Action(*run, "vm-1")));
  EXPECT_EQ(store->Commits(), before + 2);
}

// Many workers writing the journal at once, as the executor's do: every call returns with its
// write committed (another connection reads it at once), each worker's writes land in its
// order, and the workers shared commits.
TEST_F(StoreJournalTest, ConcurrentJournalWritesShareCommitsAndAreCommittedOnReturn) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> run = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(run);
  constexpr int kThreads = 16;
  constexpr int kPerThread = 25;
  const int64_t before = store->Commits();
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // A connection of its own: it sees only what was committed.
      Result<std::unique_ptr<Store>> reader =
          Store::Open(DbPath(), StoreOptions{.read_only = true});
      if (!reader.ok()) {
        errors[t] = reader.status().ToString();
        return;
      }
      for (int i = 0; i < kPerThread && errors[t].empty(); ++i) {
        const std::string vm = "vm-" + std::to_string(t) + "-" + std::to_string(i);
        Result<int64_t> id = store->InsertAction(Action(*run, vm));
        Status s = id.ok() ? store->UpdateActionState(*id, ActionState::kRunning, "", std::nullopt)
                           : id.status();
        if (s.ok()) {
          s = store->UpsertLedger(
              LedgerEntry{.vm = vm, .vmset = "ios", .pool = "macs", .host = "mini-01"}, kT0);
        }
        if (!s.ok()) {
          errors[t] = s.ToString();
          break;
        }
        ids[t].push_back(*id);
        Result<std::vector<ActionRecord>> seen = (*reader)->UnfinishedActions();
        Result<Ledger> ledger = (*reader)->LoadLedger();
        if (!seen.ok() || !ledger.ok()) {
          errors[t] = "read: " + (seen.ok() ? ledger.status() : seen.status()).ToString();
          break;
        }
        const bool running = std::any_of(seen->begin(), seen->end(), [&](const ActionRecord& a) {
          return a.id == *id && a.state == ActionState::kRunning;
        });
        if (!running || ledger->Find(vm) == nullptr) {
          errors[t] = vm + ": not committed when its calls returned";
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << "thread " << t;
    EXPECT_TRUE(std::is_sorted(ids[t].begin(), ids[t].end())) << "thread " << t;
  }
  constexpr int kWrites = kThreads * kPerThread * 3;
  const int64_t commits = store->Commits() - before;
  EXPECT_LT(commits, kWrites) << "no two writes shared a commit";
  EXPECT_GT(commits, 0);

  // Everything is in the file after it is closed and opened again.
  store.reset();
  std::unique_ptr<Store> reopened = OpenStore();
  ASSERT_NE(reopened, nullptr);
  Result<std::vector<ActionRecord>> actions = reopened->Actions(*run);
  ASSERT_OK(actions);
  EXPECT_EQ(actions->size(), static_cast<size_t>(kThreads * kPerThread));
  Result<Ledger> ledger = reopened->LoadLedger();
  ASSERT_OK(ledger);
  EXPECT_EQ(ledger->entries.size(), static_cast<size_t>(kThreads * kPerThread));
}

// The connection keeps each statement it prepared, reset between uses (no row, no lock held),
// and prepares a second one when the same text is used again while the first is under way.
TEST(SqliteDbTest, KeepsPreparedStatementsResetBetweenUses) {
  flotilla::testing::ScratchDir dir;
  Result<sqlite::Db> db = sqlite::OpenDb((dir.path() / "kept.db").string(), milliseconds{50});
  ASSERT_OK(db);
  ASSERT_OK(db->Exec("CREATE TABLE t (x INTEGER)", "table"));
  auto kept = [&] {
    int count = 0;
    for (sqlite3_stmt* s = sqlite3_next_stmt(db->handle(), nullptr); s != nullptr;
         s = sqlite3_next_stmt(db->handle(), s)) {
      ++count;
      EXPECT_EQ(sqlite3_stmt_busy(s), 0) << sqlite3_sql(s);
    }
    return count;
  };
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(db->Run("INSERT INTO t (x) VALUES (?1)", "insert", i));
  }
  EXPECT_EQ(kept(), 1);  // the insert, prepared once
  const std::string read = "SELECT x FROM t ORDER BY x";
  {
    Result<sqlite::Statement> outer = db->Prepare(read, "read");
    ASSERT_OK(outer);
    ASSERT_TRUE(*outer->Step());  // under way
    Result<sqlite::Statement> inner = db->Prepare(read, "read");
    ASSERT_OK(inner);
    ASSERT_TRUE(*inner->Step());
    EXPECT_EQ(inner->Int(0), 0);
    ASSERT_TRUE(*outer->Step());
    EXPECT_EQ(outer->Int(0), 1);
  }
  EXPECT_EQ(kept(), 2);  // the insert and one read
  // Used again, the kept read starts from the first row, with the new arguments.
  for (int round = 0; round < 2; ++round) {
    Result<std::vector<int64_t>> xs =
        sqlite::ReadAll<int64_t>(db->Prepare("SELECT x FROM t WHERE x >= ?1 ORDER BY x", "read", 1),
                                 [](sqlite::Statement& s) { return s.Int(0); });
    ASSERT_OK(xs);
    EXPECT_EQ(*xs, (std::vector<int64_t>{1, 2}));
  }
  EXPECT_EQ(kept(), 3);
}

}  // namespace
}  // namespace flotilla::store::group_commit_test
