// Every rule of schemas/hostpool.v1.json and schemas/vmset.v1.json, as the loader reports it.

#include <gtest/gtest.h>

#include <filesystem>

#include "schemas/embedded.h"
#include "tests/support/text_files.h"
#include "tests/unit/manifest_fixture.h"

namespace flotilla::manifest {
namespace {

using testing::Fleet;
using testing::kPool;
using testing::kSet;
using testing::Lines;
using testing::LoadYaml;
using testing::Replace;
using testing::Says;

// The set document starts after the pool document and its "---" line.
constexpr int kSetLine = 18;

TEST(SchemaTest, ValidFleetHasNoFindings) {
  LoadResult r = LoadYaml(Fleet(kPool, kSet));
  EXPECT_TRUE(r.ok()) << testing::AllText(r);
  EXPECT_TRUE(r.diagnostics.empty());
  ASSERT_EQ(r.desired.sets.size(), 1u);
  EXPECT_EQ(r.desired.sets[0].templ.memory.bytes(), 8ull << 30);
}

TEST(SchemaTest, UnknownFieldSuggestsTheClosestName) {
  LoadResult r =
      LoadYaml(Fleet(kPool, Replace(kSet, "  replicas: 2", "  replicas: 2\n  replica: 3")));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(Lines(r), std::vector<std::string>{
                          "test.yaml:" + std::to_string(kSetLine + 7) +
                          ":3: error: unknown field \"replica\"; did you mean \"replicas\"? "
                          "(/spec/replica)"});
}

TEST(SchemaTest, EveryUnknownFieldIsReported) {
  LoadResult r = LoadYaml(
      Fleet(kPool, Replace(kSet, "  replicas: 2", "  replicas: 2\n  colour: red\n  zzz: 1")));
  EXPECT_TRUE(Says(r, "unknown field \"colour\""));
  EXPECT_TRUE(Says(r, "unknown field \"zzz\""));
  EXPECT_TRUE(Says(r, "spec takes adoptExisting, placement, pool, prune"));
}

TEST(SchemaTest, UnknownTopLevelAndNestedFields) {
  EXPECT_TRUE(
      Says(LoadYaml(Fleet(kPool, std::string(kSet) + "status: {}\n")), "unknown field \"status\""));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "    cpu: 4", "    cpus: 4"))),
                   "unknown field \"cpus\"; did you mean \"cpu\"?"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(Replace(kPool, "      tags: [m2]\n", "      tag: [m2]\n"), kSet)),
                   "unknown field \"tag\"; did you mean \"tags\"?"));
}

TEST(SchemaTest, MissingRequiredFields) {
  LoadResult r = LoadYaml(Fleet(kPool, Replace(kSet, "  pool: mac\n", "")));
  EXPECT_TRUE(Says(r, ":" + std::to_string(kSetLine + 4) +
                          ":1: error: missing required field \"pool\" in spec (/spec)"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "    memory: 8Gi\n", ""))),
                   "missing required field \"memory\" in template"));
  EXPECT_TRUE(Says(LoadYaml("apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: a}\n"),
                   "missing required field \"spec\" in document"));
  EXPECT_TRUE(
      Says(LoadYaml(Fleet(Replace(kPool, "      address: https://10.0.0.2:8080\n", ""), kSet)),
           "missing required field \"address\" in hosts[1]"));
}

TEST(SchemaTest, WrongTypesSayWhatWasExpected) {
  LoadResult r = LoadYaml(Fleet(kPool, Replace(kSet, "replicas: 2", "replicas: \"2\"")));
  EXPECT_TRUE(Says(r, ":" + std::to_string(kSetLine + 6) +
                          ":13: error: replicas must be an integer, not the string \"2\" (write "
                          "the number without quotes) (/spec/replicas)"))
      << testing::AllText(r);
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, std::string(kSet) + "  prune: yes\n")),
                   "prune must be true or false, not the string \"yes\" (YAML 1.2"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "cpu: 4", "cpu: 4.5"))),
                   "cpu must be an integer, not the number 4.5"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "memory: 8Gi", "memory: [8]"))),
                   "memory must be a string or an integer, not a list"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "  replicas: 2\n", "  replicas:\n"))),
                   "replicas must be an integer, not an empty value"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(Replace(kPool, "tags: [m2]", "tags: m2"), kSet)),
                   "tags must be a list, not the string \"m2\""));
}

