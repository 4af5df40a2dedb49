#include "reconciler/api/server.h"

#include <httplib.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>
#include <filesystem>

#include "reconciler/api/dashboard.h"
#include "reconciler/api/front_door.h"
#include "reconciler/api/gzip.h"
#include "reconciler/api/live.h"
#include "reconciler/api/routes.h"
#include "reconciler/api/tunnel.h"
#include "reconciler/api/view_cache.h"
#include "reconciler/api/vms_pieces.h"

namespace flotilla::api {
namespace {

// The nice value of the thread that renders views ahead (LowerWarmerPriority).
constexpr int kWarmerNice = 10;

// What the request's Accept-Encoding offered, kept by TakeEncoding under a name no client's
// header can reach (a client's own copy is removed first).
constexpr const char* kGzipOffered = "Flotilla-Internal-Gzip-Offered";

// Answers are compressed by Send, with gzip when the client takes it (gzip.h), never by
// cpp-httplib: it would compress a kept view again for every request, and with Brotli at its
// highest quality (about 12 s for the 4 MB of /api/v1/vms with 10,000 VMs) when a browser offers
// "gzip, deflate, br". So the offer is taken off the request before cpp-httplib sees it.
//
// A Range is taken off too: cpp-httplib slices an answer whose handler set the status to the part
// asked for and still says 200, so a client would take ten bytes for the whole VM list. The API
// answers whole (RFC 9110 14.2 lets a server ignore Range).
void TakeEncoding(httplib::Request& req) {
  req.ranges.clear();
  req.headers.erase("Range");
  req.headers.erase(kGzipOffered);
  bool gzip = false;
  for (auto [it, end] = req.headers.equal_range("Accept-Encoding"); it != end; ++it) {
    gzip = gzip || AcceptsGzip(it->second);
  }
  req.headers.erase("Accept-Encoding");
  if (gzip) {
    req.headers.emplace(kGzipOffered, "1");
  }
}

bool GzipOffered(const httplib::Request& req) { return req.has_header(kGzipOffered); }

// cpp-httplib's request handling (parsing, routing, answering) for one request of a stream
// the front door hands over; its own accept loop and thread pool are not used.
//
// cpp-httplib writes an answer's content provider only while the server's listening socket is
// set (Server::write_content_with_provider stops at once when `svr_sock_` is INVALID_SOCKET: it
// takes that for a shutdown). This server never listens, so a descriptor of its own, open on
// /dev/null and never read, stands there; nothing of cpp-httplib uses it otherwise (stop() and
// the accept loop only while listening, which it never does).
class HttpCore final : public httplib::Server {
 public:
  HttpCore() : placeholder_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) { svr_sock_ = placeholder_; }
  ~HttpCore() override {
    if (placeholder_ >= 0) {
      ::close(placeholder_);
    }
  }
  HttpCore(const HttpCore&) = delete;
  HttpCore& operator=(const HttpCore&) = delete;

  // Whether the placeholder could be opened (without it, kept views would be sent empty).
  bool ready() const { return placeholder_ >= 0; }

  void Serve(httplib::Stream& stream, bool& closed) {
    closed = false;
    if (!process_request(stream, /*close_connection=*/false, closed, TakeEncoding)) {
      closed = true;
    }
  }

 private:
  const int placeholder_;
};

// What SetKeptContent hands cpp-httplib at a time.
constexpr size_t kKeptChunk = size_t{1} << 20;

// Writes `body` as the answer's content straight from where `owner` keeps it (a kept view),
// without copying it into the answer: a 50 MB view is not copied once per request.
void SetKeptContent(httplib::Response& res, const std::string& body,
                    const std::string& content_type, std::shared_ptr<const void> owner) {
  res.set_content_provider(
      body.size(), content_type,
      [&body, owner = std::move(owner)](size_t offset, size_t length, httplib::DataSink& sink) {
        return sink.write(body.data() + offset, std::min(length, kKeptChunk));
      });
}

// cpp-httplib's content provider for a body kept in parts (body_parts.h): writes them one after
// the other from where they are kept, which `owner` (the kept view) keeps alive; no joined copy
// is made.
class PartsProvider {
 public:
  PartsProvider(const BodyParts& parts, std::shared_ptr<const void> owner)
      : parts_(&parts), owner_(std::move(owner)) {}

