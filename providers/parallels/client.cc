#include "providers/parallels/client.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <thread>

#include "providers/parallels/wire.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::parallels {
namespace {

using std::chrono::steady_clock;

// State changes moved from GET to PUT in the DevOps service 1.0.5 (reference section 3.1).
constexpr std::string_view kFirstPutVersion = "1.0.5";

std::string Seconds(steady_clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return std::to_string(ms / 1000) + "." + std::to_string((ms % 1000) / 100) + "s";
}

}  // namespace

nlohmann::json ParseBody(const Response& response) {
  return nlohmann::json::parse(response.body, nullptr, false);
}

bool IsRouterNotFound(std::string_view message) {
  return message.starts_with("resource ") && ContainsIgnoreCase(message, "not found");
}

namespace {
constexpr std::string_view kNoSuchEndpoint = "the host has no such endpoint";
}  // namespace

bool IsMissingEndpoint(const Status& status) {
  return status.code() == Status::Code::kFailedPrecondition &&
         status.message().find(kNoSuchEndpoint) != std::string::npos;
}

Result<Endpoint> ParseEndpoint(std::string_view address) {
  Endpoint endpoint;
  std::string_view rest;
  if (address.starts_with("https://")) {
    endpoint.https = true;
    rest = address.substr(8);
  } else if (address.starts_with("http://")) {
    rest = address.substr(7);
  } else {
    return Status::InvalidArgument("host address \"" + std::string(address) +
                                   "\" must start with http:// or https://");
  }
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) {
    return Status::InvalidArgument("host address \"" + std::string(address) +
                                   "\" needs a host name and no user info");
  }
  endpoint.origin =
      std::string(address.substr(0, address.size() - rest.size())) + std::string(authority);
  std::string prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!prefix.empty() && prefix.back() == '/') {
    prefix.pop_back();
  }
  endpoint.prefix = prefix.empty() ? "/api" : prefix;
  return endpoint;
}

std::string RouteOf(std::string_view path) {
  static constexpr std::array<std::string_view, 32> kWords = {
      "v1",       "api",        "machines",  "jobs",        "config",  "hardware", "auth",
      "token",    "catalog",    "pull",      "set",         "rename",  "start",    "stop",
      "execute",  "status",     "clone",     "health",      "probe",   "system",   "async",
      "register", "unregister", "suspend",   "resume",      "restart", "reset",    "pause",
      "cache",    "users",      "diskspace", "orchestrator"};
  path = path.substr(0, path.find('?'));
  std::string route;
  size_t begin = 0;
  while (begin < path.size()) {
    size_t end = path.find('/', begin);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    const std::string_view segment = path.substr(begin, end - begin);
    if (!segment.empty()) {
      route += '/';
      const bool word = std::find(kWords.begin(), kWords.end(), segment) != kWords.end();
      route += word ? segment : std::string_view("{id}");
    }
    begin = end + 1;
  }
  return route.empty() ? "/" : route;
}

std::string_view ToString(Method method) {
  switch (method) {
    case Method::kGet:
      return "GET";
    case Method::kPost:
      return "POST";
    case Method::kPut:
      return "PUT";
    case Method::kDelete:
      return "DELETE";
  }
  return "GET";
}

HostClient::HostClient(HostRef host, Endpoint endpoint, const ParallelsConfig& config,
                       std::shared_ptr<const Redactor> redactor,
                       std::shared_ptr<spdlog::logger> logger, const Clock& clock)
    : host_(std::move(host)),
      endpoint_(std::move(endpoint)),
      config_(config),
      redactor_(std::move(redactor)),
      logger_(std::move(logger)),
      clock_(clock) {}

HostClient::~HostClient() = default;

std::unique_ptr<httplib::Client> HostClient::TakeConnection() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<httplib::Client> client = std::move(idle_.back());
      idle_.pop_back();
      return client;
    }
  }
  auto client = std::make_unique<httplib::Client>(endpoint_.origin);
  client->set_keep_alive(true);
  client->set_tcp_nodelay(true);  // requests are small: no Nagle delay between header and body
  client->set_follow_location(false);
  if (endpoint_.https) {
    client->enable_server_certificate_verification(!config_.insecure_skip_verify);
    if (!config_.ca_file.empty()) {
      client->set_ca_cert_path(config_.ca_file);
    }
  }
  return client;
}

void HostClient::ReturnConnection(std::unique_ptr<httplib::Client> client) {
  std::lock_guard lock(mu_);
  if (idle_.size() < 8) {
    idle_.push_back(std::move(client));
  }
}

