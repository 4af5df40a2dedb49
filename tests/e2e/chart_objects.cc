// See chart_objects.h.

#include "tests/e2e/chart_objects.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "providers/builtin.h"
#include "reconciler/manifest/config.h"
#include "reconciler/manifest/diagnostics.h"
#include "reconciler/manifest/schema_validator.h"
#include "reconciler/manifest/yaml_reader.h"

namespace flotilla::chart {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- Kubernetes' rules for names and labels (k8s.io/apimachinery/pkg/util/validation) ----

const std::regex kDnsLabel("[a-z0-9]([-a-z0-9]*[a-z0-9])?");   // RFC 1123 label
const std::regex kDns1035Label("[a-z]([-a-z0-9]*[a-z0-9])?");  // Service names
const std::regex kDnsSubdomain(
    R"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)");
const std::regex kLabelValue(R"((([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?)");
const std::regex kQualifiedName(R"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])");
const std::regex kIanaSvcName("[a-z0-9]([a-z0-9-]*[a-z0-9])?");  // container port names
const std::regex kDataKey(R"([-._a-zA-Z0-9]+)");

bool IsDnsLabel(const std::string& s) { return s.size() <= 63 && std::regex_match(s, kDnsLabel); }
bool IsDnsSubdomain(const std::string& s) {
  return s.size() <= 253 && std::regex_match(s, kDnsSubdomain);
}

// A label or annotation key: [prefix/]name, prefix a DNS subdomain, name at most 63.
bool IsQualifiedName(const std::string& key) {
  const size_t slash = key.find('/');
  const std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
  if (slash != std::string::npos && !IsDnsSubdomain(key.substr(0, slash))) {
    return false;
  }
  return name.size() <= 63 && std::regex_match(name, kQualifiedName);
}

// The problems of `labels` (a map of label keys to values), one per line.
std::string LabelProblems(const json& labels, const std::string& where) {
  std::string problems;
  for (const auto& [key, value] : labels.items()) {
    if (!IsQualifiedName(key)) {
      problems += where + ": label key " + key + " is not a qualified name\n";
    }
    if (!value.is_string() || value.get<std::string>().size() > 63 ||
        !std::regex_match(value.get<std::string>(), kLabelValue)) {
      problems += where + ": label " + key + "=" + value.dump() + " is not a label value\n";
    }
  }
  return problems;
}

// Whether `selector` (matchLabels, or a Service's selector) selects an object with `labels`.
bool Selects(const json& selector, const json& labels) {
  if (!selector.is_object() || selector.empty()) {
    return false;
  }
  for (const auto& [key, value] : selector.items()) {
    if (!labels.contains(key) || labels[key] != value) {
      return false;
    }
  }
  return true;
}

// Every document of `text` (helm's output), parsed as flotilla parses YAML; nulls (templates that
// rendered nothing) left out. Problems go to `errors`.
std::vector<json> ParseObjects(const std::string& text, std::string& errors) {
  manifest::DocumentBudget budget;
  manifest::Diagnostics diagnostics;
  std::vector<manifest::YamlDocument> docs =
      manifest::ReadYamlDocuments(text, "rendered.yaml", budget, diagnostics);
  for (const manifest::Diagnostic& d : diagnostics.Sorted()) {
    errors += d.ToString() + "\n";
  }
  std::vector<json> objects;
  for (manifest::YamlDocument& doc : docs) {
    if (!doc.value.is_null()) {
      objects.push_back(std::move(doc.value));
    }
  }
  return objects;
}

// The values every install needs (values.yaml leaves them empty), and the base of every set.

// ---- What the rendered objects must satisfy ----

// Objects by kind.
std::vector<json> OfKind(const std::vector<json>& objects, const std::string& kind) {
  std::vector<json> out;
  std::copy_if(objects.begin(), objects.end(), std::back_inserter(out),
               [&](const json& o) { return o.value("kind", "") == kind; });
  return out;
}

// Names, labels and annotations of every object, as the API server checks them.
void CheckNamesAndLabels(const std::vector<json>& objects) {
  for (const json& o : objects) {
    const std::string kind = o.value("kind", "");
    const std::string name = o["metadata"].value("name", "");
    const std::string where = kind + " " + name;
    EXPECT_TRUE(IsDnsSubdomain(name)) << where << ": not a DNS subdomain";
    if (kind == "Service") {
      EXPECT_TRUE(name.size() <= 63 && std::regex_match(name, kDns1035Label))
          << where << ": a Service name is a DNS-1035 label (a letter first, at most 63)";
    }
    if (kind == "StatefulSet") {
      // Its pods carry controller-revision-hash=<name>-<hash of up to 10 characters>, a label
      // value of at most 63; pod names (<name>-0) are DNS labels.
      EXPECT_TRUE(IsDnsLabel(name) && name.size() <= 52)
          << where << ": a StatefulSet's name must leave 11 characters of a label value";
      for (const json& claim : o["spec"].value("volumeClaimTemplates", json::array())) {
        const std::string pvc = claim["metadata"].value("name", "") + "-" + name + "-0";
        EXPECT_TRUE(IsDnsSubdomain(pvc)) << where << ": claim " << pvc;
      }
    }
    EXPECT_EQ(LabelProblems(o["metadata"].value("labels", json::object()), where), "");
    const json annotations = o["metadata"].value("annotations", json::object());
    for (const auto& [key, value] : annotations.items()) {
      EXPECT_TRUE(IsQualifiedName(key)) << where << ": annotation " << key;
      EXPECT_TRUE(value.is_string()) << where << ": annotation " << key;
    }
  }
}

// The pod of every StatefulSet: its selector selects its template, it selects no other
// StatefulSet's pods, and its Service selects exactly its pods on a port they have.
void CheckSelectors(const std::vector<json>& objects) {
  const std::vector<json> sets = OfKind(objects, "StatefulSet");
  const std::vector<json> services = OfKind(objects, "Service");
  ASSERT_FALSE(sets.empty());
  for (const json& sts : sets) {
    const std::string where = "StatefulSet " + sts["metadata"].value("name", "");
    const json& selector = sts["spec"]["selector"]["matchLabels"];
    const json& pod = sts["spec"]["template"];
    EXPECT_EQ(LabelProblems(pod["metadata"]["labels"], where + " pod template"), "");
    EXPECT_EQ(LabelProblems(selector, where + " selector"), "");
    EXPECT_TRUE(Selects(selector, pod["metadata"]["labels"])) << where << ": selector misses pods";
    for (const json& other : sets) {
      if (other != sts) {
        EXPECT_FALSE(Selects(selector, other["spec"]["template"]["metadata"]["labels"]))
            << where << " selects the pods of " << other["metadata"]["name"];
      }
    }
    // spec.serviceName names a Service of the release that selects these pods.
    const std::string service_name = sts["spec"].value("serviceName", "");
    EXPECT_EQ(std::count_if(services.begin(), services.end(),
                            [&](const json& s) {
                              return s["metadata"]["name"] == service_name &&
                                     Selects(s["spec"]["selector"], pod["metadata"]["labels"]);
                            }),
              1)
        << where << ": serviceName " << service_name;
  }
  for (const json& svc : services) {
    const std::string where = "Service " + svc["metadata"].value("name", "");
    EXPECT_EQ(LabelProblems(svc["spec"]["selector"], where + " selector"), "");
    std::vector<json> selected;
    for (const json& sts : sets) {
      if (Selects(svc["spec"]["selector"], sts["spec"]["template"]["metadata"]["labels"])) {
        selected.push_back(sts);
      }
    }
    ASSERT_EQ(selected.size(), 1U) << where << " must select the pods of one StatefulSet";
    const json& container = selected[0]["spec"]["template"]["spec"]["containers"][0];
    for (const json& port : svc["spec"]["ports"]) {
      EXPECT_TRUE(IsDnsLabel(port.value("name", ""))) << where << ": port name";
      const json& target = port["targetPort"];
      bool found = false;
      for (const json& cp : container["ports"]) {
        found =
            found || (target.is_string() ? cp["name"] == target : cp["containerPort"] == target);
      }
      EXPECT_TRUE(found) << where << ": targetPort " << target << " is no container port";
    }
  }
}

// Each Ingress backend is a Service of the release, by a port it has; hosts are DNS names.
void CheckIngress(const std::vector<json>& objects) {
  const std::vector<json> services = OfKind(objects, "Service");
  for (const json& ing : OfKind(objects, "Ingress")) {
    std::set<std::string> hosts;
    for (const json& rule : ing["spec"]["rules"]) {
      const std::string host = rule.value("host", "");
      EXPECT_TRUE(IsDnsSubdomain(host)) << "Ingress host " << host;
      EXPECT_TRUE(hosts.insert(host).second) << "Ingress host " << host << " twice";
      for (const json& path : rule["http"]["paths"]) {
        const json& backend = path["backend"]["service"];
        const auto svc = std::find_if(services.begin(), services.end(), [&](const json& s) {
          return s["metadata"]["name"] == backend["name"];
        });
        ASSERT_NE(svc, services.end()) << "Ingress backend " << backend["name"];
        bool port_found = false;
        for (const json& port : (*svc)["spec"]["ports"]) {
          port_found = port_found || port["name"] == backend["port"].value("name", "") ||
                       port["port"] == backend["port"].value("number", -1);
        }
        EXPECT_TRUE(port_found) << "Ingress backend port " << backend["port"];
      }
    }
    for (const json& tls : ing["spec"].value("tls", json::array())) {
      for (const json& host : tls["hosts"]) {
        EXPECT_TRUE(hosts.contains(host.get<std::string>())) << "TLS host " << host;
      }
    }
    EXPECT_EQ(hosts.size(), services.size()) << "one host per loop";
  }
}

// The ServiceMonitor scrapes every loop's Service, on a port they have, with the API's scheme and
// the API token.
void CheckServiceMonitor(const std::vector<json>& objects, const json& values) {
  const std::vector<json> monitors = OfKind(objects, "ServiceMonitor");
  ASSERT_EQ(monitors.size(), values["serviceMonitor"].value("enabled", false) ? 1U : 0U);
  for (const json& sm : monitors) {
    const json& endpoint = sm["spec"]["endpoints"][0];
    for (const json& svc : OfKind(objects, "Service")) {
      EXPECT_TRUE(Selects(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]))
          << "ServiceMonitor misses " << svc["metadata"]["name"];
      bool port_found = false;
      for (const json& port : svc["spec"]["ports"]) {
        port_found = port_found || port["name"] == endpoint["port"];
      }
      EXPECT_TRUE(port_found) << "ServiceMonitor port " << endpoint["port"];
    }
    const bool tls = !values["api"]["tls"].value("secretName", "").empty();
    EXPECT_EQ(endpoint["scheme"], tls ? "https" : "http");
    EXPECT_EQ(endpoint["path"], "/metrics");
    EXPECT_EQ(endpoint["authorization"]["credentials"]["name"],
              values["api"]["token"]["secretName"]);
    EXPECT_EQ(endpoint["authorization"]["credentials"]["key"],
              values["api"]["token"].value("key", "token"));
  }
}

