#pragma once

// One loop per store: an exclusive, non-blocking advisory lock (flock) on
// <stateDir>/flotilla.lock, held for the life of the OwnerLock and released by the kernel when
// the process dies, so a crash never leaves a stale lock behind. The holder's pid and start
// time are written into the file so that the refusal can say who holds it.

#include <memory>
#include <string>
#include <utility>

#include "reconciler/model/result.h"

namespace flotilla::store {

class OwnerLock {
 public:
  // Takes the lock on `<state_dir>/flotilla.lock` (creating the folder and file). When another
  // process holds it: FailedPrecondition "<path> is held by pid N (since ...): another flotilla
  // is using this state directory".
  static Result<std::unique_ptr<OwnerLock>> Acquire(const std::string& state_dir);
  ~OwnerLock();
  OwnerLock(const OwnerLock&) = delete;
  OwnerLock& operator=(const OwnerLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  OwnerLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

}  // namespace flotilla::store
