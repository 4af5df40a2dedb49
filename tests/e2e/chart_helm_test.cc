// The Helm chart in charts/flotilla/, rendered by the real Helm: `helm lint --strict` and
// `helm template` for the default values and a matrix of value sets, every rendered object checked
// against Kubernetes' OpenAPI schemas (tests/chart/validate.mjs, kubernetes-models) and here for
// what those schemas leave to the API server and to flotilla: names within Kubernetes' limits,
// labels and selectors that match, every Secret key flotilla.yaml names mounted where it says,
// probes on the container's port with the API's scheme, and a flotilla.yaml that flotilla itself
// loads, and NOTES.txt naming every loop. Every combination the templates refuse (`fail`,
// `required`) is rendered and must fail with its message.
//
// Helm (tests/chart/tools/helm), Node.js and tests/chart/node_modules come from
// scripts/install-deps.sh; without them every test here fails and says so.

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/chart_objects.h"
#include "tests/support/cli_runner.h"
#include "tests/support/process.h"

namespace flotilla {
namespace {

namespace fs = std::filesystem;
using chart::CheckIngress;
using chart::CheckMountsAndConfig;
using chart::CheckNamesAndLabels;
using chart::CheckSelectors;
using chart::CheckServiceMonitor;
using chart::FileSource;
using chart::IsDnsLabel;
using chart::IsQualifiedName;
using chart::LabelProblems;
using chart::OfKind;
using chart::ParseObjects;
using chart::Selects;
using chart::SourceOf;
using nlohmann::json;
using testing::Contains;
using testing::Outcome;
using testing::Quote;
using testing::Slurp;

const fs::path kSource = FLOTILLA_SOURCE_DIR;
const fs::path kChartDir = kSource / "charts/flotilla";
const fs::path kChartTools = kSource / "tests/chart";
const fs::path kHelm = kChartTools / "tools/helm";

// What these tests need and scripts/install-deps.sh installs; "" when all is there.
std::string MissingChartTools() {
  std::string missing;
  if (access(kHelm.c_str(), X_OK) != 0) {
    missing += "\n  " + kHelm.string() + " is missing (Helm, unpacked from its npm package)";
  }
  if (testing::RunShell("command -v node >/dev/null 2>&1") != 0) {
    missing += "\n  node (Node.js) is not on PATH";
  }
  for (const char* package :
       {"kubernetes-models", "@kubernetes-models/prometheus-operator", "yaml"}) {
    if (!fs::exists(kChartTools / "node_modules" / package / "package.json")) {
      missing += "\n  " + (kChartTools / "node_modules" / package).string() +
                 " is missing (npm ci in tests/chart)";
    }
  }
  return missing.empty() ? ""
                         : "the chart test cannot run:" + missing + "\nrun scripts/install-deps.sh";
}

json RequiredValues() {
  return {{"config", {{"source", {{"url", "https://git.example.com/fleet.git"}}}}},
          {"api", {{"token", {{"secretName", "flotilla-api-token"}}}}}};
}

// `patch` over RequiredValues() (a JSON merge patch: objects merge, lists are replaced).
json With(const json& patch) {
  json values = RequiredValues();
  values.merge_patch(patch);
  return values;
}

// ---- The value sets the chart is rendered with ----

struct ValueSet {
  std::string name;     // a test name: letters, digits, underscores
  std::string release;  // the release name
  json values;          // -f values.json, over the chart's values.yaml
};

// What a failing test names: the set, not its bytes.
void PrintTo(const ValueSet& set, std::ostream* os) { *os << set.name; }

std::vector<ValueSet> ValueSets() {
  const json two_shards =
      json::array({{{"name", "macs"}, {"pools", {"mac-builders", "tart-minis"}}},
                   {{"name", "linux"}, {"pools", {"linux-builders"}}}});
  return {
      {"Defaults", "flotilla", RequiredValues()},
      {"ReleaseNameWithoutChartName", "fleet", RequiredValues()},
      {"Shards", "fleet", With({{"shards", two_shards}})},
      {"Tls", "fleet", With({{"api", {{"tls", {{"secretName", "flotilla-api-tls"}}}}}})},
      {"ServiceMonitor", "fleet", With({{"serviceMonitor", {{"enabled", true}}}})},
      {"ServiceMonitorTlsAndShards", "fleet",
       With({{"shards", two_shards},
             {"api", {{"tls", {{"secretName", "flotilla-api-tls"}}}}},
             {"serviceMonitor",
              {{"enabled", true},
               {"labels", {{"release", "prometheus"}}},
               {"tlsConfig",
                {{"serverName", "flotilla.example.com"},
                 {"ca", {{"secret", {{"name", "flotilla-ca"}, {"key", "ca.crt"}}}}}}}}}})},
      {"Ingress", "fleet",
       With({{"ingress",
              {{"enabled", true},
               {"className", "nginx"},
               {"annotations", {{"nginx.ingress.kubernetes.io/proxy-body-size", "1m"}}}}}})},
      {"IngressTlsShards", "fleet",
       With({{"shards", two_shards},
             {"ingress",
              {{"enabled", true},
               {"host", "flotilla.example.com"},
               {"tlsSecretName", "flotilla-ingress-tls"}}}})},
      {"ExtraTokensAndWebhook", "fleet",
       With({{"api",
              {{"port", 9443},
               {"token", {{"secretName", "flotilla-api-token"}, {"key", "admin-token"}}},
               {"tokens",
                {{{"name", "dashboard"},
                  {"roles", {"read"}},
                  {"secretName", "flotilla-dashboard-token"},
                  {"key", "token"}},
                 {{"name", "ci"},
                  {"roles", {"reconcile", "approve"}},
                  {"secretName", "flotilla-ci-token"},
                  {"key", "ci"}}}},
               {"webhookSecret", {{"secretName", "flotilla-webhook"}, {"key", "hmac"}}}}}})},
      {"GitHttpsAndCredentials", "fleet",
       With({{"git", {{"token", {{"secretName", "flotilla-git"}, {"key", "pat"}}}}},
             {"credentials",
              {{{"ref", "mac-builders"}, {"secretName", "flotilla-mac-builders"}},
               {{"ref", "Acme_Catalog.v2"}, {"secretName", "flotilla-acme-catalog"}}}}})},
      {"GitSshSigned", "fleet",
       With({{"config", {{"source", {{"url", "git@git.example.com:org/fleet.git"}}}}},
             {"git",
              {{"sshKey", {{"secretName", "flotilla-git-ssh"}}},
               {"sshPassphrase", {{"secretName", "flotilla-git-ssh"}}},
               {"knownHosts", {{"secretName", "flotilla-known-hosts"}}},
               {"allowedSigners", {{"configMapName", "flotilla-signers"}}}}}})},
      {"PersistenceNotRetained", "fleet",
       With({{"persistence",
              {{"retain", false},
               {"size", "5Gi"},
               {"storageClassName", "fast-ssd"},
               {"accessModes", {"ReadWriteOncePod"}}}}})},
      {"PodSettingsAndNoServiceAccount", "fleet",
       With({{"serviceAccount", {{"create", false}, {"name", "fleet-runner"}}},
             {"service",
              {{"type", "LoadBalancer"},
               {"port", 443},
               {"annotations", {{"example.com/lb", "internal"}}}}},
             {"image", {{"repository", "registry.example.com/flotilla"}, {"tag", "0.1.0-rc1"}}},
             {"imagePullSecrets", {{{"name", "registry"}}}},
             {"podLabels", {{"team", "ci"}}},
             {"podAnnotations", {{"example.com/owner", "ci"}}},
             {"nodeSelector", {{"kubernetes.io/os", "linux"}}},
             {"tolerations", {{{"key", "dedicated"}, {"operator", "Exists"}}}},
             {"priorityClassName", "system-cluster-critical"},
             {"extraEnv",
              {{{"name", "FLOTILLA_SECRET_MACS_APIKEY"},
                {"valueFrom", {{"secretKeyRef", {{"name", "macs"}, {"key", "apiKey"}}}}}}}},
             {"extraVolumes", {{{"name", "ca"}, {"configMap", {{"name", "fleet-ca"}}}}}},
             {"extraVolumeMounts", {{{"name", "ca"}, {"mountPath", "/etc/flotilla/ca"}}}}})},
      // Helm's longest release name (53) and the longest shard names: every name is cut to fit.
      {"LongestNames", std::string(53, 'r'),
       With({{"nameOverride", "flotilla-controller"},
             {"shards",
              {{{"name", std::string(20, 'a')}, {"pools", {"a"}}},
               {{"name", std::string(20, 'b')}, {"pools", {"b"}}}}},
             {"ingress", {{"enabled", true}}},
             {"serviceMonitor", {{"enabled", true}}}})},
      {"LongestFullnameOverride", "fleet",
       With({{"fullnameOverride", "f" + std::string(51, 'x')}})},
  };
}

// ---- Running helm and the schema validator ----

class ChartHelmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = MissingChartTools();
    ASSERT_TRUE(missing.empty()) << missing;
  }

