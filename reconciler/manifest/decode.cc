#include "reconciler/manifest/decode.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace flotilla::manifest {
namespace {

using nlohmann::json;

const json& At(const json& object, const char* key) {
  static const json kNull;  // immutable: safe to share
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string String(const json& object, const char* key, const std::string& fallback = {}) {
  const json& v = At(object, key);
  return v.is_string() ? v.get<std::string>() : fallback;
}

std::vector<std::string> Strings(const json& value) {
  std::vector<std::string> out;
  if (value.is_array()) {
    for (const json& item : value) {
      out.push_back(item.get<std::string>());
    }
  }
  return out;
}

Quantity DecodeQuantity(const YamlDocument& doc, const std::string& pointer, const json& value,
                        Diagnostics& diagnostics) {
  Quantity q;
  if (value.is_number_unsigned() || value.is_number_integer()) {
    q = Quantity::FromBytes(value.get<uint64_t>());
  } else {
    Result<Quantity> parsed = Quantity::Parse(value.is_string() ? value.get<std::string>() : "");
    if (!parsed.ok()) {
      diagnostics.Error(doc.ValueLocation(pointer), parsed.status().message(), pointer);
      return Quantity();
    }
    q = *parsed;
  }
  if (q.bytes() == 0) {
    diagnostics.Error(doc.ValueLocation(pointer),
                      pointer.substr(pointer.rfind('/') + 1) + " must be more than 0", pointer);
  }
  return q;
}

std::optional<HostCapacity> DecodeCapacity(const YamlDocument& doc, const std::string& pointer,
                                           const json& value, Diagnostics& diagnostics) {
  if (!value.is_object()) {
    return std::nullopt;
  }
  HostCapacity c;
  c.cpu = At(value, "cpu").get<uint32_t>();
  c.memory = DecodeQuantity(doc, pointer + "/memory", At(value, "memory"), diagnostics);
  c.disk = DecodeQuantity(doc, pointer + "/disk", At(value, "disk"), diagnostics);
  return c;
}

ObjectMeta DecodeMeta(const YamlDocument& doc) {
  const json& meta = At(doc.value, "metadata");
  ObjectMeta out;
  out.name = String(meta, "name");
  const json& labels = At(meta, "labels");
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items()) {
      out.labels[k] = v.get<std::string>();
    }
  }
  out.origin = doc.ValueLocation("");
  return out;
}

// Key spellings that name a secret, compared without case, '-' or '_'.
constexpr std::array<std::string_view, 12> kSecretWords = {
    "password",   "passwd",    "passphrase", "secret",       "token",     "apikey",
    "privatekey", "accesskey", "secretkey",  "clientsecret", "authtoken", "credentials",
};
// A key ending in one of these names where a secret is kept, not the secret itself.
constexpr std::array<std::string_view, 5> kReferenceSuffixes = {"ref", "file", "env", "path",
                                                                "name"};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsSecretKey(std::string_view key) {
  std::string folded;
  for (char c : key) {
    if (c != '-' && c != '_') {
      folded += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  for (std::string_view suffix : kReferenceSuffixes) {
    if (EndsWith(folded, suffix)) {
      return false;
    }
  }
  for (std::string_view word : kSecretWords) {
    if (EndsWith(folded, word)) {
      return true;
    }
  }
  return false;
}

// True when a URL carries credentials. Anything before an '@' after "://" counts, wherever a
// slash or '#' in a careless password would otherwise end the authority; over ssh a bare
// user name ("ssh://admin@host") is no secret, but "user:password@" still is.
bool UrlHasCredentials(std::string_view s) {
  const size_t scheme_end = s.find("://");
  if (scheme_end == std::string_view::npos) {
    return false;
  }
  const std::string_view rest = s.substr(scheme_end + 3);
  const size_t at = rest.rfind('@');
  if (at == std::string_view::npos || at == 0) {
    return false;
  }
  if (s.substr(0, scheme_end) == "ssh") {
    return rest.substr(0, at).find(':') != std::string_view::npos;
  }
  return true;
}

void FindSecrets(const YamlDocument& doc, const json& value, const std::string& pointer,
                 std::set<std::string>& found, Diagnostics& diagnostics) {
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      const std::string child_pointer = pointer + "/" + EscapePointerToken(key);
      const bool literal =
          child.is_number() || (child.is_string() && !child.get_ref<const std::string&>().empty());
      if (literal && IsSecretKey(key)) {
        found.insert(child_pointer);
        diagnostics.Error(doc.KeyLocation(child_pointer),
                          "inline secret in \"" + key +
                              "\": credentials never go in the fleet repository; store them "
                              "in the secrets directory and name them with spec.credentialsRef",
                          child_pointer);
        continue;
      }
      FindSecrets(doc, child, child_pointer, found, diagnostics);
    }
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      FindSecrets(doc, value[i], pointer + "/" + std::to_string(i), found, diagnostics);
    }
  } else if (value.is_string() && UrlHasCredentials(value.get_ref<const std::string&>())) {
    found.insert(pointer);
    diagnostics.Error(doc.ValueLocation(pointer),
                      "URL with credentials in it: credentials never go in the fleet "
                      "repository; remove the part before '@' and use spec.credentialsRef",
                      pointer);
  }
}

}  // namespace

