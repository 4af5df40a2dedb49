#include "reconciler/api/views.h"

#include <ctime>
#include <map>
#include <string_view>
#include <unordered_map>

#include "reconciler/api/json_text.h"
#include "reconciler/api/telemetry.h"
#include "reconciler/model/template_hash.h"
#include "reconciler/model/text.h"
#include "reconciler/planner/placement.h"

namespace flotilla::api {
namespace {

using nlohmann::json;

constexpr uint64_t kMiB = uint64_t{1} << 20;

json ResourcesOf(const Resources& r) {
  return {{"cpu", r.cpu}, {"memory_bytes", r.memory_bytes}, {"disk_bytes", r.disk_bytes}};
}

void Add(Resources& sum, const Resources& r) {
  sum.cpu += r.cpu;
  sum.memory_bytes += r.memory_bytes;
  sum.disk_bytes += r.disk_bytes;
}

// The orchestrator's HostResourceItem: MB sizes, `disk_size`.
json OrchestratorResources(const Resources& r, uint32_t apple_vms) {
  return {{"logical_cpu_count", r.cpu},
          {"memory_size", r.memory_bytes / kMiB},
          {"disk_size", r.disk_bytes / kMiB},
          {"total_apple_vms", apple_vms}};
}

// SystemUsageResponse blocks: MB sizes, `disk_count`.
json UsageBlock(const Resources& r) {
  return {{"logical_cpu_count", r.cpu},
          {"memory_size", r.memory_bytes / kMiB},
          {"disk_count", r.disk_bytes / kMiB}};
}

Resources InUse(const ObservedHost& host) {
  Resources used;
  for (const VmInfo& vm : host.vms) {
    if (vm.state == VmState::kRunning) {
      used.cpu += vm.cpu;
      used.memory_bytes += vm.memory_bytes;
      used.disk_bytes += vm.disk_bytes;
    }
  }
  return used;
}

Resources Reserved(const ObservedHost& host) {
  Resources reserved;
  for (const VmInfo& vm : host.vms) {
    if (vm.state != VmState::kRunning) {
      reserved.cpu += vm.cpu;
      reserved.memory_bytes += vm.memory_bytes;
      reserved.disk_bytes += vm.disk_bytes;
    }
  }
  return reserved;
}

std::string ArchOf(const HostSpec& spec, const ObservedHost* host) {
  if (host != nullptr && host->facts.arch) {
    return std::string(ToString(*host->facts.arch));
  }
  return spec.arch ? std::string(ToString(*spec.arch)) : std::string();
}

}  // namespace

OwnerIndex::OwnerIndex(const Ledger& ledger) {
  by_vm_.reserve(ledger.entries.size());
  for (const LedgerEntry& entry : ledger.entries) {
    by_vm_.emplace(entry.vm, &entry);  // the first entry of a name, as Ledger::Find
  }
}

const LedgerEntry* OwnerIndex::Find(std::string_view vm) const {
  const auto found = by_vm_.find(vm);
  return found != by_vm_.end() ? found->second : nullptr;
}

const LedgerEntry* OwnerIndex::Owner(const VmInfo& vm, const std::string& host) const {
  const LedgerEntry* entry = Find(vm.name);
  return entry != nullptr && entry->host == host ? entry : nullptr;
}

std::string FormatTime(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

std::string WithoutCredentials(std::string_view address) {
  const size_t scheme = address.find("://");
  const size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  const size_t end = address.find_first_of("/?#", start);
  const std::string_view authority =
      address.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) {
    return std::string(address);
  }
  return std::string(address.substr(0, start)) + std::string(address.substr(start + at + 1));
}

namespace {

std::vector<std::string> HostConditions(const HostFacts& facts) {
  std::vector<std::string> conditions;
  for (const auto& [prefix, why] : facts.unsupported_images) {
    conditions.push_back("cannot create VMs from " + prefix + " images: " + why);
  }
  if (!facts.disk_known) {
    conditions.push_back("reports no free disk: disk is not checked when VMs are placed here");
  }
  return conditions;
}

}  // namespace

// Whether an observed host runs macOS (Apple's limit of two running macOS VMs applies).
bool IsMac(const HostFacts& facts) {
  const std::string os = AsciiLower(facts.os_name);
  return os.find("mac") != std::string::npos || os.find("darwin") != std::string::npos;
}

namespace {

// About how much text one VM takes in /api/v1/vms and in the orchestrator's machines, and one
// host in /api/v1/hosts (measured on bench/api's fleet: 504, 585 and 828 bytes): what the
// unfiltered views reserve up front (JsonText::Reserve), a little more than they usually need.
constexpr size_t kVmTextBytes = 560;
constexpr size_t kMachineTextBytes = 640;
constexpr size_t kHostTextBytes = 900;

size_t CountVms(const Snapshot& snapshot) {
  size_t vms = 0;
  for (const auto& [name, host] : snapshot.observed.hosts) {
    vms += host.vms.size();
  }
  return vms;
}

}  // namespace

std::string HostsText(const Snapshot& snapshot) {
  const OwnerIndex owners(snapshot.ledger);
  const auto resources = [](JsonText& out, const Resources& r) {
    out.BeginObject();
    out.Key("cpu");
    out.Number(r.cpu);
    out.Key("disk_bytes");
    out.Number(r.disk_bytes);
    out.Key("memory_bytes");
    out.Number(r.memory_bytes);
    out.EndObject();
  };
  JsonText out;
  out.Reserve(snapshot.observed.hosts.size() * kHostTextBytes);
  out.BeginObject();
  out.Key("hosts");
  out.BeginArray();
  for (const HostPool& pool : snapshot.desired.pools) {
    for (const HostSpec& spec : pool.hosts) {
      const ObservedHost* host = snapshot.observed.FindHost(spec.name);
      size_t vms = 0;
      size_t managed = 0;
      if (host != nullptr) {
        for (const VmInfo& vm : host->vms) {
          if (vm.pending_create_for.empty()) {
            ++vms;
            managed += owners.Owner(vm, spec.name) != nullptr ? 1 : 0;
          }
        }
      }
      // What a host that answered once has; keys in nlohmann's (sorted) order.
      const bool seen = host != nullptr && host->last_seen.has_value();
      out.BeginObject();
      out.Key("address");
      out.String(WithoutCredentials(spec.address));
      if (seen) {
        out.Key("agent_version");
        out.String(host->facts.agent_version);
      }
      out.Key("arch");
      out.String(ArchOf(spec, host));
      if (seen) {
        out.Key("conditions");
        out.BeginArray();
        for (const std::string& condition : HostConditions(host->facts)) {
          out.String(condition);
        }
        out.EndArray();
      }
      out.Key("cordoned");
      out.Bool(spec.cordoned);
      out.Key("error");
      out.String(host != nullptr ? std::string_view(host->error) : std::string_view());
      out.Key("error_rate");
      out.Double(host != nullptr ? host->error_rate : 0.0);
      out.Key("failed_observations");
      out.Number(host != nullptr ? host->failures : 0);
      out.Key("last_seen");
      if (seen) {
        out.String(FormatTime(*host->last_seen));
      } else {
        out.Null();
      }
      if (seen) {
        out.Key("macos_vms");
        if (IsMac(host->facts)) {
          out.BeginObject();
          out.Key("limit");
          out.Number(planner::PlannerOptions{}.apple_vm_limit);
          out.Key("running");
          out.Number(host->facts.running_macos_vms);
          out.EndObject();
        } else {
          out.Null();
        }
      }
      out.Key("managed_vms");
      out.Number(managed);
      out.Key("max_vms");
      out.Number(spec.max_vms.value_or(0));
      out.Key("name");
      out.String(spec.name);
      if (seen) {
        out.Key("os");
        out.String(host->facts.os_name + " " + host->facts.os_version);
      }
      out.Key("pool");
      out.String(pool.meta.name);
      out.Key("provider");
      out.String(pool.provider);
      out.Key("resources");
      if (seen) {
        out.BeginObject();
        out.Key("available");
        resources(out, host->facts.available);
        out.Key("total");
        resources(out, host->facts.total);
        out.EndObject();
      } else {
        out.Null();
      }
      out.Key("state");
      out.String(HostState(host));
      out.Key("tags");
      out.BeginArray();
      for (const std::string& tag : spec.tags) {
        out.String(tag);
      }
      out.EndArray();
      out.Key("vms");
      out.Number(vms);
      out.EndObject();
    }
  }
  out.EndArray();
  out.Key("observed_at");
  out.String(FormatTime(snapshot.observed_at));
  out.Key("revision");
  out.String(snapshot.sha);
  out.EndObject();
  return out.Finish();
}

json HostsJson(const Snapshot& snapshot) { return json::parse(HostsText(snapshot)); }

VmRow VmRowOf(const VmInfo& vm, const LedgerEntry* owner, const TemplateHashes& current,
              std::string_view pool, std::string_view host, std::string_view host_state) {
  VmRow row{.vm = vm,
            .pool = pool,
            .host = host,
            .host_state = host_state,
            .os = vm.os ? ToString(*vm.os) : std::string_view(vm.os_raw),
            .state = ToString(vm.state),
            .managed = owner != nullptr};
  if (owner != nullptr) {
    row.vmset = owner->vmset;
    row.template_hash = owner->template_hash;
    if (const auto set = current.find(owner->vmset); set != current.end()) {
      row.outdated = owner->template_hash != set->second;
    }
  }
  return row;
}

void WriteVmRow(JsonText& out, const VmRow& row) {
  // Keys in nlohmann's (sorted) order, as every other answer of the API.
  out.BeginObject();
  out.Key("cpu");
  out.Number(row.vm.cpu);
  out.Key("disk_bytes");
  out.Number(row.vm.disk_bytes);
  out.Key("host");
  out.String(row.host);
  out.Key("host_state");
  out.String(row.host_state);
  out.Key("id");
  out.String(row.vm.id);
  out.Key("ip");
  out.String(row.vm.ip);
  out.Key("managed");
  out.Bool(row.managed);
  out.Key("memory_bytes");
  out.Number(row.vm.memory_bytes);
  out.Key("name");
  out.String(row.vm.name);
  out.Key("os");
  out.String(row.os);
  out.Key("outdated");
  if (row.outdated) {
    out.Bool(*row.outdated);
  } else {
    out.Null();
  }
  out.Key("pool");
  out.String(row.pool);
  out.Key("state");
  out.String(row.state);
  out.Key("template_hash");
  out.String(row.template_hash);
  out.Key("vmset");
  out.String(row.vmset);
  out.EndObject();
}

TemplateHashes CurrentTemplateHashes(const Snapshot& snapshot) {
  TemplateHashes current;
  for (const VMSet& set : snapshot.desired.sets) {
    current[set.meta.name] = TemplateHash(set.templ);
  }
  return current;
}

std::string VmsText(const Snapshot& snapshot, const VmFilter& filter) {
  const OwnerIndex owners(snapshot.ledger);
  const TemplateHashes current = CurrentTemplateHashes(snapshot);
  JsonText out;
  if (filter.All()) {
    out.Reserve(CountVms(snapshot) * kVmTextBytes);
  }
  out.BeginObject();
  out.Key("observed_at");
  out.String(FormatTime(snapshot.observed_at));
  out.Key("vms");
  out.BeginArray();
  for (const HostPool& pool : snapshot.desired.pools) {
    if (!filter.pool.empty() && filter.pool != pool.meta.name) {
      continue;
    }
    for (const HostSpec& spec : pool.hosts) {
      const ObservedHost* host = snapshot.observed.FindHost(spec.name);
      if (host == nullptr || (!filter.host.empty() && filter.host != spec.name)) {
        continue;
      }
      const std::string_view host_state = HostState(host);
      for (const VmInfo& vm : host->vms) {
        if (!vm.pending_create_for.empty()) {
          continue;
        }
        const LedgerEntry* owner = owners.Owner(vm, spec.name);
        const std::string_view vmset = owner != nullptr ? owner->vmset : std::string_view();
        if ((!filter.vmset.empty() && filter.vmset != vmset) ||
            (!filter.state.empty() && filter.state != ToString(vm.state)) ||
            (filter.managed && *filter.managed != (owner != nullptr))) {
          continue;
        }
        WriteVmRow(out, VmRowOf(vm, owner, current, pool.meta.name, spec.name, host_state));
      }
    }
  }
  out.EndArray();
  out.EndObject();
  return out.Finish();
}

json VmsJson(const Snapshot& snapshot, const VmFilter& filter) {
  return json::parse(VmsText(snapshot, filter));
}

json ResourcesJson(const Snapshot& snapshot) {
  struct Sum {
    size_t hosts = 0;
    size_t online = 0;
    size_t vms = 0;
    Resources total;
    Resources available;
  };
  std::map<std::string, Sum> pools;
  std::map<std::string, Sum> arches;
  for (const HostPool& pool : snapshot.desired.pools) {
    for (const HostSpec& spec : pool.hosts) {
      const ObservedHost* host = snapshot.observed.FindHost(spec.name);
      const std::string arch = ArchOf(spec, host);
      for (Sum* sum : {&pools[pool.meta.name], &arches[arch.empty() ? "unknown" : arch]}) {
        ++sum->hosts;
        if (host == nullptr) {
          continue;
        }
        sum->vms += host->vms.size();
        if (host->online) {
          ++sum->online;
          Add(sum->total, host->facts.total);
          Add(sum->available, host->facts.available);
        }
      }
    }
  }
  auto render = [](const char* key, const std::map<std::string, Sum>& sums) {
    json out = json::array();
    for (const auto& [name, sum] : sums) {
      out.push_back({{key, name},
                     {"hosts", sum.hosts},
                     {"online_hosts", sum.online},
                     {"vms", sum.vms},
                     {"total", ResourcesOf(sum.total)},
                     {"available", ResourcesOf(sum.available)}});
    }
    return out;
  };
  return {{"observed_at", FormatTime(snapshot.observed_at)},
          {"note", "totals count online hosts only"},
          {"pools", render("pool", pools)},
          {"arches", render("arch", arches)}};
}

json OrchestratorHostsJson(const Snapshot& snapshot) {
  json hosts = json::array();
  for (const HostPool& pool : snapshot.desired.pools) {
    for (const HostSpec& spec : pool.hosts) {
      const ObservedHost* host = snapshot.observed.FindHost(spec.name);
      const HostFacts facts = host != nullptr ? host->facts : HostFacts{};
      const uint32_t apple_vms = facts.running_macos_vms;
      const bool healthy = host != nullptr && host->online;
      const Resources in_use = host != nullptr ? InUse(*host) : Resources{};
      const Resources reserved = host != nullptr ? Reserved(*host) : Resources{};
      hosts.push_back({{"id", spec.name},
                       {"enabled", !spec.cordoned},
                       {"host", WithoutCredentials(spec.address)},
                       {"architecture", ArchOf(spec, host)},
                       {"cpu_model", ""},
                       {"os_name", facts.os_name},
                       {"os_version", facts.os_version},
                       {"external_ip_address", ""},
                       {"devops_version", facts.agent_version},
                       {"description", spec.name},
                       {"tags", spec.tags},
                       {"state", host == nullptr ? ""
                                 : healthy       ? "healthy"
                                                 : "unhealthy"},
                       {"parallels_desktop_version", facts.hypervisor_version},
                       {"parallels_desktop_licensed", healthy},
                       {"has_websocket_events", false},
                       {"is_local", false},
                       {"is_reverse_proxy_enabled", false},
                       {"is_log_streaming_enabled", false},
                       {"enabled_modules", json::array()},
                       {"resources", OrchestratorResources(facts.total, apple_vms)},
                       {"detailed_resources",
                        {{"total_apple_vms", apple_vms},
                         {"system_reserved", OrchestratorResources(facts.system_reserved, 0)},
                         {"total", OrchestratorResources(facts.total, apple_vms)},
                         {"total_available", OrchestratorResources(facts.available, 0)},
                         {"total_in_use", OrchestratorResources(in_use, apple_vms)},
                         {"total_reserved", OrchestratorResources(reserved, 0)}}},
                       {"required_claims", json::array()},
                       {"required_roles", json::array()}});
    }
  }
  return hosts;
}

json OrchestratorResourcesJson(const Snapshot& snapshot) {
  // One entry per architecture, summed over healthy, enabled hosts, as the orchestrator does.
  struct Sum {
    Resources system_reserved, total, available, in_use, reserved;
  };
  std::map<std::string, Sum> arches;
  for (const HostPool& pool : snapshot.desired.pools) {
    for (const HostSpec& spec : pool.hosts) {
      const ObservedHost* host = snapshot.observed.FindHost(spec.name);
      if (host == nullptr || !host->online || spec.cordoned) {
        continue;
      }
      Sum& sum = arches[ArchOf(spec, host)];
      Add(sum.system_reserved, host->facts.system_reserved);
      Add(sum.total, host->facts.total);
      Add(sum.available, host->facts.available);
      Add(sum.in_use, InUse(*host));
      Add(sum.reserved, Reserved(*host));
    }
  }
  json out = json::array();
  for (const auto& [arch, sum] : arches) {
    out.push_back({{"cpu_type", arch},
                   {"cpu_brand", ""},
                   {"system_reserved", UsageBlock(sum.system_reserved)},
                   {"total", UsageBlock(sum.total)},
                   {"total_available", UsageBlock(sum.available)},
                   {"total_in_use", UsageBlock(sum.in_use)},
                   {"total_reserved", UsageBlock(sum.reserved)}});
  }
  return out;
}

std::string OrchestratorMachinesText(const Snapshot& snapshot) {
  // Only VMs of healthy, enabled hosts, with the host_* fields filled, as the orchestrator does.
  // Keys in nlohmann's (sorted, capitals first) order, as every other answer of the API.
  JsonText out;
  out.Reserve(CountVms(snapshot) * kMachineTextBytes);
  out.BeginArray();
  for (const HostPool& pool : snapshot.desired.pools) {
    for (const HostSpec& spec : pool.hosts) {
      const ObservedHost* host = snapshot.observed.FindHost(spec.name);
      if (host == nullptr || !host->online || spec.cordoned) {
        continue;
      }
      const std::string address = WithoutCredentials(spec.address);
      for (const VmInfo& vm : host->vms) {
        out.BeginObject();
        out.Key("Description");
        out.String("");
        out.Key("Hardware");
        out.BeginObject();
        out.Key("cpu");
        out.BeginObject();
        out.Key("cpus");
        out.Number(vm.cpu);
        out.EndObject();
        out.Key("hdd0");
        out.BeginObject();
        out.Key("size");
        out.String(std::to_string(vm.disk_bytes / kMiB) + "Mb");
        out.EndObject();
        out.Key("memory");
        out.BeginObject();
        out.Key("size");
        out.String(std::to_string(vm.memory_bytes / kMiB) + "Mb");
        out.EndObject();
        out.EndObject();
        out.Key("ID");
        out.String(vm.id);
        out.Key("Name");
        out.String(vm.name);
        out.Key("OS");
        out.String(vm.os_raw);
        out.Key("State");
        out.String(vm.raw_state.empty() ? ToString(vm.state) : std::string_view(vm.raw_state));
        out.Key("Type");
        out.String(vm.type);
        out.Key("host");
        out.String(address);
        out.Key("host_external_ip_address");
        out.String("");
        out.Key("host_id");
        out.String(spec.name);
        out.Key("host_name");
        out.String(spec.name);
        out.Key("host_state");
        out.String("healthy");
        out.Key("host_url");
        out.String(address);
        out.Key("internal_ip_address");
        out.String(vm.ip);
        out.EndObject();
      }
    }
  }
  out.EndArray();
  return out.Finish();
}

json OrchestratorMachinesJson(const Snapshot& snapshot) {
  return json::parse(OrchestratorMachinesText(snapshot));
}

}  // namespace flotilla::api