Result<Response> HostClient::Send(Method method, const std::string& path, const std::string* body,
                                  const httplib::Headers& headers, Deadline deadline) {
  const auto started = steady_clock::now();
  if (started >= deadline) {
    return Status::DeadlineExceeded("no time left to " + std::string(ToString(method)) + " " +
                                    path + " on host " + host_.name);
  }
  const auto remaining = deadline - started;
  std::unique_ptr<httplib::Client> client = TakeConnection();
  client->set_connection_timeout(
      std::min<steady_clock::duration>(remaining, config_.tuning.connect_timeout));
  client->set_read_timeout(remaining);
  client->set_write_timeout(remaining);

  const std::string full_path = endpoint_.prefix + path;
  const std::string payload = body != nullptr ? *body : std::string();
  httplib::Result result = [&] {
    switch (method) {
      case Method::kPost:
        return client->Post(full_path, headers, payload, "application/json");
      case Method::kPut:
        return client->Put(full_path, headers, payload, "application/json");
      case Method::kDelete:
        return client->Delete(full_path, headers);
      case Method::kGet:
        break;
    }
    return client->Get(full_path, headers);
  }();
  const auto elapsed = steady_clock::now() - started;
  if (config_.requests != nullptr) {
    config_.requests->ProviderRequest("parallels",
                                      std::string(ToString(method)) + " " + RouteOf(path),
                                      result ? result->status : 0);
  }
  if (!result) {
    const httplib::Error error = result.error();
    logger_->debug("host {}: {} {} failed after {}: {}", host_.name, ToString(method), full_path,
                   Seconds(elapsed), httplib::to_string(error));
    const std::string where = "host " + host_.name + " (" + endpoint_.origin + ")";
    // Socket timeouts are set to the time left and fire at about the deadline (poll(2) counts
    // whole milliseconds, so a little early).
    const bool out_of_time = steady_clock::now() + std::chrono::milliseconds{20} >= deadline;
    switch (error) {
      case httplib::Error::SSLServerVerification:
        return Status::FailedPrecondition(
            "the TLS certificate of " + where +
            " is not trusted; set the pool's tls.caFile to the CA that signed it");
      case httplib::Error::SSLLoadingCerts:
        return Status::FailedPrecondition("cannot load the CA certificates for " + where +
                                          " (tls.caFile " + config_.ca_file + ")");
      case httplib::Error::SSLConnection:
        return Status::Unavailable("TLS handshake with " + where +
                                   " failed (an untrusted certificate fails here too; see the "
                                   "pool's tls.caFile)");
      case httplib::Error::Connection:
      case httplib::Error::ConnectionTimeout:
        if (out_of_time) {
          return Status::DeadlineExceeded("cannot connect to " + where + " within " +
                                          Seconds(remaining));
        }
        return Status::Unavailable("cannot connect to " + where);
      default:
        if (out_of_time) {
          return Status::DeadlineExceeded("no answer from " + where + " within " +
                                          Seconds(remaining) + " (" +
                                          std::string(ToString(method)) + " " + path + ")");
        }
        return Status::Unavailable("connection to " + where +
                                   " failed: " + httplib::to_string(error));
    }
  }
  logger_->debug("host {}: {} {} -> {} in {}", host_.name, ToString(method), full_path,
                 result->status, Seconds(elapsed));
  Response response{.status = result->status, .body = std::move(result->body)};
  ReturnConnection(std::move(client));
  return response;
}

