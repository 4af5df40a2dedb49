#include "reconciler/api/server.h"

#include <httplib.h>

#include <charconv>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "reconciler/api/front_door.h"
#include "reconciler/api/views.h"
#include "reconciler/api/webhook.h"
#include "reconciler/render/inventory.h"
#include "reconciler/render/plan_render.h"

namespace flotilla::api {
namespace {

using nlohmann::json;

constexpr const char* kJson = "application/json";

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(2, ' ', false, json::error_handler_t::replace) + "\n", kJson);
}

void Error(httplib::Response& res, int status, std::string_view message) {
  Reply(res, status, json{{"error", message}});
}

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

bool Public(const std::string& path) {
  return path == "/healthz" || path == "/readyz" || path == "/api/v1/webhooks/git";
}

// cpp-httplib's request handling (parsing, routing, answering) for one request of a stream
// the front door hands over; its own accept loop and thread pool are not used.
class HttpCore final : public httplib::Server {
 public:
  void Serve(httplib::Stream& stream, bool& closed) {
    closed = false;
    if (!process_request(stream, /*close_connection=*/false, closed, [](httplib::Request&) {})) {
      closed = true;
    }
  }
};

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

bool IsLoopback(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

Server::Server(ServerOptions options, Backend& backend, store::Store& store, Telemetry& telemetry,
               std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      backend_(backend),
      store_(store),
      telemetry_(telemetry),
      logger_(std::move(logger)) {}

Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options, Backend& backend,
                                              store::Store& store, Telemetry& telemetry,
                                              std::shared_ptr<spdlog::logger> logger) {
  Result<std::pair<std::string, int>> listen = ParseListen(options.listen);
  if (!listen.ok()) {
    return listen.status();
  }
  if (options.token.empty() && !IsLoopback(listen->first)) {
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
                       .header_timeout = o.header_timeout,
                       .io_timeout = o.io_timeout,
                       .max_body_bytes = o.max_body_bytes,
                       .max_per_client = o.max_connections_per_client,
                       .max_connections = o.max_connections},
      [raw_core](httplib::Stream& stream, bool& closed) { raw_core->Serve(stream, closed); },
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
  if (front_ != nullptr) {
    front_->Stop();
  }
}

Status Server::SetSecrets(std::string token, std::string webhook_secret) {
  if (token.empty() && !IsLoopback(host_)) {
    return Status::FailedPrecondition("the API token became empty; the API listens on " + host_ +
                                      ", so the old token stays in force");
  }
  std::lock_guard lock(secrets_mu_);
  options_.token = std::move(token);
  options_.webhook_secret = std::move(webhook_secret);
  return Status::Ok();
}

std::string Server::Token() const {
  std::lock_guard lock(secrets_mu_);
  return options_.token;
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

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const std::string token = Token();
    if (token.empty() || Public(req.path)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    const bool ok = header.size() > kBearer.size() && header.starts_with(kBearer) &&
                    ConstantTimeEquals(std::string_view(header).substr(kBearer.size()), token);
    if (ok) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.set_header("WWW-Authenticate", "Bearer");
    Error(res, 401,
          header.empty() ? "this endpoint needs an Authorization: Bearer <token> header"
                         : "the bearer token is not valid");
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) {
      return;
    }
    if (res.status == 404) {
      Error(res, 404, "no such endpoint: " + req.method + " " + req.path);
    } else if (res.status == 413) {
      Error(res, 413, "the request body is too large");
    } else {
      Error(res, res.status, "HTTP " + std::to_string(res.status));
    }
  });
  http.set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr e) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(std::move(e));
        } catch (const std::exception& ex) {
          what = ex.what();
        } catch (...) {
        }
        logger_->error("api: {} {} failed: {}", req.method, req.path, what);
        Error(res, 500, "internal error");
      });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    logger_->debug("api: {} {} -> {}", req.method, req.path, res.status);
  });

  // A handler that needs the latest observation; 503 before the first.
  auto with_snapshot = [this](auto render) {
    return [this, render](const httplib::Request& req, httplib::Response& res) {
      std::shared_ptr<const Snapshot> snapshot = backend_.Latest();
      if (!snapshot) {
        Error(res, 503, "no observation yet: the first pass is still observing the hosts");
        return;
      }
      render(*snapshot, req, res);
    };
  };

  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, {{"status", "ok"}});
  });
  http.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    Result<std::optional<store::RevisionRecord>> store = store_.LastApplied();
    if (!store.ok()) {
      Reply(res, 503, {{"status", "not ready"}, {"reason", "store: " + store.status().message()}});
      return;
    }
    std::shared_ptr<const Snapshot> snapshot = backend_.Latest();
    if (!snapshot) {
      Reply(res, 503, {{"status", "not ready"}, {"reason", "no observation of the hosts yet"}});
      return;
    }
    Reply(res, 200, {{"status", "ready"}, {"observed_at", FormatTime(snapshot->observed_at)}});
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::shared_ptr<const Snapshot> snapshot = backend_.Latest();
    std::optional<std::chrono::system_clock::time_point> applied;
    if (Result<std::optional<store::RevisionRecord>> last = store_.LastApplied();
        last.ok() && *last) {
      applied = (*last)->attempted_at;
    }
    const Clock::TimePoint now =
        options_.clock != nullptr ? options_.clock->Now() : std::chrono::system_clock::now();
    res.set_content(telemetry_.Render(snapshot.get(), applied, now),
                    "text/plain; version=0.0.4; charset=utf-8");
  });

  http.Get("/api/v1/status", [this](const httplib::Request&, httplib::Response& res) {
    std::shared_ptr<const Snapshot> snapshot = backend_.Latest();
    Result<json> status = StatusJson(store_, snapshot.get());
    if (!status.ok()) {
      Error(res, 500, status.status().message());
      return;
    }
    Reply(res, 200, *status);
  });
  http.Get("/api/v1/hosts",
           with_snapshot([](const Snapshot& s, const httplib::Request&, httplib::Response& res) {
             Reply(res, 200, HostsJson(s));
           }));
  http.Get("/api/v1/vms", with_snapshot([](const Snapshot& s, const httplib::Request& req,
                                           httplib::Response& res) {
             VmFilter filter{.pool = req.get_param_value("pool"),
                             .vmset = req.get_param_value("vmset"),
                             .host = req.get_param_value("host"),
                             .state = req.get_param_value("state")};
             if (req.has_param("managed")) {
               const std::string managed = req.get_param_value("managed");
               if (managed != "true" && managed != "false") {
                 Error(res, 400, "managed must be true or false");
                 return;
               }
               filter.managed = managed == "true";
             }
             Reply(res, 200, VmsJson(s, filter));
           }));
  http.Get("/api/v1/overview/resources",
           with_snapshot([](const Snapshot& s, const httplib::Request&, httplib::Response& res) {
             Reply(res, 200, ResourcesJson(s));
           }));
  http.Get(
      "/api/v1/plan",
      with_snapshot([this](const Snapshot& s, const httplib::Request& req, httplib::Response& res) {
        const std::string format = req.has_param("format") ? req.get_param_value("format") : "json";
        const render::RenderOptions render{
            .revision = (options_.branch.empty() ? std::string("revision") : options_.branch) +
                        "@" + s.sha.substr(0, 7)};
        if (format == "json") {
          res.set_content(render::RenderPlanJson(s.plan, render), kJson);
        } else if (format == "text") {
          res.set_content(render::RenderPlanText(s.plan, render), "text/plain; charset=utf-8");
        } else if (format == "markdown") {
          res.set_content(render::RenderPlanMarkdown(s.plan, render),
                          "text/markdown; charset=utf-8");
        } else {
          Error(res, 400, "format must be json, text or markdown");
        }
      }));
  http.Get("/api/v1/inventory",
           with_snapshot([](const Snapshot& s, const httplib::Request&, httplib::Response& res) {
             res.set_content(render::RenderInventoryJson(render::Inventory{s.observed, s.ledger}),
                             kJson);
           }));
  http.Get("/api/v1/runs", [this](const httplib::Request& req, httplib::Response& res) {
    const std::optional<size_t> limit = Limit(req, 20);
    if (!limit) {
      Error(res, 400, "limit must be a number from 0 to 10000");
      return;
    }
    Result<json> runs = RunsJson(store_, *limit);
    if (!runs.ok()) {
      Error(res, 500, "store: " + runs.status().message());
      return;
    }
    Reply(res, 200, *runs);
  });
  http.Get(R"(/api/v1/runs/(\d{1,18}))",
           [this](const httplib::Request& req, httplib::Response& res) {
             const int64_t id = std::stoll(req.matches[1].str());
             Result<std::optional<store::RunRecord>> run = store_.Run(id);
             Result<std::vector<store::ActionRecord>> actions = store_.Actions(id);
             if (!run.ok() || !actions.ok()) {
               Error(res, 500, "store: " + (run.ok() ? actions.status() : run.status()).message());
               return;
             }
             if (!*run) {
               Error(res, 404, "no run " + std::to_string(id) + " (it may have been pruned)");
               return;
             }
             json body = RunJson(**run);
             body["actions"] = json::array();
             for (const store::ActionRecord& action : *actions) {
               body["actions"].push_back(ActionJson(action));
             }
             Reply(res, 200, body);
           });
  http.Get("/api/v1/revisions", [this](const httplib::Request& req, httplib::Response& res) {
    const std::optional<size_t> limit = Limit(req, 20);
    if (!limit) {
      Error(res, 400, "limit must be a number from 0 to 10000");
      return;
    }
    std::shared_ptr<const Snapshot> snapshot = backend_.Latest();
    Result<json> revisions = RevisionsJson(store_, *limit, snapshot.get());
    if (!revisions.ok()) {
      Error(res, 500, "store: cannot read revisions");
      return;
    }
    Reply(res, 200, *revisions);
  });
  http.Post("/api/v1/reconcile", [this](const httplib::Request& req, httplib::Response& res) {
    std::string reason = "api";
    std::optional<PassApproval> approval;
    if (!req.body.empty()) {
      const json body = json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        Error(res, 400, "the body must be a JSON object, e.g. {\"reason\": \"manual\"}, or empty");
        return;
      }
      if (body.contains("reason")) {
        if (!body["reason"].is_string() || body["reason"].get<std::string>().empty() ||
            body["reason"].get<std::string>().size() > 64) {
          Error(res, 400, "reason must be a string of 1 to 64 characters");
          return;
        }
        reason = body["reason"].get<std::string>();
      }
      if (body.contains("max_deletions") || body.contains("allow_empty")) {
        PassApproval granted{.by = "api"};
        if (body.contains("max_deletions")) {
          const json& n = body["max_deletions"];
          if (!n.is_number_unsigned() || n.get<uint64_t>() > 1'000'000) {
            Error(res, 400, "max_deletions must be a whole number from 0 to 1000000");
            return;
          }
          granted.max_deletions = n.get<uint32_t>();
        }
        if (body.contains("allow_empty")) {
          if (!body["allow_empty"].is_boolean()) {
            Error(res, 400, "allow_empty must be true or false");
            return;
          }
          granted.allow_empty = body["allow_empty"].get<bool>();
        }
        approval = std::move(granted);
      }
    }
    std::shared_future<int64_t> run = backend_.Reconcile(reason, approval);
    const size_t max_waiters = std::max<size_t>(options_.threads / 4, 1);
    const bool wait = reconcile_waiters_.fetch_add(1) < max_waiters;
    const bool ready = wait ? run.wait_for(options_.reconcile_wait) == std::future_status::ready
                            : run.wait_for(std::chrono::seconds{0}) == std::future_status::ready;
    reconcile_waiters_.fetch_sub(1);
    if (!ready) {
      Reply(res, 202, {{"run_id", nullptr}, {"status", "queued"}, {"trigger", reason}});
      return;
    }
    if (run.get() == 0) {
      Error(res, 503, "the pass was not recorded (shutting down, or the store failed)");
      return;
    }
    Reply(res, 202, {{"run_id", run.get()}, {"status", "started"}, {"trigger", reason}});
  });
  http.Post("/api/v1/webhooks/git", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string secret = WebhookSecret();
    if (secret.empty()) {
      Error(res, 404, "webhooks are off: set api.webhookSecretFile to turn them on");
      return;
    }
    const HeaderLookup headers = [&req](std::string_view name) -> std::optional<std::string> {
      const std::string key(name);
      if (!req.has_header(key)) {
        return std::nullopt;
      }
      return req.get_header_value(key);
    };
    Result<PushEvent> event =
        VerifyWebhook(WebhookConfig{.secret = secret, .max_body_bytes = options_.max_body_bytes},
                      headers, req.body);
    if (!event.ok()) {
      logger_->warn("webhook refused: {}", event.status().message());
      Error(res, HttpStatus(event.status()), event.status().message());
      return;
    }
    json answer = {{"source", event->source}, {"event", event->event}, {"ref", event->ref}};
    if (!event->is_push) {
      answer["triggered"] = false;
      answer["reason"] = "not a branch push";
    } else if (options_.branch.empty()) {
      answer["triggered"] = false;
      answer["reason"] = "the source is pinned to a revision";
    } else if (event->branch != options_.branch) {
      answer["triggered"] = false;
      answer["reason"] = "push to " + event->branch + ", not " + options_.branch;
    } else {
      logger_->info("webhook: {} push to {} ({}); fetching now", event->source, event->branch,
                    event->after.substr(0, 12));
      (void)backend_.Reconcile("webhook", std::nullopt);
      answer["triggered"] = true;
    }
    Reply(res, 202, answer);
  });

  http.Get("/api/v1/orchestrator/hosts",
           with_snapshot([](const Snapshot& s, const httplib::Request&, httplib::Response& res) {
             Reply(res, 200, OrchestratorHostsJson(s));
           }));
  // The orchestrator answers these two with 202; its clients expect that.
  http.Get("/api/v1/orchestrator/overview/resources",
           with_snapshot([](const Snapshot& s, const httplib::Request&, httplib::Response& res) {
             Reply(res, 202, OrchestratorResourcesJson(s));
           }));
  http.Get("/api/v1/orchestrator/machines",
           with_snapshot([](const Snapshot& s, const httplib::Request&, httplib::Response& res) {
             Reply(res, 202, OrchestratorMachinesJson(s));
           }));
}

}  // namespace flotilla::api
