// Cross-document rules (reconciler/manifest/semantic.h) and inline-secret detection.

#include <gtest/gtest.h>

#include "tests/unit/manifest_fixture.h"

namespace flotilla::manifest {
namespace {

using testing::AllText;
using testing::Fleet;
using testing::kPool;
using testing::kSet;
using testing::LoadYaml;
using testing::LoadYamlFiles;
using testing::Replace;
using testing::Says;

TEST(SemanticTest, DuplicateNamesPerKindPointAtTheFirst) {
  LoadResult r = LoadYamlFiles({{"a.yaml", Fleet(kPool, kSet)}, {"b.yaml", std::string(kSet)}});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(Says(r,
                   "b.yaml:4:9: error: duplicate VMSet \"ios\": already defined at a.yaml:21:9 "
                   "(/metadata/name)"))
      << AllText(r);
  EXPECT_EQ(r.desired.sets.size(), 1u);  // the first stays

  LoadResult pools = LoadYamlFiles(
      {{"a.yaml", std::string(kPool)},
       {"b.yaml", Replace(Replace(kPool, "10.0.0.1", "10.0.1.1"), "10.0.0.2", "10.0.1.2")}});
  EXPECT_TRUE(Says(pools, "duplicate HostPool \"mac\""));
}

TEST(SemanticTest, SameNameInDifferentKindsIsFine) {
  EXPECT_TRUE(LoadYaml(Fleet(kPool, Replace(kSet, "name: ios", "name: mac"))).ok());
}

TEST(SemanticTest, HostNamesAndAddressesAreUniqueWithinAndAcrossPools) {
  LoadResult within = LoadYaml(Fleet(Replace(kPool, "name: mini-02", "name: mini-01"), kSet));
  EXPECT_TRUE(Says(within,
                   "test.yaml:14:13: error: host name \"mini-01\" is already used in pool "
                   "\"mac\" at test.yaml:11:13 (/spec/hosts/1/name)"))
      << AllText(within);

  const std::string other = Replace(
      Replace(Replace(kPool, "name: mac", "name: other"), "name: mini-02", "name: other-02"),
      "https://10.0.0.1:8080", "https://10.0.0.9:8080");
  LoadResult across =
      LoadYamlFiles({{"a.yaml", Fleet(kPool, kSet)},
                     {"b.yaml", Replace(other, "10.0.0.9:8080", "10.0.0.2:8080/")}});
  EXPECT_TRUE(Says(across,
                   "b.yaml:11:13: error: host name \"mini-01\" is already used in pool "
                   "\"mac\""))
      << AllText(across);
  EXPECT_TRUE(Says(across, "host address https://10.0.0.2:8080/ is already used in pool \"mac\""))
      << AllText(across);
}

TEST(SemanticTest, VMSetPoolMustExist) {
  LoadResult r = LoadYaml(Fleet(kPool, Replace(kSet, "pool: mac", "pool: mca")));
  EXPECT_TRUE(Says(r,
                   "test.yaml:23:9: error: pool \"mca\" does not exist; did you mean \"mac\"? "
                   "(/spec/pool)"))
      << AllText(r);
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "pool: mac", "pool: linux"))),
                   "pool \"linux\" does not exist (pools: mac)"));
  EXPECT_TRUE(Says(LoadYaml(std::string(kSet)), "(no HostPool is defined)"));
}

TEST(SemanticTest, AnInvalidPoolDoesNotCascadeIntoItsSets) {
  LoadResult r = LoadYaml(Fleet(Replace(kPool, "cpu: 8,", "cpu: eight,"), kSet));
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(Says(r, "does not exist")) << AllText(r);
  EXPECT_EQ(r.diagnostics.error_count(), 1u) << AllText(r);
}

TEST(SemanticTest, SelectorMustMatchSomeHost) {
  LoadResult r = LoadYaml(Fleet(kPool, std::string(kSet) + "  selector: {tags: [gpu, m2]}\n"));
  EXPECT_TRUE(Says(r,
                   "selector tags [gpu, m2] match no host of pool \"mac\" (its hosts carry: "
                   "builder, m2) (/spec/selector/tags)"))
      << AllText(r);
  // One host carrying all tags is enough.
  EXPECT_TRUE(
      LoadYaml(Fleet(kPool, std::string(kSet) + "  selector: {tags: [m2, builder]}\n")).ok());
}