  bool operator()(size_t offset, size_t length, httplib::DataSink& sink) {
    if (offset < start_) {  // cpp-httplib asks for increasing offsets; any other is looked up
      index_ = 0;
      start_ = 0;
    }
    const auto& list = parts_->parts();
    while (index_ < list.size() && offset >= start_ + list[index_]->size()) {
      start_ += list[index_]->size();
      ++index_;
    }
    if (index_ == list.size()) {
      return false;
    }
    const std::string& part = *list[index_];
    const size_t at = offset - start_;
    return sink.write(part.data() + at, std::min({length, kKeptChunk, part.size() - at}));
  }

 private:
  const BodyParts* parts_;
  std::shared_ptr<const void> owner_;
  size_t index_ = 0;  // the part where the last write was
  size_t start_ = 0;  // its offset in the body
};

void SetSecurityHeaders(httplib::Response& res) {
  for (const auto& [name, value] : SecurityHeaders()) {
    res.set_header(std::string(name), std::string(value));
  }
}

// The ETag of the gzip answer whose identity answer has `etag`: a strong validator names one
// representation, and the content coding is part of it (RFC 9110 8.8.3).
std::string GzipETag(std::string_view etag) {
  if (etag.size() < 2 || etag.back() != '"') {
    return std::string(etag);
  }
  return std::string(etag.substr(0, etag.size() - 1)) + "-gzip\"";
}

// `reply` as the answer. `gzip`: the client takes gzip. `view`, when not null, is the kept view
// `reply` belongs to: its body, or its gzip copy (made once), is written from there.
void SendAs(const Reply& reply, httplib::Response& res, bool gzip,
            const std::shared_ptr<const CachedView>& view) {
  SetSecurityHeaders(res);
  const size_t size = reply.parts != nullptr ? reply.parts->size() : reply.body.size();
  const bool compressible = size != 0 && Compressible(reply.content_type);
  gzip = gzip && compressible;
  bool cache_control = false;
  for (const auto& [name, value] : reply.headers) {
    res.set_header(name, gzip && name == "ETag" ? GzipETag(value) : value);
    cache_control = cache_control || name == "Cache-Control";
  }
  if (!cache_control) {
    res.set_header("Cache-Control", "no-store");  // data read with a token stays out of caches
  }
  if (reply.status) {
    res.status = *reply.status;
  }
  if (compressible) {
    res.set_header("Vary", "Accept-Encoding");
  }
  if (gzip) {
    res.set_header("Content-Encoding", "gzip");
    if (view != nullptr) {
      SetKeptContent(res, view->Gzipped(), reply.content_type, view);
    } else {
      res.set_content(!reply.gzipped.empty()   ? reply.gzipped
                      : reply.parts != nullptr ? Gzip(reply.parts->Joined())
                                               : Gzip(reply.body),
                      reply.content_type);
    }
  } else if (view != nullptr && reply.parts != nullptr && size != 0) {
    res.set_content_provider(reply.parts->size(), reply.content_type,
                             PartsProvider(*reply.parts, view));
  } else if (view != nullptr && !reply.body.empty()) {
    SetKeptContent(res, reply.body, reply.content_type, view);
  } else if (reply.parts != nullptr) {
    res.set_content(reply.parts->Joined(), reply.content_type);
  } else if (!reply.body.empty() || !reply.content_type.empty()) {
    res.set_content(reply.body, reply.content_type);
  }
}

void Send(const Reply& reply, const httplib::Request& req, httplib::Response& res) {
  SendAs(reply, res, GzipOffered(req), nullptr);
}

// How `route`'s view for `req` is rendered, for the cache to keep and warm (view_cache.h): with
// its own copy of what a view reads of a request (its path and query parameters) and of the
// handlers' context, for no caller (a view is the same for every caller admitted to it).
RenderView ViewRenderer(const Route& route, const httplib::Request& req,
                        const RouteContext& context) {
  httplib::Request request;
  request.method = req.method;
  request.path = req.path;
  request.params = req.params;
  RouteContext base = context;
  base.caller = nullptr;
  return [handler = route.handler, request = std::move(request),
          base = std::move(base)](const Snapshot& snapshot) {
    RouteContext context = base;
    return handler(request, &snapshot, context);
  };
}

// A view of the snapshot (Route::view) for an admitted request: 304 with no body when
// If-None-Match names its ETag (nothing is rendered then), else the rendering the cache keeps.
void SendView(ViewCache& cache, const Route& route, const httplib::Request& req,
              const std::shared_ptr<const Snapshot>& snapshot, const RouteContext& context,
              httplib::Response& res) {
  const std::string key = ViewKey(route, req);
  const bool gzip = GzipOffered(req);
  if (const std::string asked = req.get_header_value("If-None-Match"); !asked.empty()) {
    const std::string etag = cache.ETag(snapshot, key);
    // Either coding's tag: a client may have kept the other one (it changed what it offers).
    if (IfNoneMatchHits(asked, etag) || IfNoneMatchHits(asked, GzipETag(etag))) {
      Send(Reply{.status = 304,
                 .headers = {{"ETag", gzip ? GzipETag(etag) : etag}, {"Vary", "Accept-Encoding"}}},
           req, res);
      return;
    }
  }
  bool rendered = false;
  const std::shared_ptr<const CachedView> view =
      cache.Get(snapshot, key, ViewRenderer(route, req, context), &rendered);
  if (rendered) {
    context.telemetry.ViewsRendered("request", 1);
  }
  // Written from the kept view (no copy); compressed once per view.
  SendAs(view->reply, res, gzip, view);
}

// Answers what no handler did (404, 413, ...) with a JSON error. A path no route serves is
// named only to a caller with a token (the dashboard's paths, which hold no data, to anyone).
void AnswerUnhandled(const httplib::Request& req, httplib::Response& res, const Gate& gate) {
  if (!res.body.empty()) {
    return;
  }
  if (res.status == 404) {
    const Access access = IsDashboardPath(req.path) ? Access::kPublic : Access::kToken;
    if (auto admitted = Admit(req, access, gate); std::holds_alternative<Reply>(admitted)) {
      Send(std::get<Reply>(admitted), req, res);
      return;
    }
    Send(ErrorReply(404, "no such endpoint: " + req.method + " " + req.path), req, res);
  } else if (res.status == 413) {
    Send(ErrorReply(413, "the request body is too large"), req, res);
  } else {
    Send(ErrorReply(res.status, "HTTP " + std::to_string(res.status)), req, res);
  }
}

// Logs a handler's exception and answers 500.
void AnswerException(spdlog::logger& logger, const httplib::Request& req, httplib::Response& res,
                     std::exception_ptr e) {
  std::string what = "unknown error";
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  logger.error("api: {} {} failed: {}", req.method, req.path, what);
  Send(ErrorReply(500, "internal error"), req, res);
}

}  // namespace

