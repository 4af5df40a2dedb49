#pragma once

// What hosts report about themselves and their VMs: the input side of planning. Providers fill
// these; the planner and the store read them.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/types.h"

namespace flotilla {

// The state of a VM, reduced to what decisions need. The provider's own spelling is kept in
// VmInfo::raw_state for display.
enum class VmState {
  kRunning,
  kStopped,
  kSuspended,
  kPaused,
  kTransitional,  // starting, stopping, resuming, ...: wait and look again
  kUnknown,       // the host does not know (or said something we do not recognise)
  kInvalid,       // the host has a broken VM registration
};

// Every VmState, in declaration order. Tables keyed by state (the planner's decision table and its
// test) are checked against this list. A new state goes into the enum, ToString (-Wswitch makes
// that mandatory) and here; the static_assert catches a gap or a reordering, and planner_test
// catches a state appended to the enum but not here.
inline constexpr std::array kAllVmStates = {
    VmState::kRunning,      VmState::kStopped, VmState::kSuspended, VmState::kPaused,
    VmState::kTransitional, VmState::kUnknown, VmState::kInvalid,
};
static_assert(
    [] {
      for (std::size_t i = 0; i < kAllVmStates.size(); ++i) {
        if (static_cast<std::size_t>(kAllVmStates[i]) != i) {
          return false;
        }
      }
      return true;
    }(),
    "kAllVmStates must list every VmState once, in declaration order");

std::string_view ToString(VmState state);  // "running", "stopped", ... "transitional"

// The state named by ToString (exactly), or kUnknown. Providers map their own words
// (VmInfo::raw_state) themselves.
VmState VmStateFromName(std::string_view name);

struct Resources {
  uint32_t cpu = 0;  // logical CPUs
  uint64_t memory_bytes = 0;
  uint64_t disk_bytes = 0;

  friend bool operator==(const Resources&, const Resources&) = default;
};

// What a host says about itself.
struct HostFacts {
  std::optional<Arch> arch;   // empty when the host reports an architecture we do not know
  std::string os_name;        // "macOS"
  std::string os_version;     // "15.5"
  std::string agent_version;  // the host API's version, e.g. the DevOps service's "1.0.5"
  std::string hypervisor_version;
  Resources total;                 // the hardware
  Resources system_reserved;       // what the host keeps for itself
  Resources available;             // free for VMs to run, as the host computes it (stopped VMs
                                   // use disk but not cpu or memory)
  uint32_t running_macos_vms = 0;  // Apple allows two per Mac
  // Images the host has cached, as its provider keys them (ProviderRules::ImageCacheKey;
  // VMSet::image_cache_key), sorted, unique.
  std::vector<std::string> cached_images;
  // False when the host does not report its free disk: `available.disk_bytes` and
  // `total.disk_bytes` then mean nothing, and free disk is no placement filter.
  bool disk_known = true;
  // True when these facts are stand-ins for a host that declares none (an offline preview,
  // `flotilla diff` without an inventory): an unknown architecture then fits any template, as
  // `validate` assumes, and placements on the host are marked as assumed.
  bool assumed = false;
  // Images this host cannot create VMs from, by prefix of VMTemplate::image as written (the
  // provider's own words), each with the reason (an agent too old for them, say). Placement
  // skips the host for such images.
  std::map<std::string, std::string> unsupported_images;

  friend bool operator==(const HostFacts&, const HostFacts&) = default;
};

// One VM as the host reports it.
struct VmInfo {
  std::string id;    // the provider's id (a UUID for parallels)
  std::string name;  // the VM's name on the host
  VmState state = VmState::kUnknown;
  std::string raw_state;      // the host's own word for the state
  std::optional<GuestOs> os;  // empty for guests that are neither macOS nor Linux
  std::string os_raw;         // the host's own word ("macosx", "ubuntu", ...)
  std::string type;           // the host's VM type ("APPLE_VZ_VM", "VM", ...)
  uint32_t cpu = 0;
  uint64_t memory_bytes = 0;
  uint64_t disk_bytes = 0;
  std::string ip;  // empty when unknown
  // Set when this VM is a create in progress (or left behind by a crash) for the VM named
  // here (a provider's temporary name, e.g. "ios-1.flotilla-3fa9").
  std::string pending_create_for;

  bool IsMacos() const { return os == GuestOs::kMacos; }

  friend bool operator==(const VmInfo&, const VmInfo&) = default;
};

// One host of the fleet as last observed.
struct ObservedHost {
  std::string name;  // the host's name in its HostPool
  std::string pool;
  // True when the latest observation succeeded. A host that does not answer (or refuses us)
  // is offline: its VMs are unknown, not missing.
  bool online = false;
  // When the host last answered; empty if it never has. Host loss is measured from here.
  std::optional<std::chrono::system_clock::time_point> last_seen;
  std::string error;        // why the latest observation failed; empty when online
  HostFacts facts;          // as of last_seen
  std::vector<VmInfo> vms;  // as of last_seen, sorted by name
  // False while the host has never answered: `vms` is then no list of what it runs (it may run
  // VMs of any name).
  bool vms_known = false;
  // How reliably the host answers, for people (planning uses `online` only). `failures`:
  // consecutive failed observations (0 when online), the first of them at `failing_since`;
  // `error_rate`: the share of failed observation attempts (retries included) among its recent
  // ones. `degraded`: it answers, but some of its recent attempts failed (at least 2 of the
  // last 20), or it has failed for less than reconcile.hostOfflineAfter; a host that is neither
  // online nor degraded is offline.
  uint32_t failures = 0;
  std::optional<std::chrono::system_clock::time_point> failing_since;
  double error_rate = 0.0;
  bool degraded = false;

  // The VM named `name` in `vms`, or null; whether there is one.
  const VmInfo* FindVm(std::string_view name) const;
  bool HasVm(std::string_view name) const { return FindVm(name) != nullptr; }

  friend bool operator==(const ObservedHost&, const ObservedHost&) = default;
  // A field added here is compared by SameApartFromLastSeen too.
};

// Whether `a` and `b` are the same observation of a host but for last_seen (what the store
// keeps apart, as it moves at every answer): every other field is equal.
bool SameApartFromLastSeen(const ObservedHost& a, const ObservedHost& b);

// Every host of the fleet, by name. A host named in a manifest but missing here has never been
// observed (it counts as offline).
struct Observed {
  std::map<std::string, ObservedHost> hosts;

  const ObservedHost* FindHost(std::string_view name) const;
};

// The state word events, the API and metrics use for a host: "online", "degraded", "offline"
// or "unknown" (null: never observed).
std::string_view HostState(const ObservedHost* host);

}  // namespace flotilla
