#pragma once

// The HTTP API of `flotilla run` (DESIGN section 7; docs/api.md has every endpoint and shape).
//
//   GET  /healthz, /readyz                      no token
//   GET  /metrics                               Prometheus text
//   GET  /api/v1/{hosts,vms,overview/resources,plan,inventory,runs,runs/ID,revisions}
//   POST /api/v1/reconcile                      a pass now; answers with its run id
//   POST /api/v1/webhooks/git                   push events; authenticated by their signature
//   GET  /api/v1/orchestrator/{hosts,overview/resources,machines}   the orchestrator's shapes
//   GET  /api/v1/events, /api/v1/changes, /api/v1/events/stream    for the dashboard (live.h)
//   GET  /api/v1/vms/NAME/port-forward?port=N   a tunnel to a VM's port (tunnel.h)
//   GET  /, /hosts, ..., /assets/NAME           the web dashboard (dashboard.h); no token
//
// The views of the snapshot (hosts, vms, overview/resources, plan, inventory and the
// orchestrator's) are rendered once per snapshot and carry an ETag; If-None-Match answers 304
// (view_cache.h), always after the request is admitted. Once the loop says it published a
// snapshot (SnapshotPublished), the views clients were reading are rendered for it ahead of
// their next requests.
//
// Every other request needs `Authorization: Bearer <token>` with a configured token (the
// default one of api.tokenFile, or a named one of api.tokens) holding the role the route needs
// (auth.h, routes.h Admit): 401 without a known token, 403 without the role, 429 once a client
// address has failed too often. Without a token the server only starts on a loopback address.
// Bodies are capped (1 MiB by default). Connections are accepted and read by an event thread
// (front_door.h): idle or slow clients hold no worker, health checks have workers of their own, and
// a fixed pool of worker threads serves complete requests.
//
// Thread-safety: Start, Stop and the accessors may be called from any thread; the backend,
// store and telemetry are called from the worker threads.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "reconciler/api/auth.h"
#include "reconciler/api/telemetry.h"
#include "reconciler/controller/snapshot.h"
#include "reconciler/model/clock.h"
#include "reconciler/model/fd.h"
#include "reconciler/model/result.h"
#include "reconciler/store/store.h"

namespace httplib {
class Server;
}

namespace flotilla::api {

using controller::Snapshot;

class FrontDoor;
class ViewCache;
class VmsPieces;
class TunnelCounter;
struct RouteContext;
struct Gate;

// What the server asks of the loop.
class Backend {
 public:
  virtual ~Backend() = default;
  // The latest observation; null before the first.
  virtual std::shared_ptr<const Snapshot> Latest() const = 0;
  // Asks for a fetch and a pass now; the future yields the run's id once it is recorded (0 if
  // none was). `reason` becomes the run's trigger ("api", "webhook"); `approval`, if any, lets
  // that pass go past the deletion guards (Controller::Approve); `actor` is the name of the
  // token that asked, recorded with the run (empty: none, e.g. a webhook).
  virtual std::shared_future<int64_t> Reconcile(std::string reason,
                                                std::optional<PassApproval> approval,
                                                std::string actor) = 0;
  // A byte stream to TCP `port` of `vm` (as the latest snapshot shows it) on host `host` of
  // pool `pool`, through the pool's provider, connected by `deadline`: Provider::OpenTunnel's
  // contract and errors, with what must be kept while the stream is used. Unimplemented by
  // default.
  virtual Result<KeptFd> OpenTunnel(const std::string& /*pool*/, const std::string& /*host*/,
                                    const VmInfo& /*vm*/, uint16_t /*port*/,
                                    std::chrono::steady_clock::time_point /*deadline*/) {
    return Status::Unimplemented("this server cannot open tunnels");
  }
};

struct ServerOptions {
  std::string listen = "127.0.0.1:8080";  // host:port or [v6]:port; port 0 picks a free one
  // The bearer token of api.tokenFile: named kDefaultTokenName, with every role. Empty, with no
  // `tokens` either: none required (loopback only).
  std::string token;
  std::vector<ApiToken> tokens;  // api.tokens: named tokens with roles
  // Failed authentications allowed per client address before it is answered 429.
  FailureLimit auth_failures;
  std::string webhook_secret;  // empty: the webhook endpoint answers 404
  std::string branch;          // the followed branch; empty when the source is pinned
  std::string tls_cert_file;   // both or neither: HTTPS
  std::string tls_key_file;
  size_t threads = 8;
  size_t max_body_bytes = size_t{1} << 20;
  std::chrono::seconds io_timeout{10};  // per read and write of a worker on a connection
  // The front door (front_door.h): a request must be complete this soon after its connection
  // is accepted (or its last answer); at most this many connections per client address, and in
  // all.
  std::chrono::milliseconds header_timeout{std::chrono::seconds{5}};
  size_t max_connections_per_client = 64;
  size_t max_connections = 1024;
  // How long POST /api/v1/reconcile waits for the pass to be recorded before answering 202
  // without a run id. At most a quarter of the workers (at least one) wait at once; the others
  // answer "queued" at once, so requests piling up behind a long pass never take every worker
  // from /healthz and the rest.
  std::chrono::milliseconds reconcile_wait{std::chrono::seconds{30}};
  // The dashboard (dashboard.h, live.h): a folder to serve its files from instead of the
  // binary's (development); at most `live_streams` live streams at once, each ending after
  // `live_lifetime` (the page reconnects), with a keepalive comment after `live_keepalive` of
  // quiet.
  std::string dashboard_dir;
  size_t live_streams = 8;
  std::chrono::milliseconds live_lifetime{std::chrono::minutes{5}};
  std::chrono::milliseconds live_keepalive{std::chrono::seconds{15}};
  // Tunnels (tunnel.h; api.tunnels): at most `tunnels_max` open at once, `tunnels_per_token`
  // of one token; one that moves no byte for `tunnel_idle_timeout` is closed; the host has
  // `tunnel_open_timeout` to connect one.
  size_t tunnels_max = 64;
  size_t tunnels_per_token = 16;
  std::chrono::milliseconds tunnel_idle_timeout{std::chrono::minutes{30}};
  std::chrono::milliseconds tunnel_open_timeout{std::chrono::seconds{30}};
  // Ages hosts' observations in /metrics and refills the failed-authentication allowance; null:
  // the system clock.
  const Clock* clock = nullptr;
};

// The name the token of api.tokenFile is recorded with.
inline constexpr std::string_view kDefaultTokenName = "default";

// The tokens the server checks: `token` (when set) named kDefaultTokenName with every role,
// then `tokens`.
TokenSet TokensOf(const std::string& token, const std::vector<ApiToken>& tokens);

class Server {
 public:
  // Checks the options (InvalidArgument: a bad listen address; FailedPrecondition: no token
  // on a non-loopback address, unreadable TLS files), binds (Unavailable: the address is in
  // use) and serves on a background thread. `backend`, `store`, `telemetry` and `logger` must
  // outlive the server.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options, Backend& backend,
                                               store::Store& store, Telemetry& telemetry,
                                               std::shared_ptr<spdlog::logger> logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:8080" (https with TLS); an unspecified address is shown as loopback.
  std::string url() const;
  // Stops accepting; requests under way finish. Idempotent.
  void Stop();