// The one ConfigMap's flotilla.yaml, loaded by flotilla itself (schema and all), from a file in
// `scratch`. Failures are reported.
std::optional<manifest::ReconcilerConfig> LoadRenderedConfig(const std::vector<json>& objects,
                                                             const fs::path& scratch) {
  const std::vector<json> maps = OfKind(objects, "ConfigMap");
  EXPECT_EQ(maps.size(), 1U);
  if (maps.empty() || !maps[0]["data"].contains("flotilla.yaml")) {
    ADD_FAILURE() << "no ConfigMap with flotilla.yaml";
    return std::nullopt;
  }
  const fs::path file = scratch / "flotilla.yaml";
  std::ofstream(file) << maps[0]["data"]["flotilla.yaml"].get<std::string>();
  Result<std::shared_ptr<const manifest::SchemaValidator>> validator =
      manifest::SchemaValidator::Create(providers::BuiltinRules());
  EXPECT_TRUE(validator.ok());
  if (!validator.ok()) {
    return std::nullopt;
  }
  manifest::Diagnostics diagnostics;
  Result<manifest::ReconcilerConfig> config =
      manifest::LoadConfigFile(file.string(), **validator, diagnostics);
  for (const manifest::Diagnostic& d : diagnostics.Sorted()) {
    ADD_FAILURE() << "the rendered flotilla.yaml: " << d.ToString();
  }
  if (!config.ok()) {
    return std::nullopt;
  }
  return *config;
}

