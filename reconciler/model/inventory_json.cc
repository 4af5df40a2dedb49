#include "reconciler/model/inventory_json.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "reconciler/model/quantity.h"

namespace flotilla {
namespace {

using Json = nlohmann::ordered_json;

Json ResourcesJson(const Resources& r) {
  return Json{{"cpu", r.cpu},
              {"memory", Quantity::FromBytes(r.memory_bytes).ToString()},
              {"disk", Quantity::FromBytes(r.disk_bytes).ToString()}};
}

// Reads fields of one JSON object, collecting the first error with its pointer.
class Reader {
 public:
  Reader(const nlohmann::json& object, std::string pointer, Status& error)
      : object_(object), pointer_(std::move(pointer)), error_(error) {
    if (!object_.is_object()) {
      Fail("", "is not an object");
    }
  }

  std::string String(const char* key, bool required = false) {
    auto it = Find(key, required);
    if (it == nullptr) {
      return "";
    }
    if (!it->is_string()) {
      Fail(key, "is not a string");
      return "";
    }
    return it->get<std::string>();
  }

  uint64_t Number(const char* key) {
    auto it = Find(key, false);
    if (it == nullptr) {
      return 0;
    }
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
      Fail(key, "is not a whole number >= 0");
      return 0;
    }
    return it->get<uint64_t>();
  }

  // A time written as Unix seconds (UnixSeconds); empty when absent, null or 0.
  std::optional<std::chrono::system_clock::time_point> Time(const char* key) {
    // The latest second the clock can hold (year 2262 with libstdc++'s nanoseconds): a later one
    // would overflow when converted to the clock's unit.
    constexpr auto kLatest = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::duration::max())
            .count());
    const uint64_t seconds = Number(key);
    if (seconds > kLatest) {
      Fail(key, "is not a time in Unix seconds");
      return std::nullopt;
    }
    if (seconds == 0) {
      return std::nullopt;
    }
    return std::chrono::system_clock::time_point{
        std::chrono::seconds{static_cast<int64_t>(seconds)}};
  }

  bool Bool(const char* key) {
    auto it = Find(key, false);
    if (it == nullptr) {
      return false;
    }
    if (!it->is_boolean()) {
      Fail(key, "is not true or false");
      return false;
    }
    return it->get<bool>();
  }

  uint64_t Bytes(const char* key) {
    const std::string text = String(key);
    if (text.empty()) {
      return 0;
    }
    Result<Quantity> q = Quantity::Parse(text);
    if (!q.ok()) {
      Fail(key, q.status().message());
      return 0;
    }
    return q->bytes();
  }

  Resources ResourcesAt(const char* key) {
    auto it = Find(key, false);
    if (it == nullptr) {
      return {};
    }
    Reader r(*it, pointer_ + "/" + key, error_);
    return Resources{.cpu = static_cast<uint32_t>(r.Number("cpu")),
                     .memory_bytes = r.Bytes("memory"),
                     .disk_bytes = r.Bytes("disk")};
  }

  const nlohmann::json* Array(const char* key) {
    auto it = Find(key, false);
    if (it != nullptr && !it->is_array()) {
      Fail(key, "is not an array");
      return nullptr;
    }
    return it;
  }

  void Fail(std::string_view key, std::string_view what) {
    if (error_.ok()) {
      error_ = Status::InvalidArgument(pointer_ + (key.empty() ? "" : "/" + std::string(key)) +
                                       ": " + std::string(what));
    }
  }

 private:
  const nlohmann::json* Find(const char* key, bool required) {
    if (!object_.is_object()) {
      return nullptr;
    }
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) {
      if (required) {
        Fail(key, "is required");
      }
      return nullptr;
    }
    return &*it;
  }

  const nlohmann::json& object_;
  std::string pointer_;
  Status& error_;
};

// A time as Unix seconds, or null (Reader::Time reads it back).
nlohmann::json UnixSeconds(const std::optional<std::chrono::system_clock::time_point>& time) {
  if (!time) {
    return nullptr;
  }
  return std::chrono::duration_cast<std::chrono::seconds>(time->time_since_epoch()).count();
}

}  // namespace

nlohmann::ordered_json InventoryToJson(const Inventory& inventory) {
  Json hosts = Json::array();
  for (const auto& [name, host] : inventory.observed.hosts) {
    Json vms = Json::array();
    for (const VmInfo& vm : host.vms) {
      Json v = {{"id", vm.id},
                {"name", vm.name},
                {"state", ToString(vm.state)},
                {"raw_state", vm.raw_state},
                {"os", vm.os ? std::string(ToString(*vm.os)) : vm.os_raw},
                {"cpu", vm.cpu},
                {"memory", Quantity::FromBytes(vm.memory_bytes).ToString()},
                {"disk", Quantity::FromBytes(vm.disk_bytes).ToString()},
                {"ip", vm.ip}};
      vms.push_back(std::move(v));
    }
    Json h = {{"name", host.name}, {"pool", host.pool}, {"online", host.online}};
    h["last_seen"] = UnixSeconds(host.last_seen);
    h["error"] = host.error;
    h["failures"] = host.failures;
    h["failing_since"] = UnixSeconds(host.failing_since);
    h["error_rate"] = host.error_rate;
    h["degraded"] = host.degraded;
    h["arch"] = host.facts.arch ? std::string(ToString(*host.facts.arch)) : "";
    h["total"] = ResourcesJson(host.facts.total);
    h["reserved"] = ResourcesJson(host.facts.system_reserved);
    h["available"] = ResourcesJson(host.facts.available);
    h["cached_images"] = host.facts.cached_images;
    h["disk_known"] = host.facts.disk_known;
    h["unsupported_images"] = host.facts.unsupported_images;
    h["vms"] = std::move(vms);
    hosts.push_back(std::move(h));
  }
  Json ledger = Json::array();
  std::vector<LedgerEntry> entries = inventory.ledger.entries;
  std::sort(entries.begin(), entries.end(),
            [](const LedgerEntry& a, const LedgerEntry& b) { return a.vm < b.vm; });
  for (const LedgerEntry& e : entries) {
    ledger.push_back(Json{{"vm", e.vm},
                          {"vmset", e.vmset},
                          {"pool", e.pool},
                          {"host", e.host},
                          {"provider_id", e.provider_id},
                          {"template_hash", e.template_hash}});
  }
  Json prune = Json::object();
  for (const auto& [set, value] : inventory.ledger.vmset_prune) {
    prune[set] = value;
  }
  return Json{{"apiVersion", "flotilla.dev/v1"},
              {"kind", "Inventory"},
              {"hosts", std::move(hosts)},
              {"ledger", std::move(ledger)},
              {"vmset_prune", std::move(prune)}};
}