TEST(SemanticTest, TemplateMustFitSomeMatchingHost) {
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "memory: 8Gi", "memory: 32Gi"))),
                   "template (arm64, 4 cpu, 32Gi memory) fits no host of pool \"mac\" that the "
                   "selector matches: mini-01 has 16Gi memory; mini-02 has 16Gi memory"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "cpu: 4", "cpu: 9"))), "mini-01 has 8 cpu"));
  EXPECT_TRUE(
      Says(LoadYaml(Fleet(kPool, Replace(kSet, "memory: 8Gi", "memory: 8Gi\n    disk: 1Ti"))),
           "mini-01 has 200Gi disk"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "arch: arm64", "arch: x86_64"))),
                   "mini-01 is arm64"));
  // Only hosts the selector matches count: mini-01 is the builder, and it is too small.
  const std::string big_second = Replace(kPool, "      tags: [m2]\n",
                                         "      tags: [m2]\n      capacity: {cpu: 64, memory: "
                                         "256Gi, disk: 2Ti}\n");
  EXPECT_TRUE(LoadYaml(Fleet(big_second, Replace(kSet, "cpu: 4", "cpu: 32"))).ok());
  EXPECT_FALSE(LoadYaml(Fleet(big_second, Replace(kSet, "cpu: 4", "cpu: 32") +
                                              "  selector: {tags: [builder]}\n"))
                   .ok());
}

TEST(SemanticTest, HostsWithoutDeclaredFactsMightFit) {
  const std::string undeclared = Replace(kPool,
                                         "  defaults:\n    arch: arm64\n    capacity: {cpu: 8, "
                                         "memory: 16Gi, disk: 200Gi}\n",
                                         "");
  EXPECT_TRUE(LoadYaml(Fleet(undeclared, Replace(kSet, "cpu: 4", "cpu: 200"))).ok());
}

TEST(SemanticTest, VMNamesStayWithin63Characters) {
  const std::string long_set = Replace(kSet, "name: ios", "name: " + std::string(60, 'a'));
  // 60 + "-" + "99" = 63 characters: fine; "-100" would make 64.
  EXPECT_TRUE(LoadYaml(Fleet(kPool, Replace(long_set, "replicas: 2", "replicas: 100"))).ok());
  LoadResult r = LoadYaml(Fleet(kPool, Replace(long_set, "replicas: 2", "replicas: 101")));
  EXPECT_TRUE(Says(r, "VM names would be longer than 63 characters")) << AllText(r);
}

TEST(SemanticTest, ParallelsPoolsNeedCredentialsAndHttpAddresses) {
  EXPECT_TRUE(Says(LoadYaml(Fleet(Replace(kPool, "  credentialsRef: mac-creds\n", ""), kSet)),
                   "uses provider parallels, which needs spec.credentialsRef"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(Replace(kPool, "https://10.0.0.2:8080", "ssh://10.0.0.2"), kSet)),
                   "address ssh://10.0.0.2 must start with https:// or http://"));
  // Those are parallels' rules, not core's: another provider takes other addresses and images.
  LoadResult open = LoadYaml(
      Fleet(Replace(Replace(kPool, "https://10.0.0.2:8080", "ssh://10.0.0.2"), "  credentialsRef",
                    "  provider: open\n  credentialsRef"),
            Replace(kSet, "catalog://macos/15", "ghcr.io/cirruslabs/macos-sequoia-base:latest")));
  EXPECT_TRUE(open.ok()) << AllText(open);
  // A parallels pool refuses such an image where the set names it.
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "catalog://macos/15",
                                                 "ghcr.io/cirruslabs/macos:latest"))),
                   "test.yaml:"));
  EXPECT_TRUE(Says(
      LoadYaml(
          Fleet(kPool, Replace(kSet, "catalog://macos/15", "ghcr.io/cirruslabs/macos:latest"))),
      "must be catalog://ID/VERSION (a catalog image) or vm://NAME (a template VM on the host) for "
      "provider parallels (pool \"mac\") (/spec/template/image)"));
  // Settings of one provider are unknown fields to another.
  EXPECT_TRUE(Says(LoadYaml(Fleet(Replace(kPool, "  credentialsRef",
                                          "  provider: open\n  tls: {caFile: /ca.pem}\n  "
                                          "credentialsRef"),
                                  kSet)),
                   "unknown field \"tls\""));
}

TEST(SemanticTest, PlainHttpWarnsUnlessLoopback) {
  LoadResult r =
      LoadYaml(Fleet(Replace(kPool, "https://10.0.0.2:8080", "http://10.0.0.2:8080"), kSet));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.diagnostics.warning_count(), 1u);
  EXPECT_TRUE(Says(r, "warning: address http://10.0.0.2:8080 uses plain http"));
  for (const char* loopback :
       {"http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"}) {
    LoadResult lo = LoadYaml(Fleet(Replace(kPool, "https://10.0.0.2:8080", loopback), kSet));
    EXPECT_EQ(lo.diagnostics.warning_count(), 0u) << loopback << "\n" << AllText(lo);
  }
}

TEST(SemanticTest, WarnsWhenEveryFittingHostIsCordoned) {
  const std::string cordoned =
      Replace(Replace(kPool, "tags: [builder, m2]", "tags: [builder, m2]\n      cordoned: true"),
              "tags: [m2]", "tags: [m2]\n      cordoned: true");
  LoadResult r = LoadYaml(Fleet(cordoned, kSet));
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(Says(r, "warning: every host that can run VMSet \"ios\" is cordoned"));
}

