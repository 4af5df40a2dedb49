#include "reconciler/api/routes.h"

#include <httplib.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <future>
#include <memory>
#include <variant>

#include "reconciler/api/dashboard.h"
#include "reconciler/api/live.h"
#include "reconciler/api/tunnel.h"
#include "reconciler/api/views.h"
#include "reconciler/api/vms_pieces.h"
#include "reconciler/api/webhook.h"
#include "reconciler/render/inventory.h"
#include "reconciler/render/plan_render.h"

namespace flotilla::api {
namespace {

using nlohmann::json;

constexpr const char* kJson = "application/json";

// The HTTP status for a Status from below.
int HttpStatus(const Status& status) {
  switch (status.code()) {
    case Status::Code::kInvalidArgument:
      return 400;
    case Status::Code::kPermissionDenied:
      return 401;
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kUnavailable:
    case Status::Code::kDeadlineExceeded:
      return 503;
    default:
      return 500;
  }
}

// A 200 that is not JSON of ours (or JSON rendered elsewhere).
Reply TextReply(std::string body, std::string content_type) {
  return Reply{.body = std::move(body), .content_type = std::move(content_type)};
}

// The `limit` query parameter: `fallback` when absent, nullopt when not a number up to 10000.
std::optional<size_t> Limit(const httplib::Request& req, size_t fallback) {
  if (!req.has_param("limit")) {
    return fallback;
  }
  const std::string text = req.get_param_value("limit");
  size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 10000) {
    return std::nullopt;
  }
  return value;
}

// The body of POST /api/v1/reconcile: an empty one, or {"reason", "max_deletions",
// "allow_empty"}. A 400 reply when it is not acceptable.
struct ReconcileRequest {
  std::string reason = "api";
  std::optional<PassApproval> approval;
};

std::variant<ReconcileRequest, Reply> ParseReconcileRequest(const std::string& text) {
  ReconcileRequest request;
  if (text.empty()) {
    return request;
  }
  const json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return ErrorReply(400,
                      "the body must be a JSON object, e.g. {\"reason\": \"manual\"}, or empty");
  }
  if (body.contains("reason")) {
    if (!body["reason"].is_string() || body["reason"].get<std::string>().empty() ||
        body["reason"].get<std::string>().size() > 64) {
      return ErrorReply(400, "reason must be a string of 1 to 64 characters");
    }
    request.reason = body["reason"].get<std::string>();
  }
  if (body.contains("max_deletions") || body.contains("allow_empty")) {
    PassApproval granted;
    if (body.contains("max_deletions")) {
      const json& n = body["max_deletions"];
      if (!n.is_number_unsigned() || n.get<uint64_t>() > 1'000'000) {
        return ErrorReply(400, "max_deletions must be a whole number from 0 to 1000000");
      }
      granted.max_deletions = n.get<uint32_t>();
    }
    if (body.contains("allow_empty")) {
      if (!body["allow_empty"].is_boolean()) {
        return ErrorReply(400, "allow_empty must be true or false");
      }
      granted.allow_empty = body["allow_empty"].get<bool>();
    }
    request.approval = std::move(granted);
  }
  return request;
}

