#include "providers/hostsim/sim_front.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::hostsim {
namespace front {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kListenId = 0;
constexpr uint64_t kWakeId = 1;

// Waits until `fd` is ready for `events` or `timeout` passes.
bool WaitFor(int fd, short events, std::chrono::microseconds timeout) {
  pollfd p{.fd = fd, .events = events, .revents = 0};
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - Clock::now() + std::chrono::microseconds(999));
    const int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (n > 0) {
      return true;
    }
    if (n == 0 || errno != EINTR) {
      return false;
    }
  }
}

void AddressOf(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  if ((peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len)) != 0) {
    return;
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    port = ntohs(in6->sin6_port);
  }
  ip = text;
}

// A connected socket as httplib reads and writes it, with a read buffer that lives as long as
// the connection (a pipelined request may already be in it when the previous one is answered).
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(int fd, std::chrono::microseconds read_timeout,
                   std::chrono::microseconds write_timeout)
      : fd_(fd), read_timeout_(read_timeout), write_timeout_(write_timeout) {}

  bool buffered() const { return offset_ < size_; }

  bool is_readable() const override { return buffered() || WaitFor(fd_, POLLIN, read_timeout_); }
  bool is_writable() const override { return WaitFor(fd_, POLLOUT, write_timeout_); }

  ssize_t read(char* ptr, size_t size) override {
    if (!buffered()) {
      if (!WaitFor(fd_, POLLIN, read_timeout_)) {
        return -1;
      }
      if (size >= buffer_.size()) {
        return Receive(ptr, size);
      }
      const ssize_t n = Receive(buffer_.data(), buffer_.size());
      if (n <= 0) {
        return n;
      }
      offset_ = 0;
      size_ = static_cast<size_t>(n);
    }
    const size_t n = std::min(size, size_ - offset_);
    std::memcpy(ptr, buffer_.data() + offset_, n);
    offset_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!WaitFor(fd_, POLLOUT, write_timeout_)) {
      return -1;
    }
    for (;;) {
      const ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
      if (n >= 0 || errno != EINTR) {
        return n;
      }
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    AddressOf(fd_, /*peer=*/true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    AddressOf(fd_, /*peer=*/false, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  ssize_t Receive(char* ptr, size_t size) {
    for (;;) {
      const ssize_t n = ::recv(fd_, ptr, size, 0);
      if (n >= 0 || errno != EINTR) {
        return n;
      }
    }
  }

  int fd_;
  std::chrono::microseconds read_timeout_;
  std::chrono::microseconds write_timeout_;
  std::array<char, 4096> buffer_{};
  size_t offset_ = 0;
  size_t size_ = 0;
};

struct Connection {
  Connection(uint64_t id_in, int fd_in, std::chrono::microseconds read_timeout,
             std::chrono::microseconds write_timeout)
      : id(id_in), fd(fd_in), stream(fd_in, read_timeout, write_timeout) {}
  uint64_t id;
  int fd;
  ConnectionStream stream;
  size_t served = 0;   // requests answered on this connection
  bool parked = true;  // in the epoll set, waiting for a request (else a worker has it)
  Clock::time_point idle_since = Clock::now();
};

bool Arm(int epoll_fd, int op, int fd, uint64_t id) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
  ev.data.u64 = id;
  return ::epoll_ctl(epoll_fd, op, fd, &ev) == 0;
}

}  // namespace front

using front::Clock;
using front::Connection;

EventFront::EventFront(size_t workers)
    : workers_(std::max<size_t>(1, workers)),
      epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

EventFront::~EventFront() {
  StopEvents();
  if (epoll_fd_ >= 0) {
    ::close(epoll_fd_);
  }
  if (wake_fd_ >= 0) {
    ::close(wake_fd_);
  }
  const socket_t listen_fd = svr_sock_.exchange(INVALID_SOCKET);
  if (listen_fd != INVALID_SOCKET) {
    ::close(listen_fd);
  }
}

void EventFront::StopEvents() {
  stopping_ = true;
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
}

