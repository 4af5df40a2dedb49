#include "reconciler/api/front_door.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "reconciler/api/door_conn.h"
#include "reconciler/model/text.h"

namespace flotilla::api {
// Named (not anonymous): FrontDoor::Impl, a member of an exported class, holds these types.
namespace door {

// The request in `in`, as far as the front door needs it: whether it is complete, and whether
// it is a health check.
struct Framing {
  bool complete = false;
  // Refused in the event thread, with this status line (a worker never waits for such a body):
  // "431 Request Header Fields Too Large", "413 Content Too Large", "411 Length Required".
  std::string_view refuse;
};

constexpr std::string_view kHeaderTooLarge = "431 Request Header Fields Too Large";
constexpr std::string_view kBodyTooLarge = "413 Content Too Large";
constexpr std::string_view kChunked = "411 Length Required";
constexpr std::string_view kNoWorker = "503 Service Unavailable";

Framing Frame(const std::string& in, size_t max_header, size_t max_body) {
  const size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) {
    return Framing{.refuse = in.size() > max_header ? kHeaderTooLarge : std::string_view()};
  }
  if (end + 4 > max_header) {
    return Framing{.refuse = kHeaderTooLarge};
  }
  const std::string header = AsciiLower(std::string_view(in).substr(0, end + 2));
  size_t length = 0;
  if (size_t at = header.find("\r\ncontent-length:"); at != std::string::npos) {
    at += 17;
    while (at < header.size() && (header[at] == ' ' || header[at] == '\t')) {
      ++at;
    }
    size_t digits = 0;
    while (at < header.size() && header[at] >= '0' && header[at] <= '9' && digits < 19) {
      length = length * 10 + static_cast<size_t>(header[at++] - '0');
      ++digits;
    }
  }
  // A body is read whole before a worker sees the request: one beyond the limit is refused,
  // and so is a chunked one (no endpoint needs it; webhooks and the CLI send a length).
  if (header.find("\r\ntransfer-encoding:") != std::string::npos) {
    return Framing{.refuse = kChunked};
  }
  if (length > max_body) {
    return Framing{.refuse = kBodyTooLarge};
  }
  return Framing{.complete = in.size() >= end + 4 + length};
}

// Whether the request line of `in` is one of `requests` ("GET /path"), with any query.
bool IsRequestFor(const std::string& in, std::initializer_list<std::string_view> requests) {
  for (std::string_view request : requests) {
    if (in.size() > request.size() && in.starts_with(request) &&
        (in[request.size()] == ' ' || in[request.size()] == '?')) {
      return true;
    }
  }
  return false;
}

bool IsHealthCheck(const std::string& in) {
  return IsRequestFor(in, {"GET /healthz", "GET /readyz"});
}

bool IsLiveStream(const std::string& in) { return IsRequestFor(in, {"GET /api/v1/events/stream"}); }

// GET /api/v1/vms/NAME/port-forward, with any query.
bool IsTunnel(const std::string& in) {
  constexpr std::string_view kPrefix = "GET /api/v1/vms/";
  constexpr std::string_view kSuffix = "/port-forward";
  if (!in.starts_with(kPrefix)) {
    return false;
  }
  const size_t end = in.find_first_of(" ?\r\n", kPrefix.size());
  if (end == std::string::npos) {
    return false;
  }
  const std::string_view path(in.data(), end);
  return path.size() > kPrefix.size() + kSuffix.size() && path.ends_with(kSuffix);
}

}  // namespace door

using door::Conn;
using door::ConnStream;
using door::Frame;
using door::Framing;
using door::IsHealthCheck;
using door::IsLiveStream;
using door::IsTunnel;
using door::kBodyTooLarge;
using door::kHeaderTooLarge;
using door::kNoWorker;
using door::SteadyClock;
using door::Workers;
using std::chrono::milliseconds;