  // The loop published a new snapshot (Backend::Latest() gives it). The views clients asked of
  // the snapshot before are rendered (and compressed) for it now, on the server's own thread, so
  // that the first requests after a pass find them ready (view_cache.h, Warm). Returns at once;
  // publications that come while a warming runs are taken together. Any thread.
  void SnapshotPublished();

  // Rotated secrets (api.tokenFile, api.tokens' files, api.webhookSecretFile changed): requests
  // from now on are checked against these. Refused (FailedPrecondition, the old ones kept) when
  // no token would be left on a non-loopback address. Any thread.
  Status SetSecrets(const std::string& token, const std::vector<ApiToken>& tokens,
                    std::string webhook_secret);

 private:
  Server(ServerOptions options, Backend& backend, store::Store& store, Telemetry& telemetry,
         std::shared_ptr<spdlog::logger> logger);
  // Registers the route table (routes.h), with authentication before routing.
  void Routes();

  // The tokens and webhook secret in force (options_'s are the first ones).
  Gate MakeGate() const;
  std::string WebhookSecret() const;
  // The warming thread: waits for SnapshotPublished, warms the views, until Stop.
  void WarmViews();

  ServerOptions options_;
  mutable std::mutex secrets_mu_;  // guards tokens_ and options_.webhook_secret
  std::shared_ptr<const TokenSet> tokens_;
  SystemClock system_clock_;  // when options_.clock is null
  std::unique_ptr<FailureLimiter> limiter_;
  Backend& backend_;
  store::Store& store_;
  Telemetry& telemetry_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<RouteContext> context_;   // what the handlers (routes.h) share
  std::unique_ptr<ViewCache> views_;        // the snapshot views' renderings (view_cache.h)
  std::unique_ptr<VmsPieces> vms_pieces_;   // the VM list's pieces (vms_pieces.h)
  std::unique_ptr<TunnelCounter> tunnels_;  // tunnels open, by token (tunnel.h)
  std::unique_ptr<httplib::Server> http_;   // request handling only (front_door.h serves)
  std::unique_ptr<FrontDoor> front_;
  std::string host_;
  int port_ = 0;
  std::atomic<size_t> reconcile_waiters_{0};  // POST /api/v1/reconcile requests waiting
  std::atomic<bool> stopping_{false};         // ends live streams and the warming
  std::mutex warm_mu_;                        // guards warm_asked_ (and orders stopping_)
  std::condition_variable warm_cv_;
  bool warm_asked_ = false;  // a snapshot was published since the warming last looked
  std::thread warmer_;       // WarmViews; joined by the destructor
};

// Splits "host:port" / "[v6]:port". InvalidArgument when malformed.
Result<std::pair<std::string, int>> ParseListen(std::string_view listen);
// 127.0.0.0/8, ::1 and "localhost".
bool IsLoopback(std::string_view host);

}  // namespace flotilla::api
