#include "providers/hostsim/sim_server.h"

#include "providers/hostsim/sim_proxy.h"
#include "providers/hostsim/sim_version.h"

#include <unistd.h>

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

namespace flotilla::hostsim {
namespace {

using nlohmann::json;

// The API endpoints of one host, in gorilla/mux registration order.
enum class Api {
  kLogin,
  kValidate,
  kProbe,
  kHealth,
  kHardware,
  kList,
  kCreate,
  kCreateAsync,
  kGet,
  kDelete,
  kStatus,
  kClone,
  kSet,
  kExecute,
  kRename,
  kState,
  kJobs,
  kJob,
  kCache,
  kProxyList,
  kProxyCreate,
  kProxyGet,
  kProxyUpdate,
  kProxyDelete,
  kProxyTcpRoute,
};

struct Route {
  std::string method;
  std::vector<std::string> pattern;  // "*" matches one non-empty segment
  Api api;
  std::string name;  // endpoint name (counters, faults)
  bool auth = true;
  std::optional<StateOp> op;
};

// The routes of one version (controllers/*.go Register* at that tag).
std::vector<Route> BuildRoutes(const ServiceFeatures& features, bool no_api_routes,
                               bool reverse_proxy) {
  if (no_api_routes) {
    // Only what http_listener.go registers itself; the controllers' routes are missing.
    return {{"GET", {"health", "probe"}, Api::kProbe, "probe", false}};
  }
  std::vector<Route> routes = {
      {"POST", {"auth", "token"}, Api::kLogin, "login", false},
      {"POST", {"auth", "token", "validate"}, Api::kValidate, "validate", false},
      {"GET", {"health", "probe"}, Api::kProbe, "probe", false},
      {"GET", {"health", "system"}, Api::kHealth, "health", false},
      {"GET", {"config", "hardware"}, Api::kHardware, "hardware"},
      {"GET", {"machines"}, Api::kList, "list"},
      {"POST", {"machines"}, Api::kCreate, "create"},
      {"GET", {"machines", "*"}, Api::kGet, "get"},
      {"DELETE", {"machines", "*"}, Api::kDelete, "delete"},
      {"GET", {"machines", "*", "status"}, Api::kStatus, "status"},
      {"PUT", {"machines", "*", "clone"}, Api::kClone, "clone"},
      {"PUT", {"machines", "*", "set"}, Api::kSet, "set"},
      {"PUT", {"machines", "*", "execute"}, Api::kExecute, "execute"},
      {"PUT", {"machines", "*", "rename"}, Api::kRename, "rename"},
  };
  if (features.async_create) {
    // 1.0.0: controllers/machines.go gains /machines/async; controllers/jobs.go and
    // controllers/cache.go appear.
    routes.push_back({"POST", {"machines", "async"}, Api::kCreateAsync, "create_async"});
    routes.push_back({"GET", {"jobs"}, Api::kJobs, "job"});
    routes.push_back({"GET", {"jobs", "*"}, Api::kJob, "job"});
    routes.push_back({"GET", {"cache"}, Api::kCache, "cache"});
    routes.push_back({"GET", {"catalog", "cache"}, Api::kCache, "cache"});
  }
  if (features.reverse_proxy && reverse_proxy) {
    // controllers/reverse_proxy.go (registered only with the module on, controllers/main.go).
    // Claims (constants/main.go): LIST_REVERSE_PROXY_HOSTS for the GETs, CREATE_, UPDATE_ and
    // DELETE_REVERSE_PROXY_HOST, UPDATE_REVERSE_PROXY_HOST_TCP_ROUTE. hostsim's callers are the
    // super user (a login) or an API key, neither of which is checked against claims.
    const std::string rp = "reverse-proxy";
    routes.push_back({"GET", {rp, "hosts"}, Api::kProxyList, "reverse_proxy"});
    routes.push_back({"POST", {rp, "hosts"}, Api::kProxyCreate, "reverse_proxy"});
    routes.push_back({"GET", {rp, "hosts", "*"}, Api::kProxyGet, "reverse_proxy"});
    routes.push_back({"PUT", {rp, "hosts", "*"}, Api::kProxyUpdate, "reverse_proxy"});
    routes.push_back({"DELETE", {rp, "hosts", "*"}, Api::kProxyDelete, "reverse_proxy"});
    routes.push_back(
        {"POST", {rp, "hosts", "*", "tcp_route"}, Api::kProxyTcpRoute, "reverse_proxy"});
  }
  // State operations became PUT in 1.0.5 (PR #527); GET before.
  const std::string verb = features.state_verbs_put ? "PUT" : "GET";
  for (StateOp op : {StateOp::kStart, StateOp::kStop, StateOp::kRestart, StateOp::kSuspend,
                     StateOp::kResume, StateOp::kPause, StateOp::kReset}) {
    const std::string name(StateOpName(op));
    routes.push_back({verb, {"machines", "*", name}, Api::kState, name, true, op});
  }
  return routes;
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    parts.emplace_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  return parts;
}

bool PathMatches(const std::vector<std::string>& pattern, const std::vector<std::string>& parts) {
  if (pattern.size() != parts.size()) {
    return false;
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty() || (pattern[i] != "*" && pattern[i] != parts[i])) {
      return false;
    }
  }
  return true;
}

Reply NotFoundPath(const std::string& path) {
  return Reply::Error(ApiError::Raw(404, "resource " + path + " not found"));
}

const std::string* Header(const httplib::Request& req, const char* name, std::string* storage) {
  if (!req.has_header(name)) {
    return nullptr;
  }
  *storage = req.get_header_value(name);
  return storage;
}

void Write(httplib::Response& res, const Reply& reply) {
  res.status = reply.status;
  if (reply.drop) {
    // Headers go out, then half the body, then the connection breaks (a content provider that
    // fails makes httplib close it).
    auto text = std::make_shared<std::string>(
        reply.body ? reply.body->dump(-1, ' ', false, json::error_handler_t::replace) : "{}");
    res.set_content_provider(text->size(), "application/json",
                             [text](size_t /*offset*/, size_t /*length*/, httplib::DataSink& sink) {
                               sink.write(text->data(), text->size() / 2);
                               return false;
                             });
    return;
  }
  if (reply.body) {
    res.set_content(reply.body->dump(-1, ' ', false, json::error_handler_t::replace),
                    "application/json");
  } else {
    res.body.clear();
    res.set_header("Content-Type", "application/json");
  }
}

}  // namespace

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      return Status::Unavailable("cannot write " + tmp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return Status::Unavailable("cannot rename " + tmp + " to " + path + ": " + ec.message());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// SimServer

struct SimServer::Routes {
  std::vector<Route> list;
};

SimServer::SimServer(SimWorld& world)
    : world_(world),
      routes_(
          new Routes{BuildRoutes(*FeaturesOf(world.options().version),
                                 world.options().no_api_routes, world.options().reverse_proxy)}) {}

SimServer::~SimServer() { Stop(); }

Result<int> SimServer::Bind() {
  const SimOptions& o = world_.options();
  if (!o.tls_cert.empty()) {
    auto ssl = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
    if (!ssl->is_valid()) {
      return Status::InvalidArgument("cannot load --tls-cert " + o.tls_cert + " / --tls-key " +
                                     o.tls_key);
    }
    http_ = std::move(ssl);
  }
  const size_t hosts = static_cast<size_t>(std::max(o.hosts, 1));
  const size_t threads =
      o.threads > 0 ? static_cast<size_t>(o.threads) : std::min<size_t>(4096, 64 + 2 * hosts);
  if (http_ == nullptr) {
    auto front = std::make_unique<EventFront>(threads);
    front_ = front.get();
    http_ = std::move(front);
  }
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Headers and body go out in separate writes; without this, Nagle's algorithm and delayed
  // ACKs add 40 ms to every keep-alive request.
  http_->set_tcp_nodelay(true);
  // Like the real service (Go's net/http: idle connections live 60 s, any number of requests),
  // not httplib's 5 requests and 5 s, which would make clients reconnect all the time.
  http_->set_keep_alive_max_count(100000);
  http_->set_keep_alive_timeout(
      std::chrono::duration_cast<std::chrono::seconds>(o.keep_alive).count());
  // httplib listens with a backlog of 5; many clients connecting at once (one port serving
  // hundreds of hosts) would see dropped SYNs and one-second retransmits. The listening socket
  // is remembered here and its backlog raised after binding.
  http_->set_socket_options([this](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_socket_ = sock;
  });
  // Synchronous creates may take as long as the configured latencies; never cut them short.
  http_->set_write_timeout(std::chrono::hours(5));
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    Handle(req, req.body, res);
  };
  // httplib answers 400 to a POST/PUT/PATCH without Content-Length before routing unless the
  // handler reads the body itself; the real (Go) service accepts such requests (`curl -X PUT`).
  auto reader_handler = [this](const httplib::Request& req, httplib::Response& res,
                               const httplib::ContentReader& reader) {
    std::string body;
    if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
      reader([&body](const char* data, size_t length) {
        body.append(data, length);
        return true;
      });
    }
    Handle(req, body, res);
  };
  http_->Get(".*", handler);
  http_->Options(".*", handler);
  http_->Delete(".*", handler);
  http_->Delete(".*", reader_handler);
  http_->Post(".*", reader_handler);
  http_->Put(".*", reader_handler);
  http_->Patch(".*", reader_handler);
  int port = o.listen_port;
  if (port == 0) {
    port = http_->bind_to_any_port(o.listen_host);
    if (port < 0) {
      port = 0;
    }
  } else if (!http_->bind_to_port(o.listen_host, port)) {
    port = 0;
  }
  if (port == 0) {
    return Status::Unavailable("cannot listen on " + o.listen_host + ":" +
                               std::to_string(o.listen_port));
  }
  if (listen_socket_ >= 0) {
    ::listen(listen_socket_, SOMAXCONN);
  }
  return port;
}

