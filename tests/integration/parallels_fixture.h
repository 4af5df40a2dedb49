#pragma once

// One flotilla-hostsim and one Parallels provider for it: the fixture of the provider's
// integration tests (parallels_test.cc, parallels_real_service_test.cc).

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/parallels_setup.h"
#include "tests/support/hostsim.h"

namespace flotilla::providers::testing_fixture {

using ::flotilla::testing::Base64;
using ::flotilla::testing::Hostsim;
using ::flotilla::testing::kApiKeyPlain;
using ::flotilla::testing::kPassword;
using ::flotilla::testing::kUser;
using ::flotilla::testing::ParallelsSetup;
using std::chrono::milliseconds;
using std::chrono::seconds;

using ::flotilla::testing::Soon;

inline VMTemplate MacTemplate(std::string image = "catalog://MACOS_BASE/v1") {
  return VMTemplate{.image = std::move(image),
                    .os = GuestOs::kMacos,
                    .arch = Arch::kArm64,
                    .cpu = 2,
                    .memory = Quantity::FromMiB(4096)};
}

// One hostsim and one provider for it.
class ParallelsTest : public ::testing::Test {
 protected:
  // Starts hostsim with `flags` plus credentials, and a provider using the API key (or the
  // username and password).
  void Start(std::vector<std::string> flags, bool login = false,
             const std::string& scheme = "http") {
    flags.insert(flags.end(),
                 {"--api-key", kApiKeyPlain, "--username", kUser, "--password", kPassword});
    // Guests boot quickly here; tests of the boot itself set their own.
    if (std::find(flags.begin(), flags.end(), "--guest-boot") == flags.end()) {
      flags.insert(flags.end(), {"--guest-boot", "300ms"});
    }
    sim_ = std::make_unique<Hostsim>(flags, scheme);
    ASSERT_TRUE(sim_->ready());
    setup_.UseCredentials(login);
  }
  void Build() { ASSERT_TRUE(setup_.Build().ok()); }

  // Starts creating ios-0 and gives up as soon as the provider has reported the host's job for
  // the journal, as a loop that crashes then would (no fixed delay: under load the job may take
  // a while to start); returns what the provider reported (empty if it reported nothing).
  std::optional<PendingCreate> InterruptedCreate() {
    std::optional<PendingCreate> journalled;
    const CreateRequest request{
        .name = "ios-0",
        .templ = MacTemplate(),
        .on_progress = [&](const PendingCreate& p) { journalled = p; },
        .cancelled = [&] { return journalled.has_value() && !journalled->job_id.empty(); }};
    Result<CreateResult> interrupted = provider().Create(host(), request, Soon());
    EXPECT_EQ(interrupted.status().code(), Status::Code::kCancelled)
        << interrupted.status().ToString();
    return journalled;
  }
  Provider& provider() { return *setup_.provider; }
  HostRef host() const { return {.pool = "pool", .name = "sim", .address = sim_->address()}; }

  std::unique_ptr<Hostsim> sim_;
  ParallelsSetup setup_;
};

}  // namespace flotilla::providers::testing_fixture