TEST(SchemaTest, EnumsListTheValidValues) {
  LoadResult r = LoadYaml(Fleet(kPool, Replace(kSet, "arch: arm64", "arch: amd64")));
  EXPECT_TRUE(Says(r, "error: arch \"amd64\" is not one of arm64, x86_64 (/spec/template/arch)"));
  EXPECT_TRUE(
      Says(LoadYaml(Fleet(kPool, std::string(kSet) + "  updateStrategy: {type: rolling}\n")),
           "type \"rolling\" is not one of Rolling, Recreate, OnDelete; did you mean "
           "\"Rolling\"?"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, std::string(kSet) + "  placement: spead\n")),
                   "placement \"spead\" is not one of spread, pack; did you mean \"spread\"?"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "os: macos", "os: windows"))),
                   "os \"windows\" is not one of macos, linux"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "    memory: 8Gi",
                                                 "    memory: 8Gi\n    state: paused"))),
                   "state \"paused\" is not one of running, stopped"));
  EXPECT_TRUE(
      Says(LoadYaml(Fleet(
               Replace(kPool, "  credentialsRef", "  provider: vmware\n  credentialsRef"), kSet)),
           "provider \"vmware\" is not one of parallels, tart, open"));
}

TEST(SchemaTest, PatternsExplainTheRule) {
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "name: ios", "name: iOS_Runners"))),
                   "name \"iOS_Runners\" must be a DNS label"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "catalog://macos/15", "docker://macos"))),
                   "image \"docker://macos\" must be catalog://ID/VERSION"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "memory: 8Gi", "memory: 8GB"))),
                   "memory \"8GB\" must be bytes or a number with a unit"));
  EXPECT_TRUE(Says(
      LoadYaml(Fleet(Replace(kPool, "credentialsRef: mac-creds", "credentialsRef: ../etc"), kSet)),
      "credentialsRef (value redacted) must be a secret name"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(Replace(kPool, "tags: [m2]", "tags: [\"m 2\"]"), kSet)),
                   "tags[0] \"m 2\" must be a tag"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(Replace(kPool, "https://10.0.0.2:8080", "10.0.0.2:8080"), kSet)),
                   "address \"10.0.0.2:8080\" must be a URL"));
}

TEST(SchemaTest, RangesAndLengths) {
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "replicas: 2", "replicas: -1"))),
                   "replicas -1 is below the minimum 0"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "replicas: 2", "replicas: 10001"))),
                   "replicas 10001 is above the maximum 10000"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "cpu: 4", "cpu: 0"))),
                   "cpu 0 is below the minimum 1"));
  EXPECT_TRUE(Says(
      LoadYaml(Fleet(Replace(kPool, "    arch: arm64", "    arch: arm64\n    maxVMs: 0"), kSet)),
      "maxVMs 0 is below the minimum 1"));
  EXPECT_TRUE(Says(
      LoadYaml(Fleet(Replace(kPool, "    arch: arm64", "    arch: arm64\n    maxVMs: 65"), kSet)),
      "maxVMs 65 is above the maximum 64"));
  EXPECT_TRUE(
      Says(LoadYaml(Fleet(kPool, Replace(kSet, "name: ios", "name: " + std::string(64, 'a')))),
           "name is longer than 63 characters"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "    memory: 8Gi",
                                                 "    memory: 8Gi\n    startupScript: " +
                                                     std::string(65537, 'x')))),
                   "startupScript is longer than 65536 characters"));
  EXPECT_TRUE(
      Says(LoadYaml(Fleet(kPool, std::string(kSet) + "  updateStrategy: {maxUnavailable: 0}\n")),
           "maxUnavailable 0 is below the minimum 1"));
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "memory: 8Gi", "memory: -5"))),
                   "memory -5 is below the minimum 0"));
}