  // Writes `values` to a file of the scratch folder; its path.
  fs::path WriteValues(const json& values, const std::string& name = "values.json") {
    fs::path path = scratch_.path() / name;
    std::ofstream(path) << values.dump(2);  // JSON is YAML
    return path;
  }

  // `helm <args>` with a Helm home of the scratch folder's own (no user's repositories or
  // plugins); stdout and stderr captured.
  Outcome Helm(const std::string& args) {
    const fs::path home = scratch_.path() / "helm-home";
    const std::string env = "env HELM_CACHE_HOME=" + Quote(home / "cache") +
                            " HELM_CONFIG_HOME=" + Quote(home / "config") +
                            " HELM_DATA_HOME=" + Quote(home / "data") + " ";
    return testing::RunCommand(env + Quote(kHelm) + " " + args, scratch_.path());
  }

  Outcome Template(const std::string& release, const json& values) {
    return Helm("template " + release + " " + Quote(kChartDir) + " --namespace flotilla -f " +
                Quote(WriteValues(values)));
  }

  // NOTES.txt, as `helm install` prints it. `helm template` leaves NOTES.txt out, so a copy of
  // the chart renders it as a string in a YAML document of its own.
  std::string Notes(const std::string& release, const json& values) {
    const fs::path chart = scratch_.path() / "notes-chart";
    fs::remove_all(chart);
    fs::copy(kChartDir, chart, fs::copy_options::recursive);
    std::ofstream(chart / "templates/_notes_under_test.tpl")
        << "{{- define \"notesUnderTest\" -}}\n"
        << Slurp(chart / "templates/NOTES.txt") << "{{- end -}}\n";
    std::ofstream(chart / "templates/notes-under-test.yaml")
        << "notes: {{ include \"notesUnderTest\" . | toJson }}\n";
    const Outcome r = Helm("template " + release + " " + Quote(chart) +
                           " --namespace flotilla --show-only templates/notes-under-test.yaml -f " +
                           Quote(WriteValues(values, "notes.json")));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string errors;
    const std::vector<json> docs = ParseObjects(r.out, errors);
    EXPECT_EQ(errors, "");
    return docs.size() == 1 ? docs[0].value("notes", "") : "";
  }

