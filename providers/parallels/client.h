#pragma once

// The protocol half of the Parallels provider: one HostClient per host endpoint. It knows how
// to reach the host (scheme, address, path prefix, TLS), how to authenticate (a login token,
// renewed before it expires and once after a 401, got with the username and password or in
// exchange for the API key; X-Api-Key itself only on hosts that cannot exchange it), which verb
// the host wants for state changes (PUT from 1.0.5, GET before; learned from /config/hardware,
// corrected once when the router refuses the verb), how many guest commands the host runs at
// once, and how to turn a failed response into a Status. It knows nothing about VMs.
//
// Thread-safety: safe for concurrent calls; connections are pooled per host.

#include <httplib.h>

#include <spdlog/logger.h>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "providers/parallels/config.h"
#include "providers/parallels/wire.h"
#include "providers/provider.h"
#include "providers/secrets.h"
#include "reconciler/model/clock.h"

namespace flotilla::providers::parallels {

// "https://mini-01.lan:3080" or "http://10.0.0.5:3080/custom/api": the origin httplib connects
// to and the API's path prefix ("/api" when the address has no path).
struct Endpoint {
  std::string origin;  // scheme://host[:port]
  std::string prefix;  // "/api"
  bool https = false;
};
Result<Endpoint> ParseEndpoint(std::string_view address);

struct Response {
  int status = 0;
  std::string body;
};

// A request path with its ids and names replaced, for metrics labels:
// "/v1/machines/3f2a.../set?x=1" -> "/v1/machines/{id}/set". Segments that are words of the
// API ("machines", "start", "hardware", ...) stay; anything else becomes "{id}".
std::string RouteOf(std::string_view path);

// The body as JSON (discarded when it is not JSON).
nlohmann::json ParseBody(const Response& response);

// The router's own 404 body, "resource <path> not found" (restapi/not_found.go): no route for
// this path and verb, as opposed to a handler's 404 (a missing VM, a failed host command).
bool IsRouterNotFound(std::string_view message);

// A Status made by ErrorFor from the router's 404.
bool IsMissingEndpoint(const Status& status);

enum class Method { kGet, kPost, kPut, kDelete };
std::string_view ToString(Method method);

class HostClient {
 public:
  HostClient(HostRef host, Endpoint endpoint, const ParallelsConfig& config,
             std::shared_ptr<const Redactor> redactor, std::shared_ptr<spdlog::logger> logger,
             const Clock& clock);
  ~HostClient();
  HostClient(const HostClient&) = delete;
  HostClient& operator=(const HostClient&) = delete;

  // Sends `method path` (path below the prefix, e.g. "/v1/machines"), authenticated. Returns
  // the response whatever its status; the error is only for no response at all (connection
  // refused, TLS refused, timeout: Unavailable, FailedPrecondition, DeadlineExceeded) or for a
  // failed login.
  Result<Response> Call(Method method, const std::string& path, const nlohmann::json* body,
                        Deadline deadline);

  // Sends `GET path` with no credentials (the service's health probe needs none).
  Result<Response> GetWithoutCredentials(const std::string& path, Deadline deadline);

  // A state change ("start", "stop", ...) on a VM, with the verb the host expects; `query` is
  // appended as is ("force=true"). Same contract as Call.
  Result<Response> StateChange(std::string_view vm, std::string_view operation,
                               std::string_view query, Deadline deadline);

  // The Status for a response that is not a success. `what` says what was attempted
  // ("start VM ios-1"). Never contains a secret of the pool, nor one of `more`.
  Status ErrorFor(const Response& response, std::string_view what,
                  const Redactor* more = nullptr) const;

  // The host's error text from a body, redacted, on one line.
  std::string Message(std::string_view body) const { return ErrorMessage(body, *redactor_); }

  // Records the host's agent version (from /config/hardware), which picks the state verb.
  void NoteAgentVersion(std::string_view version);
  // The host's agent version as last noted, asking /config/hardware when there is none yet;
  // "" when the host does not say.
  Result<std::string> AgentVersion(Deadline deadline);

  // Waits (until the deadline) for one of the host's guest-command slots; the slot is given
  // back when the returned guard goes. DeadlineExceeded when none freed up in time.
  class ExecSlot {
   public:
    explicit ExecSlot(HostClient* client) : client_(client) {}
    ExecSlot(ExecSlot&& other) noexcept : client_(std::exchange(other.client_, nullptr)) {}
    ExecSlot& operator=(ExecSlot&&) = delete;
    ~ExecSlot();

   private:
    HostClient* client_;
  };
  Result<ExecSlot> AcquireExecSlot(Deadline deadline);

  // Per-host bookkeeping of the provider: creates running on the host, and the catalog cache as
  // last listed (`listed_at` empty when never).
  void BeginCreate();
  void EndCreate();
  int creates_in_flight() const;
  struct CacheListing {
    std::vector<std::string> images;
    std::optional<Clock::TimePoint> listed_at;
  };
  CacheListing cache_listing() const;
  void SetCacheListing(CacheListing listing);
  // The host has just cached `key` (an ImageCacheKey): a create or a prepull pulled it.
  void NoteCached(const std::string& key);
  // Jobs of the host that this process started or is following (their creates know them).
  void NoteJob(const std::string& id);
  bool KnowsJob(const std::string& id) const;

  const HostRef& host() const { return host_; }
  std::string Redact(std::string_view text) const { return redactor_->Apply(text); }

 private:
  struct Token {
    std::string value;
    Clock::TimePoint expires_at;
    Clock::TimePoint renew_at;
  };

  Result<Response> Send(Method method, const std::string& path, const std::string* body,
                        const httplib::Headers& headers, Deadline deadline);
  // A valid token, logging in if there is none or it is about to expire; "" when the pool's API
  // key goes in X-Api-Key instead (a host that cannot exchange it). While the host is refusing
  // the pool's credentials, their last refusal without logging in again.
  Result<std::string> BearerToken(Deadline deadline);
  // A token, or nullopt for "this host does not exchange API keys".
  Result<std::optional<Token>> Login(Deadline deadline);
  void ForgetToken(const std::string& token);

  std::unique_ptr<httplib::Client> TakeConnection();
  void ReturnConnection(std::unique_ptr<httplib::Client> client);

  const HostRef host_;
  const Endpoint endpoint_;
  const ParallelsConfig& config_;
  const std::shared_ptr<const Redactor> redactor_;
  const std::shared_ptr<spdlog::logger> logger_;
  const Clock& clock_;

  mutable std::mutex mu_;  // guards everything below
  std::vector<std::unique_ptr<httplib::Client>> idle_;
  std::optional<Token> token_;
  std::optional<bool> state_verb_put_;  // empty until the host's version is known
  std::optional<std::string> agent_version_;
  bool key_header_ = false;        // the host cannot exchange the API key: X-Api-Key
  std::optional<Status> refused_;  // the last refused login, repeated until retry_login_at_
  Clock::TimePoint retry_login_at_;
  std::chrono::milliseconds login_backoff_{0};
  int exec_running_ = 0;
  std::condition_variable exec_cv_;
  int creates_in_flight_ = 0;
  CacheListing cache_;
  std::set<std::string> jobs_;  // NoteJob

  std::mutex login_mu_;  // one login at a time per host
};

}  // namespace flotilla::providers::parallels