void SimServer::Serve() {
  if (front_ != nullptr) {
    front_->ServeEvents();
  } else {
    http_->listen_after_bind();
  }
}

bool SimServer::running() const {
  if (front_ != nullptr) {
    return front_->serving();
  }
  return http_ != nullptr && http_->is_running();
}

void SimServer::Stop() {
  if (front_ != nullptr) {
    front_->StopEvents();
  } else if (http_ != nullptr) {
    http_->stop();
  }
}

void SimServer::Handle(const httplib::Request& req, const std::string& body,
                       httplib::Response& res) {
  const auto start = std::chrono::steady_clock::now();
  std::string log_path = req.path;
  Reply reply;
  try {
    if (req.path == "/_sim" || req.path.rfind("/_sim/", 0) == 0) {
      reply = world_.options().control ? HandleControl(req, body) : NotFoundPath(req.path);
    } else {
      reply = HandleApi(req, body, &log_path);
    }
  } catch (const std::exception& e) {
    reply = Reply::Error(ApiError::Coded(500, std::string("internal error: ") + e.what()));
  }
  Write(res, reply);
  if (world_.options().log_requests) {
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "%s %s %d %.1fms\n", req.method.c_str(), log_path.c_str(), reply.status,
                 ms);
  }
}

Reply SimServer::HandleApi(const httplib::Request& req, const std::string& body,
                           std::string* log_path) {
  const SimOptions& o = world_.options();
  // Which host, and the path as that host sees it.
  SimHost* host = nullptr;
  std::string path = req.path;
  if (world_.multi_host()) {
    if (path.rfind("/h/", 0) != 0) {
      return NotFoundPath(path);
    }
    const size_t slash = path.find('/', 3);
    host = world_.FindHost(path.substr(3, slash == std::string::npos ? slash : slash - 3));
    if (host == nullptr || slash == std::string::npos) {
      return NotFoundPath(path);
    }
    path = path.substr(slash);
  } else {
    host = world_.hosts().front().get();
  }
  *log_path = req.path;

  // An offline host does not answer until it is back (or the client gives up).
  if (!host->online() && !host->WaitOnline(o.offline_hang)) {
    return Reply::Error(ApiError::Coded(503, "host " + host->name() + " is offline"));
  }

  std::string sub;
  if (path.rfind("/api/v1/", 0) == 0) {
    sub = path.substr(8);
  } else if (path.rfind("/api/", 0) == 0) {
    sub = path.substr(5);
  } else {
    host->RecordCall("unrouted", 404);
    return NotFoundPath(path);
  }
  if (!sub.empty() && sub.back() == '/') {
    sub.pop_back();  // StrictSlash(true)
  }
  const std::vector<std::string> parts = SplitPath(sub);
  const Route* route = nullptr;
  for (const Route& r : routes_->list) {
    if (PathMatches(r.pattern, parts) &&
        (r.method == req.method || (req.method == "HEAD" && r.method == "GET"))) {
      route = &r;
      break;
    }
  }
  if (route == nullptr) {
    // A known path with the wrong verb is a 404 too, never a 405: every route is its own
    // Methods(M).Subrouter() (restapi/controllers.go), and gorilla/mux v1.8.1's Route.Match
    // clears ErrMethodMismatch as soon as a later route's method matches, so the top-level
    // NotFoundHandler answers (restapi/not_found.go; executed against mux v1.8.1 with the
    // service's route list, audit #6).
    host->RecordCall("unrouted", 404);
    return NotFoundPath(path);
  }
  Reply reply;
  std::optional<Reply> denied;
  bool user = false;  // a login token's user, not an API key, is calling
  if (route->auth) {
    std::string authorization;
    std::string api_key;
    denied = host->Authenticate(Header(req, "Authorization", &authorization),
                                Header(req, "X-Api-Key", &api_key), &user);
  }
  if (denied) {
    reply = *denied;
  } else if (std::optional<ApiError> fault = host->TakeFault(route->name)) {
    reply = Reply::Error(*fault);
  } else {
    const std::string id = parts.size() >= 2 ? parts[1] : "";
    const bool force = req.get_param_value("force") == "true";
    switch (route->api) {
      case Api::kLogin:
        reply = host->Login(body);
        break;
      case Api::kValidate:
        reply = host->ValidateToken(body);
        break;
      case Api::kProbe:
        reply = Reply::Json(200, {{"status", "OK"}});
        break;
      case Api::kHealth:
        reply = Reply::Json(
            200, {{"healthy", true},
                  {"message", "All Services Running"},
                  {"services",
                   json::array({{{"name", "Parallels Desktop Service"}, {"healthy", true}}})}});
        break;
      case Api::kHardware:
        reply = host->Hardware();
        break;
      case Api::kList: {
        std::string filter;
        reply = host->ListVms(Header(req, "X-Filter", &filter));
        break;
      }
      case Api::kCreate:
        reply = host->Create(body, /*async=*/false, user);
        break;
      case Api::kCreateAsync:
        reply = host->Create(body, /*async=*/true, user);
        break;
      case Api::kGet:
        reply = host->GetVm(id);
        break;
      case Api::kDelete:
        reply = host->Delete(id, force);
        break;
      case Api::kStatus:
        reply = host->VmStatus(id);
        break;
      case Api::kClone:
        reply = host->Clone(id, body);
        break;
      case Api::kSet:
        reply = host->Set(id, body);
        break;
      case Api::kExecute:
        reply = host->Execute(id, body);
        break;
      case Api::kRename:
        reply = host->Rename(id, body);
        break;
      case Api::kState:
        reply = host->ChangeState(id, *route->op, force);
        break;
      case Api::kJobs:
        reply = host->ListJobs(user);
        break;
      case Api::kJob:
        reply = host->GetJob(id, user);
        break;
      case Api::kCache:
        reply = host->Cache();
        break;
      case Api::kProxyList:
        reply = host->reverse_proxy()->List();
        break;
      case Api::kProxyCreate:
        reply = host->reverse_proxy()->Create(body);
        break;
      case Api::kProxyGet:
        reply = host->reverse_proxy()->Get(parts[2]);
        break;
      case Api::kProxyUpdate:
        reply = host->reverse_proxy()->Update(parts[2], body);
        break;
      case Api::kProxyDelete:
        reply = host->reverse_proxy()->Delete(parts[2]);
        break;
      case Api::kProxyTcpRoute:
        reply = host->reverse_proxy()->SetTcpRoute(parts[2], body);
        break;
    }
    // The call ran; its answer may still be lost on the way back.
    Duration slow_for{0};
    switch (host->TakeLostAnswer(&slow_for)) {
      case LostAnswer::kNone:
        break;
      case LostAnswer::kDrop:
        reply.drop = true;
        break;
      case LostAnswer::kSlow:
        world_.Sleep(slow_for);
        break;
    }
  }
  host->RecordCall(route->name, reply.drop ? 0 : reply.status);
  return reply;
}