std::set<std::string> CheckInlineSecrets(const YamlDocument& doc, Diagnostics& diagnostics) {
  std::set<std::string> found;
  FindSecrets(doc, doc.value, "", found, diagnostics);
  return found;
}

HostPool DecodeHostPool(const YamlDocument& doc, Diagnostics& diagnostics) {
  const json& spec = At(doc.value, "spec");
  HostPool pool;
  pool.meta = DecodeMeta(doc);
  pool.provider = String(spec, "provider", pool.provider);
  pool.credentials_ref = String(spec, "credentialsRef");
  // Every other key of spec belongs to the provider (its schema checked them).
  if (spec.is_object()) {
    for (const auto& [key, value] : spec.items()) {
      if (key != "provider" && key != "credentialsRef" && key != "defaults" && key != "hosts" &&
          key != "access") {
        pool.settings[key] = value;
      }
    }
  }

  if (const json& ports = At(At(spec, "access"), "allowedPorts"); ports.is_array()) {
    pool.allowed_ports.clear();
    for (const json& port : ports) {
      pool.allowed_ports.push_back(port.get<uint16_t>());
    }
    std::sort(pool.allowed_ports.begin(), pool.allowed_ports.end());
  }

  const json& defaults = At(spec, "defaults");
  if (At(defaults, "maxVMs").is_number()) {
    pool.defaults.max_vms = At(defaults, "maxVMs").get<uint32_t>();
  }
  if (At(defaults, "arch").is_string()) {
    pool.defaults.arch = ParseArch(String(defaults, "arch"));
  }
  pool.defaults.capacity =
      DecodeCapacity(doc, "/spec/defaults/capacity", At(defaults, "capacity"), diagnostics);

  const json& hosts = At(spec, "hosts");
  for (size_t i = 0; i < hosts.size(); ++i) {
    const json& h = hosts[i];
    const std::string pointer = "/spec/hosts/" + std::to_string(i);
    HostSpec host;
    host.name = String(h, "name");
    host.address = String(h, "address");
    host.tags = Strings(At(h, "tags"));
    host.cordoned = At(h, "cordoned").is_boolean() && At(h, "cordoned").get<bool>();
    if (At(h, "maxVMs").is_number()) {
      host.max_vms = At(h, "maxVMs").get<uint32_t>();
    }
    if (At(h, "arch").is_string()) {
      host.arch = ParseArch(String(h, "arch"));
    }
    host.capacity = DecodeCapacity(doc, pointer + "/capacity", At(h, "capacity"), diagnostics);
    host.origin = doc.ValueLocation(pointer);
    pool.hosts.push_back(std::move(host));
  }
  return pool;
}

VMSet DecodeVMSet(const YamlDocument& doc, Diagnostics& diagnostics) {
  const json& spec = At(doc.value, "spec");
  VMSet set;
  set.meta = DecodeMeta(doc);
  set.pool = String(spec, "pool");
  set.replicas = At(spec, "replicas").get<uint32_t>();
  set.selector_tags = Strings(At(At(spec, "selector"), "tags"));
  if (auto p = ParsePlacement(String(spec, "placement"))) {
    set.placement = *p;
  }
  const json& t = At(spec, "template");
  set.templ.image = String(t, "image");
  set.templ.os = ParseGuestOs(String(t, "os")).value_or(GuestOs::kMacos);
  set.templ.arch = ParseArch(String(t, "arch")).value_or(Arch::kArm64);
  set.templ.cpu = At(t, "cpu").get<uint32_t>();
  set.templ.memory = DecodeQuantity(doc, "/spec/template/memory", At(t, "memory"), diagnostics);
  if (!At(t, "disk").is_null()) {
    set.templ.disk = DecodeQuantity(doc, "/spec/template/disk", At(t, "disk"), diagnostics);
  }
  if (auto s = ParsePowerState(String(t, "state"))) {
    set.templ.state = *s;
  }
  set.templ.startup_script = String(t, "startupScript");
  set.ssh_user = String(At(t, "access"), "sshUser");
  const json& strategy = At(spec, "updateStrategy");
  if (auto type = ParseUpdateStrategyType(String(strategy, "type"))) {
    set.update_strategy.type = *type;
  }
  if (At(strategy, "maxUnavailable").is_number()) {
    set.update_strategy.max_unavailable = At(strategy, "maxUnavailable").get<uint32_t>();
  }
  if (At(strategy, "prepull").is_boolean()) {
    set.update_strategy.prepull = At(strategy, "prepull").get<bool>();
  }
  set.prune = At(spec, "prune").is_boolean() && At(spec, "prune").get<bool>();
  set.self_heal = !At(spec, "selfHeal").is_boolean() || At(spec, "selfHeal").get<bool>();
  set.adopt_existing =
      At(spec, "adoptExisting").is_boolean() && At(spec, "adoptExisting").get<bool>();
  return set;
}

}  // namespace flotilla::manifest