struct FrontDoor::Impl {
  FrontDoorOptions options;
  Handler handler;
  Handler live;          // for GET /api/v1/events/stream
  TunnelHandler tunnel;  // for GET /api/v1/vms/NAME/port-forward
  std::shared_ptr<spdlog::logger> logger;
  int listen_fd = -1;
  int wake_fd = -1;  // eventfd: connections came back from workers, or Stop
  int epoll_fd = -1;
  int port = 0;
  SSL_CTX* tls = nullptr;

  std::map<int, std::unique_ptr<Conn>> conns;  // by fd; event thread only
  std::map<std::string, size_t> per_client;    // open connections by address; event thread only
  std::mutex back_mu;                          // guards back
  std::vector<Conn*> back;                     // returned by workers
  std::atomic<bool> stopping{false};
  std::optional<SteadyClock::time_point> accept_paused_until;  // out of descriptors: see Accept
  std::unique_ptr<Workers> workers;
  std::unique_ptr<Workers> health;
  std::unique_ptr<Workers> streams;  // GET /api/v1/events/stream, each held for a while
  std::unique_ptr<Workers> tunnels;  // GET /api/v1/vms/NAME/port-forward, each for its life
  std::thread thread;

  ~Impl() {
    if (tls != nullptr) {
      SSL_CTX_free(tls);
    }
    for (int fd : {listen_fd, wake_fd, epoll_fd}) {
      if (fd >= 0) {
        close(fd);
      }
    }
  }

