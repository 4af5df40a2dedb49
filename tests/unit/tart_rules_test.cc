// Provider tart's rules (providers/tart/rules.h) as `validate` applies them: its settings in the
// merged pool schema, CheckPool's findings placed at file:line:col, and its images.

#include "providers/tart/rules.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "providers/builtin.h"
#include "reconciler/model/clock.h"
#include "tests/unit/manifest_fixture.h"

namespace flotilla::manifest {
namespace {

using testing::AllText;
using testing::Fleet;
using testing::LoadYaml;
using testing::Replace;
using testing::Says;

// A valid tart pool of two Macs and a set on it; the set starts on line 22.
constexpr std::string_view kTartPool = R"(apiVersion: flotilla.dev/v1
kind: HostPool
metadata:
  name: minis
spec:
  provider: tart
  credentialsRef: tart-minis
  tart:
    pullPolicy: IfNotPresent
  ssh:
    knownHostsFile: /etc/flotilla/known_hosts
  defaults:
    arch: arm64
    capacity: {cpu: 8, memory: 16Gi, disk: 200Gi}
  hosts:
    - name: mini-01
      address: ssh://tart@10.0.2.11
    - name: mini-02
      address: tart@10.0.2.12
)";

constexpr std::string_view kTartSet = R"(apiVersion: flotilla.dev/v1
kind: VMSet
metadata:
  name: xcode
spec:
  pool: minis
  replicas: 2
  template:
    image: oci://ghcr.io/cirruslabs/macos-sequoia-xcode:16
    os: macos
    arch: arm64
    cpu: 4
    memory: 8Gi
)";

std::string TartFleet(std::string_view pool = kTartPool, std::string_view set = kTartSet) {
  return Fleet(pool, set);
}

TEST(TartRulesTest, AValidPoolCarriesItsSettingsAndItsSetsCacheKeys) {
  LoadResult r = LoadYaml(TartFleet());
  ASSERT_TRUE(r.ok()) << AllText(r);
  EXPECT_TRUE(r.diagnostics.empty()) << AllText(r);
  ASSERT_EQ(r.desired.pools.size(), 1u);
  EXPECT_EQ(r.desired.pools[0].provider, "tart");
  EXPECT_EQ(r.desired.pools[0].settings,
            nlohmann::json::parse(R"({"tart": {"pullPolicy": "IfNotPresent"},
                                      "ssh": {"knownHostsFile": "/etc/flotilla/known_hosts"}})"));
  ASSERT_EQ(r.desired.sets.size(), 1u);
  // As `tart list --source oci -q` names it: the planner prefers hosts that hold it.
  EXPECT_EQ(r.desired.sets[0].image_cache_key, "ghcr.io/cirruslabs/macos-sequoia-xcode:16");

  LoadResult vm = LoadYaml(TartFleet(
      kTartPool,
      Replace(kTartSet, "oci://ghcr.io/cirruslabs/macos-sequoia-xcode:16", "vm://golden")));
  ASSERT_TRUE(vm.ok()) << AllText(vm);
  EXPECT_EQ(vm.desired.sets[0].image_cache_key, "");  // a local VM is not pulled
}

TEST(TartRulesTest, PoolsNeedCredentials) {
  LoadResult r = LoadYaml(TartFleet(Replace(kTartPool, "  credentialsRef: tart-minis\n", "")));
  EXPECT_TRUE(Says(r,
                   "test.yaml:5:1: error: pool \"minis\" uses provider tart, which needs "
                   "spec.credentialsRef (the secret with the SSH private key, sshKey; optionally "
                   "sshPassphrase, knownHosts and registryUsername with registryPassword) "
                   "(/spec)"))
      << AllText(r);
}

TEST(TartRulesTest, EachHostNeedsAnSshAddress) {
  // The schema refuses what does not look like USER@HOST at all, with an example.
  LoadResult https =
      LoadYaml(TartFleet(Replace(kTartPool, "ssh://tart@10.0.2.11", "https://10.0.2.11:8080")));
  EXPECT_TRUE(Says(https,
                   "test.yaml:17:16: error: address \"https://10.0.2.11:8080\" must be an SSH "
                   "address with a user, ssh://USER@HOST[:PORT] or USER@HOST, such as "
                   "ssh://tart@10.0.2.11 (/spec/hosts/0/address)"))
      << AllText(https);
  EXPECT_TRUE(Says(LoadYaml(TartFleet(Replace(kTartPool, "ssh://tart@10.0.2.11", "10.0.2.11"))),
                   "must be an SSH address with a user"));

  // The rules say what exactly is wrong, at the host's address.
  LoadResult port =
      LoadYaml(TartFleet(Replace(kTartPool, "tart@10.0.2.12", "ssh://tart@10.0.2.12:70000")));
  EXPECT_TRUE(Says(port,
                   "test.yaml:19:16: error: address ssh://10.0.2.12:70000 must be "
                   "ssh://USER@HOST[:PORT] or USER@HOST for provider tart: the port is not a "
                   "number from 1 to 65535 (/spec/hosts/1/address)"))
      << AllText(port);
  EXPECT_TRUE(Says(
      LoadYaml(TartFleet(Replace(kTartPool, "ssh://tart@10.0.2.11", "ssh://tart@10.0.2.11;id"))),
      "the host is not a DNS name, an IPv4 address or an IPv6 address in brackets"));
  EXPECT_TRUE(Says(LoadYaml(TartFleet(Replace(kTartPool, "tart@10.0.2.12", "tart@fe80::1"))),
                   "an IPv6 address goes in brackets"));
  EXPECT_TRUE(
      LoadYaml(TartFleet(Replace(kTartPool, "tart@10.0.2.12", "ssh://tart@[fe80::1]:22"))).ok());
}