TEST(SchemaTest, ListsRejectDuplicates) {
  EXPECT_TRUE(Says(LoadYaml(Fleet(Replace(kPool, "tags: [m2]", "tags: [m2, m2]"), kSet)),
                   "tags lists the same item more than once"));
}

TEST(SchemaTest, LabelsMustBeStrings) {
  EXPECT_TRUE(
      Says(LoadYaml(Fleet(kPool, Replace(kSet, "name: ios", "name: ios\n  labels: {tier: 1}"))),
           "tier must be a string, not the number 1"));
}

TEST(SchemaTest, ApiVersionAndKindAreCheckedFirst) {
  EXPECT_TRUE(Says(LoadYaml(Replace(kSet, "kind: VMSet", "kind: VmSet")),
                   "unknown kind \"VmSet\"; did you mean \"VMSet\"?"));
  EXPECT_TRUE(Says(LoadYaml(Replace(kSet, "kind: VMSet", "kind: Deployment")),
                   "unknown kind \"Deployment\" (kinds: HostPool, VMSet)"));
  EXPECT_TRUE(Says(LoadYaml(Replace(kSet, "flotilla.dev/v1", "flotilla.dev/v2")),
                   "apiVersion \"flotilla.dev/v2\" is not supported by this flotilla"));
  EXPECT_TRUE(
      Says(LoadYaml(Replace(kSet, "flotilla.dev/v1", "apps/v1")), "is not a Flotilla manifest"));
  EXPECT_TRUE(
      Says(LoadYaml(Replace(kSet, "apiVersion: flotilla.dev/v1\n", "")), "missing apiVersion"));
  EXPECT_TRUE(Says(LoadYaml("- a\n- b\n"), "a manifest must be a mapping"));
}

TEST(SchemaTest, SecretValuesAreNeverQuoted) {
  // A secret that also breaks a schema rule goes through the message code that quotes values:
  // labels must be strings, so this is both an inline secret and a type error.
  LoadResult r = LoadYaml(
      Fleet(kPool, Replace(kSet, "name: ios", "name: ios\n  labels: {apiKey: 738261947}")));
  EXPECT_TRUE(Says(r, "inline secret in \"apiKey\""));
  EXPECT_TRUE(Says(r, "apiKey must be a string, not this value")) << testing::AllText(r);
  EXPECT_EQ(testing::AllText(r).find("738261947"), std::string::npos) << testing::AllText(r);
}

TEST(SchemaTest, MalformedSecretNamesAreNotQuoted) {
  // Someone pasting the password itself into credentialsRef must not see it printed.
  LoadResult r = LoadYaml(Fleet(
      Replace(kPool, "credentialsRef: mac-creds", "credentialsRef: \"hunter2:S3cret!\""), kSet));
  EXPECT_TRUE(Says(r, "credentialsRef (value redacted) must be a secret name"))
      << testing::AllText(r);
  EXPECT_EQ(testing::AllText(r).find("S3cret"), std::string::npos);
}

TEST(SchemaTest, EmptyValuesAreLocatedAtTheirKey) {
  LoadResult r = LoadYaml(Fleet(kPool, Replace(kSet, "  replicas: 2\n", "  replicas:\n")));
  EXPECT_TRUE(Says(r, "test.yaml:" + std::to_string(kSetLine + 6) +
                          ":3: error: replicas must be an integer, not an empty value"))
      << testing::AllText(r);
}

TEST(SchemaTest, IntegersBeyondSixtyFourBitsAreErrors) {
  LoadResult r =
      LoadYaml(Fleet(kPool, Replace(kSet, "replicas: 2", "replicas: 99999999999999999999999")));
  EXPECT_TRUE(Says(r, "test.yaml:" + std::to_string(kSetLine + 6) +
                          ":13: error: integer 99999999999999999999999 does not fit in 64 bits"))
      << testing::AllText(r);
  EXPECT_TRUE(
      Says(LoadYaml(Fleet(kPool, Replace(kSet, "memory: 8Gi", "memory: 99999999999999999999"))),
           "does not fit in 64 bits"));
}