  Status Bind() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port_text = std::to_string(options.port);
    if (getaddrinfo(options.host.c_str(), port_text.c_str(), &hints, &found) != 0 ||
        found == nullptr) {
      return Status::Unavailable("not an address of this machine");
    }
    for (addrinfo* a = found; a != nullptr && listen_fd < 0; a = a->ai_next) {
      const int fd =
          socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        continue;
      }
      // SO_REUSEADDR only: a restart may bind while old connections linger, but a second loop
      // configured with the same address fails to start (SO_REUSEPORT would share the port).
      int yes = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
        listen_fd = fd;
      } else {
        close(fd);
      }
    }
    freeaddrinfo(found);
    if (listen_fd < 0) {
      return Status::Unavailable("in use, or not an address of this machine");
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    return Status::Ok();
  }

  Status LoadTls() {
    tls = SSL_CTX_new(TLS_server_method());
    if (tls == nullptr) {
      return Status::FailedPrecondition("cannot set up TLS");
    }
    SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION);
    SSL_CTX_set_mode(tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(tls, options.tls_cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(tls, options.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(tls) != 1) {
      ERR_clear_error();
      return Status::FailedPrecondition("cannot load the API's TLS certificate " +
                                        options.tls_cert_file + " and key " + options.tls_key_file);
    }
    return Status::Ok();
  }

  void Watch(Conn& conn, bool write, int op) {
    epoll_event ev{};
    ev.events = (write ? EPOLLOUT : EPOLLIN) | EPOLLRDHUP;
    ev.data.fd = conn.fd;
    epoll_ctl(epoll_fd, op, conn.fd, &ev);
  }

  void Close(int fd) {
    auto it = conns.find(fd);
    if (it == conns.end()) {
      return;
    }
    Conn& conn = *it->second;
    if (!conn.with_worker) {
      epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    }
    if (conn.ssl != nullptr) {
      SSL_free(conn.ssl);
    }
    close(fd);
    if (auto c = per_client.find(conn.ip); c != per_client.end() && --c->second == 0) {
      per_client.erase(c);
    }
    conns.erase(it);
  }

  void Accept() {
    for (;;) {
      sockaddr_storage addr{};
      socklen_t len = sizeof(addr);
      const int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
          // Out of descriptors: make room by closing the connection that has waited longest
          // for its request; with none, stop accepting for a moment (the listening socket
          // stays readable, and would wake the loop at once, forever).
          if (!EvictOldestPending()) {
            epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
            accept_paused_until = SteadyClock::now() + milliseconds{100};
            return;
          }
          continue;
        }
        return;  // EAGAIN: all taken; anything else: tried again on the next wake-up
      }
      std::array<char, NI_MAXHOST> host{};
      std::array<char, NI_MAXSERV> serv{};
      getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host.data(), host.size(), serv.data(),
                  serv.size(), NI_NUMERICHOST | NI_NUMERICSERV);
      const std::string ip = host.data();
      if (auto open = per_client.find(ip);
          open != per_client.end() && open->second >= options.max_per_client) {
        logger->debug("api: {} has {} connections open; closing another", ip, open->second);
        close(fd);
        continue;
      }
      if (conns.size() >= options.max_connections && !EvictOldestPending()) {
        close(fd);
        continue;
      }
      auto conn = std::make_unique<Conn>();
      conn->fd = fd;
      conn->ip = ip;
      conn->port = std::atoi(serv.data());
      conn->accepted = SteadyClock::now();
      conn->deadline = conn->accepted + options.header_timeout;
      if (tls != nullptr) {
        conn->ssl = SSL_new(tls);
        SSL_set_fd(conn->ssl, fd);
        SSL_set_accept_state(conn->ssl);
      }
      ++per_client[ip];
      Conn& c = *conn;
      conns.emplace(fd, std::move(conn));
      Watch(c, false, EPOLL_CTL_ADD);
    }
  }

  // Closes the connection that has waited longest for its request; false if none waits.
  bool EvictOldestPending() {
    Conn* oldest = nullptr;
    for (auto& [fd, conn] : conns) {
      if (!conn->with_worker && (oldest == nullptr || conn->accepted < oldest->accepted)) {
        oldest = conn.get();
      }
    }
    if (oldest == nullptr) {
      return false;
    }
    Close(oldest->fd);
    return true;
  }

  // Reads what the connection has sent; hands it to a worker once its request is complete.
  void Pump(Conn& conn) {
    if (conn.draining) {
      std::array<char, 16384> sink{};
      for (;;) {
        const ssize_t n = recv(conn.fd, sink.data(), sink.size(), 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          return;
        }
        if (n <= 0) {
          Close(conn.fd);
          return;
        }
      }
    }
    if (conn.ssl != nullptr && !conn.handshaken) {
      ERR_clear_error();
      const int r = SSL_do_handshake(conn.ssl);
      if (r != 1) {
        const int error = SSL_get_error(conn.ssl, r);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
          Watch(conn, error == SSL_ERROR_WANT_WRITE, EPOLL_CTL_MOD);
          return;
        }
        ERR_clear_error();
        Close(conn.fd);
        return;
      }
      conn.handshaken = true;
      Watch(conn, false, EPOLL_CTL_MOD);
    }
    std::array<char, 16384> buffer{};
    for (;;) {
      ssize_t n = 0;
      if (conn.ssl != nullptr) {
        ERR_clear_error();
        const int r = SSL_read(conn.ssl, buffer.data(), static_cast<int>(buffer.size()));
        if (r <= 0) {
          const int error = SSL_get_error(conn.ssl, r);
          if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
            Watch(conn, error == SSL_ERROR_WANT_WRITE, EPOLL_CTL_MOD);
            break;
          }
          ERR_clear_error();
          if (error == SSL_ERROR_ZERO_RETURN &&
              Frame(conn.in, options.max_header_bytes, options.max_body_bytes).complete) {
            conn.peer_done = true;  // sent its request and closed: still answered
            break;
          }
          Close(conn.fd);
          return;
        }
        n = r;
      } else {
        n = recv(conn.fd, buffer.data(), buffer.size(), 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          break;
        }
        if (n == 0 && Frame(conn.in, options.max_header_bytes, options.max_body_bytes).complete) {
          conn.peer_done = true;  // sent its request and shut down its side: still answered
          break;
        }
        if (n <= 0) {
          Close(conn.fd);
          return;
        }
      }
      conn.in.append(buffer.data(), static_cast<size_t>(n));
      if (conn.in.size() > options.max_header_bytes + options.max_body_bytes) {
        break;  // enough to decide
      }
    }
    Dispatch(conn);
  }

  void Dispatch(Conn& conn) {
    Framing framing = Frame(conn.in, options.max_header_bytes, options.max_body_bytes);
    const bool stream = framing.complete && IsLiveStream(conn.in);
    const bool tunnel = framing.complete && tunnels != nullptr && IsTunnel(conn.in);
    if (stream && streams->Idle() == 0) {
      framing.refuse = kNoWorker;  // never queued: it would wait for a stream to end
    }
    const bool no_tunnel_worker = tunnel && tunnels->Idle() == 0;
    if (no_tunnel_worker) {
      framing.refuse = kNoWorker;  // never queued: it would wait for a tunnel to end
    }
    if (!framing.refuse.empty()) {
      // Best effort (the socket does not block): the client may not be reading.
      const std::string_view why =
          framing.refuse == kHeaderTooLarge ? "the request header is too large"
          : framing.refuse == kBodyTooLarge ? "the request body is too large"
          : no_tunnel_worker
              ? "too many tunnels are open (api.tunnels.max); try again when one has closed"
          : framing.refuse == kNoWorker
              ? "too many live streams are open; poll GET /api/v1/changes instead"
              : "send the request body with a Content-Length";
      const std::string body = "{\"error\": \"" + std::string(why) + "\"}\n";
      const std::string answer =
          "HTTP/1.1 " + std::string(framing.refuse) +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n\r\n" + body;
      if (conn.ssl != nullptr) {
        ERR_clear_error();
        (void)SSL_write(conn.ssl, answer.data(), static_cast<int>(answer.size()));
        ERR_clear_error();
        Close(conn.fd);
        return;
      }
      (void)send(conn.fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      shutdown(conn.fd, SHUT_WR);
      conn.draining = true;
      conn.in.clear();
      conn.deadline = SteadyClock::now() + std::chrono::seconds{2};
      return;
    }
    if (!framing.complete) {
      return;  // more to come, within the deadline
    }
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, conn.fd, nullptr);
    conn.with_worker = true;
    (tunnel ? tunnels : stream ? streams : IsHealthCheck(conn.in) ? health : workers)->Push(&conn);
  }

  // On a tunnel worker: the request and its answer's head with bounded waits, then whatever
  // the handler relays. The connection carries nothing after a tunnel.
  void ServeTunnel(Conn* conn) {
    ConnStream stream(*conn, options.io_timeout, options.io_timeout * 3);
    Handover handover{.fd = conn->fd, .ssl = conn->ssl, .take_unread = [conn] {
                        std::string unread = conn->in.substr(conn->consumed);
                        conn->consumed = conn->in.size();
                        return unread;
                      }};
    tunnel(stream, handover);
    conn->in.clear();
    conn->consumed = 0;
    conn->close = true;
    {
      std::lock_guard lock(back_mu);
      back.push_back(conn);
    }
    const uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof(one));
  }

  // On a worker thread; `total` bounds all of its waits on the connection.
  void Serve(Conn* conn, milliseconds total, const Handler& serve) {
    ConnStream stream(*conn, options.io_timeout, total);
    bool closed = false;
    serve(stream, closed);
    conn->in.erase(0, conn->consumed);
    conn->consumed = 0;
    conn->close = closed;
    {
      std::lock_guard lock(back_mu);
      back.push_back(conn);
    }
    const uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof(one));
  }

  void TakeBack() {
    uint64_t count = 0;
    (void)!read(wake_fd, &count, sizeof(count));
    std::vector<Conn*> returned;
    {
      std::lock_guard lock(back_mu);
      returned.swap(back);
    }
    for (Conn* conn : returned) {
      conn->with_worker = false;
      if (conn->close || conn->peer_done || stopping) {
        Close(conn->fd);
        continue;
      }
      // Keep-alive: the next request must come within the header timeout, like the first.
      conn->accepted = SteadyClock::now();
      conn->deadline = conn->accepted + options.header_timeout;
      Watch(*conn, false, EPOLL_CTL_ADD);
      if (conn->ssl != nullptr && SSL_pending(conn->ssl) > 0) {
        Pump(*conn);  // decrypted already: epoll will not say so
      } else if (!conn->in.empty()) {
        Dispatch(*conn);  // a pipelined request
      }
    }
  }

  void CloseExpired() {
    const auto now = SteadyClock::now();
    std::vector<int> expired;
    for (const auto& [fd, conn] : conns) {
      if (!conn->with_worker && conn->deadline <= now) {
        expired.push_back(fd);
      }
    }
    for (int fd : expired) {
      Close(fd);
    }
  }

  void Loop() {
    std::array<epoll_event, 256> events{};
    while (!stopping) {
      const int n = epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), 250);
      for (int i = 0; i < n && !stopping; ++i) {
        const int fd = events[static_cast<size_t>(i)].data.fd;
        if (fd == listen_fd) {
          Accept();
        } else if (fd == wake_fd) {
          TakeBack();
        } else if (auto it = conns.find(fd); it != conns.end() && !it->second->with_worker) {
          Pump(*it->second);
        }
      }
      CloseExpired();
      if (accept_paused_until && SteadyClock::now() >= *accept_paused_until) {
        accept_paused_until.reset();
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = listen_fd;
        epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
      }
    }
  }
};