Reply SimServer::HandleControl(const httplib::Request& req, const std::string& body_text) {
  const std::vector<std::string> parts =
      SplitPath(req.path.substr(std::min<size_t>(6, req.path.size())));
  const std::string& m = req.method;
  auto body = [&]() { return json::parse(body_text.empty() ? "{}" : body_text, nullptr, false); };
  auto bad = [](std::string msg) { return Reply::Error(ApiError::Raw(400, std::move(msg))); };
  auto host_or_404 = [&](const std::string& name, SimHost** out) -> std::optional<Reply> {
    *out = world_.FindHost(name);
    if (*out == nullptr) {
      return Reply::Error(ApiError::Raw(404, "host " + name + " not found"));
    }
    return std::nullopt;
  };
  const size_t n = parts.size();
  // GET /_sim/hosts: name, online, vms, and in_flight (SimHost::InFlight).
  if (n == 1 && parts[0] == "hosts") {
    if (m != "GET") {
      return Reply::Empty(405);
    }
    json list = json::array();
    for (const auto& host : world_.hosts()) {
      list.push_back({{"name", host->name()},
                      {"online", host->online()},
                      {"vms", host->VmCount()},
                      {"in_flight", host->InFlight()}});
    }
    return Reply::Json(200, std::move(list));
  }
  // POST /_sim/faults
  if (n == 1 && parts[0] == "faults") {
    if (m != "POST") {
      return Reply::Empty(405);
    }
    const json j = body();
    if (j.is_discarded() || !j.is_object()) {
      return bad("body must be a JSON object");
    }
    const std::string endpoint = j.value("endpoint", "");
    const auto& names = EndpointNames();
    if (std::find(names.begin(), names.end(), endpoint) == names.end()) {
      return bad("unknown endpoint \"" + endpoint + "\"");
    }
    const int count =
        j.contains("count") && j["count"].is_number_integer() ? j["count"].get<int>() : 1;
    const int status =
        j.contains("status") && j["status"].is_number_integer() ? j["status"].get<int>() : 500;
    if (count < 1 || status < 100 || status > 599) {
      return bad("count must be >= 1 and status in 100..599");
    }
    const std::string message = j.value("message", "injected fault");
    std::vector<SimHost*> targets;
    if (j.contains("host") && j["host"].is_string()) {
      SimHost* host = nullptr;
      if (auto err = host_or_404(j["host"].get<std::string>(), &host)) {
        return *err;
      }
      targets.push_back(host);
    } else {
      for (const auto& host : world_.hosts()) {
        targets.push_back(host.get());
      }
    }
    json names_out = json::array();
    for (SimHost* host : targets) {
      host->AddFault(endpoint, count, status, message);
      names_out.push_back(host->name());
    }
    return Reply::Json(
        200, {{"endpoint", endpoint}, {"count", count}, {"status", status}, {"hosts", names_out}});
  }
  // POST /_sim/chaos: {"host"?, "fault_rate"?, "drop_rate"?, "slow_rate"?, "slow_ms"?}; a
  // missing rate is 0 (fault_rate: back to the command line's), no host: every host.
  if (n == 1 && parts[0] == "chaos") {
    if (m != "POST") {
      return Reply::Empty(405);
    }
    const json j = body();
    if (j.is_discarded() || !j.is_object()) {
      return bad("body must be a JSON object");
    }
    Chaos chaos;
    const std::pair<const char*, double*> rates[] = {{"drop_rate", &chaos.drop_rate},
                                                     {"slow_rate", &chaos.slow_rate}};
    for (const auto& [key, target] : rates) {
      if (j.contains(key)) {
        if (!j[key].is_number() || j[key].get<double>() < 0 || j[key].get<double>() > 1) {
          return bad(std::string(key) + " must be a number in [0, 1]");
        }
        *target = j[key].get<double>();
      }
    }
    if (j.contains("fault_rate")) {
      if (!j["fault_rate"].is_number() || j["fault_rate"].get<double>() < 0 ||
          j["fault_rate"].get<double>() > 1) {
        return bad("fault_rate must be a number in [0, 1]");
      }
      chaos.fault_rate = j["fault_rate"].get<double>();
    }
    if (j.contains("slow_ms")) {
      if (!j["slow_ms"].is_number_integer() || j["slow_ms"].get<int64_t>() < 0) {
        return bad("slow_ms must be a non-negative integer");
      }
      chaos.slow_for = Duration(j["slow_ms"].get<int64_t>());
    }
    json names_out = json::array();
    for (const auto& host : world_.hosts()) {
      if (!j.contains("host") || j["host"] == host->name()) {
        host->SetChaos(chaos);
        names_out.push_back(host->name());
      }
    }
    if (names_out.empty()) {
      return Reply::Error(ApiError::Raw(404, "host " + j["host"].dump() + " not found"));
    }
    return Reply::Json(200, {{"hosts", names_out}});
  }
  // /_sim/counters, /_sim/counters/reset
  if (n == 1 && parts[0] == "counters") {
    if (m != "GET") {
      return Reply::Empty(405);
    }
    json out = json::object();
    for (const auto& host : world_.hosts()) {
      out[host->name()] = host->Counters();
    }
    return Reply::Json(200, std::move(out));
  }
  if (n == 2 && parts[0] == "counters" && parts[1] == "reset") {
    if (m != "POST") {
      return Reply::Empty(405);
    }
    for (const auto& host : world_.hosts()) {
      host->ResetCounters();
    }
    return Reply::Json(200, {{"reset", true}});
  }
  // /_sim/hosts/{host}/...
  if (n >= 3 && parts[0] == "hosts" && !parts[1].empty()) {
    SimHost* host = nullptr;
    if (auto err = host_or_404(parts[1], &host)) {
      return *err;
    }
    if (n == 3 && (parts[2] == "offline" || parts[2] == "online" || parts[2] == "expire-tokens")) {
      if (m != "POST") {
        return Reply::Empty(405);
      }
      if (parts[2] == "expire-tokens") {
        host->ExpireTokens();
      } else {
        host->SetOnline(parts[2] == "online");
      }
      return Reply::Json(200, {{"name", host->name()}, {"online", host->online()}});
    }
    if (n == 3 && parts[2] == "vms") {
      return m == "POST" ? host->ControlCreateVm(body_text) : Reply::Empty(405);
    }
    if (n == 4 && parts[2] == "vms" && !parts[3].empty()) {
      if (m == "PATCH") {
        return host->ControlPatchVm(parts[3], body_text);
      }
      if (m == "DELETE") {
        return host->ControlDeleteVm(parts[3]);
      }
      return Reply::Empty(405);
    }
    if (n == 5 && parts[2] == "vms" && parts[4] == "executions") {
      return m == "GET" ? host->ControlExecutions(parts[3]) : Reply::Empty(405);
    }
  }
  return NotFoundPath(req.path);
}

