#include "providers/hostsim/sim_host.h"

#include <algorithm>

#include "providers/hostsim/sim_wire.h"
#include "reconciler/model/text.h"

namespace flotilla::hostsim {

using nlohmann::json;
using SystemClock = std::chrono::system_clock;

// ---------------------------------------------------------------------------------------------
// Authentication

Reply SimHost::Login(std::string_view body) {
  const json j = ParseBody(body);
  if (j.is_discarded() || !j.is_object()) {
    return Diagnostics(400, "Invalid request body", "token");
  }
  std::string email;
  const std::string api_key = StringField(j, "api_key");
  if (!api_key.empty()) {
    const std::optional<std::string> decoded = DecodeBase64(api_key);
    if (!decoded) {
      return Diagnostics(400, "Invalid API key format", "token");
    }
    const size_t colon = decoded->find(':');
    if (colon == std::string::npos) {
      return Diagnostics(400, "API key must be in format base64(key:secret)", "token");
    }
    if (!options_.no_auth) {
      const std::string key = AsciiUpper(decoded->substr(0, colon));
      const std::string secret = decoded->substr(colon + 1);
      auto it = std::find_if(options_.api_keys.begin(), options_.api_keys.end(),
                             [&](const ApiKeyCredential& c) { return c.key == key; });
      if (it == options_.api_keys.end()) {
        return Diagnostics(401, "Invalid API key", "token");
      }
      if (it->secret != secret) {
        return Diagnostics(401, "Invalid API key secret", "token");
      }
    }
    email = "root@localhost";
  } else {
    std::string user = StringField(j, "username");
    if (user.empty()) {
      user = StringField(j, "email");
    }
    const std::string password = StringField(j, "password");
    if (user.empty() || password.empty()) {
      return Diagnostics(400, "Invalid request body: username or email and password are required",
                         "token");
    }
    const std::string& known = options_.username;
    const std::string known_email =
        known.find('@') == std::string::npos ? known + "@localhost" : known;
    if (!options_.no_auth) {
      const bool user_ok =
          !known.empty() && (EqualsIgnoreCase(user, known) || EqualsIgnoreCase(user, known_email));
      if (!user_ok || password != options_.password) {
        return Diagnostics(404, "Invalid user or Password", "token");
      }
    }
    email = known.empty() ? "root@localhost" : known_email;
  }
  env_.Sleep(env_.Latency("login"));
  const std::string token = env_.NewToken();
  const auto expires = SystemClock::now() + options_.token_ttl;
  {
    std::lock_guard lock(mu_);
    tokens_[token] = expires;
  }
  const int64_t expires_at =
      std::chrono::duration_cast<std::chrono::seconds>(expires.time_since_epoch()).count();
  return Reply::Json(200, {{"email", email}, {"token", token}, {"expires_at", expires_at}});
}

Reply SimHost::ValidateToken(std::string_view body) {
  const json j = ParseBody(body);
  const std::string token = j.is_discarded() ? "" : StringField(j, "token");
  if (token.empty()) {
    return Diagnostics(400, "Invalid request body: token is required", "validate");
  }
  std::lock_guard lock(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) {
    return Diagnostics(401, "Invalid token", "validate");
  }
  if (SystemClock::now() >= it->second) {
    return Diagnostics(401, "Token is expired", "validate");
  }
  return Reply::Json(200, {{"valid", true}});
}

std::optional<Reply> SimHost::Authenticate(const std::string* authorization,
                                           const std::string* api_key) const {
  if (options_.no_auth) {
    return std::nullopt;
  }
  if (authorization != nullptr && api_key != nullptr) {
    // Each middleware skips when the other header is present: nobody authenticates.
    return Reply::Json(401, nullptr);
  }
  if (authorization != nullptr) {
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization->size() <= kBearer.size() ||
        !EqualsIgnoreCase(authorization->substr(0, kBearer.size()), kBearer)) {
      return Reply::Json(401, OAuthError("Invalid token"));
    }
    const std::string token = authorization->substr(kBearer.size());
    std::lock_guard lock(mu_);
    auto it = tokens_.find(token);
    if (it == tokens_.end()) {
      return Reply::Json(401, OAuthError("Invalid token"));
    }
    if (SystemClock::now() >= it->second) {
      return Reply::Json(401, OAuthError("Token is expired"));
    }
    return std::nullopt;
  }
  // The API-key middleware runs on the header even when it is absent.
  const std::string text = api_key != nullptr ? *api_key : "";
  const std::optional<std::string> decoded = DecodeBase64(text);
  if (!decoded) {
    return Reply::Json(401, OAuthError("Invalid API key format"));
  }
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) {
    return Reply::Json(401, OAuthError("API key must be in format base64(key:secret)"));
  }
  const std::string key = AsciiUpper(decoded->substr(0, colon));
  auto it = std::find_if(options_.api_keys.begin(), options_.api_keys.end(),
                         [&](const ApiKeyCredential& c) { return c.key == key; });
  if (it == options_.api_keys.end()) {
    return Reply::Json(401, OAuthError("Invalid API key"));
  }
  if (it->secret != decoded->substr(colon + 1)) {
    return Reply::Json(401, OAuthError("Invalid API key secret"));
  }
  return std::nullopt;
}

void SimHost::ExpireTokens() {
  std::lock_guard lock(mu_);
  const auto past = SystemClock::now() - std::chrono::seconds(1);
  for (auto& [token, expiry] : tokens_) {
    expiry = std::min(expiry, past);
  }
}

}  // namespace flotilla::hostsim
