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

std::string NormalizeCatalogName(std::string_view name) {
  static constexpr std::string_view kReplaced = " ,:;()[]{}'\"/\\|<>=+*&^%$#@!`~?";
  std::string out(TrimAscii(name));
  for (char& c : out) {
    if (kReplaced.find(c) != std::string_view::npos) {
      c = '_';
    }
  }
  return AsciiLower(out);
}

std::string ImageCacheKey(std::string_view image) {
  constexpr std::string_view kCatalog = "catalog://";
  if (!image.starts_with(kCatalog)) {
    return std::string(image);
  }
  const std::string_view rest = image.substr(kCatalog.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return std::string(kCatalog) + NormalizeCatalogName(rest);
  }
  return std::string(kCatalog) + NormalizeCatalogName(rest.substr(0, slash)) + "/" +
         NormalizeCatalogName(rest.substr(slash + 1));
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

bool ObservedHost::HasVm(std::string_view name) const {
  return std::any_of(vms.begin(), vms.end(), [&](const VmInfo& vm) { return vm.name == name; });
}

const ObservedHost* Observed::FindHost(std::string_view name) const {
  auto it = hosts.find(std::string(name));
  return it == hosts.end() ? nullptr : &it->second;
}

}  // namespace flotilla
