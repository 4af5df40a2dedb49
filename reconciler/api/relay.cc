#include "reconciler/api/relay.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "reconciler/model/text.h"

namespace flotilla::api {
namespace relay {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kBufferBytes = size_t{64} << 10;

// One direction: bytes read from one end and not yet written to the other.
struct Pipe {
  std::vector<char> data = std::vector<char>(kBufferBytes);
  size_t begin = 0;
  size_t end = 0;
  bool eof = false;   // the source ended
  bool shut = false;  // the end was passed on
  bool empty() const { return begin == end; }
};

enum class Io : uint8_t { kMoved, kBlocked, kEnded, kBroken };

// The client's side, plain or TLS. TLS may need the other readiness than the operation's
// (a read that must write, a write that must read): it says so through the flags.
class ClientEnd {
 public:
  ClientEnd(int fd, SSL* ssl, std::string unread)
      : fd_(fd), ssl_(ssl), unread_(std::move(unread)) {}

  Io Read(Pipe& p) {
    p.begin = p.end = 0;
    if (unread_at_ < unread_.size()) {
      const size_t n = std::min(p.data.size(), unread_.size() - unread_at_);
      std::copy_n(unread_.data() + unread_at_, n, p.data.data());
      unread_at_ += n;
      p.end = n;
      return Io::kMoved;
    }
    read_wants_write_ = false;
    if (ssl_ == nullptr) {
      const ssize_t n = recv(fd_, p.data.data(), p.data.size(), 0);
      return n > 0 ? (p.end = static_cast<size_t>(n), Io::kMoved) : n == 0 ? Io::kEnded : Errno();
    }
    ERR_clear_error();
    const int n = SSL_read(ssl_, p.data.data(), static_cast<int>(p.data.size()));
    if (n > 0) {
      p.end = static_cast<size_t>(n);
      return Io::kMoved;
    }
    return SslError(n, read_wants_write_, /*reading=*/true);
  }

  Io Write(Pipe& p, uint64_t& moved) {
    write_wants_read_ = false;
    const size_t size = p.end - p.begin;
    ssize_t n = 0;
    if (ssl_ == nullptr) {
      n = send(fd_, p.data.data() + p.begin, size, MSG_NOSIGNAL);
      if (n < 0) {
        return Errno();
      }
    } else {
      ERR_clear_error();
      const int r = SSL_write(ssl_, p.data.data() + p.begin, static_cast<int>(size));
      if (r <= 0) {
        return SslError(r, write_wants_read_, /*reading=*/false);
      }
      n = r;
    }
    p.begin += static_cast<size_t>(n);
    moved += static_cast<uint64_t>(n);
    return Io::kMoved;
  }

  // Passes on the end of the VM's stream: close_notify under TLS (which ends only this
  // direction in TLS 1.3), else a TCP half-close.
  void Shut() {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      (void)SSL_shutdown(ssl_);
      ERR_clear_error();
    } else {
      shutdown(fd_, SHUT_WR);
    }
  }

  // What to poll for, given what the relay wants of this end.
  short Events(bool want_read, bool want_write) const {
    short events = 0;
    if ((want_read && !read_wants_write_) || (want_write && write_wants_read_)) {
      events |= POLLIN;
    }
    if ((want_write && !write_wants_read_) || (want_read && read_wants_write_)) {
      events |= POLLOUT;
    }
    return events;
  }
  // Decrypted bytes waiting: poll would not show them.
  bool Pending() const { return ssl_ != nullptr && SSL_pending(ssl_) > 0; }
  int fd() const { return fd_; }

 private:
  static Io Errno() {
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? Io::kBlocked : Io::kBroken;
  }
  Io SslError(int r, bool& wants_other, bool reading) {
    const int error = SSL_get_error(ssl_, r);
    ERR_clear_error();
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      wants_other = reading ? error == SSL_ERROR_WANT_WRITE : error == SSL_ERROR_WANT_READ;
      return Io::kBlocked;
    }
    return reading && error == SSL_ERROR_ZERO_RETURN ? Io::kEnded : Io::kBroken;
  }

  int fd_;
  SSL* ssl_;
  std::string unread_;
  size_t unread_at_ = 0;
  bool read_wants_write_ = false;
  bool write_wants_read_ = false;
};

Io ReadFd(int fd, Pipe& p) {
  p.begin = p.end = 0;
  const ssize_t n = read(fd, p.data.data(), p.data.size());
  if (n > 0) {
    p.end = static_cast<size_t>(n);
    return Io::kMoved;
  }
  if (n == 0) {
    return Io::kEnded;
  }
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? Io::kBlocked : Io::kBroken;
}

