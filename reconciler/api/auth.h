#pragma once

// Who may do what through the API (docs/api.md, "Authentication"): named bearer tokens, each
// with roles, and a limit on failed authentications per client address.
//
//   read       every GET that needs a token (data, /metrics, the live stream)
//   reconcile  POST /api/v1/reconcile without an approval
//   approve    POST /api/v1/reconcile with an approval (max_deletions, allow_empty); an approval
//              asks for a pass, so approve alone suffices for it
//   access     tunnels to VM ports (GET /api/v1/vms/NAME/port-forward: ssh, VNC): shell-level
//              reach into the fleet, so no other role implies it
//   admin      all of the above
//
// Roles imply nothing but what they name (admin aside): a CI job that may only trigger passes
// gets `reconcile`, and reads nothing.
//
// Thread-safety: TokenSet is a value (copy it to rotate); FailureLimiter may be called from any
// thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reconciler/model/clock.h"

namespace flotilla::api {

enum class Role : uint8_t { kRead = 1, kReconcile = 2, kApprove = 4, kAdmin = 8, kAccess = 16 };
std::string_view ToString(Role role);  // "read", "reconcile", "approve", "access", "admin"
std::optional<Role> ParseRole(std::string_view text);

// A set of roles; admin holds every role.
class Roles {
 public:
  constexpr Roles() = default;
  static constexpr Roles All() { return Roles(0x1F); }
  Roles& Add(Role role) {
    bits_ |= static_cast<uint8_t>(role);
    return *this;
  }
  bool Has(Role role) const {
    return (bits_ & (static_cast<uint8_t>(role) | static_cast<uint8_t>(Role::kAdmin))) != 0;
  }
  bool empty() const { return bits_ == 0; }
  std::string ToString() const;  // "read, approve"; "admin" when it holds admin
  friend bool operator==(const Roles&, const Roles&) = default;

 private:
  constexpr explicit Roles(uint8_t bits) : bits_(bits) {}
  uint8_t bits_ = 0;
};

// One configured token. `secret` is what a client sends after "Bearer "; it never leaves this
// process (not logged, not stored, not served).
struct ApiToken {
  std::string name;  // [a-z0-9][a-z0-9-]*; recorded with what the token does
  std::string secret;
  Roles roles;
  friend bool operator==(const ApiToken&, const ApiToken&) = default;
};

// Who a request comes from.
struct Caller {
  std::string name;  // the token's name; empty when the API needs no token
  Roles roles;

  // How records name the caller: "token ops", or "api" when no token is required.
  std::string Describe() const { return name.empty() ? "api" : "token " + name; }
};

// The configured tokens.
class TokenSet {
 public:
  TokenSet() = default;
  explicit TokenSet(std::vector<ApiToken> tokens) : tokens_(std::move(tokens)) {}

  // No token is configured: the API needs none (loopback only, server.h).
  bool open() const { return tokens_.empty(); }
  // The token `presented` is, compared in constant time against every configured token (all of
  // them, whatever matches, so the time says neither whether nor which one matched).
  std::optional<Caller> Identify(std::string_view presented) const;
  const std::vector<ApiToken>& tokens() const { return tokens_; }

  friend bool operator==(const TokenSet&, const TokenSet&) = default;

 private:
  std::vector<ApiToken> tokens_;
};

// How many failed authentications a client address may make: `burst` at once, then
// `per_minute` (a token bucket). At most `max_clients` addresses are tracked; the one whose last
// failure is oldest is forgotten first.
struct FailureLimit {
  uint32_t burst = 10;
  uint32_t per_minute = 10;
  size_t max_clients = 4096;
};

// Counts failed authentications per client address. While an address has used its allowance,
// every request of it that needs a token is refused (429) before its token is compared, so
// guessing goes no faster than `per_minute`, whatever the client sends.
class FailureLimiter {
 public:
  // `clock` must outlive the limiter.
  FailureLimiter(FailureLimit limit, const Clock& clock) : limit_(limit), clock_(clock) {}

  // Nullopt when `client` may try; otherwise how long until it may (at least 1 s: Retry-After).
  std::optional<std::chrono::seconds> Refused(const std::string& client);
  // Records a failed authentication of `client`.
  void Failed(const std::string& client);

  size_t tracked() const;  // addresses tracked now (tests)

 private:
  struct Bucket {
    double allowance = 0;  // failures still allowed now
    Clock::TimePoint at;   // when allowance was computed
  };
  // `bucket` refilled up to now.
  void Refill(Bucket& bucket, Clock::TimePoint now) const;
  // IPv6 clients are counted by their /64, which one machine usually holds whole.
  static std::string Key(const std::string& client);

  const FailureLimit limit_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace flotilla::api
