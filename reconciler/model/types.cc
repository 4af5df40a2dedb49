#include "reconciler/model/types.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <iterator>
#include <utility>

namespace flotilla {
namespace {

template <typename E, size_t N>
std::string_view NameOf(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
  for (const auto& [e, name] : table) {
    if (e == value) {
      return name;
    }
  }
  return "?";
}

template <typename E, size_t N>
std::optional<E> ValueOf(const std::array<std::pair<E, std::string_view>, N>& table,
                         std::string_view text) {
  for (const auto& [e, name] : table) {
    if (name == text) {
      return e;
    }
  }
  return std::nullopt;
}

constexpr std::array<std::pair<Arch, std::string_view>, 2> kArchNames = {{
    {Arch::kArm64, "arm64"},
    {Arch::kX86_64, "x86_64"},
}};
constexpr std::array<std::pair<GuestOs, std::string_view>, 2> kOsNames = {{
    {GuestOs::kMacos, "macos"},
    {GuestOs::kLinux, "linux"},
}};
constexpr std::array<std::pair<PowerState, std::string_view>, 2> kStateNames = {{
    {PowerState::kRunning, "running"},
    {PowerState::kStopped, "stopped"},
}};
constexpr std::array<std::pair<Placement, std::string_view>, 2> kPlacementNames = {{
    {Placement::kSpread, "spread"},
    {Placement::kPack, "pack"},
}};
constexpr std::array<std::pair<UpdateStrategyType, std::string_view>, 3> kStrategyNames = {{
    {UpdateStrategyType::kRolling, "Rolling"},
    {UpdateStrategyType::kRecreate, "Recreate"},
    {UpdateStrategyType::kOnDelete, "OnDelete"},
}};

template <typename T>
const T* FindByName(const std::vector<T>& items, std::string_view name) {
  for (const T& item : items) {
    if (item.meta.name == name) {
      return &item;
    }
  }
  return nullptr;
}

}  // namespace

std::string_view ToString(Arch arch) { return NameOf(kArchNames, arch); }
std::string_view ToString(GuestOs os) { return NameOf(kOsNames, os); }
std::string_view ToString(PowerState state) { return NameOf(kStateNames, state); }
std::string_view ToString(Placement placement) { return NameOf(kPlacementNames, placement); }
std::string_view ToString(UpdateStrategyType type) { return NameOf(kStrategyNames, type); }
std::optional<Arch> ParseArch(std::string_view text) { return ValueOf(kArchNames, text); }
std::optional<GuestOs> ParseGuestOs(std::string_view text) { return ValueOf(kOsNames, text); }
std::optional<PowerState> ParsePowerState(std::string_view text) {
  return ValueOf(kStateNames, text);
}
std::optional<Placement> ParsePlacement(std::string_view text) {
  return ValueOf(kPlacementNames, text);
}
std::optional<UpdateStrategyType> ParseUpdateStrategyType(std::string_view text) {
  return ValueOf(kStrategyNames, text);
}

std::string SourceLocation::ToString() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

bool HostSpec::HasAllTags(const std::vector<std::string>& wanted) const {
  return std::includes(tags.begin(), tags.end(), wanted.begin(), wanted.end());
}

std::string VMSet::VMName(uint32_t ordinal) const {
  // One allocation, sized up front (the planner names every desired VM of a plan).
  char digits[10];
  const auto end = std::to_chars(std::begin(digits), std::end(digits), ordinal).ptr;
  std::string name;
  name.reserve(meta.name.size() + 1 + static_cast<size_t>(end - digits));
  name.append(meta.name).append(1, '-').append(digits, end);
  return name;
}

const HostPool* Desired::FindPool(std::string_view name) const { return FindByName(pools, name); }
const VMSet* Desired::FindSet(std::string_view name) const { return FindByName(sets, name); }

Desired Desired::OnlyPools(const std::vector<std::string>& names) const {
  if (names.empty()) {
    return *this;
  }
  const auto named = [&](const std::string& pool) {
    return std::find(names.begin(), names.end(), pool) != names.end();
  };
  Desired out;
  for (const HostPool& pool : pools) {
    if (named(pool.meta.name)) {
      out.pools.push_back(pool);
    }
  }
  for (const VMSet& set : sets) {
    if (named(set.pool)) {
      out.sets.push_back(set);
    }
  }
  return out;
}

std::string Desired::MissingPools(const std::vector<std::string>& names) const {
  std::string missing;
  for (const std::string& name : names) {
    if (FindPool(name) == nullptr) {
      missing += (missing.empty() ? "" : ", ") + name;
    }
  }
  if (missing.empty()) {
    return "";
  }
  std::string known;
  for (const HostPool& pool : pools) {
    known += (known.empty() ? "" : ", ") + pool.meta.name;
  }
  return "--pools names pools the revision does not have: " + missing +
         " (its pools: " + (known.empty() ? "none" : known) + ")";
}

size_t Desired::HostCount() const {
  size_t n = 0;
  for (const HostPool& pool : pools) {
    n += pool.hosts.size();
  }
  return n;
}

size_t Desired::DesiredVMCount() const {
  size_t n = 0;
  for (const VMSet& set : sets) {
    n += set.replicas;
  }
  return n;
}

}  // namespace flotilla
