#include "providers/provider.h"

#include "reconciler/model/text.h"

#include <algorithm>
#include <cctype>
#include <thread>

namespace flotilla::providers {
namespace {

constexpr std::string_view kPendingMarker = ".flotilla-";

}  // namespace

bool SleepWithin(std::chrono::milliseconds wait, Deadline deadline) {
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline) {
    return false;
  }
  std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(wait, deadline - now));
  return std::chrono::steady_clock::now() < deadline;
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

namespace {
constexpr std::string_view kPrepullPrefix = "flotilla-prepull-h";
}  // namespace

std::string PrepullVmName(std::string_view image_cache_key) {
  return std::string(kPrepullPrefix) + HexHash(image_cache_key, 8);
}

bool IsPrepullVmName(std::string_view vm_name) {
  return vm_name.size() == kPrepullPrefix.size() + 8 && vm_name.starts_with(kPrepullPrefix) &&
         vm_name.find_first_not_of("0123456789abcdef", kPrepullPrefix.size()) ==
             std::string_view::npos;
}

}  // namespace flotilla::providers
