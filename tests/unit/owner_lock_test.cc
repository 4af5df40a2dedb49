// The owner lock (owner_lock.h) against real processes: this one, forked children and a
// spawned program.

#include "reconciler/store/owner_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/support/process.h"

namespace flotilla::store {
namespace {

using flotilla::testing::ScratchDir;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A forked child that takes the lock on `dir` and holds it until released or killed.
class LockHolder {
 public:
  explicit LockHolder(const std::string& dir) {
    int ready[2];
    int release[2];
    if (pipe(ready) != 0 || pipe(release) != 0) {
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      close(release[1]);
      Result<std::unique_ptr<OwnerLock>> lock = OwnerLock::Acquire(dir);
      const char answer = lock.ok() ? 'y' : 'n';
      [[maybe_unused]] ssize_t n = write(ready[1], &answer, 1);
      char byte = 0;
      n = read(release[0], &byte, 1);  // returns when the parent closes its end or dies
      _exit(lock.ok() ? 0 : 1);        // no destructors: the kernel releases the lock
    }
    close(ready[1]);
    close(release[0]);
    release_ = release[1];
    char answer = 0;
    locked_ = pid_ > 0 && read(ready[0], &answer, 1) == 1 && answer == 'y';
    close(ready[0]);
  }
  ~LockHolder() { Kill(); }
  LockHolder(const LockHolder&) = delete;
  LockHolder& operator=(const LockHolder&) = delete;

  bool locked() const { return locked_; }
  pid_t pid() const { return pid_; }

  // Lets the child exit normally.
  void Release() {
    if (release_ >= 0) {
      close(release_);
      release_ = -1;
    }
    Wait();
  }

  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
    }
    Release();
  }

 private:
  void Wait() {
    if (pid_ > 0) {
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

  pid_t pid_ = -1;
  int release_ = -1;
  bool locked_ = false;
};

TEST(OwnerLockTest, CreatesTheFolderAndNamesItsHolderInTheFile) {
  ScratchDir dir;
  const std::string state = (dir.path() / "a" / "state").string();
  Result<std::unique_ptr<OwnerLock>> lock = OwnerLock::Acquire(state);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_EQ((*lock)->path(), state + "/flotilla.lock");
  const std::string text = ReadFile((*lock)->path());
  EXPECT_EQ(text.rfind("pid " + std::to_string(getpid()) + " since 20", 0), 0U) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(OwnerLockTest, SecondAcquireInTheSameProcessFailsUntilTheFirstIsGone) {
  ScratchDir dir;
  Result<std::unique_ptr<OwnerLock>> first = OwnerLock::Acquire(dir.path().string());
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  Result<std::unique_ptr<OwnerLock>> second = OwnerLock::Acquire(dir.path().string());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kFailedPrecondition);
  const std::string& message = second.status().message();
  EXPECT_NE(
      message.find((*first)->path() + " is held by pid " + std::to_string(getpid()) + " (since "),
      std::string::npos)
      << message;
  EXPECT_NE(message.find("another flotilla is using this state directory"), std::string::npos)
      << message;

  first->reset();  // releases the first lock
  Result<std::unique_ptr<OwnerLock>> third = OwnerLock::Acquire(dir.path().string());
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST(OwnerLockTest, ReportsTheOtherProcessThatHoldsIt) {
  ScratchDir dir;
  LockHolder holder(dir.path().string());
  ASSERT_TRUE(holder.locked());

  Result<std::unique_ptr<OwnerLock>> lock = OwnerLock::Acquire(dir.path().string());
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(lock.status().message().find("held by pid " + std::to_string(holder.pid()) + " "),
            std::string::npos)
      << lock.status().ToString();

  holder.Release();
  lock = OwnerLock::Acquire(dir.path().string());
  EXPECT_TRUE(lock.ok()) << lock.status().ToString();
}

TEST(OwnerLockTest, IsReleasedWhenItsHolderIsKilled) {
  ScratchDir dir;
  LockHolder holder(dir.path().string());
  ASSERT_TRUE(holder.locked());
  ASSERT_FALSE(OwnerLock::Acquire(dir.path().string()).ok());

  holder.Kill();  // SIGKILL: no destructor runs
  Result<std::unique_ptr<OwnerLock>> lock = OwnerLock::Acquire(dir.path().string());
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  // The new holder's pid replaces the dead one's.
  EXPECT_EQ(ReadFile((*lock)->path()).rfind("pid " + std::to_string(getpid()) + " ", 0), 0U);
}

// A program the holder starts does not inherit the lock (FD_CLOEXEC), so it cannot keep the
// state directory locked after the loop exits.
TEST(OwnerLockTest, ProgramsStartedByTheHolderDoNotInheritIt) {
  ScratchDir dir;
  Result<std::unique_ptr<OwnerLock>> lock = OwnerLock::Acquire(dir.path().string());
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  flotilla::testing::Process child({"/bin/sleep", "30"});
  ASSERT_TRUE(child.running());

  lock->reset();  // while the child still runs
  Result<std::unique_ptr<OwnerLock>> again = OwnerLock::Acquire(dir.path().string());
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

}  // namespace
}  // namespace flotilla::store
