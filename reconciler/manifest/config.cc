#include "reconciler/manifest/config.h"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "reconciler/manifest/yaml_reader.h"

namespace flotilla::manifest {
namespace {

using nlohmann::json;

const json* Find(const json& object, const char* key) {
  if (!object.is_object()) {
    return nullptr;
  }
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

// A whole number >= 0 (YAML integers arrive signed).
std::optional<uint32_t> Count(const json* v) {
  if (v == nullptr || !v->is_number_integer() || v->get<int64_t>() < 0 ||
      v->get<int64_t>() > INT32_MAX) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(v->get<int64_t>());
}

void ReadString(const json& object, const char* key, std::string& out) {
  if (const json* v = Find(object, key); v != nullptr && v->is_string()) {
    out = v->get<std::string>();
  }
}

// api.tokens, with what the schema cannot say: names are unique and not the default token's,
// and each token has one source. False after adding a diagnostic per problem.
bool ReadApiTokens(const YamlDocument& doc, std::vector<ReconcilerConfig::ApiToken>& tokens,
                   Diagnostics& diagnostics) {
  const json* list =
      Find(doc.value, "api") != nullptr ? Find(*Find(doc.value, "api"), "tokens") : nullptr;
  if (list == nullptr || !list->is_array()) {
    return true;
  }
  bool ok = true;
  std::set<std::string> names;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& item = (*list)[i];
    const std::string at = "/api/tokens/" + std::to_string(i);
    ReconcilerConfig::ApiToken token;
    ReadString(item, "name", token.name);
    ReadString(item, "tokenFile", token.token_file);
    ReadString(item, "tokenEnv", token.token_env);
    if (const json* roles = Find(item, "roles"); roles != nullptr && roles->is_array()) {
      for (const json& role : *roles) {
        if (role.is_string()) {
          token.roles.push_back(role.get<std::string>());
        }
      }
    }
    if (token.name == "default") {
      diagnostics.Error(doc.ValueLocation(at + "/name"),
                        "the name \"default\" is the token of api.tokenFile; choose another",
                        at + "/name");
      ok = false;
    } else if (!names.insert(token.name).second) {
      diagnostics.Error(doc.ValueLocation(at + "/name"),
                        "a token named \"" + token.name + "\" is configured twice", at + "/name");
      ok = false;
    }
    if (token.token_file.empty() == token.token_env.empty()) {
      diagnostics.Error(doc.KeyLocation(at),
                        "token \"" + token.name + "\" needs exactly one of tokenFile and tokenEnv",
                        at);
      ok = false;
    }
    tokens.push_back(std::move(token));
  }
  return ok;
}

}  // namespace

Result<ReconcilerConfig> LoadConfigFile(const std::string& path, const SchemaValidator& validator,
                                        Diagnostics& diagnostics) {
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (!exists || std::filesystem::is_directory(path, ec)) {
    return Status::NotFound("cannot read config file " + path + ": " +
                            (exists ? "it is a folder" : "no such file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    // Permissions, mostly; errno says which.
    return Status::FailedPrecondition("cannot read config file " + path + ": " +
                                      std::generic_category().message(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  DocumentBudget budget{.limit = 1};
  std::vector<YamlDocument> docs = ReadYamlDocuments(text.str(), path, budget, diagnostics);
  if (diagnostics.HasErrors()) {
    return Status::InvalidArgument("config file " + path + " is invalid");
  }
  ReconcilerConfig config;
  if (docs.empty()) {
    return config;  // an empty file: every default
  }
  if (!validator.Validate("config.v1.json", docs[0], diagnostics) || diagnostics.HasErrors()) {
    return Status::InvalidArgument("config file " + path + " is invalid");
  }
  const json& root = docs[0].value;
  if (const json* source = Find(root, "source")) {
    ReadString(*source, "url", config.source.url);
    ReadString(*source, "branch", config.source.branch);
    ReadString(*source, "revision", config.source.revision);
    ReadString(*source, "path", config.source.path);
    if (const json* v = Find(*source, "interval"); v != nullptr && v->is_string()) {
      config.source.interval =
          ParseDuration(v->get<std::string>()).value_or(config.source.interval);
    }
    if (const json* auth = Find(*source, "auth")) {
      ReadString(*auth, "tokenFile", config.source.token_file);
      ReadString(*auth, "tokenEnv", config.source.token_env);
      ReadString(*auth, "username", config.source.username);
      ReadString(*auth, "sshKeyFile", config.source.ssh_key_file);
      ReadString(*auth, "sshPassphraseFile", config.source.ssh_passphrase_file);
      ReadString(*auth, "knownHostsFile", config.source.known_hosts_file);
      if (const json* v = Find(*auth, "insecureIgnoreHostKey"); v != nullptr && v->is_boolean()) {
        config.source.insecure_ignore_host_key = v->get<bool>();
      }
    }
    if (const json* verify = Find(*source, "verify")) {
      ReadString(*verify, "allowedSignersFile", config.source.allowed_signers_file);
    }
  }
  if (const json* log = Find(root, "log")) {
    ReadString(*log, "format", config.log.format);
    ReadString(*log, "level", config.log.level);
  }
  ReadString(root, "stateDir", config.state_dir);
  ReadString(root, "secretsDir", config.secrets_dir);
  if (const json* reconcile = Find(root, "reconcile")) {
    ReconcilerConfig::Reconcile& r = config.reconcile;
    if (const json* v = Find(*reconcile, "resyncInterval"); v != nullptr && v->is_string()) {
      r.resync_interval = ParseDuration(v->get<std::string>()).value_or(r.resync_interval);
    }
    if (const json* v = Find(*reconcile, "hostLostAfter"); v != nullptr && v->is_string()) {
      r.host_lost_after = ParseDuration(v->get<std::string>()).value_or(r.host_lost_after);
    }
    const auto duration = [&](const char* key, std::chrono::milliseconds& field) {
      if (const json* v = Find(*reconcile, key); v != nullptr && v->is_string()) {
        field = ParseDuration(v->get<std::string>()).value_or(field);
      }
    };
    duration("hostTimeout", r.host_timeout);
    duration("hostOfflineAfter", r.host_offline_after);
    duration("createTimeout", r.create_timeout);
    duration("actionTimeout", r.action_timeout);
    duration("shutdownTimeout", r.shutdown_timeout);
    duration("deletionWindow", r.deletion_window);
    r.max_attempts = Count(Find(*reconcile, "maxAttempts")).value_or(r.max_attempts);
    r.concurrency = Count(Find(*reconcile, "concurrency")).value_or(r.concurrency);
    r.per_host_concurrency =
        Count(Find(*reconcile, "perHostConcurrency")).value_or(r.per_host_concurrency);
    if (const json* v = Find(*reconcile, "maxDeletionsPerRun")) {
      if (Count(v)) {
        r.max_deletions = Count(v);
      } else if (v->is_string()) {
        const std::string percent = v->get<std::string>();  // "N%", checked by the schema
        r.max_deletions_percent =
            static_cast<uint32_t>(std::stoul(percent.substr(0, percent.size() - 1)));
      }
    }
  }
  if (const json* api = Find(root, "api")) {
    ReadString(*api, "listen", config.api.listen);
    ReadString(*api, "tokenFile", config.api.token_file);
    ReadString(*api, "tokenEnv", config.api.token_env);
    ReadString(*api, "webhookSecretFile", config.api.webhook_secret_file);
    ReadString(*api, "webhookSecretEnv", config.api.webhook_secret_env);
    config.api.threads = Count(Find(*api, "threads")).value_or(config.api.threads);
    if (const json* failures = Find(*api, "authFailures")) {
      config.api.auth_failure_burst =
          Count(Find(*failures, "burst")).value_or(config.api.auth_failure_burst);
      config.api.auth_failures_per_minute =
          Count(Find(*failures, "perMinute")).value_or(config.api.auth_failures_per_minute);
    }
    if (!ReadApiTokens(docs[0], config.api.tokens, diagnostics)) {
      return Status::InvalidArgument("config file " + path + " is invalid");
    }
    if (const json* tunnels = Find(*api, "tunnels")) {
      config.api.tunnels_max = Count(Find(*tunnels, "max")).value_or(config.api.tunnels_max);
      config.api.tunnels_per_token =
          Count(Find(*tunnels, "perToken")).value_or(config.api.tunnels_per_token);
      if (const json* v = Find(*tunnels, "idleTimeout"); v != nullptr && v->is_string()) {
        config.api.tunnel_idle_timeout =
            ParseDuration(v->get<std::string>()).value_or(config.api.tunnel_idle_timeout);
      }
    }
    if (const json* tls = Find(*api, "tls")) {
      ReadString(*tls, "certFile", config.api.tls_cert_file);
      ReadString(*tls, "keyFile", config.api.tls_key_file);
    }
  }
  if (const json* store = Find(root, "store")) {
    config.store.retain_runs = Count(Find(*store, "retainRuns")).value_or(config.store.retain_runs);
    config.store.retain_events =
        Count(Find(*store, "retainEvents")).value_or(config.store.retain_events);
    ReadString(*store, "durability", config.store.durability);
  }
  return config;
}

}  // namespace flotilla::manifest