Result<std::pair<std::string, int>> ParseListen(std::string_view listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument("listen address \"" + std::string(listen) +
                                   "\" must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080");
  }
  std::string host(listen.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string_view digits = listen.substr(colon + 1);
  int port = -1;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || end != digits.data() + digits.size() || port < 0 || port > 65535 ||
      host.empty()) {
    return Status::InvalidArgument("listen address \"" + std::string(listen) +
                                   "\" must be host:port with a port from 0 to 65535");
  }
  return std::make_pair(host, port);
}

TokenSet TokensOf(const std::string& token, const std::vector<ApiToken>& tokens) {
  std::vector<ApiToken> all;
  if (!token.empty()) {
    all.push_back(
        ApiToken{.name = std::string(kDefaultTokenName), .secret = token, .roles = Roles::All()});
  }
  all.insert(all.end(), tokens.begin(), tokens.end());
  return TokenSet(std::move(all));
}

bool IsLoopback(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

Server::Server(ServerOptions options, Backend& backend, store::Store& store, Telemetry& telemetry,
               std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      tokens_(std::make_shared<const TokenSet>(TokensOf(options_.token, options_.tokens))),
      limiter_(std::make_unique<FailureLimiter>(
          options_.auth_failures, options_.clock != nullptr ? *options_.clock : system_clock_)),
      backend_(backend),
      store_(store),
      telemetry_(telemetry),
      logger_(std::move(logger)),
      views_(std::make_unique<ViewCache>()),
      vms_pieces_(std::make_unique<VmsPieces>()),
      tunnels_(std::make_unique<TunnelCounter>()) {}

Server::~Server() {
  Stop();
  if (warmer_.joinable()) {
    warmer_.join();
  }
}

void Server::SnapshotPublished() {
  {
    std::lock_guard lock(warm_mu_);
    warm_asked_ = true;
  }
  warm_cv_.notify_one();
}

namespace {

// The warmer's renderings are not urgent (a request for a view being warmed waits for it, and
// renders it itself otherwise) and compete for the cores with the loop's pass, which is: so its
// thread runs niced. Linux keeps a nice value per thread (setpriority(2) on a thread id), so the
// request threads and the loop keep the process's. Named, so that top -H and ps -L show it.
void LowerWarmerPriority(const std::shared_ptr<spdlog::logger>& logger) {
#ifdef __linux__
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  if (errno == 0 && now < kWarmerNice &&
      setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kWarmerNice) != 0) {
    logger->debug("api: the view warmer keeps the process's priority: {}", std::strerror(errno));
  }
  pthread_setname_np(pthread_self(), "flotilla-warm");
#else
  (void)logger;
#endif
}

}  // namespace

void Server::WarmViews() {
  LowerWarmerPriority(logger_);
  while (true) {
    {
      std::unique_lock lock(warm_mu_);
      warm_cv_.wait(lock, [this] { return warm_asked_ || stopping_; });
      if (stopping_) {
        return;
      }
      warm_asked_ = false;  // publications meanwhile: the newest is what Latest() gives
    }
    if (std::shared_ptr<const Snapshot> snapshot = backend_.Latest(); snapshot != nullptr) {
      const size_t warmed = views_->Warm(snapshot, stopping_);
      telemetry_.ViewsRendered("ahead", warmed);
      if (warmed > 0) {
        logger_->debug("api: {} view(s) rendered for the new snapshot", warmed);
      }
    }
  }
}

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options, Backend& backend,
                                              store::Store& store, Telemetry& telemetry,
                                              std::shared_ptr<spdlog::logger> logger) {
  Result<std::pair<std::string, int>> listen = ParseListen(options.listen);
  if (!listen.ok()) {
    return listen.status();
  }
  if (TokensOf(options.token, options.tokens).open() && !IsLoopback(listen->first)) {
    return Status::FailedPrecondition(
        "the API would listen on " + options.listen +
        " without a token: set api.tokenFile (or api.tokenEnv), or listen on 127.0.0.1");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return Status::InvalidArgument("api.tls needs both certFile and keyFile");
  }
  std::unique_ptr<Server> server(
      new Server(std::move(options), backend, store, telemetry, std::move(logger)));
  if (!server->options_.tls_cert_file.empty()) {
    for (const std::string& file :
         {server->options_.tls_cert_file, server->options_.tls_key_file}) {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(file, ec)) {
        return Status::FailedPrecondition("cannot read the API's TLS file " + file);
      }
    }
  }
  auto core = std::make_unique<HttpCore>();
  if (!core->ready()) {
    return Status::Internal(std::string("the API cannot open /dev/null: ") + std::strerror(errno));
  }
  HttpCore* raw_core = core.get();
  server->http_ = std::move(core);
  server->host_ = listen->first;
  server->Routes();
  const ServerOptions& o = server->options_;
  Result<std::unique_ptr<FrontDoor>> door = FrontDoor::Open(
      FrontDoorOptions{.host = listen->first,
                       .port = listen->second,
                       .tls_cert_file = o.tls_cert_file,
                       .tls_key_file = o.tls_key_file,
                       .workers = std::max<size_t>(o.threads, 1),
                       .stream_workers = o.live_streams,
                       .stream_lifetime = o.live_lifetime,
                       .tunnel_workers = std::max<size_t>(o.tunnels_max, 1),
                       .header_timeout = o.header_timeout,
                       .io_timeout = o.io_timeout,
                       .max_body_bytes = o.max_body_bytes,
                       .max_per_client = o.max_connections_per_client,
                       .max_connections = o.max_connections},
      [raw_core](httplib::Stream& stream, bool& closed) { raw_core->Serve(stream, closed); },
      [raw = server.get()](httplib::Stream& stream, bool& closed) {
        closed = true;  // the answer has no length: it ends with the connection
        ServeLiveStream(stream, *raw->context_, raw->MakeGate(), raw->stopping_);
      },
      [raw = server.get()](httplib::Stream& stream, FrontDoor::Handover& handover) {
        ServeTunnel(stream, handover, *raw->context_, raw->MakeGate(), *raw->tunnels_,
                    raw->stopping_);
      },
      server->logger_);
  if (!door.ok()) {
    if (door.status().code() == Status::Code::kUnavailable) {
      return Status::Unavailable("cannot listen on " + o.listen + " (" + door.status().message() +
                                 ")");
    }
    return door.status();
  }
  server->front_ = std::move(*door);
  server->port_ = server->front_->port();
  server->warmer_ = std::thread([raw = server.get()] { raw->WarmViews(); });
  return server;
}