constexpr std::array kRoutes = {
    Route{"GET", "/healthz", Access::kPublic, Observation::kUnused, HandleHealthz, std::nullopt},
    Route{"GET", "/readyz", Access::kPublic, Observation::kUnused, HandleReadyz, std::nullopt},
    Route{"GET", "/metrics", Access::kRead, Observation::kOptional, HandleMetrics, std::nullopt},
    Route{"GET", "/api/v1/status", Access::kRead, Observation::kOptional, HandleStatus,
          std::nullopt},
    Route{"GET", "/api/v1/hosts", Access::kRead, Observation::kRequired, HandleHosts, ""},
    Route{"GET", "/api/v1/vms", Access::kRead, Observation::kRequired, HandleVms,
          "pool,vmset,host,state,managed"},
    Route{"GET", R"(/api/v1/vms/([^/]{1,253})/access)", Access::kAccess, Observation::kRequired,
          HandleVmAccess, std::nullopt},
    Route{"GET", "/api/v1/overview/resources", Access::kRead, Observation::kRequired,
          HandleResources, ""},
    Route{"GET", "/api/v1/plan", Access::kRead, Observation::kRequired, HandlePlan, "format"},
    Route{"GET", "/api/v1/inventory", Access::kRead, Observation::kRequired, HandleInventory, ""},
    Route{"GET", "/api/v1/runs", Access::kRead, Observation::kUnused, HandleRuns, std::nullopt},
    Route{"GET", R"(/api/v1/runs/(\d{1,18}))", Access::kRead, Observation::kUnused, HandleRun,
          std::nullopt},
    Route{"GET", "/api/v1/revisions", Access::kRead, Observation::kOptional, HandleRevisions,
          std::nullopt},
    Route{"GET", "/api/v1/events", Access::kRead, Observation::kUnused, HandleEvents, std::nullopt},
    Route{"GET", "/api/v1/changes", Access::kRead, Observation::kUnused, HandleChanges,
          std::nullopt},
    Route{"POST", "/api/v1/reconcile", Access::kTrigger, Observation::kUnused, HandleReconcile,
          std::nullopt},
    Route{"POST", "/api/v1/webhooks/git", Access::kPublic, Observation::kUnused, HandleGitWebhook,
          std::nullopt},
    Route{"GET", "/api/v1/orchestrator/hosts", Access::kRead, Observation::kRequired,
          HandleOrchestratorHosts, ""},
    Route{"GET", "/api/v1/orchestrator/overview/resources", Access::kRead, Observation::kRequired,
          HandleOrchestratorResources, ""},
    Route{"GET", "/api/v1/orchestrator/machines", Access::kRead, Observation::kRequired,
          HandleOrchestratorMachines, ""},
    Route{"GET", R"(/|/hosts|/vms|/plan|/runs|/runs/\d{1,18}|/events)", Access::kPublic,
          Observation::kUnused, HandleDashboardPage, std::nullopt},
    Route{"GET", R"(/assets/([A-Za-z0-9_-][A-Za-z0-9._-]{0,99}))", Access::kPublic,
          Observation::kUnused, HandleDashboardAsset, std::nullopt},
};

// The role `access` needs, for messages.
std::string_view Needed(Access access) {
  return access == Access::kTrigger  ? "reconcile (or approve)"
         : access == Access::kAccess ? ToString(Role::kAccess)
                                     : ToString(Role::kRead);
}

bool Allows(const Roles& roles, Access access) {
  switch (access) {
    case Access::kPublic:
    case Access::kToken:
      return true;
    case Access::kRead:
      return roles.Has(Role::kRead);
    case Access::kTrigger:
      return roles.Has(Role::kReconcile) || roles.Has(Role::kApprove);
    case Access::kAccess:
      return roles.Has(Role::kAccess);
  }
  return false;
}

Reply Refusal(Telemetry& telemetry, int status, std::string_view message) {
  telemetry.AuthRefused(status);
  Reply reply = ErrorReply(status, message);
  if (status == 401) {
    reply.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  return reply;
}

}  // namespace

Reply JsonReply(int status, const json& body) {
  return Reply{.status = status,
               .body = body.dump(2, ' ', false, json::error_handler_t::replace) + "\n",
               .content_type = kJson};
}

Reply ErrorReply(int status, std::string_view message) {
  return JsonReply(status, json{{"error", message}});
}

std::span<const Route> ApiRoutes() { return kRoutes; }

std::string ViewKey(const Route& route, const httplib::Request& request) {
  std::string key(route.pattern);
  std::string_view names = route.view.value_or("");
  while (!names.empty()) {
    const size_t comma = names.find(',');
    const std::string name(names.substr(0, comma));
    names = comma == std::string_view::npos ? std::string_view() : names.substr(comma + 1);
    if (request.has_param(name)) {
      // Length-prefixed, so that no value can pass for another parameter.
      const std::string value = request.get_param_value(name);
      key += "\n" + name + "=" + std::to_string(value.size()) + ":" + value;
    }
  }
  return key;
}

Reply NoObservationReply() {
  return ErrorReply(503, "no observation yet: the first pass is still observing the hosts");
}