Result<Inventory> InventoryFromJson(const nlohmann::json& doc) {
  Status error;
  Reader top(doc, "", error);
  if (top.String("kind") != "Inventory") {
    top.Fail("kind", "must be \"Inventory\"");
  }
  Inventory inventory;
  if (const nlohmann::json* hosts = top.Array("hosts")) {
    for (size_t i = 0; i < hosts->size(); ++i) {
      const std::string at = "/hosts/" + std::to_string(i);
      Reader h((*hosts)[i], at, error);
      ObservedHost host;
      host.name = h.String("name", true);
      host.pool = h.String("pool");
      host.online = h.Bool("online");
      host.last_seen = h.Time("last_seen");
      host.error = h.String("error");
      // Observation health: written since hosts could be degraded; absent in older snapshots.
      host.failures = static_cast<uint32_t>(std::min<uint64_t>(h.Number("failures"), UINT32_MAX));
      host.failing_since = h.Time("failing_since");
      host.degraded = h.Bool("degraded");
      const nlohmann::json& raw = (*hosts)[i];
      if (const auto v = raw.find("error_rate"); v != raw.end() && v->is_number()) {
        host.error_rate = std::clamp(v->get<double>(), 0.0, 1.0);
      }
      host.vms_known = host.online || host.last_seen.has_value();  // it answered at some time
      host.facts.arch = ParseArch(h.String("arch"));
      host.facts.total = h.ResourcesAt("total");
      host.facts.system_reserved = h.ResourcesAt("reserved");
      host.facts.available = h.ResourcesAt("available");
      if (const nlohmann::json* images = h.Array("cached_images")) {
        for (const auto& image : *images) {
          if (image.is_string()) {
            host.facts.cached_images.push_back(image.get<std::string>());
          }
        }
        std::sort(host.facts.cached_images.begin(), host.facts.cached_images.end());
      }
      // Both written since the provider learned them; absent in older snapshots.
      if (const auto known = (*hosts)[i].find("disk_known");
          known != (*hosts)[i].end() && known->is_boolean()) {
        host.facts.disk_known = known->get<bool>();
      }
      if (const auto unsupported = (*hosts)[i].find("unsupported_images");
          unsupported != (*hosts)[i].end() && unsupported->is_object()) {
        for (const auto& [prefix, why] : unsupported->items()) {
          if (why.is_string()) {
            host.facts.unsupported_images[prefix] = why.get<std::string>();
          }
        }
      }
      if (const nlohmann::json* vms = h.Array("vms")) {
        for (size_t j = 0; j < vms->size(); ++j) {
          Reader v((*vms)[j], at + "/vms/" + std::to_string(j), error);
          VmInfo vm;
          vm.id = v.String("id");
          vm.name = v.String("name", true);
          vm.raw_state = v.String("raw_state");
          const std::string state = v.String("state");
          vm.state = VmStateFromName(state.empty() ? vm.raw_state : state);
          if (state == "transitional") {
            vm.state = VmState::kTransitional;
          }
          vm.os_raw = v.String("os");
          vm.os = ParseGuestOs(vm.os_raw);
          vm.cpu = static_cast<uint32_t>(v.Number("cpu"));
          vm.memory_bytes = v.Bytes("memory");
          vm.disk_bytes = v.Bytes("disk");
          vm.ip = v.String("ip");
          host.vms.push_back(std::move(vm));
        }
        std::sort(host.vms.begin(), host.vms.end(),
                  [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
      }
      if (inventory.observed.hosts.contains(host.name)) {
        h.Fail("name", "host \"" + host.name + "\" appears twice");
      }
      inventory.observed.hosts[host.name] = std::move(host);
    }
  }
  if (const nlohmann::json* ledger = top.Array("ledger")) {
    for (size_t i = 0; i < ledger->size(); ++i) {
      Reader e((*ledger)[i], "/ledger/" + std::to_string(i), error);
      inventory.ledger.entries.push_back(LedgerEntry{.vm = e.String("vm", true),
                                                     .vmset = e.String("vmset", true),
                                                     .pool = e.String("pool", true),
                                                     .host = e.String("host", true),
                                                     .provider_id = e.String("provider_id"),
                                                     .template_hash = e.String("template_hash")});
    }
  }
  if (auto it = doc.find("vmset_prune"); it != doc.end() && it->is_object()) {
    for (const auto& [set, value] : it->items()) {
      if (value.is_boolean()) {
        inventory.ledger.vmset_prune[set] = value.get<bool>();
      }
    }
  }
  if (!error.ok()) {
    return error.WithContext("inventory");
  }
  return inventory;
}

}  // namespace flotilla