FrontDoor::FrontDoor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FrontDoor::~FrontDoor() { Stop(); }

Result<std::unique_ptr<FrontDoor>> FrontDoor::Open(FrontDoorOptions options, Handler handler,
                                                   Handler live, TunnelHandler tunnel,
                                                   std::shared_ptr<spdlog::logger> logger) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  // Connections share the process's descriptors with the store, Git and the hosts: at most half.
  if (rlimit limit{}; getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    impl->options.max_connections =
        std::clamp<size_t>(limit.rlim_cur / 2, 1, impl->options.max_connections);
  }
  impl->handler = std::move(handler);
  impl->live = live ? std::move(live) : impl->handler;
  impl->tunnel = std::move(tunnel);
  impl->logger = std::move(logger);
  if (!impl->options.tls_cert_file.empty()) {
    if (Status s = impl->LoadTls(); !s.ok()) {
      return s;
    }
  }
  if (Status s = impl->Bind(); !s.ok()) {
    return s;
  }
  impl->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  impl->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (impl->wake_fd < 0 || impl->epoll_fd < 0) {
    return Status::Unavailable("cannot set up the API's event loop");
  }
  for (int fd : {impl->listen_fd, impl->wake_fd}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  }
  Impl* raw = impl.get();
  const milliseconds total = impl->options.io_timeout * 3;
  impl->workers = std::make_unique<Workers>(
      impl->options.workers, [raw, total](Conn* c) { raw->Serve(c, total, raw->handler); });
  impl->health = std::make_unique<Workers>(
      impl->options.health_workers, [raw, total](Conn* c) { raw->Serve(c, total, raw->handler); });
  const milliseconds lifetime = impl->options.stream_lifetime + impl->options.io_timeout;
  impl->streams = std::make_unique<Workers>(impl->options.stream_workers, [raw, lifetime](Conn* c) {
    raw->Serve(c, lifetime, raw->live);
  });
  if (impl->tunnel) {
    impl->tunnels = std::make_unique<Workers>(impl->options.tunnel_workers,
                                              [raw](Conn* c) { raw->ServeTunnel(c); });
  }
  impl->thread = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<FrontDoor>(new FrontDoor(std::move(impl)));
}

int FrontDoor::port() const { return impl_->port; }

void FrontDoor::Stop() {
  if (!impl_->thread.joinable()) {
    return;
  }
  impl_->stopping = true;
  const uint64_t one = 1;
  (void)!write(impl_->wake_fd, &one, sizeof(one));
  impl_->thread.join();
  // Requests being served finish; queued ones are dropped with their connections.
  impl_->workers->Stop();
  impl_->health->Stop();
  impl_->streams->Stop();
  if (impl_->tunnels != nullptr) {
    impl_->tunnels->Stop();
  }
  impl_->back.clear();
  while (!impl_->conns.empty()) {
    Conn& conn = *impl_->conns.begin()->second;
    conn.with_worker = false;
    impl_->Close(conn.fd);
  }
}

}  // namespace flotilla::api
