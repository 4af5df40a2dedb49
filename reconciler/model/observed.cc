#include "reconciler/model/observed.h"

#include <algorithm>

#include "reconciler/model/text.h"

namespace flotilla {

std::string_view ToString(VmState state) {
  switch (state) {
    case VmState::kRunning:
      return "running";
    case VmState::kStopped:
      return "stopped";
    case VmState::kSuspended:
      return "suspended";
    case VmState::kPaused:
      return "paused";
    case VmState::kTransitional:
      return "transitional";
    case VmState::kUnknown:
      return "unknown";
    case VmState::kInvalid:
      return "invalid";
  }
  return "unknown";
}

VmState VmStateFromName(std::string_view name) {
  for (VmState state : kAllVmStates) {
    if (ToString(state) == name) {
      return state;
    }
  }
  return VmState::kUnknown;
}

std::string_view HostState(const ObservedHost* host) {
  if (host == nullptr) {
    return "unknown";
  }
  return host->degraded ? "degraded" : host->online ? "online" : "offline";
}

const VmInfo* ObservedHost::FindVm(std::string_view name) const {
  auto it = std::find_if(vms.begin(), vms.end(), [&](const VmInfo& vm) { return vm.name == name; });
  return it == vms.end() ? nullptr : &*it;
}

bool SameApartFromLastSeen(const ObservedHost& a, const ObservedHost& b) {
  return a.name == b.name && a.pool == b.pool && a.online == b.online && a.error == b.error &&
         a.facts == b.facts && a.vms == b.vms && a.vms_known == b.vms_known &&
         a.failures == b.failures && a.failing_since == b.failing_since &&
         a.error_rate == b.error_rate && a.degraded == b.degraded;
}

const ObservedHost* Observed::FindHost(std::string_view name) const {
  auto it = hosts.find(std::string(name));
  return it == hosts.end() ? nullptr : &it->second;
}

}  // namespace flotilla
