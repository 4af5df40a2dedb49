#pragma once

// Building a Parallels provider for tests the way the loop builds it: through its factory, from
// a pool and a secret source.

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "providers/parallels/provider.h"
#include "providers/secrets.h"
#include "reconciler/model/text.h"

namespace flotilla::testing {

using providers::parallels::ParallelsProviderFactory;
using providers::parallels::ParallelsTuning;

inline std::shared_ptr<spdlog::logger> QuietLogger() {
  auto logger = std::make_shared<spdlog::logger>("test");
  logger->set_level(spdlog::level::off);
  return logger;
}

inline ParallelsTuning FastTuning() {
  return ParallelsTuning{.connect_timeout = std::chrono::seconds{2},
                         .job_poll_initial = std::chrono::milliseconds{20},
                         .job_poll_max = std::chrono::milliseconds{100},
                         .state_poll = std::chrono::milliseconds{20},
                         .login_backoff = std::chrono::milliseconds{300},
                         .login_backoff_max = std::chrono::milliseconds{1200},
                         .script_poll = std::chrono::milliseconds{50},
                         .guest_boot_poll = std::chrono::milliseconds{100},
                         .follow_poll = std::chrono::milliseconds{50}};
}

inline constexpr const char* kApiKeyPlain = "FLOTILLA:ak-0123456789-secret";
inline constexpr const char* kUser = "flotilla-admin";
inline constexpr const char* kPassword = "pw-Very-Secret-42!";

inline std::string Base64(std::string_view text) { return EncodeBase64(text); }

// A deadline ample for any one call to hostsim on loopback.
inline providers::Deadline Soon() { return providers::DeadlineIn(std::chrono::seconds{10}); }

// A Parallels provider for one pool, built through its factory as the loop will build it.
struct ParallelsSetup {
  HostPool pool;
  providers::MapSecretSource secrets;
  std::shared_ptr<spdlog::logger> logger = QuietLogger();
  SystemClock system_clock;
  const Clock* clock = &system_clock;
  std::unique_ptr<providers::Provider> provider;

  // Every pool gets a catalog connection: hosts refuse catalog creates without one.
  ParallelsSetup() {
    pool.settings["catalog"]["connectionRef"] = "catalog";
    secrets.Set("catalog", "connection", "host=reader:Catalog-Pw-1@catalog.example.com:443");
  }

  // The pool's credentials, in the secret `hosts`: the API key kApiKeyPlain, or (`login`) the
  // username kUser and password kPassword.
  void UseCredentials(bool login) {
    pool.credentials_ref = "hosts";
    if (login) {
      secrets.Set("hosts", "username", kUser);
      secrets.Set("hosts", "password", kPassword);
    } else {
      secrets.Set("hosts", "apiKey", Base64(kApiKeyPlain));
    }
  }

  Status Build(ParallelsTuning tuning = FastTuning()) {
    if (pool.meta.name.empty()) {
      pool.meta.name = "pool";
    }
    ParallelsProviderFactory factory(tuning);
    Result<std::unique_ptr<providers::Provider>> built =
        static_cast<const providers::ProviderFactory&>(factory).Build(providers::ProviderContext{
            .pool = pool, .secrets = secrets, .logger = logger, .clock = *clock});
    if (!built.ok()) {
      return built.status();
    }
    provider = std::move(*built);
    return Status::Ok();
  }
};

}  // namespace flotilla::testing