TEST(SemanticTest, WarnsWhenSetsWantMoreThanMaxVMsAllow) {
  const std::string capped = Replace(kPool, "    arch: arm64", "    arch: arm64\n    maxVMs: 2");
  LoadResult r = LoadYaml(Fleet(capped, Replace(kSet, "replicas: 2", "replicas: 5")));
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(Says(r,
                   "warning: VM sets want 5 VMs in pool \"mac\", but its 2 schedulable hosts "
                   "allow at most 4 (maxVMs)"))
      << AllText(r);
  // Without maxVMs there is no cap to warn about: resources decide.
  LoadResult uncapped = LoadYaml(Fleet(kPool, Replace(kSet, "replicas: 2", "replicas: 5")));
  EXPECT_FALSE(Says(uncapped, "maxVMs")) << AllText(uncapped);
}

TEST(SemanticTest, InlineSecretsAreErrorsAndNeverEchoed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"  password: pa55-word-value\n", "\"password\""},
      {"  apiKey: key-value-123\n", "\"apiKey\""},
      {"  api_key: key-value-123\n", "\"api_key\""},
      {"  githubToken: ghp-value-123\n", "\"githubToken\""},
      {"  clientSecret: value-123\n", "\"clientSecret\""},
      {"  sshPassphrase: value-123\n", "\"sshPassphrase\""},
  };
  for (const auto& [line, key] : cases) {
    LoadResult r =
        LoadYaml(Fleet(Replace(kPool, "  credentialsRef", line + "  credentialsRef"), kSet));
    EXPECT_TRUE(Says(r, "inline secret in " + key)) << line << AllText(r);
    const std::string value = line.substr(line.find(": ") + 2, line.size() - line.find(": ") - 3);
    EXPECT_EQ(AllText(r).find(value), std::string::npos) << AllText(r);
  }
  // Secrets hiding in labels count too.
  LoadResult labels =
      LoadYaml(Fleet(kPool, Replace(kSet, "name: ios", "name: ios\n  labels: {token: abc}")));
  EXPECT_TRUE(Says(labels, "inline secret in \"token\""));
}

TEST(SemanticTest, CredentialsInUrlsAreSecrets) {
  for (const char* address :
       {"https://admin:s3cr3t-pw@10.0.0.2:8080", "http://admin:ab/cd+s3cr3t==@10.0.0.2:8080",
        "http://admin:pa#s3cr3t@10.0.0.2:8080", "http://ghp_s3cr3tT0ken@10.0.0.2:8080"}) {
    LoadResult r = LoadYaml(Fleet(Replace(kPool, "https://10.0.0.2:8080", address), kSet));
    EXPECT_FALSE(r.ok()) << address;
    EXPECT_TRUE(Says(r, "URL with credentials in it")) << address << "\n" << AllText(r);
    EXPECT_EQ(AllText(r).find("s3cr3t"), std::string::npos) << AllText(r);
  }
  // A user name alone is no secret.
  EXPECT_TRUE(
      LoadYaml(Fleet(Replace(Replace(kPool, "https://10.0.0.2:8080", "ssh://admin@10.0.0.2"),
                             "  credentialsRef", "  provider: open\n  credentialsRef"),
                     kSet))
          .ok());
}

TEST(SemanticTest, ReferencesToSecretsAreNotSecrets) {
  LoadResult r = LoadYaml(Fleet(kPool, kSet));
  EXPECT_TRUE(r.ok());  // credentialsRef
  EXPECT_TRUE(LoadYaml(Fleet(kPool, Replace(kSet, "name: ios",
                                            "name: ios\n  labels: {tokenFile: x, secretRef: y, "
                                            "password: \"\"}")))
                  .ok());
}

TEST(SemanticTest, DecodedFleetIsNormalised) {
  LoadResult r = LoadYaml(Fleet(kPool, kSet));
  ASSERT_TRUE(r.ok());
  const HostPool& pool = r.desired.pools.at(0);
  EXPECT_EQ(pool.credentials_ref, "mac-creds");
  ASSERT_EQ(pool.hosts.size(), 2u);
  EXPECT_FALSE(pool.hosts[0].max_vms.has_value()) << "no maxVMs: no cap";
  EXPECT_EQ(pool.hosts[0].arch, Arch::kArm64);
  EXPECT_EQ(pool.hosts[0].capacity->memory.ToString(), "16Gi");
  EXPECT_EQ(pool.hosts[0].tags, (std::vector<std::string>{"builder", "m2"}));
  const VMSet& set = r.desired.sets.at(0);
  EXPECT_EQ(set.pool, "mac");
  EXPECT_EQ(set.replicas, 2u);
  EXPECT_EQ(set.templ.image, "catalog://macos/15");
  EXPECT_FALSE(set.templ.disk.has_value());
  EXPECT_EQ(set.meta.origin.ToString(), "test.yaml:18:1");
}

}  // namespace
}  // namespace flotilla::manifest