std::variant<Caller, Reply> Admit(const httplib::Request& request, Access access,
                                  const Gate& gate) {
  if (access == Access::kPublic) {
    return Caller{};
  }
  if (gate.tokens->open()) {
    return Caller{.name = "", .roles = Roles::All()};
  }
  if (std::optional<std::chrono::seconds> wait = gate.limiter.Refused(request.remote_addr)) {
    Reply refusal = Refusal(gate.telemetry, 429,
                            "too many failed authentications from this address; try again in " +
                                std::to_string(wait->count()) + " s");
    refusal.headers.emplace_back("Retry-After", std::to_string(wait->count()));
    return refusal;
  }
  const std::string header = request.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || !header.starts_with(kBearer)) {
    return Refusal(gate.telemetry, 401,
                   header.empty() ? "this endpoint needs an Authorization: Bearer <token> header"
                                  : "the bearer token is not valid");
  }
  std::optional<Caller> caller =
      gate.tokens->Identify(std::string_view(header).substr(kBearer.size()));
  if (!caller) {
    gate.limiter.Failed(request.remote_addr);
    return Refusal(gate.telemetry, 401, "the bearer token is not valid");
  }
  if (!Allows(caller->roles, access)) {
    return Refusal(gate.telemetry, 403,
                   "this token does not have the " + std::string(Needed(access)) + " role that " +
                       request.method + " " + request.path + " needs");
  }
  return std::move(*caller);
}

// --- health and metrics ---

Reply HandleHealthz(const httplib::Request& /*request*/, const Snapshot* /*snapshot*/,
                    RouteContext& /*context*/) {
  return JsonReply(200, {{"status", "ok"}});
}

Reply HandleReadyz(const httplib::Request& /*request*/, const Snapshot* /*snapshot*/,
                   RouteContext& context) {
  if (const store::StoreHealth health = context.store.Health(); !health.writable) {
    return JsonReply(
        503, {{"status", "not ready"},
              {"reason", "the store cannot be written, so no host is changed: " + health.problem}});
  }
  Result<std::optional<store::RevisionRecord>> store = context.store.LastApplied();
  if (!store.ok()) {
    return JsonReply(503,
                     {{"status", "not ready"}, {"reason", "store: " + store.status().message()}});
  }
  std::shared_ptr<const Snapshot> snapshot = context.backend.Latest();
  if (!snapshot) {
    return JsonReply(503, {{"status", "not ready"}, {"reason", "no observation of the hosts yet"}});
  }
  return JsonReply(200, {{"status", "ready"}, {"observed_at", FormatTime(snapshot->observed_at)}});
}

Reply HandleMetrics(const httplib::Request& /*request*/, const Snapshot* snapshot,
                    RouteContext& context) {
  std::optional<std::chrono::system_clock::time_point> applied;
  if (Result<std::optional<store::RevisionRecord>> last = context.store.LastApplied();
      last.ok() && *last) {
    applied = (*last)->attempted_at;
  }
  const Clock::TimePoint now = context.options.clock != nullptr ? context.options.clock->Now()
                                                                : std::chrono::system_clock::now();
  const store::StoreHealth health = context.store.Health();
  context.telemetry.StoreHealth(health.writable, health.failures);
  return TextReply(context.telemetry.Render(snapshot, applied, now),
                   "text/plain; version=0.0.4; charset=utf-8");
}

// --- the observation ---

Reply HandleStatus(const httplib::Request& /*request*/, const Snapshot* snapshot,
                   RouteContext& context) {
  Result<json> status = StatusJson(context.store, snapshot);
  if (!status.ok()) {
    return ErrorReply(500, status.status().message());
  }
  return JsonReply(200, *status);
}

Reply HandleEvents(const httplib::Request& request, const Snapshot* /*snapshot*/,
                   RouteContext& context) {
  std::optional<size_t> limit = Limit(request, 100);
  if (!limit) {
    return ErrorReply(400, "limit must be a whole number from 0 to 10000");
  }
  EventFilter filter{.limit = *limit,
                     .level = request.get_param_value("level"),
                     .kind = request.get_param_value("kind"),
                     .subject = request.get_param_value("subject")};
  Result<json> events = EventsJson(context.store, filter);
  if (!events.ok()) {
    return ErrorReply(500, events.status().message());
  }
  return JsonReply(200, *events);
}

Reply HandleHosts(const httplib::Request& /*request*/, const Snapshot* snapshot,
                  RouteContext& /*context*/) {
  return Reply{.status = 200, .body = HostsText(*snapshot), .content_type = kJson};
}

