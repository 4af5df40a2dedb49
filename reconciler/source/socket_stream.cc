#include "reconciler/source/socket_stream.h"

#include <fcntl.h>
#include <git2.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace flotilla::source {
namespace {

// Set once by RegisterTimeoutSocketStream before any stream exists (see the header for why
// this cannot be per-source state).
std::atomic<int> io_timeout_ms{30'000};
std::atomic<int> live_streams{0};
thread_local FetchWatch* current_watch = nullptr;

// The layout of libgit2's own git_socket_stream (src/libgit2/streams/socket.h, libgit2 1.x):
// the ssh transport takes the file descriptor out of the stream it gets from the registry by
// this layout, so ours must match it field for field. The ssh integration tests fail loudly
// if it ever does not.
struct TimeoutSocketStream {
  git_stream parent;
  char* host;
  char* port;
  int s;
  // Ours, after libgit2's fields (it never looks past `s`).
  FetchWatch* watch;
};

TimeoutSocketStream* Self(git_stream* stream) {
  return reinterpret_cast<TimeoutSocketStream*>(stream);
}

void SetNetError(const std::string& message) { git_error_set_str(GIT_ERROR_NET, message.c_str()); }

// Waits until `fd` is ready for `events`; false on timeout or error (errno set).
bool WaitFor(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = poll(&p, 1, timeout_ms);
    if (n > 0) {
      return true;
    }
    if (n == 0) {
      errno = ETIMEDOUT;
      return false;
    }
    if (errno != EINTR) {
      return false;
    }
  }
}

int Connect(git_stream* stream) {
  TimeoutSocketStream* st = Self(stream);
  const int timeout = io_timeout_ms.load();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* info = nullptr;
  const int rc = getaddrinfo(st->host, st->port, &hints, &info);
  if (rc != 0) {
    SetNetError(std::string("failed to resolve address for ") + st->host + ": " + gai_strerror(rc));
    return -1;
  }
  std::string last_error = "no address";
  for (addrinfo* p = info; p != nullptr; p = p->ai_next) {
    const int fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const int flags = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    bool connected = ::connect(fd, p->ai_addr, p->ai_addrlen) == 0;
    if (!connected && errno == EINPROGRESS && WaitFor(fd, POLLOUT, timeout)) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      connected = err == 0;
      errno = err;
    }
    if (!connected) {
      last_error = std::strerror(errno);
      close(fd);
      continue;
    }
    fcntl(fd, F_SETFL, flags);
    timeval tv{timeout / 1000, static_cast<suseconds_t>(timeout % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    st->s = fd;
    st->watch = FetchWatch::Current();
    if (st->watch != nullptr) {
      st->watch->Add(fd);
    }
    freeaddrinfo(info);
    return 0;
  }
  freeaddrinfo(info);
  SetNetError(std::string("failed to connect to ") + st->host + ": " + last_error);
  return -1;
}

ssize_t Read(git_stream* stream, void* data, size_t len) {
  for (;;) {
    const ssize_t n = recv(Self(stream)->s, data, len, 0);
    if (n >= 0) {
      return n;
    }
    if (errno == EINTR) {
      continue;
    }
    SetNetError(errno == EAGAIN || errno == EWOULDBLOCK
                    ? "timed out waiting for the server (" +
                          std::to_string(io_timeout_ms.load() / 1000) + "s without data)"
                    : std::string("error receiving data from socket: ") + std::strerror(errno));
    return -1;
  }
}

ssize_t Write(git_stream* stream, const char* data, size_t len, int /*flags*/) {
  for (;;) {
    const ssize_t n = send(Self(stream)->s, data, len, MSG_NOSIGNAL);
    if (n >= 0) {
      return n;
    }
    if (errno == EINTR) {
      continue;
    }
    SetNetError(errno == EAGAIN || errno == EWOULDBLOCK
                    ? std::string("timed out sending to the server")
                    : std::string("error sending data to socket: ") + std::strerror(errno));
    return -1;
  }
}

int Close(git_stream* stream) {
  TimeoutSocketStream* st = Self(stream);
  if (st->s >= 0) {
    if (st->watch != nullptr) {
      st->watch->Remove(st->s);  // before close: the number may be reused at once
    }
    ::close(st->s);
    st->s = -1;
  }
  return 0;
}

void Free(git_stream* stream) {
  TimeoutSocketStream* st = Self(stream);
  Close(stream);
  std::free(st->host);
  std::free(st->port);
  std::free(st);
  live_streams.fetch_sub(1);
}

int New(git_stream** out, const char* host, const char* port) {
  auto* st = static_cast<TimeoutSocketStream*>(std::calloc(1, sizeof(TimeoutSocketStream)));
  if (st == nullptr) {
    return -1;
  }
  live_streams.fetch_add(1);
  st->host = strdup(host);
  st->port = strdup(port);
  st->s = -1;
  st->parent.version = GIT_STREAM_VERSION;
  st->parent.connect = Connect;
  st->parent.read = Read;
  st->parent.write = Write;
  st->parent.close = Close;
  st->parent.free = Free;
  *out = &st->parent;
  return 0;
}

}  // namespace

FetchWatch::FetchWatch(std::chrono::steady_clock::time_point deadline) {
  current_watch = this;
  watchdog_ = std::thread([this, deadline] {
    std::unique_lock<std::mutex> lock(mutex_);
    if (wake_.wait_until(lock, deadline, [this] { return done_; })) {
      return;
    }
    expired_ = true;
    for (int fd : fds_) {
      shutdown(fd, SHUT_RDWR);  // wakes whatever waits on it; the owner still closes it
    }
  });
}

FetchWatch::~FetchWatch() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
  }
  wake_.notify_all();
  watchdog_.join();
  current_watch = nullptr;
}

bool FetchWatch::expired() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return expired_;
}

FetchWatch* FetchWatch::Current() { return current_watch; }

void FetchWatch::Add(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  fds_.push_back(fd);
  if (expired_) {
    shutdown(fd, SHUT_RDWR);
  }
}

void FetchWatch::Remove(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  fds_.erase(std::remove(fds_.begin(), fds_.end(), fd), fds_.end());
}

int LiveSocketStreams() { return live_streams.load(); }

int RegisterTimeoutSocketStream(std::chrono::milliseconds io_timeout) {
  io_timeout_ms.store(static_cast<int>(io_timeout.count()));
  git_stream_registration registration{};
  registration.version = GIT_STREAM_VERSION;
  registration.init = New;
  return git_stream_register(GIT_STREAM_STANDARD, &registration);
}

}  // namespace flotilla::source
