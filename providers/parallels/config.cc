#include "providers/parallels/config.h"

#include <fstream>
#include <vector>

#include "providers/parallels/wire.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::parallels {
namespace {

Result<std::string> ReadOptional(const SecretSource& secrets, const std::string& ref,
                                 std::string_view key) {
  Result<std::optional<std::string>> value = secrets.Read(ref, key);
  if (!value.ok()) {
    return value.status();
  }
  return value->value_or("");
}

}  // namespace

Result<ParallelsConfig> ParseParallelsConfig(const ProviderContext& context,
                                             const ParallelsTuning& tuning) {
  const HostPool& pool = context.pool;
  ParallelsConfig config{.pool = pool.meta.name,
                         .insecure_skip_verify = pool.tls.insecure_skip_verify,
                         .ca_file = pool.tls.ca_file,
                         .tuning = tuning};
  if (!pool.credentials_ref.empty()) {
    const std::string& ref = pool.credentials_ref;
    Result<std::string> api_key = ReadOptional(context.secrets, ref, "apiKey");
    Result<std::string> username = ReadOptional(context.secrets, ref, "username");
    Result<std::string> password = ReadOptional(context.secrets, ref, "password");
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
  config.catalog_manager_id = pool.catalog_manager_id;
  if (!pool.catalog_connection_ref.empty()) {
    Result<std::string> connection =
        ReadOptional(context.secrets, pool.catalog_connection_ref, "connection");
    if (!connection.ok()) {
      return connection.status();
    }
    if (connection->empty()) {
      return Status::FailedPrecondition("catalog connectionRef \"" + pool.catalog_connection_ref +
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