std::string Server::url() const {
  std::string host = host_ == "0.0.0.0" || host_ == "::" ? "127.0.0.1" : host_;
  if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  return std::string(options_.tls_cert_file.empty() ? "http" : "https") + "://" + host + ":" +
         std::to_string(port_);
}

void Server::Stop() {
  {
    std::lock_guard lock(warm_mu_);  // so the warmer cannot miss it between check and wait
    stopping_ = true;
  }
  warm_cv_.notify_one();
  if (front_ != nullptr) {
    front_->Stop();
  }
}

Status Server::SetSecrets(const std::string& token, const std::vector<ApiToken>& tokens,
                          std::string webhook_secret) {
  auto set = std::make_shared<const TokenSet>(TokensOf(token, tokens));
  if (set->open() && !IsLoopback(host_)) {
    return Status::FailedPrecondition("the API token became empty; the API listens on " + host_ +
                                      ", so the old tokens stay in force");
  }
  std::lock_guard lock(secrets_mu_);
  tokens_ = std::move(set);
  options_.webhook_secret = std::move(webhook_secret);
  return Status::Ok();
}

Gate Server::MakeGate() const {
  std::lock_guard lock(secrets_mu_);
  return Gate{.tokens = tokens_, .limiter = *limiter_, .telemetry = telemetry_};
}