  // Runs tests/chart/validate.mjs on `rendered`; fails the test unless it accepts every object
  // and names each one of `objects` (so that nothing was skipped).
  void ValidateWithKubernetesSchemas(const std::string& rendered,
                                     const std::vector<json>& objects) {
    const fs::path file = scratch_.path() / "rendered.yaml";
    std::ofstream(file) << rendered;
    const Outcome r = testing::RunCommand(
        "node " + Quote(kChartTools / "validate.mjs") + " " + Quote(file), scratch_.path());
    EXPECT_EQ(r.exit_code, 0) << "Kubernetes' schemas refuse the rendered objects:\n" << r.err;
    std::string expected;
    for (const json& o : objects) {
      expected += o.value("apiVersion", "") + " " + o.value("kind", "") + " " +
                  o["metadata"].value("name", "") + "\n";
    }
    EXPECT_EQ(r.out, expected) << r.err;
  }

  testing::ScratchDir scratch_;
};

// The chart's values.yaml under the set's values, as Helm merges them (maps merge, lists and
// scalars replace).
json Effective(const json& values) {
  std::string errors;
  std::vector<json> defaults = ParseObjects(Slurp(kChartDir / "values.yaml"), errors);
  EXPECT_EQ(errors, "");
  json merged = defaults.empty() ? json::object() : defaults[0];
  merged.merge_patch(values);
  return merged;
}

class ChartValueSetTest : public ChartHelmTest, public ::testing::WithParamInterface<ValueSet> {};

