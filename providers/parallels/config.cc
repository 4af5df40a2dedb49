#include "providers/parallels/config.h"

#include <charconv>
#include <fstream>
#include <tuple>
#include <vector>

#include "providers/parallels/wire.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::parallels {
namespace {

// settings[object][key] as a string: absent or null is "", another type an error.
Result<std::string> StringSetting(const nlohmann::json& settings, const char* object,
                                  const char* key) {
  const auto o = settings.find(object);
  if (o == settings.end() || o->is_null()) {
    return std::string();
  }
  if (!o->is_object()) {
    return Status::InvalidArgument(std::string(object) + " must be an object");
  }
  const auto v = o->find(key);
  if (v == o->end() || v->is_null()) {
    return std::string();
  }
  if (!v->is_string()) {
    return Status::InvalidArgument(std::string(object) + "." + key + " must be a string");
  }
  return v->get<std::string>();
}

}  // namespace

Result<ParallelsPoolSettings> ParsePoolSettings(const nlohmann::json& settings) {
  if (!settings.is_null() && !settings.is_object()) {
    return Status::InvalidArgument("the pool's settings must be an object");
  }
  if (settings.is_null()) {
    return ParallelsPoolSettings{};
  }
  ParallelsPoolSettings out;
  for (auto [field, object, key] :
       {std::tuple{&out.catalog_connection_ref, "catalog", "connectionRef"},
        std::tuple{&out.catalog_manager_id, "catalog", "managerId"},
        std::tuple{&out.ca_file, "tls", "caFile"}}) {
    Result<std::string> value = StringSetting(settings, object, key);
    if (!value.ok()) {
      return value.status();
    }
    *field = std::move(*value);
  }
  if (const auto tls = settings.find("tls"); tls != settings.end() && tls->is_object()) {
    const auto skip = tls->find("insecureSkipVerify");
    if (skip != tls->end() && !skip->is_null() && !skip->is_boolean()) {
      return Status::InvalidArgument("tls.insecureSkipVerify must be true or false");
    }
    out.insecure_skip_verify = skip != tls->end() && skip->is_boolean() && skip->get<bool>();
  }
  Result<std::string> ports = StringSetting(settings, "tunnels", "ports");
  Result<std::string> bind = StringSetting(settings, "tunnels", "bind");
  for (const Result<std::string>* r : {&ports, &bind}) {
    if (!r->ok()) {
      return r->status();
    }
  }
  if (!bind->empty()) {
    out.tunnels.bind = *bind;
  }
  if (!ports->empty()) {
    const size_t dash = ports->find('-');
    unsigned first = 0;
    unsigned last = 0;
    const auto number = [](std::string_view text, unsigned* value) {
      const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
      return ec == std::errc() && ptr == text.data() + text.size();
    };
    if (dash == std::string::npos || !number(std::string_view(*ports).substr(0, dash), &first) ||
        !number(std::string_view(*ports).substr(dash + 1), &last) || first < 1 || last > 65535 ||
        first > last) {
      return Status::InvalidArgument(
          "tunnels.ports must be FIRST-LAST with 1 <= FIRST <= LAST "
          "<= 65535, not \"" +
          *ports + "\"");
    }
    out.tunnels.first_port = static_cast<uint16_t>(first);
    out.tunnels.last_port = static_cast<uint16_t>(last);
  }
  return out;
}

Result<ParallelsConfig> ParseParallelsConfig(const ProviderContext& context,
                                             const ParallelsTuning& tuning) {
  const HostPool& pool = context.pool;
  Result<ParallelsPoolSettings> settings = ParsePoolSettings(pool.settings);
  if (!settings.ok()) {
    return settings.status();
  }
  ParallelsConfig config{.pool = pool.meta.name,
                         .insecure_skip_verify = settings->insecure_skip_verify,
                         .ca_file = settings->ca_file,
                         .tunnels = settings->tunnels,
                         .tuning = tuning};
  if (!pool.credentials_ref.empty()) {
    const std::string& ref = pool.credentials_ref;
    Result<std::string> api_key = ReadSecretOrEmpty(context.secrets, ref, "apiKey");
    Result<std::string> username = ReadSecretOrEmpty(context.secrets, ref, "username");
    Result<std::string> password = ReadSecretOrEmpty(context.secrets, ref, "password");
    for (const Result<std::string>* r : {&api_key, &username, &password}) {
      if (!r->ok()) {
        return r->status();
      }
    }
    config.api_key = *api_key;
    config.username = *username;
    config.password = *password;
    if (config.api_key.empty() && config.username.empty()) {
      return Status::FailedPrecondition(
          "credentialsRef \"" + ref + "\" has neither apiKey nor username (looked for " + ref +
          "/apiKey, " + ref + "/username in the secrets directory and " +
          FileSecretSource::EnvName(ref, "apiKey") + ")");
    }
    if (config.api_key.empty() && config.password.empty()) {
      return Status::FailedPrecondition("credentialsRef \"" + ref +
                                        "\" has a username but no password");
    }
    if (!config.api_key.empty() && !config.username.empty()) {
      context.logger->warn(
          "pool {}: credentialsRef \"{}\" has both apiKey and username; using "
          "the API key",
          pool.meta.name, ref);
      config.username.clear();
      config.password.clear();
    }
  } else {
    // Every prl-devops-service host wants credentials: it has no unauthenticated mode (an
    // empty X-Api-Key gets 401, security/apikey/apikey.go:29-48; audit #16).
    return Status::FailedPrecondition("pool " + pool.meta.name +
                                      " has no credentialsRef: prl-devops-service hosts need an "
                                      "API key or a username and password");
  }
  config.catalog_manager_id = settings->catalog_manager_id;
  if (!settings->catalog_connection_ref.empty()) {
    Result<std::string> connection =
        ReadSecretOrEmpty(context.secrets, settings->catalog_connection_ref, "connection");
    if (!connection.ok()) {
      return connection.status();
    }
    if (connection->empty()) {
      return Status::FailedPrecondition("catalog connectionRef \"" +
                                        settings->catalog_connection_ref +
                                        "\" has no connection value");
    }
    config.catalog_connection = *connection;
  }
  if (!config.ca_file.empty()) {
    std::ifstream in(config.ca_file);
    if (!in) {
      return Status::FailedPrecondition("tls.caFile " + config.ca_file + " cannot be read");
    }
  }
  if (config.insecure_skip_verify) {
    context.logger->warn(
        "pool {}: tls.insecureSkipVerify is set; host certificates are NOT "
        "verified",
        pool.meta.name);
  }
  return config;
}

std::vector<std::string> SecretValues(const ParallelsConfig& config) {
  std::vector<std::string> values;
  auto add = [&values](std::string value) {
    if (!value.empty()) {
      values.push_back(std::move(value));
    }
  };
  add(config.api_key);
  add(config.password);
  if (!config.api_key.empty()) {
    std::string decoded = DecodeBase64(config.api_key).value_or("");
    add(decoded);
    if (size_t colon = decoded.find(':'); colon != std::string::npos) {
      add(decoded.substr(colon + 1));
    }
  }
  add(config.catalog_connection);
  for (std::string& part : CatalogConnectionSecrets(config.catalog_connection)) {
    add(std::move(part));
  }
  return values;
}

}  // namespace flotilla::providers::parallels
