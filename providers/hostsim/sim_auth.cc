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
  // Until 1.0.1 LoginRequest is {email, password} and Validate() wants both
  // (models/login.go at v1.0.0 and v0.9.21); `username` and `api_key` are unknown fields.
  // From 1.0.1 (PR #477) email, username or api_key will do, email first.
  const bool modern = features_.login_username_and_api_key;
  const std::string email_field = StringField(j, "email");
  const std::string username_field = modern ? StringField(j, "username") : "";
  const std::string api_key = modern ? StringField(j, "api_key") : "";
  const std::string password = StringField(j, "password");
  if (api_key.empty()) {
    std::string invalid;
    if (!modern) {
      invalid = email_field.empty() ? "Email is required"
                : password.empty()  ? "Password is required"
                                    : "";
    } else if (!email_field.empty() || !username_field.empty()) {
      invalid = !password.empty()      ? ""
                : !email_field.empty() ? "Password is required for email login"
                                       : "Password is required for username login";
    } else {
      invalid = "Either email, username or api_key must be provided";
    }
    if (!invalid.empty()) {
      return Diagnostics(400, "Invalid request body: " + invalid, "token");
    }
  }
  std::string email;
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
    // A key without an owner logs in as the root user (controllers/authorization.go:88-117).
    email = "root@localhost";
  } else {
    // GetUser matches the id, email or username, ignoring case (data/users.go:72).
    const std::string& user = email_field.empty() ? username_field : email_field;
    const std::string& known = options_.username;
    const std::string known_email =
        known.find('@') == std::string::npos ? known + "@localhost" : known;
    if (!options_.no_auth) {
      const bool user_ok =
          !known.empty() && (EqualsIgnoreCase(user, known) || EqualsIgnoreCase(user, known_email));
      if (!user_ok) {
        return Diagnostics(404, "user not found", "token");  // data/users.go ErrUserNotFound
      }
      if (password != options_.password) {
        // The brute-force guard counts the failure and, from the limit on, sleeps inside the
        // request before it answers: wait x failures past the limit
        // (security/brute_force_guard/main.go:89-107, incremental by default). It sets
        // Blocked, which nothing checks: the right password still works.
        Duration sleep{0};
        {
          std::lock_guard lock(mu_);
          ++failed_logins_;
          if (failed_logins_ >= options_.brute_force_attempts) {
            sleep =
                options_.brute_force_wait * (failed_logins_ - (options_.brute_force_attempts - 1));
          }
        }
        env_.Sleep(sleep);
        return Diagnostics(404, "Invalid user or Password", "token");
      }
      std::lock_guard lock(mu_);
      failed_logins_ = 0;
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
                                           const std::string* api_key, bool* user) const {
  *user = false;
  if (options_.no_auth) {
    *user = true;
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
    *user = true;  // token_authorization_middleware.go:275 sets the user
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
