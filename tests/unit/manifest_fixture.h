#pragma once

// Helpers for manifest tests: load YAML text through the real loader and look at what it said.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "providers/builtin.h"
#include "reconciler/manifest/loader.h"

namespace flotilla::manifest::testing {

// A provider as core code must see any provider: no settings, any address and any image (as
// an SSH-driven provider might take). Shows what is core's rule and what is a provider's.
class OpenRules final : public ProviderRules {
 public:
  std::string_view name() const override { return "open"; }
  std::string_view settings_schema() const override { return "{}"; }
  void CheckPool(const HostPool& /*pool*/, std::vector<PoolProblem>& /*problems*/) const override {}
  std::string CheckImage(std::string_view /*image*/) const override { return ""; }
  std::string ImageCacheKey(std::string_view /*image*/) const override { return ""; }
};

// The built-in providers, and "open".
inline std::shared_ptr<const SchemaValidator> Validator() {
  ProviderRulesList rules = flotilla::providers::BuiltinRules();
  rules.push_back(std::make_shared<OpenRules>());
  auto validator = SchemaValidator::Create(std::move(rules));
  EXPECT_TRUE(validator.ok()) << validator.status().ToString();
  return *validator;
}

inline LoadResult LoadYaml(const std::string& yaml, const std::string& name = "test.yaml") {
  ManifestLoader loader(Validator());
  return loader.LoadFiles({{name, yaml}});
}

inline LoadResult LoadYamlFiles(const std::vector<ManifestFile>& files) {
  ManifestLoader loader(Validator());
  return loader.LoadFiles(files);
}

// Every diagnostic as the CLI prints it.
inline std::vector<std::string> Lines(const LoadResult& result) {
  std::vector<std::string> lines;
  for (const Diagnostic& d : result.diagnostics.Sorted()) {
    lines.push_back(d.ToString());
  }
  return lines;
}

inline std::string AllText(const LoadResult& result) {
  std::string text;
  for (const std::string& line : Lines(result)) {
    text += line + "\n";
  }
  return text;
}

// True when some diagnostic line contains `text`.
inline bool Says(const LoadResult& result, std::string_view text) {
  for (const std::string& line : Lines(result)) {
    if (line.find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// A valid pool of two arm64 hosts with declared capacity, and a valid set on it.
inline constexpr std::string_view kPool = R"(apiVersion: flotilla.dev/v1
kind: HostPool
metadata:
  name: mac
spec:
  credentialsRef: mac-creds
  defaults:
    arch: arm64
    capacity: {cpu: 8, memory: 16Gi, disk: 200Gi}
  hosts:
    - name: mini-01
      address: https://10.0.0.1:8080
      tags: [builder, m2]
    - name: mini-02
      address: https://10.0.0.2:8080
      tags: [m2]
)";

inline constexpr std::string_view kSet = R"(apiVersion: flotilla.dev/v1
kind: VMSet
metadata:
  name: ios
spec:
  pool: mac
  replicas: 2
  template:
    image: catalog://macos/15
    os: macos
    arch: arm64
    cpu: 4
    memory: 8Gi
)";

// kPool, "---", kSet with `from` replaced by `to` in the set (or pool) text.
inline std::string Fleet(std::string_view pool, std::string_view set) {
  return std::string(pool) + "---\n" + std::string(set);
}

inline std::string Replace(std::string_view text, std::string_view from, std::string_view to) {
  std::string s(text);
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << "fixture has no \"" << from << "\"";
  if (at != std::string::npos) {
    s.replace(at, from.size(), to);
  }
  return s;
}

}  // namespace flotilla::manifest::testing
