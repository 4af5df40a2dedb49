#include "reconciler/api/webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "reconciler/model/digest.h"

namespace flotilla::api {
namespace {

using nlohmann::json;

constexpr std::string_view kGitHubSignature = "X-Hub-Signature-256";
constexpr std::string_view kGitHubSha1Signature = "X-Hub-Signature";
constexpr std::string_view kGitHubEvent = "X-GitHub-Event";
constexpr std::string_view kGitLabToken = "X-Gitlab-Token";
constexpr std::string_view kGitLabEvent = "X-Gitlab-Event";
constexpr std::string_view kGenericSignature = "X-Flotilla-Signature";
constexpr std::string_view kBranchPrefix = "refs/heads/";

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsHex(char c) { return (c >= '0' && c <= '9') || (Lower(c) >= 'a' && Lower(c) <= 'f'); }

// Checks that `value`, the header `name`, is "sha256=<hex HMAC-SHA256(secret, body)>".
Status CheckSignature(std::string_view name, std::string_view value, std::string_view secret,
                      std::string_view body) {
  constexpr std::string_view kScheme = "sha256=";
  std::string given(value);
  for (char& c : given) {
    c = Lower(c);
  }
  if (!given.starts_with(kScheme)) {
    return Status::PermissionDenied(std::string(name) + " is not of the form sha256=<hex digest>");
  }
  if (!ConstantTimeEquals(std::string_view(given).substr(kScheme.size()),
                          HmacSha256Hex(secret, body))) {
    return Status::PermissionDenied(std::string(name) +
                                    " does not match the body (wrong secret, or an altered body)");
  }
  return Status::Ok();
}

// Compares digests rather than the token itself, so that the time taken does not reveal the
// secret's length either.
Status CheckToken(std::string_view name, std::string_view value, std::string_view secret) {
  if (!ConstantTimeEquals(Sha256Hex(value), Sha256Hex(secret))) {
    return Status::PermissionDenied(std::string(name) + " is wrong");
  }
  return Status::Ok();
}

std::optional<std::string> Header(const HeaderLookup& headers, std::string_view name) {
  std::optional<std::string> value = headers(name);
  if (value.has_value() && value->empty()) {
    return std::nullopt;
  }
  return value;
}

// Reads an optional field of `body` into `out`; null counts as absent.
template <typename T>
Status ReadField(const json& body, const char* field, T& out) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) {
    return Status::Ok();
  }
  const bool right_type = std::is_same_v<T, bool> ? it->is_boolean() : it->is_string();
  if (!right_type) {
    return Status::InvalidArgument(std::string("webhook body: \"") + field + "\" must be a " +
                                   (std::is_same_v<T, bool> ? "boolean" : "string"));
  }
  out = it->get<T>();
  return Status::Ok();
}

// Reads "ref" and "after" and derives the branch; `deleted` becomes true for an all-zero after.
Status ReadPush(const json& body, PushEvent& event, bool& deleted) {
  if (Status s = ReadField(body, "ref", event.ref); !s.ok()) {
    return s;
  }
  if (Status s = ReadField(body, "after", event.after); !s.ok()) {
    return s;
  }
  if (!event.after.empty()) {
    bool hex = event.after.size() == 40;
    bool zeros = true;
    for (char c : event.after) {
      hex = hex && IsHex(c);
      zeros = zeros && c == '0';
    }
    if (!hex) {
      return Status::InvalidArgument("webhook body: \"after\" must be 40 hex digits");
    }
    deleted = deleted || zeros;
  }
  if (event.ref.starts_with(kBranchPrefix)) {
    event.branch = event.ref.substr(kBranchPrefix.size());
  }
  return Status::Ok();
}

Result<json> ParseObject(std::string_view body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::InvalidArgument("webhook body is not a JSON object");
  }
  return parsed;
}

Result<PushEvent> ParseGitHub(std::string event_name, std::string_view body) {
  Result<json> parsed = ParseObject(body);
  if (!parsed.ok()) {
    return parsed.status();
  }
  PushEvent event{.source = "github", .event = std::move(event_name)};
  if (event.event != "push") {
    return event;
  }
  bool deleted = false;
  if (Status s = ReadField(*parsed, "deleted", deleted); !s.ok()) {
    return s;
  }
  if (Status s = ReadPush(*parsed, event, deleted); !s.ok()) {
    return s;
  }
  event.is_push = !event.branch.empty() && !deleted;
  return event;
}

