#pragma once

// The endpoints of the API server (server.h) as a table: each route is a method, a path pattern
// and a named handler that turns a request into a Reply. Handlers write no sockets: a test can
// call one with a hand-made httplib::Request and read the Reply. Authentication is not theirs:
// each route declares what it needs (Access), and the server admits the request (Admit) before
// its handler runs.
//
// Thread-safety: handlers run on the server's worker threads, many at once; they share only
// what RouteContext refers to.

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <spdlog/logger.h>

#include <nlohmann/json.hpp>

#include "reconciler/api/auth.h"
#include "reconciler/api/body_parts.h"
#include "reconciler/api/server.h"

namespace httplib {
struct Request;
}

namespace flotilla::api {

using controller::Snapshot;

// One answer, as the server writes it.
struct Reply {
  // Unset: cpp-httplib's choice, 200 (206 with the asked-for part when the request has a Range
  // header).
  std::optional<int> status;
  std::string body;
  // When set, the body instead of `body` (which is then empty): kept parts, written one after
  // the other (body_parts.h).
  std::shared_ptr<const BodyParts> parts;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
  // The body compressed with gzip already (vms_pieces.h), sent to clients that take gzip;
  // empty: compressed when sent (gzip.h).
  std::string gzipped;
};

// `body` as indented JSON ending in a newline; text that is not UTF-8 is written as U+FFFD.
Reply JsonReply(int status, const nlohmann::json& body);
// {"error": message}.
Reply ErrorReply(int status, std::string_view message);

// What a handler works with: the server's collaborators and settings (shared by every request),
// and who asks (each request's own).
struct RouteContext {
  Backend& backend;
  store::Store& store;
  Telemetry& telemetry;
  spdlog::logger& logger;
  // Handlers read branch, threads, max_body_bytes, reconcile_wait and clock; never the token
  // or webhook secret, which may be rotated under them (see webhook_secret).
  const ServerOptions& options;
  std::function<std::string()> webhook_secret;  // the secret in force; empty: webhooks off
  std::atomic<size_t>& reconcile_waiters;       // POST /api/v1/reconcile requests waiting
  VmsPieces& vms_pieces;                        // the unfiltered VM list's (vms_pieces.h)
  const Caller* caller = nullptr;               // who asks; null on public routes
};

// What a route needs of the request's token (auth.h has the roles).
enum class Access {
  kPublic,   // nothing: health checks, the dashboard's files, the webhook (its own signature)
  kToken,    // any configured token (paths no route serves: 404 only with a token)
  kRead,     // the read role
  kTrigger,  // reconcile or approve; the handler checks which the request's body needs
  kAccess,   // the access role: tunnels to VM ports (tunnel.h)
};

// What admission (Admit) works with: the tokens in force, the failed-authentication limiter and
// the metrics that count refusals.
struct Gate {
  std::shared_ptr<const TokenSet> tokens;  // never null
  FailureLimiter& limiter;
  Telemetry& telemetry;
};

// Whether a route reads the latest observation.
enum class Observation {
  kUnused,    // the handler gets a null snapshot
  kOptional,  // the handler gets the latest one, null before the first
  kRequired,  // the server answers 503 before the first; the handler never sees null
};

using Handler = Reply (*)(const httplib::Request& request, const Snapshot* snapshot,
                          RouteContext& context);

struct Route {
  std::string_view method;   // "GET" or "POST"
  std::string_view pattern;  // a path, or a regular expression whose groups are req.matches
  Access access;
  Observation observation;
  Handler handler;
  // Set when the answer is a function of the snapshot and of these query parameters alone
  // (comma separated; "" for none): the server renders it once per snapshot (view_cache.h),
  // answers it with an ETag and If-None-Match with 304. Other parameters do not change it.
  std::optional<std::string_view> view;
};

// The key of `route`'s view (REQUIRES: route.view) for `request`: the path, then each
// parameter the view reads, as name=value when the request has it.
std::string ViewKey(const Route& route, const httplib::Request& request);

// Every endpoint (server.h lists them).
std::span<const Route> ApiRoutes();

// The 503 a kRequired route answers before the first observation.
Reply NoObservationReply();

// Who sent `request`, when it may have what `access` asks: a public route, an API that needs no
// token (every role), or `Authorization: Bearer <token>` with a configured token holding the
// role. Otherwise the refusal to answer, in this order:
//   429 (Retry-After) while the client address has used its failed authentications
//       (request.remote_addr; FailureLimiter), before the token is looked at;
//   401 (WWW-Authenticate: Bearer) without a token, or with one that is not configured; a wrong
//       token counts as a failed authentication, a missing one does not (a page before its
//       token is entered);
//   403 for a configured token without the role: the error names the role, never the token.
// Each refusal is counted in flotilla_api_auth_refusals_total.
std::variant<Caller, Reply> Admit(const httplib::Request& request, Access access, const Gate& gate);

// The endpoints, one handler each.
Reply HandleHealthz(const httplib::Request& request, const Snapshot* snapshot,
                    RouteContext& context);
Reply HandleReadyz(const httplib::Request& request, const Snapshot* snapshot,
                   RouteContext& context);
Reply HandleMetrics(const httplib::Request& request, const Snapshot* snapshot,
                    RouteContext& context);
Reply HandleStatus(const httplib::Request& request, const Snapshot* snapshot,
                   RouteContext& context);
Reply HandleHosts(const httplib::Request& request, const Snapshot* snapshot, RouteContext& context);
Reply HandleVms(const httplib::Request& request, const Snapshot* snapshot, RouteContext& context);
Reply HandleResources(const httplib::Request& request, const Snapshot* snapshot,
                      RouteContext& context);
Reply HandlePlan(const httplib::Request& request, const Snapshot* snapshot, RouteContext& context);
Reply HandleInventory(const httplib::Request& request, const Snapshot* snapshot,
                      RouteContext& context);
Reply HandleRuns(const httplib::Request& request, const Snapshot* snapshot, RouteContext& context);
Reply HandleRun(const httplib::Request& request, const Snapshot* snapshot, RouteContext& context);
Reply HandleRevisions(const httplib::Request& request, const Snapshot* snapshot,
                      RouteContext& context);
Reply HandleEvents(const httplib::Request& request, const Snapshot* snapshot,
                   RouteContext& context);
Reply HandleReconcile(const httplib::Request& request, const Snapshot* snapshot,
                      RouteContext& context);
Reply HandleGitWebhook(const httplib::Request& request, const Snapshot* snapshot,
                       RouteContext& context);
Reply HandleOrchestratorHosts(const httplib::Request& request, const Snapshot* snapshot,
                              RouteContext& context);
Reply HandleOrchestratorResources(const httplib::Request& request, const Snapshot* snapshot,
                                  RouteContext& context);
Reply HandleOrchestratorMachines(const httplib::Request& request, const Snapshot* snapshot,
                                 RouteContext& context);

}  // namespace flotilla::api
