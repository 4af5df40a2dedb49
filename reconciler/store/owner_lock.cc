#include "reconciler/store/owner_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <string_view>
#include <system_error>

namespace flotilla::store {
namespace {

constexpr const char* kLockFileName = "flotilla.lock";

std::string ErrnoText(int err) { return std::generic_category().message(err); }

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  const size_t n = std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return std::string(buffer, n);
}

// Replaces the file's contents with "pid N since <time>". Best effort: the lock itself is what
// excludes other loops; the text only lets a refusal name the holder.
void WriteHolder(int fd) {
  const std::string text = "pid " + std::to_string(getpid()) + " since " + UtcNow() + "\n";
  if (ftruncate(fd, 0) == 0) {
    [[maybe_unused]] const ssize_t written = pwrite(fd, text.data(), text.size(), 0);
  }
}

// "pid N (since T)" from what the holder wrote, or a vaguer phrase when the holder has not
// written yet (it locks first, then writes) or the file says something else.
std::string DescribeHolder(int fd) {
  char buffer[256];
  const ssize_t n = pread(fd, buffer, sizeof(buffer), 0);
  std::string_view text(buffer, n > 0 ? static_cast<size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  constexpr std::string_view kPid = "pid ";
  constexpr std::string_view kSince = " since ";
  const size_t since = text.find(kSince);
  if (!text.starts_with(kPid) || since == std::string_view::npos || since == kPid.size()) {
    return "another process";
  }
  const std::string_view pid = text.substr(kPid.size(), since - kPid.size());
  if (pid.find_first_not_of("0123456789") != std::string_view::npos) {
    return "another process";
  }
  return "pid " + std::string(pid) + " (since " + std::string(text.substr(since + kSince.size())) +
         ")";
}

}  // namespace

Result<std::unique_ptr<OwnerLock>> OwnerLock::Acquire(const std::string& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  const std::string path = (std::filesystem::path(state_dir) / kLockFileName).string();
  if (ec) {
    return Status::FailedPrecondition(path + ": cannot create its folder: " + ec.message());
  }
  // O_CLOEXEC: a program the loop runs must not inherit (and so keep holding) the lock.
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    return Status::FailedPrecondition(path + ": cannot open: " + ErrnoText(err));
  }
  int rc = 0;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    Status status =
        err == EWOULDBLOCK
            ? Status::FailedPrecondition(path + " is held by " + DescribeHolder(fd) +
                                         ": another flotilla is using this state directory")
            : Status::FailedPrecondition(path + ": cannot lock: " + ErrnoText(err));
    close(fd);
    return status;
  }
  WriteHolder(fd);
  return std::unique_ptr<OwnerLock>(new OwnerLock(fd, path));
}

// Closing the descriptor releases the lock. The file stays: removing it would let a process
// that opened it just before lock an unlinked file while a third creates and locks a new one.
OwnerLock::~OwnerLock() {
  if (fd_ >= 0) {
    close(fd_);
  }
}

}  // namespace flotilla::store
