#include "reconciler/model/observed.h"

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

VmState ParseVmState(std::string_view raw) {
  const std::string state = AsciiLower(raw);
  if (state == "running") {
    return VmState::kRunning;
  }
  if (state == "stopped") {
    return VmState::kStopped;
  }
  if (state == "suspended") {
    return VmState::kSuspended;
  }
  if (state == "paused") {
    return VmState::kPaused;
  }
  if (state == "invalid") {
    return VmState::kInvalid;
  }
  // prlctl's in-between states: starting, stopping, suspending, resuming, pausing, resetting,
  // restoring, continuing, migrating, deleting, ...
  if (state.size() > 3 && state.ends_with("ing")) {
    return VmState::kTransitional;
  }
  return VmState::kUnknown;
}

const ObservedHost* Observed::FindHost(std::string_view name) const {
  auto it = hosts.find(std::string(name));
  return it == hosts.end() ? nullptr : &it->second;
}

}  // namespace flotilla
