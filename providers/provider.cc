#include "providers/provider.h"

#include "reconciler/model/text.h"

#include <algorithm>
#include <cctype>

namespace flotilla::providers {
namespace {

constexpr std::string_view kPendingMarker = ".flotilla-";

}  // namespace

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

std::string PendingCreateName(std::string_view final_name, std::string_view nonce) {
  std::string name(final_name);
  name += kPendingMarker;
  name += nonce;
  return name;
}

std::string ParsePendingCreateName(std::string_view vm_name) {
  const size_t at = vm_name.rfind(kPendingMarker);
  if (at == std::string_view::npos || at == 0 || at + kPendingMarker.size() == vm_name.size()) {
    return "";
  }
  const std::string_view final_name = vm_name.substr(0, at);
  if (final_name.find('.') != std::string_view::npos) {
    return "";
  }
  return std::string(final_name);
}

}  // namespace flotilla::providers
