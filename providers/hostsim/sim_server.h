#pragma once

// HTTP front of the simulator: routes /api/v1/<path> and /api/<path> (or /h/<host>/api/...
// with several hosts) to SimHost calls, applies authentication, offline hangs and injected
// faults, counts calls, and serves the /_sim/ control API. Every response carries
// `Content-Type: application/json` exactly.
//
// SimService bundles a SimWorld and a SimServer on a background thread; it is what
// `flotilla-hostsim` runs and what tests embed:
//
//   SimOptions options{.listen_port = 0, .lookup_delay = Duration(0), .no_auth = true};
//   Result<std::unique_ptr<SimService>> sim = SimService::Start(options);
//   if (!sim.ok()) { ... }
//   httplib::Client client("127.0.0.1", (*sim)->port());
//   ...
//   (*sim)->Stop();  // or let it go out of scope
//
// Plain HTTP is served by an EventFront (idle keep-alive connections wait in one epoll set and
// hold no worker); HTTPS by httplib::SSLServer (one worker per connection).
//
// Thread-safety: SimServer handles requests on its own worker pool; Stop() and the accessors of
// SimService may be called from any thread.

#include <memory>
#include <string>
#include <thread>

#include <httplib.h>

#include "providers/hostsim/sim_front.h"
#include "providers/hostsim/sim_options.h"
#include "providers/hostsim/sim_world.h"
#include "reconciler/model/result.h"

namespace flotilla::hostsim {

class SimServer {
 public:
  // `world` must outlive the server.
  explicit SimServer(SimWorld& world);
  ~SimServer();
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  // Creates the HTTP (or, with TLS options, HTTPS) server and binds
  // options.listen_host:listen_port (port 0: any free port). Returns the bound port.
  Result<int> Bind();
  // Serves until Stop(). REQUIRES: Bind() succeeded. Blocks the calling thread.
  void Serve();
  bool running() const;
  // Stops accepting and returns once Serve() may return; in-flight requests finish.
  void Stop();

 private:
  // `body` is the request body (read by the caller; empty when none was sent).
  void Handle(const httplib::Request& req, const std::string& body, httplib::Response& res);
  Reply HandleApi(const httplib::Request& req, const std::string& body, std::string* log_path);
  Reply HandleControl(const httplib::Request& req, const std::string& body);

  struct Routes;  // the endpoint table, built once for the emulated version

  SimWorld& world_;
  std::unique_ptr<const Routes> routes_;
  std::unique_ptr<httplib::Server> http_;
  EventFront* front_ = nullptr;  // http_ itself when serving plain HTTP
  int listen_socket_ = -1;       // set while binding; its backlog is raised
};

class SimService {
 public:
  // Validates `options`, builds the world, loads the state file, binds, writes the port file
  // and serves on a background thread. Returns once requests are being accepted.
  static Result<std::unique_ptr<SimService>> Start(SimOptions options);
  ~SimService();
  SimService(const SimService&) = delete;
  SimService& operator=(const SimService&) = delete;

  int port() const { return port_; }
  // "http://HOST:PORT" or "https://HOST:PORT" (without /api).
  std::string base_url() const;
  SimWorld& world() { return *world_; }

  // Shuts the world down (sleepers wake, scheduled work is dropped), stops the server, joins
  // it and saves the state file. Idempotent.
  void Stop();

 private:
  SimService() = default;

  std::unique_ptr<SimWorld> world_;
  std::unique_ptr<SimServer> server_;
  std::thread thread_;
  int port_ = 0;
  bool stopped_ = false;
};

// Writes `text` to `path` atomically (temp file in the same folder, then rename).
Status WriteFileAtomically(const std::string& path, const std::string& text);

}  // namespace flotilla::hostsim