Result<std::optional<HostClient::Token>> HostClient::Login(Deadline deadline) {
  // A login is short; waiting for it must not use a whole long operation's deadline, since
  // every other caller for this host waits behind it.
  deadline = std::min(deadline, DeadlineIn(std::chrono::seconds{30}));
  const bool key = !config_.api_key.empty();
  // Hosts before 1.0.1 read only `email` (which matches a user name too); later ones read
  // `email` first. An API key is exchanged for a token from 1.0.1 on (`api_key`), so that
  // every call carries a user: the jobs endpoints refuse API keys, and each X-Api-Key request
  // costs the host a bcrypt comparison (audit #2, #4, #17).
  const nlohmann::json request = key ? nlohmann::json{{"api_key", config_.api_key}}
                                     : nlohmann::json{{"email", config_.username},
                                                      {"username", config_.username},
                                                      {"password", config_.password}};
  const std::string body = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  Result<Response> response =
      Send(Method::kPost, "/v1/auth/token", &body, httplib::Headers{}, deadline);
  if (!response.ok()) {
    return response.status();
  }
  const int status = response->status;
  if (status != 200) {
    const std::string message = Message(response->body);
    if (key && status == 400) {
      // "Invalid request body: Email is required": a host before 1.0.1 took the key for a
      // password login without an email.
      return std::optional<Token>();
    }
    // The service answers an unknown user or a wrong password with 404 (and the message
    // below), a malformed request with 400, a locked-out one with 401; anything else is the
    // host's trouble, not the credentials'.
    if (status == 400 || status == 401 || status == 403 ||
        (status == 404 &&
         !(ContainsIgnoreCase(message, "resource") && ContainsIgnoreCase(message, "not found")))) {
      return Status::PermissionDenied("host " + host_.name + " refused the login with the pool's " +
                                      (key ? "API key" : "username and password") + ": " + message);
    }
    return ErrorFor(*response, "log in");
  }
  const nlohmann::json parsed = nlohmann::json::parse(response->body, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("token") || !parsed["token"].is_string() ||
      !parsed.contains("expires_at") || !JsonUnsigned(parsed["expires_at"])) {
    return Status::Unavailable("host " + host_.name +
                               " answered the login without a token and expires_at");
  }
  Token token;
  token.value = parsed["token"].get<std::string>();
  int64_t expires = static_cast<int64_t>(
      std::min<uint64_t>(*JsonUnsigned(parsed["expires_at"]), uint64_t{1} << 50));
  if (expires > 100'000'000'000) {  // milliseconds, not seconds
    expires /= 1000;
  }
  token.expires_at = Clock::TimePoint{std::chrono::seconds{expires}};
  const Clock::TimePoint now = clock_.Now();
  const auto lifetime =
      token.expires_at > now ? token.expires_at - now : Clock::TimePoint::duration{0};
  const auto margin =
      std::min<Clock::TimePoint::duration>(config_.tuning.token_renew_margin, lifetime / 4);
  token.renew_at = token.expires_at - margin;
  return std::optional<Token>(token);
}

Result<std::string> HostClient::BearerToken(Deadline deadline) {
  auto current = [this]() -> std::optional<Result<std::string>> {
    if (key_header_) {
      return Result<std::string>(std::string());
    }
    if (token_ && clock_.Now() < token_->renew_at) {
      return Result<std::string>(token_->value);
    }
    if (refused_ && clock_.Now() < retry_login_at_) {
      return Result<std::string>(*refused_);
    }
    return std::nullopt;
  };
  {
    std::lock_guard lock(mu_);
    if (std::optional<Result<std::string>> known = current()) {
      return *known;
    }
  }
  std::lock_guard login(login_mu_);
  {
    // Another thread may have logged in while this one waited.
    std::lock_guard lock(mu_);
    if (std::optional<Result<std::string>> known = current()) {
      return *known;
    }
  }
  Result<std::optional<Token>> token = Login(deadline);
  std::lock_guard lock(mu_);
  if (!token.ok()) {
    Status status = token.status();
    if (status.IsPermissionDenied()) {
      // The brute-force guard counts every refused login and, from the fifth, sleeps in the
      // request: the pool's credentials are not tried on this host again for a while.
      login_backoff_ = login_backoff_.count() == 0
                           ? config_.tuning.login_backoff
                           : std::min(login_backoff_ * 2, config_.tuning.login_backoff_max);
      retry_login_at_ = clock_.Now() + login_backoff_;
      refused_ = Status::PermissionDenied(
          status.message() + " (not tried again on this host for " +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(login_backoff_).count()) +
          "s, so that its brute-force guard does not slow every login down)");
      return status;
    }
    if (refused_ && status.code() == Status::Code::kDeadlineExceeded) {
      return Status::PermissionDenied(
          "host " + host_.name +
          " did not answer a login in time after refusing the pool's "
          "credentials before: its brute-force guard delays every further login (" +
          status.message() + ")");
    }
    return status;
  }
  refused_.reset();
  login_backoff_ = std::chrono::milliseconds{0};
  if (!token->has_value()) {
    key_header_ = true;
    logger_->info(
        "host {}: the service cannot exchange an API key for a token (before 1.0.1); using "
        "X-Api-Key, with which it lets no job be read",
        host_.name);
    return std::string();
  }
  token_ = **token;
  logger_->debug(
      "host {}: logged in; token valid for {}s", host_.name,
      std::chrono::duration_cast<std::chrono::seconds>(token_->expires_at - clock_.Now()).count());
  return token_->value;
}

void HostClient::ForgetToken(const std::string& token) {
  std::lock_guard lock(mu_);
  if (token_ && token_->value == token) {
    token_.reset();
  }
}