FileSource SourceOf(const fs::path& file, const json& pod, const json& claims) {
  const json& container = pod["containers"][0];
  for (const json& mount : container["volumeMounts"]) {
    const fs::path mount_path = mount["mountPath"].get<std::string>();
    const fs::path rest = file.lexically_relative(mount_path);
    if (rest.empty() || rest.string().starts_with("..")) {
      continue;
    }
    FileSource source{.volume = mount["name"].get<std::string>()};
    for (const json& claim : claims) {
      if (claim["metadata"]["name"] == source.volume) {
        source.kind = "persistentVolumeClaim";
      }
    }
    for (const json& volume : pod["volumes"]) {
      if (volume["name"] != source.volume) {
        continue;
      }
      for (const char* kind : {"secret", "configMap", "emptyDir"}) {
        if (volume.contains(kind)) {
          source.kind = kind;
        }
      }
      const json& from = volume.value(source.kind, json::object());
      source.object = from.value(source.kind == "secret" ? "secretName" : "name", "");
      // A subPath mount is the file of that key; a folder's file is an item's path, or any key
      // of the whole object when the volume lists no items.
      const std::string path_in_volume =
          mount.contains("subPath") ? mount["subPath"].get<std::string>() : rest.string();
      if (from.contains("items")) {
        for (const json& item : from["items"]) {
          if (item["path"] == path_in_volume) {
            source.key = item["key"].get<std::string>();
          }
        }
        if (source.key.empty()) {
          source.volume = "";  // mounted, but not projected there
        }
      } else if (path_in_volume != ".") {
        source.key = path_in_volume;
      }
    }
    return source;
  }
  return {};
}

