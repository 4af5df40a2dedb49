#include "reconciler/api/auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace flotilla::api {
namespace {

constexpr std::array<Role, 5> kRoles = {Role::kRead, Role::kReconcile, Role::kApprove,
                                        Role::kAccess, Role::kAdmin};

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

// Tokens are compared by their digests, which have one length: the time taken says nothing of
// how long the configured tokens are.
Digest Sha256(std::string_view text) {
  Digest digest{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return digest;
}

}  // namespace

std::string_view ToString(Role role) {
  switch (role) {
    case Role::kRead:
      return "read";
    case Role::kReconcile:
      return "reconcile";
    case Role::kApprove:
      return "approve";
    case Role::kAccess:
      return "access";
    case Role::kAdmin:
      return "admin";
  }
  return "read";
}

std::optional<Role> ParseRole(std::string_view text) {
  for (Role role : kRoles) {
    if (ToString(role) == text) {
      return role;
    }
  }
  return std::nullopt;
}

std::string Roles::ToString() const {
  if (Has(Role::kAdmin)) {
    return "admin";
  }
  std::string text;
  for (Role role : kRoles) {
    if (Has(role)) {
      text += (text.empty() ? "" : ", ") + std::string(api::ToString(role));
    }
  }
  return text;
}

std::optional<Caller> TokenSet::Identify(std::string_view presented) const {
  const Digest given = Sha256(presented);
  size_t found = tokens_.size();
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const Digest want = Sha256(tokens_[i].secret);
    const bool same = CRYPTO_memcmp(given.data(), want.data(), given.size()) == 0;
    // No early exit: every token is hashed and compared, matched or not.
    found = same ? i : found;
  }
  if (found == tokens_.size() || presented.empty()) {
    return std::nullopt;
  }
  return Caller{.name = tokens_[found].name, .roles = tokens_[found].roles};
}

std::string FailureLimiter::Key(const std::string& client) {
  in6_addr v6{};
  if (client.find(':') == std::string::npos || inet_pton(AF_INET6, client.c_str(), &v6) != 1 ||
      IN6_IS_ADDR_V4MAPPED(&v6)) {
    return client;  // IPv4 (also as ::ffff:a.b.c.d on a dual-stack socket): the whole address
  }
  std::fill(std::begin(v6.s6_addr) + 8, std::end(v6.s6_addr), 0);
  std::array<char, INET6_ADDRSTRLEN> text{};
  return inet_ntop(AF_INET6, &v6, text.data(), text.size()) != nullptr
             ? std::string(text.data()) + "/64"
             : client;
}

void FailureLimiter::Refill(Bucket& bucket, Clock::TimePoint now) const {
  if (now > bucket.at) {
    const double seconds = std::chrono::duration<double>(now - bucket.at).count();
    bucket.allowance =
        std::min<double>(limit_.burst, bucket.allowance + seconds * limit_.per_minute / 60.0);
  }
  bucket.at = now;
}

std::optional<std::chrono::seconds> FailureLimiter::Refused(const std::string& client) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(Key(client));
  if (it == buckets_.end()) {
    return std::nullopt;
  }
  Refill(it->second, clock_.Now());
  if (it->second.allowance >= limit_.burst) {
    buckets_.erase(it);  // as if it had never failed
    return std::nullopt;
  }
  if (it->second.allowance >= 1) {
    return std::nullopt;
  }
  if (limit_.per_minute == 0) {
    return std::chrono::hours{1};
  }
  const double wait = (1 - it->second.allowance) * 60.0 / limit_.per_minute;
  return std::chrono::seconds{std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait)))};
}

void FailureLimiter::Failed(const std::string& client) {
  std::lock_guard lock(mu_);
  const Clock::TimePoint now = clock_.Now();
  const std::string key = Key(client);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (limit_.max_clients == 0) {
      return;
    }
    if (buckets_.size() >= limit_.max_clients) {
      buckets_.erase(
          std::min_element(buckets_.begin(), buckets_.end(),
                           [](const auto& a, const auto& b) { return a.second.at < b.second.at; }));
    }
    it = buckets_.emplace(key, Bucket{.allowance = static_cast<double>(limit_.burst), .at = now})
             .first;
  }
  Refill(it->second, now);
  it->second.allowance = std::max(0.0, it->second.allowance - 1);
}

size_t FailureLimiter::tracked() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

}  // namespace flotilla::api