Reply HandleVms(const httplib::Request& request, const Snapshot* snapshot, RouteContext& context) {
  VmFilter filter{.pool = request.get_param_value("pool"),
                  .vmset = request.get_param_value("vmset"),
                  .host = request.get_param_value("host"),
                  .state = request.get_param_value("state")};
  if (request.has_param("managed")) {
    const std::string managed = request.get_param_value("managed");
    if (managed != "true" && managed != "false") {
      return ErrorReply(400, "managed must be true or false");
    }
    filter.managed = managed == "true";
  }
  if (filter.All()) {
    // The whole list, from the pieces kept since the last snapshot (vms_pieces.h).
    VmsPieces::Rendered all = context.vms_pieces.Render(*snapshot);
    return Reply{.status = 200,
                 .body = {},
                 .parts = std::move(all.body),
                 .content_type = kJson,
                 .gzipped = std::move(all.gzipped)};
  }
  return Reply{.status = 200, .body = VmsText(*snapshot, filter), .content_type = kJson};
}

Reply HandleResources(const httplib::Request& /*request*/, const Snapshot* snapshot,
                      RouteContext& /*context*/) {
  return JsonReply(200, ResourcesJson(*snapshot));
}

Reply HandlePlan(const httplib::Request& request, const Snapshot* snapshot, RouteContext& context) {
  const std::string format =
      request.has_param("format") ? request.get_param_value("format") : "json";
  const std::string& branch = context.options.branch;
  const render::RenderOptions render{.revision =
                                         (branch.empty() ? std::string("revision") : branch) + "@" +
                                         snapshot->sha.substr(0, 7)};
  if (format == "json") {
    return TextReply(render::RenderPlanJson(snapshot->plan, render), kJson);
  }
  if (format == "text") {
    return TextReply(render::RenderPlanText(snapshot->plan, render), "text/plain; charset=utf-8");
  }
  if (format == "markdown") {
    return TextReply(render::RenderPlanMarkdown(snapshot->plan, render),
                     "text/markdown; charset=utf-8");
  }
  return ErrorReply(400, "format must be json, text or markdown");
}

Reply HandleInventory(const httplib::Request& /*request*/, const Snapshot* snapshot,
                      RouteContext& /*context*/) {
  return TextReply(
      render::RenderInventoryJson(render::Inventory{snapshot->observed, snapshot->ledger}), kJson);
}

// --- the store's history ---

Reply HandleRuns(const httplib::Request& request, const Snapshot* /*snapshot*/,
                 RouteContext& context) {
  const std::optional<size_t> limit = Limit(request, 20);
  if (!limit) {
    return ErrorReply(400, "limit must be a number from 0 to 10000");
  }
  Result<json> runs = RunsJson(context.store, *limit);
  if (!runs.ok()) {
    return ErrorReply(500, "store: " + runs.status().message());
  }
  return JsonReply(200, *runs);
}

Reply HandleRun(const httplib::Request& request, const Snapshot* /*snapshot*/,
                RouteContext& context) {
  const int64_t id = std::stoll(request.matches[1].str());
  Result<std::optional<store::RunRecord>> run = context.store.Run(id);
  Result<std::vector<store::ActionRecord>> actions = context.store.Actions(id);
  if (!run.ok() || !actions.ok()) {
    return ErrorReply(500, "store: " + (run.ok() ? actions.status() : run.status()).message());
  }
  if (!*run) {
    return ErrorReply(404, "no run " + std::to_string(id) + " (it may have been pruned)");
  }
  json body = RunJson(**run);
  body["actions"] = json::array();
  for (const store::ActionRecord& action : *actions) {
    body["actions"].push_back(ActionJson(action));
  }
  return JsonReply(200, body);
}

Reply HandleRevisions(const httplib::Request& request, const Snapshot* snapshot,
                      RouteContext& context) {
  const std::optional<size_t> limit = Limit(request, 20);
  if (!limit) {
    return ErrorReply(400, "limit must be a number from 0 to 10000");
  }
  Result<json> revisions = RevisionsJson(context.store, *limit, snapshot);
  if (!revisions.ok()) {
    return ErrorReply(500, "store: cannot read revisions");
  }
  return JsonReply(200, *revisions);
}

// --- asking for a pass ---