// Every file flotilla.yaml names is a key of the Secret (or ConfigMap) values.yaml names for it,
// projected where the file is; every Secret key the pod projects is one of them.
void CheckMountsAndConfig(const std::vector<json>& objects, const json& values,
                          const fs::path& scratch) {
  const std::optional<manifest::ReconcilerConfig> config = LoadRenderedConfig(objects, scratch);
  ASSERT_TRUE(config.has_value());
  const bool tls = !values["api"]["tls"].value("secretName", "").empty();
  const json shards = values.value("shards", json::array());
  const std::vector<json> sets = OfKind(objects, "StatefulSet");
  ASSERT_EQ(sets.size(), std::max<size_t>(shards.size(), 1));
  const int api_port = values["api"].value("port", 8080);
  EXPECT_EQ(config->api.listen, "0.0.0.0:" + std::to_string(api_port));

  // (file, kind, object, key) flotilla.yaml must find, from values.yaml's references.
  struct Expected {
    std::string file;
    std::string kind;
    std::string object;
    std::string key;
  };
  std::vector<Expected> expected;
  auto ref = [&](const std::string& file, const json& reference, const std::string& default_key) {
    const std::string name = reference.value("secretName", "");
    EXPECT_EQ(file.empty(), name.empty()) << reference << " -> flotilla.yaml file '" << file << "'";
    if (!name.empty()) {
      expected.push_back({file, "secret", name, reference.value("key", default_key)});
    }
  };
  const json& git = values.value("git", json::object());
  ref(config->source.token_file, git.value("token", json::object()), "token");
  ref(config->source.ssh_key_file, git.value("sshKey", json::object()), "ssh-privatekey");
  ref(config->source.ssh_passphrase_file, git.value("sshPassphrase", json::object()), "passphrase");
  ref(config->source.known_hosts_file, git.value("knownHosts", json::object()), "known_hosts");
  ref(config->api.token_file, values["api"]["token"], "token");
  ref(config->api.webhook_secret_file, values["api"].value("webhookSecret", json::object()),
      "secret");
  const std::string signers =
      git.value("allowedSigners", json::object()).value("configMapName", "");
  EXPECT_EQ(config->source.allowed_signers_file.empty(), signers.empty());
  if (!signers.empty()) {
    expected.push_back({config->source.allowed_signers_file, "configMap", signers,
                        git["allowedSigners"].value("key", "allowed_signers")});
  }
  EXPECT_EQ(config->api.tls_cert_file.empty(), !tls);
  if (tls) {
    const std::string secret = values["api"]["tls"]["secretName"].get<std::string>();
    expected.push_back({config->api.tls_cert_file, "secret", secret, "tls.crt"});
    expected.push_back({config->api.tls_key_file, "secret", secret, "tls.key"});
  }
  const json tokens = values["api"].value("tokens", json::array());
  EXPECT_EQ(config->api.tokens.size(), tokens.size());
  for (size_t i = 0; i < tokens.size() && i < config->api.tokens.size(); ++i) {
    EXPECT_EQ(config->api.tokens[i].name, tokens[i]["name"]);
    EXPECT_EQ(config->api.tokens[i].roles, tokens[i]["roles"].get<std::vector<std::string>>());
    expected.push_back({config->api.tokens[i].token_file, "secret",
                        tokens[i]["secretName"].get<std::string>(),
                        tokens[i]["key"].get<std::string>()});
  }
  // credentials: the whole Secret is the folder <secretsDir>/<ref>.
  for (const json& cred : values.value("credentials", json::array())) {
    expected.push_back({(fs::path(config->secrets_dir) / cred["ref"].get<std::string>()).string(),
                        "secret", cred["secretName"].get<std::string>(), ""});
  }

  for (const json& sts : sets) {
    SCOPED_TRACE("StatefulSet " + sts["metadata"].value("name", ""));
    const json& pod = sts["spec"]["template"]["spec"];
    const json& claims = sts["spec"]["volumeClaimTemplates"];
    ASSERT_EQ(pod["containers"].size(), 1U);
    const json& container = pod["containers"][0];

    // Every mount has a volume; every projected key is a data key.
    std::set<std::string> volumes;
    for (const json& v : pod["volumes"]) {
      const std::string name = v["name"].get<std::string>();
      EXPECT_TRUE(IsDnsLabel(name)) << "volume " << name;
      EXPECT_TRUE(volumes.insert(name).second) << "volume " << v["name"] << " twice";
      for (const char* kind : {"secret", "configMap"}) {
        for (const json& item : v.value(kind, json::object()).value("items", json::array())) {
          EXPECT_TRUE(std::regex_match(item.value("key", ""), kDataKey)) << v;
        }
      }
    }
    for (const json& claim : claims) {
      volumes.insert(claim["metadata"]["name"].get<std::string>());
    }
    for (const json& m : container["volumeMounts"]) {
      EXPECT_TRUE(volumes.contains(m["name"].get<std::string>()))
          << "mount " << m["name"] << " has no volume";
    }

    // The config file, the store and the credentials are where flotilla.yaml says.
    const auto args = container["args"].get<std::vector<std::string>>();
    const auto config_flag = std::find(args.begin(), args.end(), "--config");
    ASSERT_NE(config_flag, args.end());
    ASSERT_NE(config_flag + 1, args.end());
    const FileSource config_file = SourceOf(*(config_flag + 1), pod, claims);
    EXPECT_EQ(config_file.kind, "configMap");
    EXPECT_EQ(config_file.object, OfKind(objects, "ConfigMap")[0]["metadata"]["name"]);
    EXPECT_EQ(config_file.key, "flotilla.yaml");
    EXPECT_EQ(SourceOf(fs::path(config->state_dir) / "flotilla.db", pod, claims).kind,
              "persistentVolumeClaim");

    std::set<std::pair<std::string, std::string>> referenced;  // (volume, key) flotilla reads
    for (const Expected& e : expected) {
      const FileSource source = SourceOf(e.file, pod, claims);
      EXPECT_NE(source.volume, "") << e.file << " is not in any mount of the pod";
      EXPECT_EQ(source.kind, e.kind) << e.file;
      EXPECT_EQ(source.object, e.object) << e.file;
      EXPECT_EQ(source.key, e.key) << e.file;
      referenced.insert({source.volume, source.key});
    }
    // Every Secret key the pod projects is one flotilla reads (no stray mounts).
    for (const json& v : pod["volumes"]) {
      if (!v.contains("secret")) {
        continue;
      }
      const json items = v["secret"].value("items", json::array());
      if (items.empty()) {
        EXPECT_TRUE(referenced.contains({v["name"].get<std::string>(), ""}))
            << "secret volume " << v["name"];
      }
      for (const json& item : items) {
        EXPECT_TRUE(
            referenced.contains({v["name"].get<std::string>(), item["key"].get<std::string>()}))
            << "secret volume " << v["name"] << " projects " << item["key"]
            << ", which flotilla.yaml never names";
      }
    }

    // Probes: on a port of the container, with the API's scheme.
    std::set<json> ports;
    for (const json& p : container["ports"]) {
      EXPECT_TRUE(p["name"].get<std::string>().size() <= 15 &&
                  std::regex_match(p["name"].get<std::string>(), kIanaSvcName))
          << "container port name " << p["name"];
      EXPECT_EQ(p["containerPort"], api_port);
      ports.insert(p["name"]);
      ports.insert(p["containerPort"]);
    }
    for (const char* probe : {"livenessProbe", "readinessProbe"}) {
      ASSERT_TRUE(container.contains(probe) && container[probe].contains("httpGet"))
          << "no HTTP " << probe;
      const json& get = container[probe]["httpGet"];
      EXPECT_TRUE(ports.contains(get["port"])) << probe << " on port " << get["port"];
      EXPECT_EQ(get["scheme"], tls ? "HTTPS" : "HTTP") << probe;
    }

    // One loop per shard, with its pools; the default a single loop with every pool.
    const auto pools_flag = std::find(args.begin(), args.end(), "--pools");
    const std::string shard = sts["metadata"]["labels"].value("flotilla.dev/shard", "");
    if (shards.empty()) {
      EXPECT_EQ(pools_flag, args.end());
      EXPECT_EQ(shard, "all");
    } else {
      ASSERT_NE(pools_flag, args.end());
      std::string pools;
      for (const json& s : shards) {
        if (s["name"] == shard) {
          for (const json& p : s["pools"]) {
            pools += (pools.empty() ? "" : ",") + p.get<std::string>();
          }
        }
      }
      EXPECT_EQ(*(pools_flag + 1), pools) << "shard " << shard;
    }

    // The pod's service account is the one the release makes, or the one values name.
    const std::vector<json> accounts = OfKind(objects, "ServiceAccount");
    if (values["serviceAccount"].value("create", true)) {
      ASSERT_EQ(accounts.size(), 1U);
      EXPECT_EQ(pod["serviceAccountName"], accounts[0]["metadata"]["name"]);
    } else {
      EXPECT_TRUE(accounts.empty());
      EXPECT_EQ(pod["serviceAccountName"], values["serviceAccount"]["name"]);
    }
    EXPECT_EQ(sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
              values["persistence"].value("retain", true) ? "Retain" : "Delete");
  }
}
}  // namespace flotilla::chart
