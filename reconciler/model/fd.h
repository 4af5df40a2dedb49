#pragma once

// An open file descriptor that closes itself: the one owner of a socket or pipe end handed
// from one part to another (a provider's tunnel to a VM port, say).

#include <unistd.h>

#include <memory>
#include <utility>

namespace flotilla {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership: the caller closes what this returns.
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_ = -1;
};

// A descriptor with what its far end needs kept alive for as long as it is used: a tunnel's
// stream, with the provider whose connection to the host carries it (a Tart host's ssh master
// connection ends its tunnels when it ends; a pool's provider is built anew when the pool
// changes, and the old one must stay for the tunnels it carries).
struct KeptFd {
  Fd fd;
  std::shared_ptr<const void> keeps;
};

}  // namespace flotilla