TEST(TartRulesTest, AddressMessagesNeverShowTheUserPart) {
  // Without a scheme no inline-secret rule applies; the rules still refuse it, quietly.
  LoadResult r =
      LoadYaml(TartFleet(Replace(kTartPool, "tart@10.0.2.12", "tart:hunter2@10.0.2.12")));
  EXPECT_TRUE(Says(r,
                   "address 10.0.2.12 must be ssh://USER@HOST[:PORT] or USER@HOST for provider "
                   "tart: the user is not a POSIX portable user name"))
      << AllText(r);
  EXPECT_EQ(AllText(r).find("hunter2"), std::string::npos) << AllText(r);
}

TEST(TartRulesTest, SettingsAreCheckedLikeEveryOtherKey) {
  EXPECT_TRUE(
      Says(LoadYaml(TartFleet(Replace(kTartPool, "pullPolicy: IfNotPresent", "pullPolicy: Never"))),
           "test.yaml:9:17: error: pullPolicy \"Never\" is not one of IfNotPresent, "
           "Always (/spec/tart/pullPolicy)"));
  EXPECT_TRUE(Says(LoadYaml(TartFleet(Replace(kTartPool, "pullPolicy: IfNotPresent",
                                              "pullPolicy: IfNotPresent\n    pth: /tart"))),
                   "unknown field \"pth\"; did you mean \"path\"?"));
  EXPECT_TRUE(
      Says(LoadYaml(TartFleet(Replace(kTartPool, "pullPolicy: IfNotPresent", "path: tart"))),
           "path \"tart\" must be an absolute path"));
  EXPECT_TRUE(
      Says(LoadYaml(TartFleet(Replace(kTartPool, "pullPolicy: IfNotPresent", "home: \"~/$(id)\""))),
           "must be an absolute path or one starting with ~/"));
  EXPECT_TRUE(Says(LoadYaml(TartFleet(Replace(
                       kTartPool, "knownHostsFile: /etc/flotilla/known_hosts", "maxSessions: 11"))),
                   "maxSessions 11 is above the maximum 10"));
  EXPECT_TRUE(
      Says(LoadYaml(TartFleet(Replace(kTartPool, "knownHostsFile: /etc/flotilla/known_hosts",
                                      "connectTimeout: 10"))),
           "connectTimeout must be a string, not the number 10"));
  // A duration of nothing passes the pattern; the rules refuse it where it is written.
  LoadResult zero = LoadYaml(TartFleet(
      Replace(kTartPool, "knownHostsFile: /etc/flotilla/known_hosts", "connectTimeout: 0s")));
  EXPECT_TRUE(Says(zero,
                   "test.yaml:11:21: error: ssh.connectTimeout must be a duration of more than 0, "
                   "such as 10s or 1m30s (/spec/ssh/connectTimeout)"))
      << AllText(zero);
  // Another provider's settings are unknown here, and tart's are unknown to it.
  EXPECT_TRUE(Says(LoadYaml(TartFleet(Replace(kTartPool, "  tart:\n", "  tls:\n"))),
                   "unknown field \"tls\""));
  EXPECT_TRUE(Says(LoadYaml(Fleet(Replace(testing::kPool, "  credentialsRef",
                                          "  ssh: {maxSessions: 2}\n  credentialsRef"),
                                  testing::kSet)),
                   "unknown field \"ssh\""));
}

TEST(TartRulesTest, IgnoringHostKeysIsALoudWarning) {
  LoadResult r = LoadYaml(TartFleet(Replace(kTartPool, "knownHostsFile: /etc/flotilla/known_hosts",
                                            "insecureIgnoreHostKey: true")));
  EXPECT_TRUE(r.ok()) << AllText(r);
  EXPECT_EQ(r.diagnostics.warning_count(), 1u) << AllText(r);
  EXPECT_TRUE(Says(r,
                   "test.yaml:11:28: warning: pool \"minis\" sets ssh.insecureIgnoreHostKey: host "
                   "keys are NOT checked, so whoever can intercept the connection to a host can "
                   "pose as it"))
      << AllText(r);
  LoadResult off = LoadYaml(TartFleet(Replace(
      kTartPool, "knownHostsFile: /etc/flotilla/known_hosts", "insecureIgnoreHostKey: false")));
  EXPECT_TRUE(off.diagnostics.empty()) << AllText(off);
}

