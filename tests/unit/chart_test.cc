// Static checks of the Helm chart in charts/flotilla/, without rendering it: its YAML files
// parse, values.yaml validates against values.schema.json (and its `config` against flotilla's
// own config schema), every template parses as YAML once its template actions are replaced,
// every value a template names exists, and the resources are the kinds and shapes flotilla needs.
// The real Helm renders the chart in e2e/chart_helm_test.cc, built into the same test binary.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "providers/builtin.h"
#include "reconciler/manifest/diagnostics.h"
#include "reconciler/manifest/schema_validator.h"
#include "reconciler/manifest/yaml_reader.h"
#include "tests/support/cli_runner.h"

namespace flotilla {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Slurp;

const fs::path kChart = fs::path(FLOTILLA_SOURCE_DIR) / "charts" / "flotilla";

// Every document of `text`, parsed as flotilla parses manifests (duplicate keys refused).
// Problems go to `errors`.
std::vector<json> ParseYaml(const std::string& text, const std::string& name, std::string& errors) {
  manifest::DocumentBudget budget;
  manifest::Diagnostics diagnostics;
  std::vector<manifest::YamlDocument> docs =
      manifest::ReadYamlDocuments(text, name, budget, diagnostics);
  for (const manifest::Diagnostic& d : diagnostics.Sorted()) {
    errors += d.ToString() + "\n";
  }
  std::vector<json> values;
  values.reserve(docs.size());
  for (manifest::YamlDocument& doc : docs) {
    values.push_back(std::move(doc.value));
  }
  return values;
}

json ParseOne(const fs::path& path) {
  std::string errors;
  std::vector<json> docs = ParseYaml(Slurp(path), path.filename().string(), errors);
  EXPECT_EQ(errors, "");
  EXPECT_EQ(docs.size(), 1U) << path;
  return docs.empty() ? json() : docs.front();
}

// The violations of `value` against the draft-07 schema `schema`, one per line.
std::string SchemaErrors(const json& schema, const json& value) {
  valijson::Schema compiled;
  valijson::SchemaParser parser;
  valijson::adapters::NlohmannJsonAdapter schema_adapter(schema);
  parser.populateSchema(schema_adapter, compiled);
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(value);
  if (validator.validate(compiled, target, &results)) {
    return "";
  }
  std::string out;
  valijson::ValidationResults::Error error;
  while (results.popError(error)) {
    std::string where;
    for (const std::string& part : error.context) {
      where += part;
    }
    out += where + ": " + error.description + "\n";
  }
  return out;
}

// A template with every action replaced, so that YAML can read it: a line holding only
// actions ({{- if }}, {{- end }}, {{- include ... | nindent 4 }}) is dropped, and an action
// inside a line becomes the scalar PLACEHOLDER. Comments go first, wherever they are.
std::string StubActions(const std::string& text) {
  static const std::regex kComment(R"(\{\{-?\s*/\*[\s\S]*?\*/\s*-?\}\})");
  static const std::regex kAction(R"(\{\{-?[\s\S]*?-?\}\})");
  static const std::regex kOnlyActions(R"(^\s*(\{\{[^\n]*?\}\}\s*)+$)");
  const std::string uncommented = std::regex_replace(text, kComment, "");
  std::istringstream lines(uncommented);
  std::string out;
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_match(line, kOnlyActions)) {
      continue;
    }
    out += std::regex_replace(line, kAction, "PLACEHOLDER") + "\n";
  }
  return out;
}

// The dotted paths a template names under .Values (".Values.api.token.key" -> "api.token.key").
std::set<std::string> ValueReferences(const std::string& text) {
  static const std::regex kRef(R"(\.Values((\.[A-Za-z_][A-Za-z0-9_]*)+))");
  std::set<std::string> refs;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kRef); it != std::sregex_iterator();
       ++it) {
    refs.insert((*it)[1].str().substr(1));
  }
  return refs;
}

// The references of `refs` that `values` lacks.
std::vector<std::string> MissingValues(const std::set<std::string>& refs, const json& values) {
  std::vector<std::string> missing;
  for (const std::string& ref : refs) {
    const json* node = &values;
    std::istringstream parts(ref);
    for (std::string part; std::getline(parts, part, '.');) {
      if (!node->is_object() || !node->contains(part)) {
        missing.push_back(ref);
        break;
      }
      node = &(*node)[part];
    }
  }
  return missing;
}