Result<PushEvent> ParseGitLab(std::string event_name, std::string_view body) {
  Result<json> parsed = ParseObject(body);
  if (!parsed.ok()) {
    return parsed.status();
  }
  PushEvent event{.source = "gitlab", .event = std::move(event_name)};
  if (event.event != "Push Hook" && event.event != "Tag Push Hook" &&
      event.event != "System Hook") {
    return event;
  }
  std::string kind;
  if (Status s = ReadField(*parsed, "object_kind", kind); !s.ok()) {
    return s;
  }
  bool deleted = false;
  if (Status s = ReadPush(*parsed, event, deleted); !s.ok()) {
    return s;
  }
  event.is_push = kind == "push" && !event.branch.empty() && !deleted;
  return event;
}

Result<PushEvent> ParseGeneric(std::string_view body) {
  Result<json> parsed = ParseObject(body);
  if (!parsed.ok()) {
    return parsed.status();
  }
  PushEvent event{.source = "generic", .event = "push"};
  std::string branch;
  if (Status s = ReadField(*parsed, "branch", branch); !s.ok()) {
    return s;
  }
  bool deleted = false;
  if (Status s = ReadPush(*parsed, event, deleted); !s.ok()) {
    return s;
  }
  if (event.ref.empty() && branch.empty()) {
    return Status::InvalidArgument("webhook body names no branch: send \"ref\" or \"branch\"");
  }
  if (!branch.empty()) {
    const std::string ref = std::string(kBranchPrefix) + branch;
    if (!event.ref.empty() && event.ref != ref) {
      return Status::InvalidArgument("webhook body: \"ref\" and \"branch\" disagree");
    }
    event.ref = ref;
    event.branch = branch;
  }
  event.is_push = !event.branch.empty() && !deleted;
  return event;
}

}  // namespace

Result<PushEvent> VerifyWebhook(const WebhookConfig& config, const HeaderLookup& headers,
                                std::string_view body) {
  if (body.size() > config.max_body_bytes) {
    return Status::InvalidArgument("webhook body is " + std::to_string(body.size()) +
                                   " bytes, over the limit of " +
                                   std::to_string(config.max_body_bytes));
  }
  if (config.secret.empty()) {
    return Status::FailedPrecondition("no webhook secret is configured; refusing every request");
  }
  if (std::optional<std::string> signature = Header(headers, kGitHubSignature)) {
    if (Status s = CheckSignature(kGitHubSignature, *signature, config.secret, body); !s.ok()) {
      return s;
    }
    std::optional<std::string> event = Header(headers, kGitHubEvent);
    if (!event.has_value()) {
      return Status::InvalidArgument(std::string(kGitHubEvent) + " header is missing");
    }
    return ParseGitHub(std::move(*event), body);
  }
  if (std::optional<std::string> token = Header(headers, kGitLabToken)) {
    if (Status s = CheckToken(kGitLabToken, *token, config.secret); !s.ok()) {
      return s;
    }
    std::optional<std::string> event = Header(headers, kGitLabEvent);
    if (!event.has_value()) {
      return Status::InvalidArgument(std::string(kGitLabEvent) + " header is missing");
    }
    return ParseGitLab(std::move(*event), body);
  }
  if (std::optional<std::string> signature = Header(headers, kGenericSignature)) {
    if (Status s = CheckSignature(kGenericSignature, *signature, config.secret, body); !s.ok()) {
      return s;
    }
    return ParseGeneric(body);
  }
  if (Header(headers, kGitHubSha1Signature).has_value()) {
    return Status::PermissionDenied(
        std::string(kGitHubSha1Signature) +
        " (SHA-1) is not accepted: have the webhook send X-Hub-Signature-256 (sha256=...)");
  }
  return Status::PermissionDenied("no webhook signature: send X-Hub-Signature-256 (GitHub), " +
                                  std::string(kGitLabToken) + " (GitLab) or " +
                                  std::string(kGenericSignature) + " (sha256=<hex HMAC>)");
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  // OpenSSL may treat a null pointer as "no key"; empty views get a real, empty buffer.
  static constexpr char kEmpty[1] = {};
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  // One-shot HMAC has no shared state and cannot fail for SHA-256 on valid memory; a failure is
  // a broken OpenSSL and worth stopping for.
  if (HMAC(EVP_sha256(), key.empty() ? kEmpty : key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.empty() ? kEmpty : data.data()), data.size(),
           mac.data(), &length) == nullptr) {
    std::abort();
  }
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(size_t{length} * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[mac[i] >> 4]);
    hex.push_back(kHex[mac[i] & 0xf]);
  }
  return hex;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace flotilla::api
