// Reading flotilla.yaml into typed values (reconciler/manifest/config.h).

#include "reconciler/manifest/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/process.h"
#include "tests/unit/manifest_fixture.h"

namespace flotilla::manifest {
namespace {

using std::chrono::milliseconds;

class ConfigFileTest : public ::testing::Test {
 protected:
  Result<ReconcilerConfig> Load(const std::string& yaml) {
    // In a folder of the test's own (CTest runs the tests of this suite in parallel), removed
    // with the fixture.
    const std::string path =
        (scratch_.path() /
         (std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + ".yaml"))
            .string();
    std::ofstream(path) << yaml;
    diagnostics_ = Diagnostics();
    return LoadConfigFile(path, *testing::Validator(), diagnostics_);
  }
  flotilla::testing::ScratchDir scratch_;
  Diagnostics diagnostics_;
};

TEST_F(ConfigFileTest, DefaultsAndValues) {
  Result<ReconcilerConfig> empty = Load("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->secrets_dir, "/etc/flotilla/secrets");
  EXPECT_EQ(empty->reconcile.max_deletions_percent, 10u);
  EXPECT_EQ(empty->source.branch, "main");

  Result<ReconcilerConfig> config = Load(
      "source: {url: https://git.example.com/fleet.git, path: fleet/, interval: 2m,\n"
      "         auth: {tokenFile: /run/token}}\n"
      "secretsDir: /s\n"
      "reconcile: {hostLostAfter: 15m, hostOfflineAfter: 45s, maxDeletionsPerRun: 3, "
      "concurrency: 8}\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->source.url, "https://git.example.com/fleet.git");
  EXPECT_EQ(config->source.path, "fleet/");
  EXPECT_EQ(config->source.interval, milliseconds{120'000});
  EXPECT_EQ(config->source.token_file, "/run/token");
  EXPECT_EQ(config->secrets_dir, "/s");
  EXPECT_EQ(config->reconcile.host_lost_after, milliseconds{900'000});
  EXPECT_EQ(config->reconcile.host_offline_after, milliseconds{45'000});
  EXPECT_EQ(config->reconcile.max_deletions, 3u);
  EXPECT_EQ(config->reconcile.concurrency, 8u);

  Result<ReconcilerConfig> percent = Load("reconcile: {maxDeletionsPerRun: 25%}\n");
  ASSERT_TRUE(percent.ok());
  EXPECT_FALSE(percent->reconcile.max_deletions.has_value());
  EXPECT_EQ(percent->reconcile.max_deletions_percent, 25u);
}

TEST_F(ConfigFileTest, ExecutorTimeoutsAndRetention) {
  Result<ReconcilerConfig> defaults = Load("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->reconcile.create_timeout, milliseconds{30 * 60'000});
  EXPECT_EQ(defaults->reconcile.max_attempts, 4u);
  EXPECT_EQ(defaults->store.retain_runs, 1000u);
  EXPECT_EQ(defaults->store.durability, "full");

  Result<ReconcilerConfig> config = Load(
      "reconcile: {hostTimeout: 3s, createTimeout: 1h, actionTimeout: 90s,\n"
      "            shutdownTimeout: 10s, maxAttempts: 7}\n"
      "store: {retainRuns: 50, retainEvents: 0, durability: normal}\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->reconcile.host_timeout, milliseconds{3'000});
  EXPECT_EQ(config->reconcile.create_timeout, milliseconds{3'600'000});
  EXPECT_EQ(config->reconcile.action_timeout, milliseconds{90'000});
  EXPECT_EQ(config->reconcile.shutdown_timeout, milliseconds{10'000});
  EXPECT_EQ(config->reconcile.max_attempts, 7u);
  EXPECT_EQ(config->store.retain_runs, 50u);
  EXPECT_EQ(config->store.retain_events, 0u);
  EXPECT_EQ(config->store.durability, "normal");

  EXPECT_FALSE(Load("reconcile: {maxAttempts: 0}\n").ok());
  EXPECT_FALSE(Load("store: {retainRuns: -1}\n").ok());
  EXPECT_FALSE(Load("store: {durability: sometimes}\n").ok());
}

TEST_F(ConfigFileTest, ApiSection) {
  Result<ReconcilerConfig> defaults = Load("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->api.listen, "127.0.0.1:8080");
  EXPECT_EQ(defaults->api.threads, 8u);
  EXPECT_TRUE(defaults->api.token_file.empty());

  Result<ReconcilerConfig> config = Load(
      "api:\n"
      "  listen: 0.0.0.0:9090\n"
      "  tokenFile: /run/secrets/api-token\n"
      "  webhookSecretEnv: FLOTILLA_WEBHOOK_SECRET\n"
      "  threads: 4\n"
      "  tls: {certFile: /etc/flotilla/tls.crt, keyFile: /etc/flotilla/tls.key}\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->api.listen, "0.0.0.0:9090");
  EXPECT_EQ(config->api.token_file, "/run/secrets/api-token");
  EXPECT_EQ(config->api.webhook_secret_env, "FLOTILLA_WEBHOOK_SECRET");
  EXPECT_EQ(config->api.threads, 4u);
  EXPECT_EQ(config->api.tls_cert_file, "/etc/flotilla/tls.crt");
  EXPECT_EQ(config->api.tls_key_file, "/etc/flotilla/tls.key");

  EXPECT_FALSE(Load("api: {threads: 0}\n").ok());
  EXPECT_FALSE(Load("api: {tokenEnv: \"not a name\"}\n").ok());
}

TEST_F(ConfigFileTest, ApiTokensWithRoles) {
  Result<ReconcilerConfig> defaults = Load("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults->api.tokens.empty());
  EXPECT_EQ(defaults->api.auth_failure_burst, 10u);
  EXPECT_EQ(defaults->api.auth_failures_per_minute, 10u);

  Result<ReconcilerConfig> config = Load(
      "api:\n"
      "  tokenFile: /run/secrets/api-token\n"
      "  tokens:\n"
      "    - {name: dashboard, tokenFile: /run/secrets/dashboard, roles: [read]}\n"
      "    - name: ci-7\n"
      "      tokenEnv: FLOTILLA_CI_TOKEN\n"
      "      roles: [reconcile, approve]\n"
      "  authFailures: {burst: 5, perMinute: 2}\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->api.tokens.size(), 2u);
  EXPECT_EQ(config->api.tokens[0].name, "dashboard");
  EXPECT_EQ(config->api.tokens[0].token_file, "/run/secrets/dashboard");
  EXPECT_EQ(config->api.tokens[0].roles, std::vector<std::string>{"read"});
  EXPECT_EQ(config->api.tokens[1].name, "ci-7");
  EXPECT_EQ(config->api.tokens[1].token_env, "FLOTILLA_CI_TOKEN");
  EXPECT_EQ(config->api.tokens[1].roles, (std::vector<std::string>{"reconcile", "approve"}));
  EXPECT_EQ(config->api.auth_failure_burst, 5u);
  EXPECT_EQ(config->api.auth_failures_per_minute, 2u);
}

TEST_F(ConfigFileTest, ApiTunnels) {
  Result<ReconcilerConfig> defaults = Load("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->api.tunnels_max, 64u);
  EXPECT_EQ(defaults->api.tunnels_per_token, 16u);
  EXPECT_EQ(defaults->api.tunnel_idle_timeout, std::chrono::minutes{30});
  Result<ReconcilerConfig> config = Load(
      "api:\n"
      "  tokens:\n"
      "    - {name: ops, tokenFile: /run/secrets/ops, roles: [access]}\n"
      "  tunnels: {max: 8, perToken: 2, idleTimeout: 90s}\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->api.tokens[0].roles, std::vector<std::string>{"access"});
  EXPECT_EQ(config->api.tunnels_max, 8u);
  EXPECT_EQ(config->api.tunnels_per_token, 2u);
  EXPECT_EQ(config->api.tunnel_idle_timeout, std::chrono::seconds{90});
  EXPECT_FALSE(Load("api:\n  tunnels: {perToken: 0}\n").ok());
}

TEST_F(ConfigFileTest, ApiTokenMistakesAreLocated) {
  // Each mistake, on its line: (yaml, line, a part of the message).
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {"api:\n  tokens:\n    - {name: Ops, tokenFile: /t, roles: [read]}\n", 3, "lowercase"},
      {"api:\n  tokens:\n    - {name: ops, tokenFile: /t, roles: []}\n", 3, ""},
      {"api:\n  tokens:\n    - {name: ops, tokenFile: /t, roles: [write]}\n", 3, ""},
      {"api:\n  tokens:\n    - {name: ops, tokenFile: /t}\n", 3, "roles"},
      {"api:\n  tokens:\n    - {name: ops, roles: [read]}\n", 3, "exactly one of tokenFile"},
      {"api:\n  tokens:\n    - {name: ops, tokenFile: /t, tokenEnv: T, roles: [read]}\n", 3,
       "exactly one of tokenFile"},
      {"api:\n  tokens:\n    - {name: ops, tokenFile: /a, roles: [read]}\n"
       "    - {name: ops, tokenFile: /b, roles: [admin]}\n",
       4, "configured twice"},
      {"api:\n  tokens:\n    - {name: default, tokenFile: /a, roles: [read]}\n", 3,
       "api.tokenFile"},
      {"api:\n  authFailures: {burst: 0}\n", 2, ""},
  };
  for (const auto& [yaml, line, message] : cases) {
    SCOPED_TRACE(yaml);
    EXPECT_FALSE(Load(yaml).ok());
    ASSERT_FALSE(diagnostics_.empty());
    const Diagnostic first = diagnostics_.Sorted().front();
    EXPECT_EQ(first.location.line, line) << first.ToString();
    EXPECT_NE(first.ToString().find(".yaml:" + std::to_string(line) + ":"), std::string::npos)
        << first.ToString();
    EXPECT_NE(first.message.find(message), std::string::npos) << first.ToString();
  }
}

TEST_F(ConfigFileTest, MistakesAreLocated) {
  EXPECT_FALSE(Load("reconcile: {hostLostAfter: soon}\n").ok());
  ASSERT_FALSE(diagnostics_.empty());
  EXPECT_EQ(diagnostics_.Sorted().front().location.line, 1);
  EXPECT_FALSE(Load("secretDir: /s\n").ok());
  EXPECT_NE(diagnostics_.Sorted().front().message.find("secretsDir"), std::string::npos);
}

// Found by fuzz/config_fuzz.cc (fuzz/corpus/config/long-text-in-error.yaml): a value shown in a
// schema message was cut after 57 bytes, inside a character, and writing the message then threw
// (json type_error 316) out of LoadConfigFile and the manifest loader alike.
TEST_F(ConfigFileTest, LongValuesInMessagesAreCutBetweenCharacters) {
  std::string text;
  for (int i = 0; i < 40; ++i) {
    text += "\u00e9";  // two bytes each
  }
  EXPECT_FALSE(Load("log: {format: " + text + "}\n").ok());
  ASSERT_FALSE(diagnostics_.empty());
  const std::string message = diagnostics_.Sorted().front().message;
  EXPECT_NE(message.find(text.substr(0, 56) + "..."), std::string::npos) << message;
}

}  // namespace
}  // namespace flotilla::manifest
