#pragma once

// The secrets of `flotilla run`'s API as configured (api.tokenFile, api.tokens,
// api.webhookSecretFile and their environment variables), read at start and again before every
// pass, so that a rotated Secret takes effect without a restart.

#include <string>
#include <vector>

#include "reconciler/api/auth.h"
#include "reconciler/manifest/config.h"
#include "reconciler/model/result.h"

namespace flotilla::cli {

struct ApiSecrets {
  std::string token;                  // api.tokenFile's: the default token; empty: none
  std::vector<api::ApiToken> tokens;  // api.tokens, with their values
  std::string webhook_secret;

  friend bool operator==(const ApiSecrets&, const ApiSecrets&) = default;
};

// Reads every configured secret. FailedPrecondition (naming the setting, never a value) when one
// cannot be read or is empty, or a token's value is also another's: two names for one token
// would record the wrong one.
Result<ApiSecrets> ReadApiSecrets(const manifest::ReconcilerConfig::Api& config);

}  // namespace flotilla::cli
