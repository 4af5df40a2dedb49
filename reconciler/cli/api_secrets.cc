#include "reconciler/cli/api_secrets.h"

#include <set>

#include "reconciler/cli/converge_command.h"

namespace flotilla::cli {

Result<ApiSecrets> ReadApiSecrets(const manifest::ReconcilerConfig::Api& config) {
  ApiSecrets secrets;
  Result<std::string> token = ReadSecretSetting(config.token_file, config.token_env, "API token");
  if (!token.ok()) {
    return token.status();
  }
  secrets.token = std::move(*token);
  std::set<std::string> seen;
  if (!secrets.token.empty()) {
    seen.insert(secrets.token);
  }
  for (const manifest::ReconcilerConfig::ApiToken& named : config.tokens) {
    const std::string what = "API token \"" + named.name + "\"";
    Result<std::string> value = ReadSecretSetting(named.token_file, named.token_env, what);
    if (!value.ok()) {
      return value.status();
    }
    if (!seen.insert(*value).second) {
      return Status::FailedPrecondition("the " + what +
                                        " has the same value as another API token; give each "
                                        "token its own value");
    }
    api::Roles roles;
    for (const std::string& role : named.roles) {
      if (std::optional<api::Role> parsed = api::ParseRole(role)) {
        roles.Add(*parsed);
      }  // the schema allows no other
    }
    secrets.tokens.push_back(
        api::ApiToken{.name = named.name, .secret = std::move(*value), .roles = roles});
  }
  Result<std::string> webhook =
      ReadSecretSetting(config.webhook_secret_file, config.webhook_secret_env, "webhook secret");
  if (!webhook.ok()) {
    return webhook.status();
  }
  secrets.webhook_secret = std::move(*webhook);
  return secrets;
}

}  // namespace flotilla::cli