bool EventFront::ServeEvents() {
  const socket_t listen_fd = svr_sock_.load();
  if (listen_fd == INVALID_SOCKET || epoll_fd_ < 0 || wake_fd_ < 0) {
    return false;
  }
  ::fcntl(listen_fd, F_SETFL, ::fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
  front::Arm(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, front::kWakeId);
  epoll_event listen_ev{};
  listen_ev.events = EPOLLIN;
  listen_ev.data.u64 = front::kListenId;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd, &listen_ev);
  pool_ = std::make_unique<httplib::ThreadPool>(workers_);
  serving_ = true;

  std::vector<epoll_event> events(256);
  auto last_sweep = Clock::now();
  while (!stopping_) {
    const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 1000);
    for (int i = 0; i < n && !stopping_; ++i) {
      const uint64_t id = events[static_cast<size_t>(i)].data.u64;
      if (id == front::kListenId) {
        Accept(listen_fd);
      } else if (id != front::kWakeId) {
        Dispatch(id);
      }
    }
    const auto now = Clock::now();
    if (now - last_sweep >= std::chrono::seconds(1)) {
      last_sweep = now;
      CloseIdle(now);
    }
  }

  // Stop accepting, close idle connections, let the requests in flight finish.
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd, nullptr);
  if (svr_sock_.exchange(INVALID_SOCKET) != INVALID_SOCKET) {
    ::shutdown(listen_fd, SHUT_RDWR);
    ::close(listen_fd);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (it->second->parked) {
        ::shutdown(it->second->fd, SHUT_RDWR);
        ::close(it->second->fd);
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }
  pool_->shutdown();  // workers close their connections once stopping_ is seen
  pool_.reset();
  serving_ = false;
  return true;
}

void EventFront::Accept(int listen_fd) {
  const auto read_timeout =
      std::chrono::seconds(read_timeout_sec_) + std::chrono::microseconds(read_timeout_usec_);
  const auto write_timeout =
      std::chrono::seconds(write_timeout_sec_) + std::chrono::microseconds(write_timeout_usec_);
  for (;;) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: the listening socket stays readable, so wait a little instead of
        // spinning (as httplib::Server does).
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return;  // EAGAIN: none left; otherwise try again on the next wake-up
    }
    // Headers and body go out in separate writes (see SimServer::Bind).
    int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t id = next_id_++;
    auto conn = std::make_unique<Connection>(id, fd, read_timeout, write_timeout);
    if (!front::Arm(epoll_fd_, EPOLL_CTL_ADD, fd, id)) {
      ::close(fd);
      continue;
    }
    connections_.emplace(id, std::move(conn));
  }
}

void EventFront::Dispatch(uint64_t id) {
  Connection* conn = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = connections_.find(id);
    if (it == connections_.end() || !it->second->parked) {
      return;
    }
    conn = it->second.get();
    conn->parked = false;
  }
  pool_->enqueue([this, conn] { Work(conn); });
}

void EventFront::Work(Connection* conn) {
  // As httplib::Server's own loop: the keep_alive_max_count-th request is answered with
  // "Connection: close"; a request that asks to close, or one that fails, ends the connection.
  for (;;) {
    const bool last = conn->served + 1 >= keep_alive_max_count_;
    bool closed = false;
    const bool ok =
        process_request(conn->stream, last, closed, [](httplib::Request& /*request*/) {});
    ++conn->served;
    if (!ok || closed || last || stopping_) {
      Close(conn);
      return;
    }
    if (!conn->stream.buffered()) {
      break;
    }
  }
  Park(conn);
}

void EventFront::Park(Connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    ::shutdown(conn->fd, SHUT_RDWR);
    ::close(conn->fd);
    connections_.erase(conn->id);
    return;
  }
  conn->parked = true;
  conn->idle_since = Clock::now();
  if (!front::Arm(epoll_fd_, EPOLL_CTL_MOD, conn->fd, conn->id)) {
    ::close(conn->fd);
    connections_.erase(conn->id);
  }
}

void EventFront::Close(Connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn->fd, nullptr);
  ::shutdown(conn->fd, SHUT_RDWR);
  ::close(conn->fd);
  connections_.erase(conn->id);
}

void EventFront::CloseIdle(Clock::time_point now) {
  const auto timeout = std::chrono::seconds(keep_alive_timeout_sec_);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = connections_.begin(); it != connections_.end();) {
    Connection& conn = *it->second;
    if (conn.parked && now - conn.idle_since > timeout) {
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
      ::shutdown(conn.fd, SHUT_RDWR);
      ::close(conn.fd);
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace flotilla::hostsim