std::string Server::WebhookSecret() const {
  std::lock_guard lock(secrets_mu_);
  return options_.webhook_secret;
}

void Server::Routes() {
  httplib::Server& http = *http_;
  http.set_payload_max_length(options_.max_body_bytes);
  http.set_read_timeout(options_.io_timeout);
  http.set_write_timeout(options_.io_timeout);
  http.set_keep_alive_timeout(5);
  context_ = std::make_unique<RouteContext>(
      RouteContext{.backend = backend_,
                   .store = store_,
                   .telemetry = telemetry_,
                   .logger = *logger_,
                   .options = options_,
                   .webhook_secret = [this] { return WebhookSecret(); },
                   .reconcile_waiters = reconcile_waiters_,
                   .vms_pieces = *vms_pieces_});

  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    AnswerUnhandled(req, res, MakeGate());
  });
  http.set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr e) {
        AnswerException(*logger_, req, res, std::move(e));
      });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    logger_->debug("api: {} {} -> {}", req.method, req.path, res.status);
  });

  for (const Route& route : ApiRoutes()) {
    auto serve = [this, route](const httplib::Request& req, httplib::Response& res) {
      // Authentication and roles before anything else the route does.
      std::variant<Caller, Reply> admitted = Admit(req, route.access, MakeGate());
      if (Reply* refusal = std::get_if<Reply>(&admitted)) {
        Send(*refusal, req, res);
        return;
      }
      const Caller& caller = std::get<Caller>(admitted);
      RouteContext context = *context_;
      context.caller = route.access == Access::kPublic ? nullptr : &caller;
      std::shared_ptr<const Snapshot> snapshot;
      if (route.observation != Observation::kUnused) {
        snapshot = backend_.Latest();
        if (!snapshot && route.observation == Observation::kRequired) {
          Send(NoObservationReply(), req, res);
          return;
        }
      }
      if (route.view && snapshot) {
        SendView(*views_, route, req, snapshot, context, res);
        return;
      }
      Send(route.handler(req, snapshot.get(), context), req, res);
    };
    const std::string pattern(route.pattern);
    if (route.method == "POST") {
      http.Post(pattern, serve);
    } else {
      http.Get(pattern, serve);
    }
  }
}

}  // namespace flotilla::api