std::vector<fs::path> Templates() {
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(kChart / "templates")) {
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Each manifest template's documents, stubbed and parsed, by file name.
std::map<std::string, std::vector<json>> StubbedManifests() {
  std::map<std::string, std::vector<json>> out;
  for (const fs::path& file : Templates()) {
    if (file.extension() != ".yaml") {
      continue;
    }
    std::string errors;
    out[file.filename().string()] =
        ParseYaml(StubActions(Slurp(file)), file.filename().string(), errors);
    EXPECT_EQ(errors, "") << file << " does not parse once its actions are replaced:\n"
                          << StubActions(Slurp(file));
  }
  return out;
}

json Values() { return ParseOne(kChart / "values.yaml"); }
json ValuesSchema() { return json::parse(Slurp(kChart / "values.schema.json")); }

TEST(ChartTest, ChartYamlDescribesTheChart) {
  const json chart = ParseOne(kChart / "Chart.yaml");
  EXPECT_EQ(chart.value("apiVersion", ""), "v2");  // Helm 3
  EXPECT_EQ(chart.value("name", ""), "flotilla");
  EXPECT_EQ(chart.value("type", ""), "application");
  EXPECT_TRUE(std::regex_match(chart.value("version", ""), std::regex(R"(\d+\.\d+\.\d+)")));
  // The image the chart runs by default is the release this tree builds.
  EXPECT_EQ(chart.value("appVersion", ""), FLOTILLA_VERSION);
}

TEST(ChartTest, ValuesValidateAgainstTheirSchema) {
  EXPECT_EQ(SchemaErrors(ValuesSchema(), Values()), "");
}

TEST(ChartTest, SchemaRejectsBadValues) {
  const json schema = ValuesSchema();
  struct Case {
    const char* what;
    json::json_pointer pointer;
    json value;
  };
  const std::vector<Case> cases = {
      {"a token written inline", json::json_pointer("/api/token"), "s3cret-token"},
      {"a chart-managed path in config", json::json_pointer("/config/stateDir"), "/data"},
      {"Git credentials in config",
       json::json_pointer("/config/source/auth"),
       {{"tokenFile", "/x"}}},
      {"an unknown config key", json::json_pointer("/config/reconcile/maxDeletions"), 3},
      {"a bad duration", json::json_pointer("/config/reconcile/resyncInterval"), "30 seconds"},
      {"root", json::json_pointer("/podSecurityContext/runAsUser"), 0},
      {"a shard that is not a DNS label", json::json_pointer("/shards"),
       json::array({{{"name", "Macs"}, {"pools", {"mac-builders"}}}})},
      {"a shard without pools", json::json_pointer("/shards"),
       json::array({{{"name", "macs"}, {"pools", json::array()}}})},
      {"a literal FLOTILLA_SECRET_ variable", json::json_pointer("/extraEnv"),
       json::array({{{"name", "FLOTILLA_SECRET_MACS_APIKEY"}, {"value", "abc"}}})},
      {"a misspelt top-level key", json::json_pointer("/shard"), json::array()},
      {"a credentials ref with ..", json::json_pointer("/credentials"),
       json::array({{{"ref", "a..b"}, {"secretName", "x"}}})},
      {"a full name Services refuse", json::json_pointer("/fullnameOverride"), "1flotilla.x"},
      {"an API token written inline", json::json_pointer("/api/tokens"),
       json::array({{{"name", "ci"}, {"roles", {"read"}}, {"token", "s3cret"}}})},
      {"an API token without roles", json::json_pointer("/api/tokens"),
       json::array({{{"name", "ci"},
                     {"roles", json::array()},
                     {"secretName", "ci-token"},
                     {"key", "token"}}})},
      {"an API token with an unknown role", json::json_pointer("/api/tokens"),
       json::array(
           {{{"name", "ci"}, {"roles", {"write"}}, {"secretName", "ci-token"}, {"key", "token"}}})},
      {"an API token named default", json::json_pointer("/api/tokens"),
       json::array({{{"name", "default"},
                     {"roles", {"read"}},
                     {"secretName", "ci-token"},
                     {"key", "token"}}})},
  };
  for (const Case& c : cases) {
    json values = Values();
    values[c.pointer] = c.value;
    EXPECT_NE(SchemaErrors(schema, values), "") << c.what << " was accepted";
  }
  json valid = Values();
  // Any secret name flotilla accepts in a HostPool.
  valid["credentials"] = json::array({{{"ref", "Mac_Builders.v2"}, {"secretName", "macs"}}});
  valid["shards"] = json::array({{{"name", "macs"}, {"pools", {"mac-builders"}}}});
  valid["api"]["tokens"] = json::array({{{"name", "ci"},
                                         {"roles", {"reconcile", "approve"}},
                                         {"secretName", "flotilla-ci-token"},
                                         {"key", "token"}}});
  valid["extraEnv"] =
      json::array({{{"name", "FLOTILLA_SECRET_MACS_APIKEY"},
                    {"valueFrom", {{"secretKeyRef", {{"name", "macs"}, {"key", "apiKey"}}}}}}});
  EXPECT_EQ(SchemaErrors(schema, valid), "");
}

// The chart's `config` is flotilla.yaml minus what the chart sets itself, so the defaults must
// be a valid flotilla configuration, and the chart's schema may accept only keys flotilla knows.
TEST(ChartTest, ConfigValuesAreFlotillaConfiguration) {
  const json values = Values();
  Result<std::shared_ptr<const manifest::SchemaValidator>> validator =
      manifest::SchemaValidator::Create(flotilla::providers::BuiltinRules());
  ASSERT_TRUE(validator.ok());
  json config = values["config"];
  config["source"]["url"] = "https://git.example.com/fleet.git";  // required at install
  manifest::Diagnostics diagnostics;
  EXPECT_TRUE((*validator)->Validate("config.v1.json", config, "values.yaml", diagnostics));
  for (const manifest::Diagnostic& d : diagnostics.Sorted()) {
    ADD_FAILURE() << d.ToString();
  }

  const json flotilla_schema =
      json::parse(Slurp(fs::path(FLOTILLA_SOURCE_DIR) / "schemas" / "config.v1.json"));
  // Walks the chart's schema for config beside flotilla's and reports keys flotilla lacks.
  std::vector<std::string> unknown;
  auto walk = [&](auto& self, const json& chart, const json& ours, const std::string& at) -> void {
    if (!chart.contains("properties")) {
      return;
    }
    for (const auto& [key, sub] : chart["properties"].items()) {
      if (!ours.contains("properties") || !ours["properties"].contains(key)) {
        unknown.push_back(at + "." + key);
        continue;
      }
      self(self, sub, ours["properties"][key], at + "." + key);
    }
  };
  walk(walk, ValuesSchema()["properties"]["config"], flotilla_schema, "config");
  EXPECT_EQ(unknown, std::vector<std::string>{});
}

TEST(ChartTest, TemplatesParseOnceActionsAreReplaced) {
  const std::map<std::string, std::vector<json>> manifests = StubbedManifests();
  const std::map<std::string, std::pair<std::string, std::string>> expected = {
      {"configmap.yaml", {"v1", "ConfigMap"}},
      {"ingress.yaml", {"networking.k8s.io/v1", "Ingress"}},
      {"service.yaml", {"v1", "Service"}},
      {"serviceaccount.yaml", {"v1", "ServiceAccount"}},
      {"servicemonitor.yaml", {"monitoring.coreos.com/v1", "ServiceMonitor"}},
      {"statefulset.yaml", {"apps/v1", "StatefulSet"}},
  };
  std::set<std::string> files;
  for (const auto& [file, docs] : manifests) {
    files.insert(file);
    ASSERT_TRUE(expected.contains(file)) << "unexpected template " << file;
    ASSERT_EQ(docs.size(), 1U) << file;
    EXPECT_EQ(docs[0].value("apiVersion", ""), expected.at(file).first) << file;
    EXPECT_EQ(docs[0].value("kind", ""), expected.at(file).second) << file;
    EXPECT_TRUE(docs[0]["metadata"].contains("name")) << file;
    EXPECT_TRUE(docs[0]["metadata"].contains("labels")) << file;
  }
  EXPECT_EQ(files.size(), expected.size());
  EXPECT_TRUE(fs::exists(kChart / "templates" / "NOTES.txt"));
}

TEST(ChartTest, EveryValueATemplateNamesExists) {
  const json values = Values();
  for (const fs::path& file : Templates()) {
    const std::set<std::string> refs = ValueReferences(Slurp(file));
    EXPECT_EQ(MissingValues(refs, values), std::vector<std::string>{})
        << file.filename() << " names values that values.yaml lacks";
  }
}

TEST(ChartTest, ChecksCatchBrokenTemplates) {
  // An indentation mistake no longer parses.
  std::string errors;
  ParseYaml(StubActions("spec:\n  replicas: 1\n {{- if .Values.x }}\n   bad: [\n{{- end }}\n"),
            "broken.yaml", errors);
  EXPECT_NE(errors, "");
  // A misspelt value is reported.
  const std::set<std::string> refs = ValueReferences("x: {{ .Values.api.tokn.key }}");
  EXPECT_EQ(MissingValues(refs, Values()), std::vector<std::string>{"api.tokn.key"});
  // Block actions disappear, inline ones become scalars, comments leave a blank line.
  EXPECT_EQ(StubActions("a: {{ .Values.x | quote }}-{{ .y }}\n  {{- toYaml . | nindent 2 }}\n"
                        "{{- /* a\ncomment */}}\nb: 1\n"),
            "a: PLACEHOLDER-PLACEHOLDER\n\nb: 1\n");
}

TEST(ChartTest, StatefulSetRunsOneHardenedLoop) {
  const json sts = StubbedManifests().at("statefulset.yaml").at(0);
  const json& spec = sts["spec"];
  EXPECT_EQ(spec["replicas"], 1);                      // the store has one owner
  EXPECT_EQ(spec["podManagementPolicy"], "Parallel");  // a pod never ready blocks no update
  const json& pod = spec["template"]["spec"];
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["automountServiceAccountToken"], false);
  ASSERT_EQ(pod["containers"].size(), 1U);
  const json& c = pod["containers"][0];
  EXPECT_EQ(c["args"][0], "run");
  EXPECT_EQ(c["args"][1], "--config");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"], "/healthz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"], json::array({"ALL"}));
  ASSERT_EQ(spec["volumeClaimTemplates"].size(), 1U);
  EXPECT_EQ(spec["volumeClaimTemplates"][0]["metadata"]["name"], "state");

  // The store lives on the claim, where flotilla.yaml's stateDir points.
  std::set<std::string> mounts;
  for (const json& m : c["volumeMounts"]) {
    mounts.insert(m["mountPath"].get<std::string>());
    if (m["name"] == "state") {
      EXPECT_EQ(m["mountPath"], "/var/lib/flotilla");
    }
  }
  // Every mount has its volume (all conditional blocks are present once actions are stubbed).
  std::set<std::string> volumes = {"state"};
  for (const json& v : pod["volumes"]) {
    volumes.insert(v["name"].get<std::string>());
  }
  for (const json& m : c["volumeMounts"]) {
    EXPECT_TRUE(volumes.contains(m["name"].get<std::string>())) << m["name"] << " has no volume";
  }
  // Every file path the rendered flotilla.yaml names is mounted (or lies in a mounted folder).
  const std::string helpers = Slurp(kChart / "templates" / "_helpers.tpl");
  static const std::regex kPath(R"re("(/(etc|var)/[^"]+)")re");
  int paths = 0;
  for (auto it = std::sregex_iterator(helpers.begin(), helpers.end(), kPath);
       it != std::sregex_iterator(); ++it, ++paths) {
    // A path made with printf ("/etc/flotilla/api/tokens/%s/value") is mounted per entry, as
    // the stubbed template names it.
    const fs::path path = std::regex_replace((*it)[1].str(), std::regex("%s"), "PLACEHOLDER");
    const bool mounted = mounts.contains(path.string()) ||
                         mounts.contains(path.parent_path().string()) ||
                         path == "/etc/flotilla/secrets";  // one mount per credentials entry
    EXPECT_TRUE(mounted) << path << " is named in flotilla.yaml but not mounted";
  }
  EXPECT_GE(paths, 9);
  EXPECT_TRUE(mounts.contains("/etc/flotilla/api/tokens/PLACEHOLDER")) << "api.tokens";
  // Secrets are mounted as folders: a subPath mount never sees a rotated Secret.
  std::set<std::string> secret_volumes;
  for (const json& v : pod["volumes"]) {
    if (v.contains("secret")) {
      secret_volumes.insert(v["name"].get<std::string>());
    }
  }
  EXPECT_GE(secret_volumes.size(), 6U);
  for (const json& m : c["volumeMounts"]) {
    if (secret_volumes.contains(m["name"].get<std::string>())) {
      EXPECT_FALSE(m.contains("subPath")) << m["name"] << " is mounted with subPath";
    }
  }
}

// No secret value is ever in values.yaml or the ConfigMap: every credential in values is a
// reference (secretName + key), and the rendered config sets only paths and plain settings.
TEST(ChartTest, NoSecretValueInValuesOrConfigMap) {
  static const std::regex kSecretish("(token|secret|password|passphrase|apikey|sshkey)",
                                     std::regex::icase);
  std::vector<std::string> inline_secrets;
  auto walk = [&](auto& self, const json& node, const std::string& at) -> void {
    if (!node.is_object()) {
      return;
    }
    for (const auto& [key, value] : node.items()) {
      // Allowed: the name of an object (secretName, tlsSecretName), a reference to a key of a
      // Secret ({secretName, key}), and imagePullSecrets (a list of names).
      const bool names_an_object = key.ends_with("Name") && value.is_string();
      const bool reference = value.is_object() && value.contains("secretName") &&
                             value.size() <= 2 && (value.size() == 1 || value.contains("key"));
      bool pull_secrets = key == "imagePullSecrets" && value.is_array();
      for (const json& item : value.is_array() ? value : json::array()) {
        pull_secrets =
            pull_secrets && item.is_object() && item.size() == 1 && item.contains("name");
      }
      // A list of named references (api.tokens): {name, roles, secretName, key} each.
      bool references = value.is_array();
      for (const json& item : value.is_array() ? value : json::array()) {
        references =
            references && item.is_object() && item.contains("secretName") && item.contains("key");
        for (const auto& [field, unused] : item.items()) {
          references = references && (field == "name" || field == "roles" ||
                                      field == "secretName" || field == "key");
        }
      }
      if (std::regex_search(key, kSecretish) && !names_an_object && !reference && !pull_secrets &&
          !references) {
        inline_secrets.push_back(at + "." + key);
      }
      self(self, value, at + "." + key);
    }
  };
  walk(walk, Values(), "");
  EXPECT_EQ(inline_secrets, std::vector<std::string>{});
  json bad = Values();
  bad["git"]["token"] = "ghp_literal";
  bad["extra"] = {{"password", "hunter22"}};
  bad["api"]["tokens"] = json::array({{{"name", "ci"}, {"roles", {"read"}}, {"token", "t0ken"}}});
  walk(walk, bad, "");
  EXPECT_EQ(inline_secrets,
            (std::vector<std::string>{".api.tokens", ".extra.password", ".git.token"}));

  // In the helper that renders flotilla.yaml, values are copied only from `config` and from
  // the two plain settings below; secret references are only ever tested, never copied.
  const std::string helpers = Slurp(kChart / "templates" / "_helpers.tpl");
  const size_t begin = helpers.find(R"(define "flotilla.config")");
  ASSERT_NE(begin, std::string::npos);
  std::istringstream lines(helpers.substr(begin));
  static const std::regex kSet(R"(\bset\s+\$\w+\s+"[^"]+"\s+(.*)\}\})");
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, kSet)) {
      continue;
    }
    const std::string value = m[1].str();
    for (const std::string& ref : ValueReferences(value)) {
      EXPECT_TRUE(ref == "git.username" || ref == "api.port") << "flotilla.yaml copies " << ref;
    }
  }
  const std::string configmap = Slurp(kChart / "templates" / "configmap.yaml");
  EXPECT_EQ(ValueReferences(configmap), std::set<std::string>{});
}

TEST(ChartTest, ShardsRenderOneLoopPerShardWithItsPools) {
  const std::string sts = Slurp(kChart / "templates" / "statefulset.yaml");
  EXPECT_NE(sts.find(R"(range $shard := include "flotilla.instances" . | fromYamlArray)"),
            std::string::npos);
  EXPECT_NE(sts.find(R"(- --pools)"), std::string::npos);
  EXPECT_NE(sts.find(R"({{ join "," $shard.pools | quote }})"), std::string::npos);
  // Services too: a webhook must reach every shard's loop.
  const std::string svc = Slurp(kChart / "templates" / "service.yaml");
  EXPECT_NE(svc.find(R"(range $shard := include "flotilla.instances" . | fromYamlArray)"),
            std::string::npos);
  const std::string helpers = Slurp(kChart / "templates" / "_helpers.tpl");
  EXPECT_NE(helpers.find("toYaml .Values.shards"), std::string::npos);
}

}  // namespace
}  // namespace flotilla