TEST(SchemaTest, SizesMustBeMoreThanZero) {
  EXPECT_TRUE(Says(LoadYaml(Fleet(kPool, Replace(kSet, "memory: 8Gi", "memory: 0"))),
                   "memory must be more than 0 (/spec/template/memory)"));
  EXPECT_TRUE(
      Says(LoadYaml(Fleet(kPool, Replace(kSet, "memory: 8Gi", "memory: 8Gi\n    disk: 0Gi"))),
           "disk must be more than 0"));
}

TEST(SchemaTest, DiagnosticsAreSortedByFileAndLine) {
  LoadResult r = testing::LoadYamlFiles({
      {"b.yaml", Replace(kSet, "cpu: 4", "cpu: 0")},
      {"a.yaml",
       Replace(Replace(kPool, "name: mini-02", "name: Mini-02"), "name: mac", "name: Mac")},
  });
  std::vector<std::string> lines = Lines(r);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0].substr(0, 9), "a.yaml:4:");
  EXPECT_EQ(lines[1].substr(0, 10), "a.yaml:14:");
  EXPECT_EQ(lines[2].substr(0, 10), "b.yaml:12:");
}

TEST(SchemaTest, PatternedStringsJustOverTheirMaxLengthSayOnlyThat) {
  // 64 characters, none allowed by the name's pattern: cut to maxLength + 1 (here the same
  // text) before the pattern runs, so only the length is reported, as for huge strings.
  LoadResult r =
      LoadYaml(Fleet(kPool, Replace(kSet, "name: ios", "name: " + std::string(64, 'A'))));
  EXPECT_TRUE(Says(r, "name is longer than 63 characters")) << testing::AllText(r);
  EXPECT_EQ(r.diagnostics.error_count(), 1u) << testing::AllText(r);
  // Within its maxLength, the same text breaks the pattern and says so.
  LoadResult within =
      LoadYaml(Fleet(kPool, Replace(kSet, "name: ios", "name: " + std::string(63, 'A'))));
  EXPECT_TRUE(Says(within, "must be a DNS label")) << testing::AllText(within);
  EXPECT_EQ(within.diagnostics.error_count(), 1u) << testing::AllText(within);
  // The same under a list's items, through a reference (a host's tags: definitions/tag).
  LoadResult tag =
      LoadYaml(Fleet(Replace(kPool, "tags: [m2]", "tags: [" + std::string(64, '-') + "]"), kSet));
  EXPECT_TRUE(Says(tag, "tags[0] is longer than 63 characters")) << testing::AllText(tag);
  EXPECT_EQ(tag.diagnostics.error_count(), 1u) << testing::AllText(tag);
}

}  // namespace
}  // namespace flotilla::manifest

