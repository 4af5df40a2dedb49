#pragma once

// The API's front door: connections are accepted and read by one event thread (epoll), so that
// clients that connect and say nothing, or send half a request, never hold a worker. A worker
// gets a connection only once its request is complete (the header, and a body of up to the size
// limit); health checks (`GET /healthz`, `GET /readyz`) have workers of their own and never queue
// behind data requests. Between requests a keep-alive connection goes back to the event thread.
//
// Limits, each answered by closing the connection (a half-sent request has no one to answer):
// - a request must be complete within `header_timeout` of the connection being accepted (or of
//   the last answer on it); a header beyond `max_header_bytes` gets 431, a body beyond
//   `max_body_bytes` 413 and a chunked one 411, from the event thread;
// - a worker waits at most `io_timeout` for each write, and 3 x `io_timeout` in all;
// - at most `max_per_client` connections per client address; more are closed at once;
// - at most `max_connections` in all (and half the process's descriptor limit): the oldest
//   connection still sending its request makes room for a new one, also when descriptors run
//   out.
// A live stream (`GET /api/v1/events/stream`, the dashboard's) holds a worker of its own for up
// to `stream_lifetime`: at most `stream_workers` are open; one more is answered 503 at once by
// the event thread, so streams never take a worker from other requests.
// A tunnel (`GET /api/v1/vms/NAME/port-forward`, tunnel.h) is handed over whole to a worker of
// its own: after its answer's head the handler moves bytes both ways itself (relay.h), for as
// long as the tunnel lasts. At most `tunnel_workers` are open; one more is answered 503 at once
// by the event thread.
// TLS (a certificate and key) is done by the event thread too: a handshake that stalls holds
// no worker either.
//
// Thread-safety: Open and Stop from one thread; the handler runs on worker threads.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <spdlog/logger.h>

#include "reconciler/model/result.h"

namespace httplib {
class Stream;
}

struct ssl_st;

namespace flotilla::api {

struct FrontDoorOptions {
  std::string host;           // an address of this machine (or 0.0.0.0 / ::)
  int port = 0;               // 0: any free port
  std::string tls_cert_file;  // both or neither: TLS
  std::string tls_key_file;
  size_t workers = 8;         // for requests other than health checks
  size_t health_workers = 2;  // for GET /healthz and /readyz
  size_t stream_workers = 8;  // for GET /api/v1/events/stream
  std::chrono::milliseconds stream_lifetime{std::chrono::minutes{5}};
  size_t tunnel_workers = 64;  // for GET /api/v1/vms/NAME/port-forward, each held for its life
  std::chrono::milliseconds header_timeout{std::chrono::seconds{5}};
  std::chrono::milliseconds io_timeout{std::chrono::seconds{10}};  // a worker's reads and writes
  size_t max_header_bytes = size_t{16} << 10;
  size_t max_body_bytes = size_t{1} << 20;  // bodies up to this are read before dispatch
  size_t max_per_client = 64;
  size_t max_connections = 1024;
};

class FrontDoor {
 public:
  // Serves one complete request from `stream`, answering it; sets `closed` when the connection
  // must not carry another request.
  using Handler = std::function<void(httplib::Stream& stream, bool& closed)>;

  // A connection handed over whole (a tunnel's). The front door still owns the socket and
  // closes it once the handler returns.
  struct Handover {
    int fd = -1;            // non-blocking
    ssl_st* ssl = nullptr;  // the TLS session on `fd`, when the API serves TLS
    // The bytes the client sent past the request, which the front door read already; once.
    std::function<std::string()> take_unread;
  };
  // Reads the request from `stream` (bounded waits, as for other requests), answers it there,
  // and may then relay through `handover` for as long as it likes.
  using TunnelHandler = std::function<void(httplib::Stream& stream, Handover& handover)>;

  // Binds (Unavailable: the address is in use or not this machine's; FailedPrecondition: the
  // TLS files cannot be loaded) and serves on background threads. `live` serves live streams
  // (it may keep writing for up to `stream_lifetime`); empty: `handler` does. `tunnel` serves
  // tunnels; empty: `handler` does (as an ordinary request).
  static Result<std::unique_ptr<FrontDoor>> Open(FrontDoorOptions options, Handler handler,
                                                 Handler live, TunnelHandler tunnel,
                                                 std::shared_ptr<spdlog::logger> logger);
  ~FrontDoor();
  FrontDoor(const FrontDoor&) = delete;
  FrontDoor& operator=(const FrontDoor&) = delete;

  int port() const;
  // Stops accepting and reading; requests being served finish. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit FrontDoor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flotilla::api