TEST(TartRulesTest, ImagesAreOciReferencesOrLocalVms) {
  LoadResult catalog = LoadYaml(TartFleet(
      kTartPool,
      Replace(kTartSet, "oci://ghcr.io/cirruslabs/macos-sequoia-xcode:16", "catalog://macos/15")));
  EXPECT_TRUE(Says(catalog,
                   "test.yaml:29:12: error: image \"catalog://macos/15\" must be "
                   "oci://REGISTRY/REPO[:TAG|@sha256:DIGEST] (an image in an OCI registry) or "
                   "vm://NAME (a Tart VM on the host, cloned) for provider tart: it starts with "
                   "neither oci:// nor vm:// (pool \"minis\") (/spec/template/image)"))
      << AllText(catalog);
  EXPECT_TRUE(Says(LoadYaml(TartFleet(kTartPool, Replace(kTartSet, "oci://ghcr.io/cirruslabs/",
                                                         "oci://ghcr.io/$(id)/"))),
                   "for provider tart: the repository is lowercase"));
  EXPECT_TRUE(Says(LoadYaml(TartFleet(kTartPool, Replace(kTartSet, "oci://ghcr.io/", "oci://"))),
                   "for provider tart: the reference must start with a registry"));
  // A parallels pool takes no oci:// image.
  EXPECT_TRUE(Says(
      LoadYaml(Fleet(testing::kPool, Replace(testing::kSet, "catalog://macos/15",
                                             "oci://ghcr.io/cirruslabs/macos-sequoia-xcode:16"))),
      "for provider parallels"));
}

TEST(TartRulesTest, TheRulesObjectAnswersDirectly) {
  const providers::tart::TartRules rules;
  EXPECT_EQ(rules.name(), "tart");
  EXPECT_NE(rules.settings_schema().find("\"pullPolicy\""), std::string_view::npos);
  EXPECT_EQ(rules.CheckImage("oci://ghcr.io/cirruslabs/macos-sequoia-base:latest"), "");
  EXPECT_EQ(rules.CheckImage("vm://golden"), "");
  EXPECT_NE(rules.CheckImage("oci://x/$(id)"), "");
  EXPECT_EQ(rules.ImageCacheKey("oci://ghcr.io/cirruslabs/macos-sequoia-base"),
            "ghcr.io/cirruslabs/macos-sequoia-base:latest");
  EXPECT_EQ(rules.ImageCacheKey("vm://golden"), "");

  HostPool pool;
  pool.meta.name = "code";
  pool.provider = "tart";
  pool.credentials_ref = "tart";
  pool.hosts = {HostSpec{.name = "a", .address = "ssh://tart@10.0.2.11"},
                HostSpec{.name = "b", .address = "ssh://a@b;rm -rf /"}};
  std::vector<PoolProblem> problems;
  rules.CheckPool(pool, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].host, "b");
  EXPECT_EQ(problems[0].pointer, "/address");
  EXPECT_EQ(problems[0].severity, PoolProblem::Severity::kError);

  // Settings a pool built in code got wrong are reported too, at the setting.
  pool.hosts.pop_back();
  pool.settings = {{"ssh", {{"maxSessions", 0}}}};
  problems.clear();
  rules.CheckPool(pool, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].pointer, "/spec/ssh/maxSessions");
}

// The built-in tart factory carries the rules, and builds a provider only for a pool whose
// configuration is complete (the pool's secret and its hosts' keys), naming what is missing.
TEST(TartRulesTest, TheBuiltInFactoryHasTheRulesAndChecksThePool) {
  Result<providers::ProviderRegistry> registry = providers::BuiltinProviders();
  ASSERT_TRUE(registry.ok()) << registry.status().ToString();
  EXPECT_EQ(registry->Names(), (std::vector<std::string>{"parallels", "tart"}));
  Result<const providers::ProviderFactory*> tart = registry->Find("tart");
  ASSERT_TRUE(tart.ok());
  EXPECT_EQ((*tart)->rules()->name(), "tart");
  EXPECT_EQ((*tart)->rules(), (*tart)->rules());  // one rules object

  HostPool pool;
  pool.meta.name = "minis";
  pool.provider = "tart";
  pool.credentials_ref = "minis";
  providers::MapSecretSource secrets;
  const SystemClock clock;
  auto build = [&] {
    return registry->Build(
        {.pool = pool, .secrets = secrets, .logger = spdlog::default_logger(), .clock = clock});
  };
  Result<std::unique_ptr<providers::Provider>> built = build();
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(built.status().message().find("has no sshKey"), std::string::npos)
      << built.status().ToString();
  secrets.Set("minis", "sshKey", "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n");
  built = build();
  ASSERT_FALSE(built.ok());
  EXPECT_NE(built.status().message().find("knownHosts"), std::string::npos)
      << built.status().ToString();
  EXPECT_EQ(built.status().message().find("secret"), std::string::npos);
  secrets.Set("minis", "knownHosts", "[10.0.2.11]:22 ssh-ed25519 AAAA");
  built = build();
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  EXPECT_EQ((*built)->name(), "tart");
}

}  // namespace
}  // namespace flotilla::manifest