Reply HandleReconcile(const httplib::Request& request, const Snapshot* /*snapshot*/,
                      RouteContext& context) {
  std::variant<ReconcileRequest, Reply> parsed = ParseReconcileRequest(request.body);
  if (Reply* refusal = std::get_if<Reply>(&parsed)) {
    return std::move(*refusal);
  }
  ReconcileRequest& asked = std::get<ReconcileRequest>(parsed);
  const Caller caller = context.caller != nullptr ? *context.caller : Caller{};
  if (asked.approval && !caller.roles.Has(Role::kApprove)) {
    context.telemetry.AuthRefused(403);
    return ErrorReply(403,
                      "this token does not have the approve role that max_deletions and "
                      "allow_empty need");
  }
  if (!asked.approval && !caller.roles.Has(Role::kReconcile)) {
    context.telemetry.AuthRefused(403);
    return ErrorReply(403,
                      "this token does not have the reconcile role that POST /api/v1/reconcile "
                      "needs (approve suffices for a pass that carries an approval)");
  }
  if (asked.approval) {
    asked.approval->by = caller.Describe();
  }
  if (!caller.name.empty()) {
    context.logger.info("api: token {} asks for a pass ({}){}", caller.name, asked.reason,
                        asked.approval ? " with an approval" : "");
  }
  std::shared_future<int64_t> run =
      context.backend.Reconcile(asked.reason, asked.approval, caller.name);
  // At most a quarter of the workers wait for the pass; the others answer "queued" at once.
  const size_t max_waiters = std::max<size_t>(context.options.threads / 4, 1);
  const bool wait = context.reconcile_waiters.fetch_add(1) < max_waiters;
  const bool ready = wait
                         ? run.wait_for(context.options.reconcile_wait) == std::future_status::ready
                         : run.wait_for(std::chrono::seconds{0}) == std::future_status::ready;
  context.reconcile_waiters.fetch_sub(1);
  if (!ready) {
    return JsonReply(202, {{"run_id", nullptr}, {"status", "queued"}, {"trigger", asked.reason}});
  }
  if (run.get() == 0) {
    return ErrorReply(503, "the pass was not recorded (shutting down, or the store failed)");
  }
  return JsonReply(202, {{"run_id", run.get()}, {"status", "started"}, {"trigger", asked.reason}});
}

Reply HandleGitWebhook(const httplib::Request& request, const Snapshot* /*snapshot*/,
                       RouteContext& context) {
  const std::string secret = context.webhook_secret();
  if (secret.empty()) {
    return ErrorReply(404, "webhooks are off: set api.webhookSecretFile to turn them on");
  }
  const HeaderLookup headers = [&request](std::string_view name) -> std::optional<std::string> {
    const std::string key(name);
    if (!request.has_header(key)) {
      return std::nullopt;
    }
    return request.get_header_value(key);
  };
  Result<PushEvent> event = VerifyWebhook(
      WebhookConfig{.secret = secret, .max_body_bytes = context.options.max_body_bytes}, headers,
      request.body);
  if (!event.ok()) {
    context.logger.warn("webhook refused: {}", event.status().message());
    return ErrorReply(HttpStatus(event.status()), event.status().message());
  }
  const std::string& branch = context.options.branch;
  json answer = {{"source", event->source}, {"event", event->event}, {"ref", event->ref}};
  if (!event->is_push) {
    answer["triggered"] = false;
    answer["reason"] = "not a branch push";
  } else if (branch.empty()) {
    answer["triggered"] = false;
    answer["reason"] = "the source is pinned to a revision";
  } else if (event->branch != branch) {
    answer["triggered"] = false;
    answer["reason"] = "push to " + event->branch + ", not " + branch;
  } else {
    context.logger.info("webhook: {} push to {} ({}); fetching now", event->source, event->branch,
                        event->after.substr(0, 12));
    (void)context.backend.Reconcile("webhook", std::nullopt, "");
    answer["triggered"] = true;
  }
  return JsonReply(202, answer);
}

// --- the orchestrator's shapes ---

Reply HandleOrchestratorHosts(const httplib::Request& /*request*/, const Snapshot* snapshot,
                              RouteContext& /*context*/) {
  return JsonReply(200, OrchestratorHostsJson(*snapshot));
}

// The orchestrator answers these two with 202; its clients expect that.
Reply HandleOrchestratorResources(const httplib::Request& /*request*/, const Snapshot* snapshot,
                                  RouteContext& /*context*/) {
  return JsonReply(202, OrchestratorResourcesJson(*snapshot));
}

Reply HandleOrchestratorMachines(const httplib::Request& /*request*/, const Snapshot* snapshot,
                                 RouteContext& /*context*/) {
  return Reply{.status = 202, .body = OrchestratorMachinesText(*snapshot), .content_type = kJson};
}

}  // namespace flotilla::api
