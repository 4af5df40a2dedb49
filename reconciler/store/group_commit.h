#pragma once

// Group commit, internal to the store: writes that threads hand in at the same time share one
// transaction, so that a file synced at every commit (durability full) pays one sync for many
// writes instead of one each. The executor's workers write the journal this way.
//
// A writer that finds no commit under way commits at once: its own write, and every write
// queued since the last commit began. A writer that finds a commit under way queues its write
// and waits; the next commit carries it. Every writer returns only once the transaction that
// holds its write has committed (with durability full: is on the disk), with the outcome of its
// own write:
//
// - A write that fails inside a shared transaction fails alone. Each write is one statement,
//   and SQLite undoes a failed statement and keeps the transaction (constraint violations, no
//   such row, ...); the others commit.
// - When SQLite gives up the whole transaction (a failure of the file itself: I/O error, full
//   disk) or its COMMIT fails, nothing of it is in the file, and each write of it is run again
//   alone in a commit of its own: each writer then gets what its write gets alone.
// - When the shared transaction cannot begin (the write lock is held by another connection past
//   the busy timeout), every write of it fails with that error: each would have waited for the
//   same lock.
// - A write that throws fails every write of its transaction (none of it is committed).
// - A write that is alone in its turn is run exactly as without group commit (SQLite's own
//   commit of one statement).
//
// Writes of one thread reach the file in the order it made them (each call returns before the
// next is made); writes of different threads in one transaction reach the file together.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

#include "reconciler/model/status.h"
#include "reconciler/store/sqlite.h"

namespace flotilla::store {

class GroupCommit {
 public:
  // One write: one statement run on the connection, and what it achieved. It may run twice
  // (the second time alone, when the transaction it was in was given up), so it must set every
  // result it returns through its captures each time it runs.
  using Write = std::function<Status(sqlite::Db&)>;

  // `db_mu` serialises every use of `db`.
  GroupCommit(sqlite::Db& db, std::mutex& db_mu) : db_(db), db_mu_(db_mu) {}

  // Runs `write` in a transaction, shared with the writes other threads hand in meanwhile, and
  // returns its outcome once that transaction has committed (or failed). The caller must not
  // hold `db_mu`.
  Status Run(const Write& write);

  // Writes waiting for the next commit (they were handed in while a commit was under way).
  size_t Queued();

 private:
  struct Pending {
    const Write* write = nullptr;
    Status status;
    bool done = false;
    std::condition_variable wake;  // with `mu_`
  };

  // Runs and commits `batch`, setting each one's status. Takes `db_mu_`.
  void Commit(const std::vector<Pending*>& batch);

  sqlite::Db& db_;
  std::mutex& db_mu_;

  std::mutex mu_;                // guards everything below, and each Pending's `done` and `status`
  std::vector<Pending*> queue_;  // handed in since the commit under way began
  bool committing_ = false;
};

}  // namespace flotilla::store