// ---------------------------------------------------------------------------------------------
// SimService

Result<std::unique_ptr<SimService>> SimService::Start(SimOptions options) {
  if (Status s = Validate(options); !s.ok()) {
    return s;
  }
  std::unique_ptr<SimService> service(new SimService());
  service->world_ = std::make_unique<SimWorld>(std::move(options));
  if (Status s = service->world_->Open(); !s.ok()) {
    return s;
  }
  service->server_ = std::make_unique<SimServer>(*service->world_);
  Result<int> port = service->server_->Bind();
  if (!port.ok()) {
    return port.status();
  }
  service->port_ = *port;
  const SimOptions& o = service->world_->options();
  if (!o.port_file.empty()) {
    if (Status s = WriteFileAtomically(o.port_file, std::to_string(*port) + "\n"); !s.ok()) {
      return s;
    }
  }
  SimServer* server = service->server_.get();
  service->thread_ = std::thread([server] { server->Serve(); });
  // Serve() marks the server running before it accepts; Stop() before that would be lost.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!server->running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      service->Stop();
      return Status::Unavailable("the HTTP server did not start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return service;
}

SimService::~SimService() { Stop(); }

std::string SimService::base_url() const {
  const SimOptions& o = world_->options();
  std::string host = o.listen_host;
  if (host == "0.0.0.0" || host.empty()) {
    host = "127.0.0.1";
  }
  return (o.tls_cert.empty() ? "http://" : "https://") + host + ":" + std::to_string(port_);
}

void SimService::Stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  if (world_ != nullptr) {
    world_->Shutdown();
  }
  if (server_ != nullptr) {
    server_->Stop();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  if (world_ != nullptr) {
    if (Status s = world_->SaveState(); !s.ok()) {
      std::fprintf(stderr, "flotilla-hostsim: %s\n", s.ToString().c_str());
    }
  }
}

}  // namespace flotilla::hostsim