// A socket is written with send, which never raises SIGPIPE; a pipe with write (the CLI, which
// ignores SIGPIPE).
Io WriteFd(int fd, bool socket, Pipe& p, uint64_t& moved) {
  const ssize_t n = socket ? send(fd, p.data.data() + p.begin, p.end - p.begin, MSG_NOSIGNAL)
                           : write(fd, p.data.data() + p.begin, p.end - p.begin);
  if (n < 0) {
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? Io::kBlocked : Io::kBroken;
  }
  p.begin += static_cast<size_t>(n);
  moved += static_cast<uint64_t>(n);
  return Io::kMoved;
}

}  // namespace relay

RelayOutcome Relay(int client_fd, SSL* client_ssl, std::string unread, int upstream_read_fd,
                   int upstream_write_fd, std::chrono::milliseconds idle_timeout,
                   const std::atomic<bool>& stopping) {
  using relay::Io;
  using relay::Pipe;
  using relay::SteadyClock;
  for (int fd : {upstream_read_fd, upstream_write_fd}) {
    if (const int flags = fcntl(fd, F_GETFL); flags >= 0) {
      fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }
  }
  struct stat info {};
  const bool write_socket = fstat(upstream_write_fd, &info) == 0 && S_ISSOCK(info.st_mode);
  // What arrives is passed on at once (keystrokes of an ssh session): no Nagle delay on either
  // TCP end. Fails harmlessly on a socket that is not TCP.
  for (int fd : {client_fd, upstream_write_fd}) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  relay::ClientEnd client(client_fd, client_ssl, std::move(unread));
  Pipe up;    // client -> VM
  Pipe down;  // VM -> client
  RelayOutcome outcome;
  auto last_moved = SteadyClock::now();
  for (;;) {
    if (stopping) {
      outcome.end = "the API is stopping";
      break;
    }
    bool moved = false;
    // Client to VM.
    if (up.empty() && !up.eof) {
      const Io io = client.Read(up);
      moved |= io == Io::kMoved;
      up.eof = io == Io::kEnded;
      if (io == Io::kBroken) {
        outcome.end = "the client's connection broke";
        break;
      }
    }
    if (!up.empty()) {
      const Io io = relay::WriteFd(upstream_write_fd, write_socket, up, outcome.to_vm);
      moved |= io == Io::kMoved;
      if (io == Io::kBroken) {
        outcome.end = "the VM's port closed the connection";
        break;
      }
    }
    if (up.empty() && up.eof && !up.shut) {
      if (write_socket) {
        shutdown(upstream_write_fd, SHUT_WR);
      } else {
        close(upstream_write_fd);
      }
      up.shut = true;
    }
    // VM to client.
    if (down.empty() && !down.eof) {
      const Io io = relay::ReadFd(upstream_read_fd, down);
      moved |= io == Io::kMoved;
      down.eof = io == Io::kEnded;
      if (io == Io::kBroken) {
        outcome.end = "the connection to the VM's port broke";
        break;
      }
    }
    if (!down.empty()) {
      const Io io = client.Write(down, outcome.from_vm);
      moved |= io == Io::kMoved;
      if (io == Io::kBroken) {
        outcome.end = "the client's connection broke";
        break;
      }
    }
    if (down.empty() && down.eof && !down.shut) {
      client.Shut();
      down.shut = true;
    }
    if (up.shut && down.shut) {
      outcome.end = "closed";
      break;
    }
    const auto now = SteadyClock::now();
    if (moved || (up.empty() && !up.eof && client.Pending())) {
      last_moved = now;
      continue;
    }
    if (now - last_moved >= idle_timeout) {
      outcome.end = "idle for " + FormatDuration(idle_timeout);
      break;
    }
    // The upstream's two ends may be one descriptor: poll it once for both.
    std::array<pollfd, 3> polls{};
    polls[0] = {.fd = client.fd(),
                .events = client.Events(up.empty() && !up.eof, !down.empty()),
                .revents = 0};
    const short read_events = down.empty() && !down.eof ? POLLIN : 0;
    const short write_events = !up.empty() ? POLLOUT : 0;
    size_t count = 2;
    if (upstream_read_fd == upstream_write_fd) {
      polls[1] = {.fd = upstream_read_fd,
                  .events = static_cast<short>(read_events | write_events),
                  .revents = 0};
    } else {
      polls[1] = {
          .fd = read_events != 0 ? upstream_read_fd : -1, .events = read_events, .revents = 0};
      polls[2] = {.fd = write_events != 0 && !up.shut ? upstream_write_fd : -1,
                  .events = write_events,
                  .revents = 0};
      count = 3;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(idle_timeout - (now - last_moved));
    const int wait = static_cast<int>(std::clamp<int64_t>(left.count(), 1, 250));
    (void)poll(polls.data(), count, wait);
  }
  return outcome;
}

}  // namespace flotilla::api
