#pragma once

// What the API's end-to-end tests share (api_test.cc, api_webhook_metrics_test.cc): a fleet of
// simulated hosts whose `flotilla run` serves the API with a token and a webhook secret. A named
// namespace: the unity build compiles those files together.

#include <string>
#include <vector>

#include "tests/support/api_loop.h"
#include "tests/support/fleet_fixture.h"

namespace flotilla::api_test {

using testing::FleetFixture;
using testing::FleetOptions;

inline constexpr const char* kToken = "api-test-token-5d1f";
inline constexpr const char* kWebhookSecret = "webhook-secret-77";

inline FleetOptions ApiFleet(std::vector<std::string> sim_flags = {}, std::string interval = "1s",
                             std::string resync = "2s") {
  FleetOptions options;
  options.hosts = 3;
  options.sim_flags = std::move(sim_flags);
  options.config_extra =
      "api: {listen: \"127.0.0.1:0\", tokenEnv: FLOTILLA_TEST_TOKEN, "
      "webhookSecretEnv: FLOTILLA_TEST_WEBHOOK}\n";
  options.source_interval = std::move(interval);
  options.resync_interval = std::move(resync);
  return options;
}

// A running `flotilla run` with its API token and webhook secret (tests/support/api_loop.h).
class ApiLoop : public testing::ApiLoop {
 public:
  explicit ApiLoop(FleetFixture& fx)
      : testing::ApiLoop(fx, kToken, "FLOTILLA_TEST_TOKEN",
                         std::string("FLOTILLA_TEST_WEBHOOK=") + kWebhookSecret) {}
};

}  // namespace flotilla::api_test
