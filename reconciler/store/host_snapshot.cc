#include "reconciler/store/host_snapshot.h"

#include <exception>
#include <nlohmann/json.hpp>

#include "reconciler/model/inventory_json.h"

namespace flotilla::store {
namespace {

using Json = nlohmann::ordered_json;

std::string StringAt(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

Result<std::string> RenderHostSnapshot(const ObservedHost& host) {
  // Hosts may report text that is not UTF-8: such bytes are stored as U+FFFD rather than
  // losing the whole observation. No exception leaves the store.
  try {
    Inventory one;
    one.observed.hosts.emplace(host.name, host);
    Json doc = InventoryToJson(one);
    Json& h = doc["hosts"][0];
    h["os_name"] = host.facts.os_name;
    h["os_version"] = host.facts.os_version;
    h["agent_version"] = host.facts.agent_version;
    h["hypervisor_version"] = host.facts.hypervisor_version;
    h["running_macos_vms"] = host.facts.running_macos_vms;
    h["vms_known"] = host.vms_known;
    Json& vms = h["vms"];  // in the order of host.vms
    for (size_t i = 0; i < host.vms.size() && i < vms.size(); ++i) {
      vms[i]["os_raw"] = host.vms[i].os_raw;
      vms[i]["type"] = host.vms[i].type;
      vms[i]["pending_create_for"] = host.vms[i].pending_create_for;
    }
    return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
  } catch (const std::exception& e) {
    return Status::InvalidArgument("host " + host.name +
                                   ": cannot store its observation: " + e.what());
  }
}

Result<ObservedHost> ParseHostSnapshot(std::string_view text, const std::string& name) {
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return Status::InvalidArgument("the inventory is not valid JSON");
  }
  Result<Inventory> inventory = InventoryFromJson(doc);
  if (!inventory.ok()) {
    return inventory.status();
  }
  auto it = inventory->observed.hosts.find(name);
  if (it == inventory->observed.hosts.end()) {
    return Status::FailedPrecondition("the snapshot does not describe host " + name);
  }
  ObservedHost host = std::move(it->second);
  const auto hosts = doc.find("hosts");
  if (hosts == doc.end() || !hosts->is_array() || hosts->empty()) {
    return host;  // not reached: the inventory reader found the host there
  }
  const nlohmann::json& h = hosts->front();
  host.facts.os_name = StringAt(h, "os_name");
  host.facts.os_version = StringAt(h, "os_version");
  host.facts.agent_version = StringAt(h, "agent_version");
  host.facts.hypervisor_version = StringAt(h, "hypervisor_version");
  // Snapshots written before the field: a host's VMs are known if it was online then.
  host.vms_known = h.value("vms_known", host.online);
  if (auto running = h.find("running_macos_vms");
      running != h.end() && running->is_number_unsigned()) {
    host.facts.running_macos_vms = running->get<uint32_t>();
  }
  // The inventory reader sorts VMs by name, so the extras are matched by id and name.
  if (auto vms = h.find("vms"); vms != h.end() && vms->is_array()) {
    for (const nlohmann::json& v : *vms) {
      for (VmInfo& vm : host.vms) {
        if (vm.name != StringAt(v, "name") || vm.id != StringAt(v, "id")) {
          continue;
        }
        if (v.contains("os_raw")) {  // else keep what the inventory reader made of "os"
          vm.os_raw = StringAt(v, "os_raw");
        }
        vm.type = StringAt(v, "type");
        vm.pending_create_for = StringAt(v, "pending_create_for");
      }
    }
  }
  return host;
}

}  // namespace flotilla::store
