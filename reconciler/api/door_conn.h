#pragma once

// The front door's connections (front_door.h), internal to it: a connection, a worker's view of
// it as a cpp-httplib stream, and the worker pools that serve connections handed to them.

#include <httplib.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace flotilla::api {
// Named (not anonymous): FrontDoor::Impl, a member of an exported class, holds these types.
namespace door {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One client connection. Owned by the event thread; while `with_worker`, only that worker
// touches it.
struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  bool handshaken = false;
  std::string ip;
  int port = 0;
  std::string in;       // bytes read and not yet consumed by a worker
  size_t consumed = 0;  // how much of `in` the worker has read
  SteadyClock::time_point accepted;
  SteadyClock::time_point deadline;  // for the request under way
  bool with_worker = false;
  bool close = false;      // the worker says: no further request on it
  bool peer_done = false;  // the client will send nothing more
  // Refused and answered: what the client still sends is read and dropped until it stops or
  // the deadline comes, so that closing does not reset the connection before it reads the
  // answer.
  bool draining = false;
};

// Waits until `fd` is readable (or writable); false on timeout or error.
inline bool Wait(int fd, bool write, milliseconds timeout) {
  pollfd p{.fd = fd, .events = static_cast<short>(write ? POLLOUT : POLLIN), .revents = 0};
  for (;;) {
    const int r = poll(&p, 1, static_cast<int>(timeout.count()));
    if (r < 0 && errno == EINTR) {
      continue;
    }
    return r > 0;
  }
}

// A worker's view of a connection: the bytes the event thread read first, then the socket.
// Every wait is bounded by `timeout`, and all of them together by `total`: a client that reads
// the answer slowly holds a worker for `total` at most.
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(Conn& conn, milliseconds timeout, milliseconds total)
      : conn_(conn), timeout_(timeout), until_(SteadyClock::now() + total) {}

  bool is_readable() const override {
    return conn_.consumed < conn_.in.size() ||
           (conn_.ssl != nullptr && SSL_pending(conn_.ssl) > 0) || Wait(conn_.fd, false, Left());
  }
  bool is_writable() const override { return Wait(conn_.fd, true, Left()); }

  ssize_t read(char* ptr, size_t size) override {
    if (conn_.consumed < conn_.in.size()) {
      const size_t n = std::min(size, conn_.in.size() - conn_.consumed);
      std::copy_n(conn_.in.data() + conn_.consumed, n, ptr);
      conn_.consumed += n;
      return static_cast<ssize_t>(n);
    }
    for (;;) {
      bool want_write = false;
      if (conn_.ssl != nullptr) {
        ERR_clear_error();  // SSL_get_error reads this thread's queue
        const int n = SSL_read(conn_.ssl, ptr, static_cast<int>(std::min<size_t>(size, 1 << 30)));
        if (n > 0) {
          return n;
        }
        const int error = SSL_get_error(conn_.ssl, n);
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
          return error == SSL_ERROR_ZERO_RETURN ? 0 : -1;
        }
        want_write = error == SSL_ERROR_WANT_WRITE;
      } else {
        const ssize_t n = recv(conn_.fd, ptr, size, 0);
        if (n >= 0) {
          return n;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          return -1;
        }
      }
      if (!Wait(conn_.fd, want_write, Left())) {
        return -1;
      }
    }
  }

  ssize_t write(const char* ptr, size_t size) override {
    for (;;) {
      bool want_read = false;
      if (conn_.ssl != nullptr) {
        ERR_clear_error();
        const int n = SSL_write(conn_.ssl, ptr, static_cast<int>(std::min<size_t>(size, 1 << 30)));
        if (n > 0) {
          return n;
        }
        const int error = SSL_get_error(conn_.ssl, n);
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
          return -1;
        }
        want_read = error == SSL_ERROR_WANT_READ;
      } else {
        const ssize_t n = send(conn_.fd, ptr, size, MSG_NOSIGNAL);
        if (n >= 0) {
          return n;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          return -1;
        }
      }
      if (!Wait(conn_.fd, !want_read, Left())) {
        return -1;
      }
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = conn_.ip;
    port = conn_.port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    ip.clear();
    port = 0;
    if (getsockname(conn_.fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      std::array<char, NI_MAXHOST> host{};
      std::array<char, NI_MAXSERV> serv{};
      if (getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host.data(), host.size(),
                      serv.data(), serv.size(), NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
        ip = host.data();
        port = std::atoi(serv.data());
      }
    }
  }
  socket_t socket() const override { return conn_.fd; }

 private:
  milliseconds Left() const {
    const auto left = std::chrono::duration_cast<milliseconds>(until_ - SteadyClock::now());
    return std::clamp(left, milliseconds{0}, timeout_);
  }

  Conn& conn_;
  milliseconds timeout_;
  SteadyClock::time_point until_;
};

// A fixed set of threads serving connections handed to it, in order.
class Workers {
 public:
  Workers(size_t count, std::function<void(Conn*)> serve) : serve_(std::move(serve)) {
    for (size_t i = 0; i < std::max<size_t>(count, 1); ++i) {
      threads_.emplace_back([this] { Run(); });
    }
  }
  ~Workers() { Stop(); }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  void Push(Conn* conn) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(conn);
    }
    cv_.notify_one();
  }
  // Threads neither serving nor promised to a queued connection.
  size_t Idle() {
    std::lock_guard lock(mu_);
    const size_t taken = busy_ + queue_.size();
    return threads_.size() > taken ? threads_.size() - taken : 0;
  }
  // Ends the threads once the connections they are serving are done; queued ones are not
  // served. Returns those.
  std::deque<Conn*> Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    threads_.clear();  // joins
    std::lock_guard lock(mu_);
    return std::exchange(queue_, {});
  }

 private:
  void Run() {
    for (;;) {
      Conn* conn = nullptr;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) {
          return;
        }
        conn = queue_.front();
        queue_.pop_front();
        ++busy_;
      }
      serve_(conn);
      std::lock_guard lock(mu_);
      --busy_;
    }
  }

  std::function<void(Conn*)> serve_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Conn*> queue_;
  size_t busy_ = 0;
  bool stopping_ = false;
  std::vector<std::jthread> threads_;
};

}  // namespace door
}  // namespace flotilla::api
