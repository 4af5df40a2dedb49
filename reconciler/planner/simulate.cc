#include "reconciler/planner/simulate.h"

#include <algorithm>

namespace flotilla::planner {
namespace {

void SortVms(ObservedHost& host) {
  std::sort(host.vms.begin(), host.vms.end(),
            [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
}

void RemoveVm(Observed& observed, const std::string& host_name, const std::string& vm) {
  ObservedHost& host = observed.hosts[host_name];
  for (const VmInfo& v : host.vms) {
    if (v.name == vm) {
      host.facts.available.disk_bytes += v.disk_bytes;
    }
  }
  std::erase_if(host.vms, [&](const VmInfo& v) { return v.name == vm; });
}

}  // namespace

void SimulateApply(const Plan& plan, const Desired& desired, Observed& observed, Ledger& ledger,
                   uint64_t default_disk_bytes) {
  for (const Action& a : plan.actions) {
    switch (a.kind) {
      case ActionKind::kCreate:
      case ActionKind::kReplace: {
        if (a.kind == ActionKind::kReplace) {
          RemoveVm(observed, a.from_host, a.vm);
        }
        const VMTemplate& t = *a.templ;
        ObservedHost& host = observed.hosts[a.host];
        const uint64_t disk = t.disk ? t.disk->bytes() : default_disk_bytes;
        host.vms.push_back(VmInfo{.id = "simulated-" + a.vm,
                                  .name = a.vm,
                                  .state = VmState::kStopped,
                                  .raw_state = "stopped",
                                  .os = t.os,
                                  .cpu = t.cpu,
                                  .memory_bytes = t.memory.bytes(),
                                  .disk_bytes = disk});
        host.facts.available.disk_bytes -= std::min(host.facts.available.disk_bytes, disk);
        SortVms(host);
        std::erase_if(ledger.entries, [&](const LedgerEntry& e) { return e.vm == a.vm; });
        ledger.entries.push_back(LedgerEntry{.vm = a.vm,
                                             .vmset = a.vmset,
                                             .pool = a.pool,
                                             .host = a.host,
                                             .provider_id = "simulated-" + a.vm,
                                             .template_hash = a.template_hash});
        break;
      }
      case ActionKind::kStart:
      case ActionKind::kStop:
        for (VmInfo& vm : observed.hosts[a.host].vms) {
          if (vm.name == a.vm) {
            vm.state = a.kind == ActionKind::kStart ? VmState::kRunning : VmState::kStopped;
            vm.raw_state = std::string(ToString(vm.state));
          }
        }
        break;
      case ActionKind::kDelete:
        RemoveVm(observed, a.host, a.vm);
        std::erase_if(ledger.entries, [&](const LedgerEntry& e) { return e.vm == a.vm; });
        break;
      case ActionKind::kAdopt:
        std::erase_if(ledger.entries, [&](const LedgerEntry& e) { return e.vm == a.vm; });
        ledger.entries.push_back(LedgerEntry{.vm = a.vm,
                                             .vmset = a.vmset,
                                             .pool = a.pool,
                                             .host = a.host,
                                             .provider_id = a.vm_id,
                                             .template_hash = a.template_hash});
        break;
      case ActionKind::kPrepull: {
        const VMSet* set = desired.FindSet(a.vmset);
        if (set == nullptr || set->image_cache_key.empty()) {
          break;
        }
        std::vector<std::string>& cached = observed.hosts[a.host].facts.cached_images;
        const std::string& key = set->image_cache_key;
        if (std::find(cached.begin(), cached.end(), key) == cached.end()) {
          cached.insert(std::upper_bound(cached.begin(), cached.end(), key), key);
        }
        break;
      }
    }
  }
}

}  // namespace flotilla::planner