Result<Response> HostClient::Call(Method method, const std::string& path,
                                  const nlohmann::json* body, Deadline deadline) {
  // Invalid UTF-8 (a script, an environment value) is replaced rather than thrown about.
  const std::string payload =
      body != nullptr ? body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                      : std::string();
  const bool authenticated = !config_.api_key.empty() || !config_.username.empty();
  for (int attempt = 0;; ++attempt) {
    // Exactly one credential header: the service rejects requests that carry both.
    httplib::Headers headers{{"Accept", "application/json"}};
    std::string token;
    if (authenticated) {
      Result<std::string> bearer = BearerToken(deadline);
      if (!bearer.ok()) {
        return bearer.status();
      }
      token = *bearer;
      if (!token.empty()) {
        headers.emplace("Authorization", "Bearer " + token);
      } else {
        headers.emplace("X-Api-Key", config_.api_key);
      }
    }
    Result<Response> response =
        Send(method, path, body != nullptr ? &payload : nullptr, headers, deadline);
    if (response.ok() && response->status == 401 && !token.empty() && attempt == 0 &&
        !ContainsIgnoreCase(response->body, "permission")) {
      // Expired early, or the service restarted with a new signing secret: log in once more.
      // A token that lacks a claim ("User does not contain enough permissions") is refused the
      // same way, and a new one would be too.
      logger_->debug("host {}: token refused ({}); logging in again", host_.name,
                     Message(response->body));
      ForgetToken(token);
      continue;
    }
    return response;
  }
}

HostClient::ExecSlot::~ExecSlot() {
  if (client_ != nullptr) {
    {
      std::lock_guard lock(client_->mu_);
      --client_->exec_running_;
    }
    client_->exec_cv_.notify_one();
  }
}

Result<HostClient::ExecSlot> HostClient::AcquireExecSlot(Deadline deadline) {
  std::unique_lock lock(mu_);
  if (!exec_cv_.wait_until(lock, deadline,
                           [&] { return exec_running_ < config_.tuning.exec_slots; })) {
    return Status::DeadlineExceeded("host " + host_.name + ": no guest-command slot came free (" +
                                    std::to_string(config_.tuning.exec_slots) +
                                    " run at once per host)");
  }
  ++exec_running_;
  return ExecSlot(this);
}

void HostClient::BeginCreate() {
  std::lock_guard lock(mu_);
  ++creates_in_flight_;
}

void HostClient::EndCreate() {
  std::lock_guard lock(mu_);
  --creates_in_flight_;
}

int HostClient::creates_in_flight() const {
  std::lock_guard lock(mu_);
  return creates_in_flight_;
}

HostClient::CacheListing HostClient::cache_listing() const {
  std::lock_guard lock(mu_);
  return cache_;
}

void HostClient::SetCacheListing(CacheListing listing) {
  std::lock_guard lock(mu_);
  cache_ = std::move(listing);
}

Result<Response> HostClient::GetWithoutCredentials(const std::string& path, Deadline deadline) {
  return Send(Method::kGet, path, nullptr, httplib::Headers{{"Accept", "application/json"}},
              deadline);
}

void HostClient::NoteCached(const std::string& key) {
  std::lock_guard lock(mu_);
  std::vector<std::string>& images = cache_.images;
  if (!std::binary_search(images.begin(), images.end(), key)) {
    images.insert(std::upper_bound(images.begin(), images.end(), key), key);
  }
}

void HostClient::NoteJob(const std::string& id) {
  std::lock_guard lock(mu_);
  jobs_.insert(id);
}

bool HostClient::KnowsJob(const std::string& id) const {
  std::lock_guard lock(mu_);
  return jobs_.contains(id);
}

void HostClient::NoteAgentVersion(std::string_view version) {
  std::optional<bool> at_least = VersionAtLeast(version, kFirstPutVersion);
  std::lock_guard lock(mu_);
  agent_version_ = std::string(version);
  if (at_least) {
    state_verb_put_ = *at_least;
  }
}

Result<std::string> HostClient::AgentVersion(Deadline deadline) {
  {
    std::lock_guard lock(mu_);
    if (agent_version_) {
      return *agent_version_;
    }
  }
  Result<Response> hardware = Call(Method::kGet, "/v1/config/hardware", nullptr, deadline);
  if (!hardware.ok()) {
    return hardware.status();
  }
  std::string version;
  if (hardware->status == 200) {
    const nlohmann::json parsed = ParseBody(*hardware);
    if (parsed.is_object() && parsed.contains("devops_version") &&
        parsed["devops_version"].is_string()) {
      version = parsed["devops_version"].get<std::string>();
      NoteAgentVersion(version);
    }
  }
  return version;
}

