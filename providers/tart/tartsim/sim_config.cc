#include "providers/tart/tartsim/sim_config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "providers/tart/tartsim/fs_util.h"

namespace flotilla::tartsim {
namespace {

using nlohmann::json;

[[noreturn]] void Bad(const std::string& where, const std::string& what) {
  throw ConfigError(where + ": " + what);
}

void CheckKeys(const json& object, const std::string& where,
               std::initializer_list<const char*> known) {
  if (!object.is_object()) {
    Bad(where, "must be an object");
  }
  for (const auto& item : object.items()) {
    const std::string& key = item.key();
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) {
      Bad(where, "unknown key \"" + key + "\"");
    }
  }
}

void ReadInt(const json& object, const char* key, const std::string& where, int64_t* out) {
  if (!object.contains(key)) {
    return;
  }
  const json& value = object.at(key);
  if (!value.is_number_integer() || value.get<int64_t>() < 0) {
    Bad(where + "." + key, "must be a non-negative integer");
  }
  *out = value.get<int64_t>();
}

void ReadBool(const json& object, const char* key, const std::string& where, bool* out) {
  if (!object.contains(key)) {
    return;
  }
  if (!object.at(key).is_boolean()) {
    Bad(where + "." + key, "must be true or false");
  }
  *out = object.at(key).get<bool>();
}

void ReadString(const json& object, const char* key, const std::string& where, std::string* out) {
  if (!object.contains(key)) {
    return;
  }
  if (!object.at(key).is_string()) {
    Bad(where + "." + key, "must be a string");
  }
  *out = object.at(key).get<std::string>();
}

void ReadStrings(const json& object, const char* key, const std::string& where,
                 std::vector<std::string>* out) {
  if (!object.contains(key)) {
    return;
  }
  const json& value = object.at(key);
  if (!value.is_array() ||
      std::any_of(value.begin(), value.end(), [](const json& v) { return !v.is_string(); })) {
    Bad(where + "." + key, "must be an array of strings");
  }
  *out = value.get<std::vector<std::string>>();
}

std::optional<uint16_t> ParsePort(const std::string& text) {
  if (text.empty() || text.size() > 5 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const long value = std::strtol(text.c_str(), nullptr, 10);
  if (value < 1 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(value);
}

FakeConfig FromJson(const json& doc, const std::string& where) {
  FakeConfig config;
  CheckKeys(doc, where,
            {"version", "host", "latency_ms", "jitter", "faults", "shuffle_keys", "get_size_number",
             "power_pid", "guest_ports"});
  ReadString(doc, "version", where, &config.version);
  if (doc.contains("host")) {
    const json& host = doc.at("host");
    const std::string at = where + ".host";
    CheckKeys(host, at,
              {"ncpu", "memsize", "machine", "os_version", "build_version", "disk_total_kb",
               "disk_avail_kb", "bridged_interfaces", "shared_net_address"});
    ReadInt(host, "ncpu", at, &config.host.ncpu);
    ReadInt(host, "memsize", at, &config.host.memsize);
    ReadString(host, "machine", at, &config.host.machine);
    ReadString(host, "os_version", at, &config.host.os_version);
    ReadString(host, "build_version", at, &config.host.build_version);
    ReadInt(host, "disk_total_kb", at, &config.host.disk_total_kb);
    ReadInt(host, "disk_avail_kb", at, &config.host.disk_avail_kb);
    ReadStrings(host, "bridged_interfaces", at, &config.host.bridged_interfaces);
    ReadString(host, "shared_net_address", at, &config.host.shared_net_address);
    if (!config.host.shared_net_address.empty() &&
        !ParseIpv4(config.host.shared_net_address).has_value()) {
      Bad(at + ".shared_net_address", "must be an IPv4 address");
    }
  }
  if (doc.contains("latency_ms")) {
    const json& latency = doc.at("latency_ms");
    const std::string at = where + ".latency_ms";
    CheckKeys(latency, at,
              {"cmd", "clone", "pull", "lock", "tmplock", "limitcheck", "boot", "ip", "shutdown"});
    Latencies& l = config.latency_ms;
    ReadInt(latency, "cmd", at, &l.cmd);
    ReadInt(latency, "clone", at, &l.clone);
    ReadInt(latency, "pull", at, &l.pull);
    ReadInt(latency, "lock", at, &l.lock);
    ReadInt(latency, "tmplock", at, &l.tmplock);
    ReadInt(latency, "limitcheck", at, &l.limitcheck);
    ReadInt(latency, "boot", at, &l.boot);
    ReadInt(latency, "ip", at, &l.ip);
    ReadInt(latency, "shutdown", at, &l.shutdown);
  }
  if (doc.contains("jitter")) {
    const json& jitter = doc.at("jitter");
    if (!jitter.is_number() || jitter.get<double>() < 0 || jitter.get<double>() > 1) {
      Bad(where + ".jitter", "must be a number from 0 to 1");
    }
    config.jitter = jitter.get<double>();
  }
  if (doc.contains("faults")) {
    const json& faults = doc.at("faults");
    const std::string at = where + ".faults";
    CheckKeys(faults, at,
              {"vm_limit", "limit_stuck", "link_race", "keychain_locked", "vz_start_failure",
               "guest_shutdown_after_ms", "hang", "no_lease", "duplicate_ip"});
    Faults& f = config.faults;
    ReadInt(faults, "vm_limit", at, &f.vm_limit);
    ReadInt(faults, "limit_stuck", at, &f.limit_stuck);
    ReadInt(faults, "link_race", at, &f.link_race);
    ReadBool(faults, "keychain_locked", at, &f.keychain_locked);
    ReadBool(faults, "vz_start_failure", at, &f.vz_start_failure);
    ReadInt(faults, "guest_shutdown_after_ms", at, &f.guest_shutdown_after_ms);
    ReadStrings(faults, "hang", at, &f.hang);
    ReadBool(faults, "no_lease", at, &f.no_lease);
    ReadBool(faults, "duplicate_ip", at, &f.duplicate_ip);
  }
  if (doc.contains("shuffle_keys")) {
    const json& shuffle = doc.at("shuffle_keys");
    if (shuffle.is_boolean()) {
      if (shuffle.get<bool>()) {
        config.shuffle_seed = 0;
      }
    } else if (shuffle.is_number_unsigned()) {
      config.shuffle_seed = static_cast<uint32_t>(shuffle.get<uint64_t>());
    } else {
      Bad(where + ".shuffle_keys", "must be true, false or a seed");
    }
  }
  ReadBool(doc, "get_size_number", where, &config.get_size_number);
  ReadInt(doc, "power_pid", where, &config.power_pid);
  if (doc.contains("guest_ports")) {
    const json& ports = doc.at("guest_ports");
    const std::string at = where + ".guest_ports";
    if (!ports.is_object()) {
      Bad(at, "must be an object of \"PORT\": \"HOST:PORT\"");
    }
    for (const auto& item : ports.items()) {
      const std::optional<uint16_t> port = ParsePort(item.key());
      if (!port || !item.value().is_string() || !ParseHostPort(item.value().get<std::string>())) {
        Bad(at + "." + item.key(), "must be \"HOST:PORT\" under a port 1..65535");
      }
      config.guest_ports[*port] = item.value().get<std::string>();
    }
  }
  return config;
}

json ParseOrThrow(const std::string& text, const std::string& path) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw ConfigError(path + ": " + e.what());
  }
}

std::vector<long> VersionParts(const std::string& version) {
  std::vector<long> parts;
  std::stringstream in(version);
  std::string part;
  while (std::getline(in, part, '.')) {
    parts.push_back(std::strtol(part.c_str(), nullptr, 10));
  }
  return parts;
}

}  // namespace

