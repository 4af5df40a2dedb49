// schemas/config.v1.json: the reconciler's own configuration (DESIGN section 2).

#include <gtest/gtest.h>

#include "reconciler/manifest/yaml_reader.h"
#include "tests/unit/manifest_fixture.h"

namespace flotilla::manifest {
namespace {

constexpr std::string_view kDesignExample = R"(
source:
  url: https://git.example.com/acme/fleet.git
  branch: main
  path: fleet/
  interval: 60s
  auth: {tokenFile: /etc/flotilla/git/token}
stateDir: /var/lib/flotilla
secretsDir: /etc/flotilla/secrets
api: {listen: 127.0.0.1:8080, tokenFile: /etc/flotilla/api-token, webhookSecretFile: /etc/flotilla/webhook-secret}
reconcile:
  resyncInterval: 30s
  hostLostAfter: 10m
  concurrency: 32
  perHostConcurrency: 2
  maxDeletionsPerRun: 10%
log: {format: text, level: info}
)";

Diagnostics Check(const std::string& yaml) {
  Diagnostics d;
  DocumentBudget budget{.limit = 1};
  std::vector<YamlDocument> docs = ReadYamlDocuments(yaml, "flotilla.yaml", budget, d);
  EXPECT_EQ(docs.size(), 1u);
  if (!docs.empty()) {
    testing::Validator()->Validate("config.v1.json", docs[0], d);
  }
  return d;
}

std::string Text(const Diagnostics& d) {
  std::string s;
  for (const Diagnostic& x : d.Sorted()) {
    s += x.ToString() + "\n";
  }
  return s;
}

TEST(ConfigSchemaTest, DesignExampleIsValid) {
  Diagnostics d = Check(std::string(kDesignExample));
  EXPECT_FALSE(d.HasErrors()) << Text(d);
}

TEST(ConfigSchemaTest, EmptyConfigIsValidBecauseEverythingHasADefault) {
  EXPECT_FALSE(Check("{}\n").HasErrors());
}

TEST(ConfigSchemaTest, RejectsMistakes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"source: {intervall: 60s}\n", "unknown field \"intervall\"; did you mean \"interval\"?"},
      {"source: {interval: 60}\n", "interval must be a string, not the number 60"},
      {"source: {interval: soon}\n", "interval \"soon\" must be a duration"},
      {"reconcile: {maxDeletionsPerRun: 110%}\n", "must be a number of VMs or a percentage"},
      {"reconcile: {maxDeletionsPerRun: -1}\n", "maxDeletionsPerRun -1 is below the minimum 0"},
      {"reconcile: {concurrency: 0}\n", "concurrency 0 is below the minimum 1"},
      {"api: {listen: localhost}\n", "listen \"localhost\" must be host:port"},
      {"log: {format: xml}\n", "format \"xml\" is not one of text, json"},
      {"api: {tls: {certFile: a}}\n", "missing required field \"keyFile\" in tls"},
  };
  for (const auto& [yaml, message] : cases) {
    const std::string text = Text(Check(yaml));
    EXPECT_NE(text.find(message), std::string::npos) << yaml << "gave:\n" << text;
  }
}

TEST(ConfigSchemaTest, AcceptsAbsoluteDeletionBudgetAndCompoundDurations) {
  EXPECT_FALSE(Check("reconcile: {maxDeletionsPerRun: 5, hostLostAfter: 1h30m}\n").HasErrors());
  EXPECT_FALSE(Check("api: {listen: \"[::1]:8080\"}\n").HasErrors());
}

}  // namespace
}  // namespace flotilla::manifest
