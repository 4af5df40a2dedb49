#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace flotilla::source {

// Replaces libgit2's plain TCP stream (used by git://, http://, https:// under TLS and ssh://)
// with one whose connect, reads and writes give up after `io_timeout` without progress.
// libgit2 1.5 (Debian 12) has no timeout of its own (GIT_OPT_SET_SERVER_TIMEOUT came in 1.7),
// so a server that accepts a connection and then says nothing would hang a fetch forever.
//
// libgit2's stream registry is process-wide and its constructor takes no payload, so the
// timeout is a process-wide setting too: GitLibrary sets it once at start-up.
//
// REQUIRES: libgit2 initialised. Returns 0 or a libgit2 error code.
int RegisterTimeoutSocketStream(std::chrono::milliseconds io_timeout);

// While alive, every socket that a stream opens on this thread is shut down when `deadline`
// passes. That ends any network operation at its deadline, whatever it is blocked in (libssh2
// waits with its own poll and ignores socket timeouts). The stream constructor has no payload,
// so the watch is found through a thread-local pointer that this object sets and clears.
// REQUIRES: at most one FetchWatch per thread at a time.
class FetchWatch {
 public:
  explicit FetchWatch(std::chrono::steady_clock::time_point deadline);
  ~FetchWatch();
  FetchWatch(const FetchWatch&) = delete;
  FetchWatch& operator=(const FetchWatch&) = delete;

  bool expired() const;

  // Used by the stream.
  static FetchWatch* Current();
  void Add(int fd);
  void Remove(int fd);

 private:
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<int> fds_;
  bool expired_ = false;
  bool done_ = false;
  std::thread watchdog_;
};

// Streams created and not yet freed, for tests that check nothing leaks.
int LiveSocketStreams();

}  // namespace flotilla::source
