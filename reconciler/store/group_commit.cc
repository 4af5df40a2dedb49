#include "reconciler/store/group_commit.h"

#include <exception>
#include <utility>

namespace flotilla::store {

Status GroupCommit::Run(const Write& write) {
  Pending mine{.write = &write};
  std::unique_lock lock(mu_);
  queue_.push_back(&mine);
  // Wait while another writer commits; it may carry this write (then `done` is set), or leave it
  // queued for the next commit, which this writer makes unless another writer makes it first.
  // Each waiter is woken alone: when its write is done, or when it is first in the queue as a
  // commit ends.
  mine.wake.wait(lock, [&] { return mine.done || !committing_; });
  if (mine.done) {
    return std::move(mine.status);
  }
  committing_ = true;
  std::vector<Pending*> batch = std::exchange(queue_, {});
  lock.unlock();
  try {
    Commit(batch);
  } catch (const std::exception& e) {
    // Nothing of the batch is committed (its transaction is rolled back as Commit unwinds); its
    // writers are told, and the writers after them are not left waiting for ever.
    for (Pending* pending : batch) {
      pending->status = Status::Internal(db_.path() + ": a write failed: " + e.what());
    }
  }
  lock.lock();
  committing_ = false;
  for (Pending* pending : batch) {
    pending->done = true;
    if (pending != &mine) {
      pending->wake.notify_one();
    }
  }
  if (!queue_.empty()) {
    queue_.front()->wake.notify_one();  // the next commit is its to make
  }
  return std::move(mine.status);
}

size_t GroupCommit::Queued() {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void GroupCommit::Commit(const std::vector<Pending*>& batch) {
  std::lock_guard lock(db_mu_);
  if (batch.size() == 1) {
    batch.front()->status = (*batch.front()->write)(db_);
    return;
  }
  bool committed = false;
  {
    sqlite::Transaction transaction(db_);
    if (Status s = transaction.Begin(); !s.ok()) {
      for (Pending* pending : batch) {
        pending->status = s;
      }
      return;
    }
    bool whole = true;
    for (Pending* pending : batch) {
      pending->status = (*pending->write)(db_);
      if (!db_.InTransaction()) {
        whole = false;  // SQLite gave up the transaction: none of it is in the file
        break;
      }
    }
    committed = whole && transaction.Commit().ok();
  }  // rolled back unless committed
  if (!committed) {
    for (Pending* pending : batch) {
      pending->status = (*pending->write)(db_);
    }
  }
}

}  // namespace flotilla::store