Result<Response> HostClient::StateChange(std::string_view vm, std::string_view operation,
                                         std::string_view query, Deadline deadline) {
  std::optional<bool> put;
  {
    std::lock_guard lock(mu_);
    put = state_verb_put_;
  }
  if (!put) {
    if (Result<std::string> version = AgentVersion(deadline); !version.ok()) {
      return version.status();
    }
    std::lock_guard lock(mu_);
    put = state_verb_put_.value_or(true);  // an unknown version is probably a new one
  }
  std::string path = "/v1/machines/" + EncodePathSegment(vm) + "/" + std::string(operation);
  if (!query.empty()) {
    path += "?" + std::string(query);
  }
  for (int attempt = 0;; ++attempt) {
    Result<Response> response = Call(*put ? Method::kPut : Method::kGet, path, nullptr, deadline);
    // The version said one verb and the router wants the other (a source build reports
    // 0.0.0; the version report failed): switch once and remember. The service's router
    // answers a wrong verb with its plain 404 "resource <path> not found", never 405 (audit #6,
    // run against gorilla/mux 1.8.1); a proxy in between may say 405.
    if (response.ok() && attempt == 0 &&
        (response->status == 405 ||
         (response->status == 404 && IsRouterNotFound(Message(response->body))))) {
      logger_->info("host {}: {} of /machines/{{id}}/{} refused by the router (HTTP {}); using {}",
                    host_.name, *put ? "PUT" : "GET", operation, response->status,
                    *put ? "GET" : "PUT");
      put = !*put;
      std::lock_guard lock(mu_);
      state_verb_put_ = *put;
      continue;
    }
    return response;
  }
}

Status HostClient::ErrorFor(const Response& response, std::string_view what,
                            const Redactor* more) const {
  const std::string message = ErrorMessage(response.body, *redactor_, more);
  const std::string prefix = "host " + host_.name + ": cannot " + std::string(what) + ": ";
  const std::string detail = message.empty() ? "HTTP " + std::to_string(response.status) : message;
  const int status = response.status;
  if (status == 401 || status == 403) {
    // "User does not contain enough permissions" (token_authorization_middleware.go): the
    // credentials are fine, the user lacks a claim (docs/operations.md lists them).
    const bool claim = ContainsIgnoreCase(message, "permission") || status == 403;
    return Status::PermissionDenied(
        prefix +
        (claim ? "the pool's user lacks the permission for this (" : "credentials refused (") +
        detail + ")");
  }
  if (status == 400) {
    if (ContainsIgnoreCase(message, "not stopped") || ContainsIgnoreCase(message, "not running") ||
        ContainsIgnoreCase(message, "not paused") ||
        ContainsIgnoreCase(message, "already exists") || ContainsIgnoreCase(message, "is not") ||
        ContainsIgnoreCase(message, "no host available")) {
      return Status::FailedPrecondition(prefix + detail);
    }
    return Status::InvalidArgument(prefix + detail);
  }
  if (status == 404) {
    // The router's own 404: no route for this path and verb.
    if (IsRouterNotFound(message)) {
      return Status::FailedPrecondition(
          prefix + std::string(kNoSuchEndpoint) + " (" + detail +
          "): its service may be too old for this call, or the address's path prefix wrong");
    }
    // The service answers 404 both for a missing VM ("error 404: Virtual machine not found")
    // and for any host command that failed; only the first is NotFound (reference 1.1).
    if (ContainsIgnoreCase(message, "virtual machine") &&
        ContainsIgnoreCase(message, "not found") && !ContainsIgnoreCase(message, "failed")) {
      return Status::NotFound(prefix + detail);
    }
    if (ContainsIgnoreCase(message, "job") && ContainsIgnoreCase(message, "not found")) {
      return Status::NotFound(prefix + detail);
    }
    return Status::FailedPrecondition(prefix + "the host's command failed: " + detail);
  }
  if (status == 405) {
    return Status::FailedPrecondition(prefix + "method not allowed (HTTP 405)");
  }
  if (status == 408 || status == 429 || status >= 500) {
    return Status::Unavailable(prefix + detail + " (HTTP " + std::to_string(status) + ")");
  }
  return Status::FailedPrecondition(prefix + detail + " (HTTP " + std::to_string(status) + ")");
}

}  // namespace flotilla::providers::parallels
