#pragma once

// EventFront: serves an httplib::Server's routes over plain HTTP/1.1 without giving every
// keep-alive connection a thread of its own.
//
// cpp-httplib (0.11) hands each accepted connection to one worker for its whole life, and that
// worker polls the idle connection every ~10 ms between requests. A client that keeps one
// connection per simulated host (the Parallels provider does) therefore pins one thread per host
// and, with 1,000 hosts, costs the simulator its CPU in idle wake-ups; with fewer workers than
// connections, requests wait behind idle connections. EventFront parks idle connections in one
// epoll set instead and gives a worker only a connection that has a request to read; the request
// itself is parsed, routed and answered by httplib (Server::process_request), so what goes on
// the wire is what httplib::Server would send. Idle connections close after the keep-alive
// timeout, and after keep_alive_max_count requests, as with httplib::Server. Pipelined requests
// already read into a connection's buffer are answered in order right away, as Go's net/http
// does (httplib::Server waited for the socket to become readable again, which stalled them
// until the keep-alive timeout).
//
//   EventFront front(/*workers=*/64);
//   front.Get(".*", handler);            // routes as on any httplib::Server
//   front.bind_to_any_port("127.0.0.1");
//   std::thread serving([&] { front.ServeEvents(); });
//   ...
//   front.StopEvents();                  // any thread; in-flight requests finish
//   serving.join();
//
// HTTPS is not served this way (SimServer uses httplib::SSLServer for it).
//
// Thread-safety: ServeEvents() runs on one thread; StopEvents() and serving() from any.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include <httplib.h>

namespace flotilla::hostsim {

namespace front {
struct Connection;  // one accepted socket and what was read from it (sim_front.cc)
}  // namespace front

class EventFront : public httplib::Server {
 public:
  // `workers`: threads that run requests (a request blocks its worker while it sleeps).
  explicit EventFront(size_t workers);
  ~EventFront() override;
  EventFront(const EventFront&) = delete;
  EventFront& operator=(const EventFront&) = delete;

  // Serves the socket bound by bind_to_port()/bind_to_any_port() until StopEvents(); closes it
  // and every connection before returning. Returns false when nothing was bound.
  bool ServeEvents();
  // Stops accepting and reading; requests being handled finish. Before or during ServeEvents().
  void StopEvents();
  // True from the moment ServeEvents() accepts until it returns.
  bool serving() const { return serving_; }

 private:
  void Accept(int listen_fd);
  void Dispatch(uint64_t id);
  // Runs the requests a connection has (a worker); parks or closes it afterwards.
  void Work(front::Connection* conn);
  void Park(front::Connection* conn);
  void Close(front::Connection* conn);
  void CloseIdle(std::chrono::steady_clock::time_point now);

  const size_t workers_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> serving_{false};
  std::unique_ptr<httplib::ThreadPool> pool_;

  std::mutex mu_;  // guards connections_ and next_id_
  std::map<uint64_t, std::unique_ptr<front::Connection>> connections_;
  uint64_t next_id_ = 2;  // 0: the listening socket, 1: the wake-up eventfd
};

}  // namespace flotilla::hostsim