TEST_P(ChartValueSetTest, LintsAndRendersValidObjects) {
  const ValueSet& set = GetParam();
  const Outcome lint = Helm("lint --strict " + Quote(kChartDir) + " -f " +
                            Quote(WriteValues(set.values, "lint.json")));
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;

  const Outcome r = Template(set.release, set.values);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string errors;
  const std::vector<json> objects = ParseObjects(r.out, errors);
  ASSERT_EQ(errors, "") << r.out;
  ASSERT_FALSE(objects.empty());

  const json values = Effective(set.values);
  CheckNamesAndLabels(objects);
  CheckSelectors(objects);
  CheckIngress(objects);
  EXPECT_EQ(OfKind(objects, "Ingress").size(), values["ingress"].value("enabled", false) ? 1U : 0U);
  CheckServiceMonitor(objects, values);
  CheckMountsAndConfig(objects, values, scratch_.path());
  ValidateWithKubernetesSchemas(r.out, objects);

  // NOTES.txt names every loop, the Service to port-forward to and the API's scheme.
  const std::string notes = Notes(set.release, set.values);
  for (const json& sts : OfKind(objects, "StatefulSet")) {
    EXPECT_TRUE(Contains(
        notes, "rollout status statefulset/" + sts["metadata"]["name"].get<std::string>() + "\n"))
        << notes;
  }
  const json service = OfKind(objects, "Service").at(0);
  EXPECT_TRUE(Contains(notes, "--namespace flotilla port-forward service/" +
                                  service["metadata"]["name"].get<std::string>() +
                                  " 8080:" + service["spec"]["ports"][0]["port"].dump() + "\n"))
      << notes;
  const bool tls = !values["api"]["tls"].value("secretName", "").empty();
  EXPECT_TRUE(
      Contains(notes, std::string("--server ") + (tls ? "https" : "http") + "://127.0.0.1:"))
      << notes;
  for (const json& ingress : OfKind(objects, "Ingress")) {
    const std::string scheme = ingress["spec"].contains("tls") ? "https://" : "http://";
    for (const json& rule : ingress["spec"]["rules"]) {
      EXPECT_TRUE(Contains(notes, scheme + rule["host"].get<std::string>() + "/\n")) << notes;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ValueSets, ChartValueSetTest, ::testing::ValuesIn(ValueSets()),
                         [](const ::testing::TestParamInfo<ValueSet>& info) {
                           return info.param.name;
                         });

TEST_F(ChartHelmTest, LintPassesWithTheChartsOwnValues) {
  const Outcome lint = Helm("lint --strict " + Quote(kChartDir));
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
  EXPECT_TRUE(Contains(lint.out, "1 chart(s) linted, 0 chart(s) failed")) << lint.out;
}

// Each combination the templates refuse fails `helm template` with its message; and every
// `fail` and `required` of the templates is one of them.
TEST_F(ChartHelmTest, RefusedCombinationsFailWithTheirMessage) {
  struct Case {
    const char* what;
    std::string release;
    json values;
    std::string message;
  };
  const json ssh_key = {{"secretName", "git-ssh"}};
  const std::vector<Case> cases = {
      {"no repository",
       "fleet",
       {{"api", {{"token", {{"secretName", "t"}}}}}},
       "config.source.url is required"},
      {"no API token",
       "fleet",
       {{"config", {{"source", {{"url", "https://x.example/f.git"}}}}}},
       "api.token.secretName is required"},
      {"an SSH key without known_hosts", "fleet", With({{"git", {{"sshKey", ssh_key}}}}),
       "git.sshKey needs git.knownHosts"},
      {"a passphrase without a key", "fleet", With({{"git", {{"sshPassphrase", ssh_key}}}}),
       "git.sshPassphrase is set without git.sshKey"},
      {"a credentials ref twice", "fleet",
       With({{"credentials",
              {{{"ref", "macs"}, {"secretName", "a"}}, {{"ref", "macs"}, {"secretName", "b"}}}}}),
       R"(credentials: ref "macs" is listed twice)"},
      {"an API token name twice", "fleet",
       With({{"api",
              {{"tokens",
                {{{"name", "ci"}, {"roles", {"read"}}, {"secretName", "a"}, {"key", "t"}},
                 {{"name", "ci"}, {"roles", {"admin"}}, {"secretName", "b"}, {"key", "t"}}}}}}}),
       R"(api.tokens: name "ci" is listed twice)"},
      {"a pool in two shards", "fleet",
       With({{"shards",
              {{{"name", "a"}, {"pools", {"macs"}}}, {{"name", "b"}, {"pools", {"macs"}}}}}}),
       R"(shards: pool "macs" is in shards "a" and "b")"},
      {"a release name Services refuse", "2024-fleet", RequiredValues(),
       R"(the release's full name "2024-fleet-flotilla" is not a Service name)"},
      {"a release name with a dot", "fleet.prod", RequiredValues(),
       R"(the release's full name "fleet.prod-flotilla" is not a Service name)"},
      {"an inline API token (values.schema.json)", "fleet",
       With({{"api", {{"token", {{"secretName", "t"}, {"value", "s3cret"}}}}}}),
       "values don't meet the specifications of the schema"},
  };
  std::string all_errors;
  for (const Case& c : cases) {
    const Outcome r = Template(c.release, c.values);
    EXPECT_NE(r.exit_code, 0) << c.what << " rendered:\n" << r.out;
    EXPECT_TRUE(Contains(r.err, c.message)) << c.what << ": " << r.err;
    EXPECT_FALSE(Contains(r.err, "s3cret")) << c.what << ": a secret value in Helm's message";
    all_errors += r.err;
  }
  // The fixed text of every message the templates can fail with (up to its first %).
  static const std::regex kMessage(R"re((fail|required)\s+\(?(printf\s+)?"([^"%]+))re");
  int messages = 0;
  for (const fs::directory_entry& file : fs::directory_iterator(kChartDir / "templates")) {
    const std::string text = Slurp(file.path());
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kMessage);
         it != std::sregex_iterator(); ++it, ++messages) {
      EXPECT_TRUE(Contains(all_errors, (*it)[3].str()))
          << file.path().filename() << ": no case makes the chart fail with \"" << (*it)[3] << "\"";
    }
  }
  EXPECT_GE(messages, 8);
}

// The checks above find what they look for.
TEST_F(ChartHelmTest, ChecksCatchBrokenObjects) {
  // The schema validator refuses a wrong type, and an unknown kind instead of skipping it.
  const fs::path bad = scratch_.path() / "bad.yaml";
  std::ofstream(bad) << "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
                        "spec: {ports: [{port: http}]}\n---\n"
                        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n";
  const Outcome r = testing::RunCommand(
      "node " + Quote(kChartTools / "validate.mjs") + " " + Quote(bad), scratch_.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "spec/ports/0/port must be integer")) << r.err;
  EXPECT_TRUE(Contains(r.err, "no schema for apiVersion example.com/v1, kind Widget")) << r.err;
  EXPECT_EQ(r.out, "");

  // Names and labels past Kubernetes' limits.
  EXPECT_FALSE(IsDnsLabel(std::string(64, 'a')));
  EXPECT_FALSE(IsQualifiedName("example.com/" + std::string(64, 'a')));
  EXPECT_FALSE(IsQualifiedName("-bad"));
  EXPECT_NE(LabelProblems({{"app", std::string(64, 'a')}}, "x"), "");
  EXPECT_NE(LabelProblems({{"app", "a b"}}, "x"), "");
  EXPECT_EQ(LabelProblems({{"app.kubernetes.io/name", "flotilla"}, {"v", "0.1.0"}}, "x"), "");
  // A selector selects only what carries every one of its labels.
  EXPECT_TRUE(Selects({{"a", "1"}}, {{"a", "1"}, {"b", "2"}}));
  EXPECT_FALSE(Selects({{"a", "1"}, {"b", "3"}}, {{"a", "1"}, {"b", "2"}}));
  EXPECT_FALSE(Selects(json::object(), {{"a", "1"}}));
  // A file is found in the item that projects it, and only there.
  const json pod = json::parse(R"({
    "containers": [{"volumeMounts": [{"name": "tok", "mountPath": "/etc/t"}]}],
    "volumes": [{"name": "tok", "secret": {"secretName": "s",
                 "items": [{"key": "token", "path": "value"}]}}]})");
  const FileSource found = SourceOf("/etc/t/value", pod, json::array());
  EXPECT_EQ(found.object, "s");
  EXPECT_EQ(found.key, "token");
  EXPECT_EQ(SourceOf("/etc/t/other", pod, json::array()).volume, "");
  EXPECT_EQ(SourceOf("/etc/x/value", pod, json::array()).volume, "");
}

}  // namespace
}  // namespace flotilla