namespace flotilla::manifest {
namespace {

// Patterns are checked with std::regex, which recurses per character: every patterned string
// must be bounded so that CapPatternedStrings keeps the regex input short.
// Counts the patterns it saw in `patterns`.
void ExpectPatternsBounded(const nlohmann::json& node, const std::string& where, int& patterns) {
  if (node.is_object()) {
    if (node.contains("pattern")) {
      ++patterns;
      ASSERT_TRUE(node.contains("maxLength")) << where << " has a pattern but no maxLength";
      EXPECT_LE(node["maxLength"].get<size_t>(), 4096u) << where;
    }
    for (const auto& [key, child] : node.items()) {
      ExpectPatternsBounded(child, where + "/" + key, patterns);
    }
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) {
      ExpectPatternsBounded(node[i], where + "/" + std::to_string(i), patterns);
    }
  }
}

TEST(SchemaTest, EveryPatternHasAMaxLength) {
  int schemas_seen = 0;
  int patterns = 0;
  for (std::string_view name : schemas::Names()) {
    ++schemas_seen;
    ExpectPatternsBounded(nlohmann::json::parse(schemas::Find(name)), std::string(name), patterns);
  }
  // And each provider's pool schema, with its settings merged in.
  const std::shared_ptr<const SchemaValidator> validator = testing::Validator();
  for (const auto& rules : validator->rules()) {
    ++schemas_seen;
    ExpectPatternsBounded(*validator->PoolSchemaOf(rules->name()),
                          "pool schema of " + std::string(rules->name()), patterns);
  }
  // Checking nothing must not pass: the embedded schemas are there, and they have patterns.
  EXPECT_GT(schemas_seen, 0);
  EXPECT_GT(patterns, 0);
}

// Editors check a pool file against one schema file: each built-in provider's pool schema, as
// `validate` merges it, is kept in the tree (providers/<name>/hostpool.v1.json, installed with
// the schemas) and must equal what the code merges. FLOTILLA_UPDATE_DOCS=1 rewrites it.
TEST(SchemaTest, EditorSchemaOfEachProviderIsWhatValidateUses) {
  // The built-in providers only, as flotilla has them: not the tests' "open".
  Result<std::shared_ptr<const SchemaValidator>> built_in =
      SchemaValidator::Create(flotilla::providers::BuiltinRules());
  ASSERT_TRUE(built_in.ok()) << built_in.status().ToString();
  const std::shared_ptr<const SchemaValidator> validator = *built_in;
  int providers = 0;
  for (const auto& rules : flotilla::providers::BuiltinRules()) {
    ++providers;
    const nlohmann::json* merged = validator->PoolSchemaOf(rules->name());
    ASSERT_NE(merged, nullptr) << rules->name();
    const std::filesystem::path file = std::filesystem::path(FLOTILLA_SOURCE_DIR) / "providers" /
                                       std::string(rules->name()) / "hostpool.v1.json";
    nlohmann::json editor = *merged;
    editor["title"] = "Flotilla HostPool (flotilla.dev/v1), provider " + std::string(rules->name());
    editor["$comment"] =
        "Generated from schemas/hostpool.v1.json and this provider's pool settings, as flotilla "
        "validate merges them, for editors (yaml-language-server). Do not edit: "
        "FLOTILLA_UPDATE_DOCS=1 build-test/bin/manifest_test rewrites it.";
    const std::string text = editor.dump(2) + "\n";
    if (flotilla::testing::Slurp(file) == text) {
      continue;
    }
    if (flotilla::testing::UpdateRequested("FLOTILLA_UPDATE_DOCS")) {
      flotilla::testing::RewriteAndFail(file, text);
    } else {
      ADD_FAILURE() << file << " is not the pool schema validate uses for provider "
                    << rules->name() << "; rewrite it with FLOTILLA_UPDATE_DOCS=1 "
                    << "build-test/bin/manifest_test";
    }
  }
  EXPECT_GT(providers, 0);
}

TEST(SchemaTest, HugeStringsUnderPatternsAreRejectedWithoutCrashing) {
  const std::string huge(900'000, 'a');
  LoadResult name = LoadYaml(Fleet(kPool, Replace(kSet, "name: ios", "name: " + huge)));
  EXPECT_TRUE(Says(name, "name is longer than 63 characters")) << testing::AllText(name);
  LoadResult image =
      LoadYaml(Fleet(kPool, Replace(kSet, "catalog://macos/15", "catalog://" + huge + "/1")));
  EXPECT_TRUE(Says(image, "image is longer than 512 characters"));
  EXPECT_EQ(image.diagnostics.error_count(), 1u) << testing::AllText(image);  // no pattern noise
  LoadResult address =
      LoadYaml(Fleet(Replace(kPool, "https://10.0.0.2:8080", "https://" + huge), kSet));
  EXPECT_TRUE(Says(address, "address is longer than 2048 characters"));
}

}  // namespace
}  // namespace flotilla::manifest