std::optional<uint32_t> ParseIpv4(const std::string& text) {
  in_addr address{};
  if (inet_pton(AF_INET, text.c_str(), &address) != 1) {
    return std::nullopt;
  }
  return ntohl(address.s_addr);
}

std::optional<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || !ParseIpv4(text.substr(0, colon))) {
    return std::nullopt;
  }
  const std::optional<uint16_t> port = ParsePort(text.substr(colon + 1));
  if (!port) {
    return std::nullopt;
  }
  return std::make_pair(text.substr(0, colon), *port);
}

std::string SharedNetAddress(const FakeConfig& config, const std::string& tart_home) {
  if (!config.host.shared_net_address.empty()) {
    return config.host.shared_net_address;
  }
  uint32_t hash = 2166136261U;  // FNV-1a
  for (const char c : tart_home) {
    hash = (hash ^ static_cast<uint8_t>(c)) * 16777619U;
  }
  return "127." + std::to_string(1 + (hash >> 8) % 254) + "." + std::to_string(hash & 0xff) + ".1";
}

bool VersionAtLeast(const std::string& version, const std::string& minimum) {
  if (version == "SNAPSHOT") {
    return true;
  }
  std::vector<long> have = VersionParts(version);
  std::vector<long> want = VersionParts(minimum);
  const size_t n = std::max(have.size(), want.size());
  have.resize(n, 0);
  want.resize(n, 0);
  return have >= want;
}

bool FakeConfig::AtLeast(const std::string& minimum) const {
  return VersionAtLeast(version, minimum);
}

int64_t FakeConfig::Jittered(int64_t ms) const {
  if (jitter <= 0 || ms <= 0) {
    return ms;
  }
  std::random_device seed;
  std::mt19937 random(seed());
  std::uniform_real_distribution<double> factor(1 - jitter, 1 + jitter);
  return static_cast<int64_t>(static_cast<double>(ms) * factor(random));
}

bool FakeConfig::Hangs(const std::string& command) const {
  return std::find(faults.hang.begin(), faults.hang.end(), command) != faults.hang.end();
}

FakeConfig LoadFakeConfig(const std::string& path) {
  std::optional<std::string> text;
  try {
    text = ReadFileIfExists(path);
  } catch (const FsError& e) {
    throw ConfigError(e.what());
  }
  if (!text) {
    return FakeConfig{};
  }
  return FromJson(ParseOrThrow(*text, path), path);
}

bool ConsumeFault(const std::string& path, const std::string& counter) {
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return false;
    }
    throw ConfigError(path + ": " + std::strerror(errno));
  }
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  while (fcntl(fd, F_SETLKW, &lock) != 0) {
    if (errno != EINTR) {
      close(fd);
      throw ConfigError(path + ": cannot lock: " + std::strerror(errno));
    }
  }
  bool consumed = false;
  try {
    json doc = ParseOrThrow(ReadFile(path), path);
    FromJson(doc, path);  // validates
    if (doc.contains("faults") && doc["faults"].value(counter, int64_t{0}) > 0) {
      doc["faults"][counter] = doc["faults"][counter].get<int64_t>() - 1;
      const std::string text = doc.dump(2) + "\n";
      if (ftruncate(fd, 0) != 0 ||
          pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
        throw ConfigError(path + ": cannot rewrite: " + std::strerror(errno));
      }
      consumed = true;
    }
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);  // releases the lock
  return consumed;
}

}  // namespace flotilla::tartsim
