#pragma once

// Placement: which host of a pool gets a new VM (DESIGN section 4).
//
// Filters, in order (a host is counted under the first it fails): offline, cordoned,
// architecture, selector tags (all of them), images the host cannot use (HostFacts::
// unsupported_images), maxVMs, the Apple limit (at most two running macOS VMs per host, counting
// VMs this plan will start), free cpu, memory, disk (not on a host that does not report its
// free disk). Among the hosts left, the host holding an unfinished create of the VM
// (PlannerOptions::unfinished) wins; then hosts whose cache holds the image (HostFacts::
// cached_images against VMSet::image_cache_key) come first; then `spread` takes the host with
// the most free resources and `pack` the one with the least that still fits; ties go to the
// host name. Capacity given out earlier in the same plan counts as used.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "reconciler/model/observed.h"
#include "reconciler/model/types.h"

namespace flotilla::planner {

// A VM an interrupted action of an earlier process still has to delete to be finished (the
// predecessor of a create-first replace, the copy a delete by id was removing): planned as a
// delete by id, first among the deletions, within the deletion budget. The planner takes no
// other notice of that copy (it is no conflict; it is going).
struct FinishDelete {
  std::string vm;
  std::string vmset;
  std::string pool;
  std::string host;
  std::string vm_id;   // as the host reports it
  std::string reason;  // for people

  friend bool operator==(const FinishDelete&, const FinishDelete&) = default;
};

struct PlannerOptions {
  // An offline host's VMs are replaced elsewhere once it has been silent this long.
  std::chrono::seconds host_lost_after{std::chrono::minutes{10}};
  // The deletion budget: at most this many deletes within `deletion_window`; empty =
  // max_deletions_percent of managed VMs (at least 1, unless the percentage is 0).
  std::optional<uint32_t> max_deletions;
  uint32_t max_deletions_percent = 10;
  std::chrono::seconds deletion_window{std::chrono::minutes{10}};
  // Deletions already made within the window (from the journal), and when the oldest of them
  // leaves it; the plan deletes at most the rest of the budget.
  uint32_t deletions_in_window = 0;
  std::optional<std::chrono::system_clock::time_point> window_frees_at;
  // Allow a revision that deletes every managed VM.
  bool allow_empty = false;
  // Adopt, in every VM set, a VM that has a desired name but is not in the ledger (found on
  // exactly one online host of its pool) instead of reporting a conflict: `apply --adopt`.
  // VMSet::adopt_existing does the same for one set.
  bool adopt_existing = false;
  // Disk a VM is assumed to take when its template names none.
  uint64_t default_image_disk_bytes = uint64_t{40} << 30;
  // Running macOS VMs per Mac host (Apple's licence, enforced by Virtualization.framework).
  uint32_t apple_vm_limit = 2;
  // Where an unfinished create of a VM left work (a host job, or a complete temporary VM), and
  // the template hash it was building, by VM name: a new VM with that template goes to that
  // host whenever it fits there, before any other ranking; when its temporary VM is seen there,
  // it asks no disk of the host (the temporary VM already holds it).
  struct Unfinished {
    std::string host;
    std::string template_hash;
    bool temporary_seen = false;
  };
  std::map<std::string, Unfinished> unfinished;
  // Deletions that finish interrupted actions (recovery).
  std::vector<FinishDelete> finish_deletes;
};

// The observed host of each of `pool`'s hosts, in its order (null for a host not observed): looked
// up once per plan, for the planner's parts that walk the pool.
std::vector<const ObservedHost*> ObservedHostsOf(const HostPool& pool, const Observed& observed);

// What a plan makes of the VMs named on a pool's hosts.
class VmRoles {
 public:
  struct Role {
    bool managed = false;          // Flotilla's: it counts towards maxVMs
    bool desired_running = false;  // managed and desired running: its share stays reserved
  };
  virtual Role Of(std::string_view vm) const = 0;

 protected:
  ~VmRoles() = default;
};

// What one host can still take during one plan.
struct HostLoad {
  const HostSpec* spec = nullptr;
  bool online = false;
  std::optional<Arch> arch;
  int64_t total_cpu = 0;
  int64_t total_memory = 0;
  int64_t free_cpu = 0;
  int64_t free_memory = 0;
  int64_t free_disk = 0;
  bool assumed = false;                 // HostFacts::assumed
  uint32_t managed_vms = 0;             // Flotilla's VMs on the host, existing and planned
  uint32_t macos_committed = 0;         // macOS VMs running or to be running
  std::set<std::string> cached_images;  // as VMSet::image_cache_key spells them
  // Image prefixes the host cannot create VMs from, with why (HostFacts); may be null.
  const std::map<std::string, std::string>* unsupported_images = nullptr;
};

// The hosts of one pool and what they can take. Not thread-safe; one per plan.
class Placer {
 public:
  // `roles` says which VMs on hosts are Flotilla's (they count towards maxVMs) and which of
  // those are desired running (their resources stay reserved while they are stopped). All
  // references must outlive the Placer.
  // `observed` is ObservedHostsOf(pool, ...).
  Placer(const HostPool& pool, std::span<const ObservedHost* const> observed, const VmRoles& roles,
         const PlannerOptions& options);

  // The best host for a new VM of `set` (other than `avoid`), reserving its resources; or the
  // reason none fits, e.g. "no host fits ios-4: 4 hosts in pool; 2 insufficient memory (need
  // 8Gi, max free 6Gi), 1 cordoned, 1 offline". `set` must outlive the Placer: which hosts pass
  // its static filters (online, cordoned, architecture, tags, image) is kept by its address.
  struct Choice {
    std::string host;      // empty when nothing fits
    std::string reason;    // why nothing fits
    bool assumed = false;  // the host's facts are assumed (HostLoad::assumed)
  };
  Choice Place(const VMSet& set, const std::string& vm, const std::string& avoid = "");

  // Gives back (sign +1) or takes again (sign -1) what an existing VM on `host` holds, for a VM
  // that is deleted before its replacement is made.
  void Release(const std::string& host, const VmInfo& vm, int sign = +1);

  // Whether an existing stopped VM on `host` has the cpu and memory to start (its share is held
  // unless the host was already over capacity); reserves it when it has.
  bool ReserveStart(const std::string& host, const VmInfo& vm);

  // Whether a macOS VM on `host` may start now without passing the Apple limit, counting starts
  // already planned; reserves the slot when it may.
  bool ReserveMacosStart(const std::string& host);

  // Hosts that could run VMs of `set` (online, not cordoned, its architecture, tags and image)
  // with room on disk for its image as far as they report it, but do not cache the image: where
  // a prepull helps. In name order.
  std::vector<std::string> LackingImage(const VMSet& set) const;

 private:
  // A host that passes a set's static filters (online, not cordoned, its architecture, tags and
  // image; none of them changes during a plan), and whether it caches the set's image.
  struct Eligible {
    HostLoad* load = nullptr;
    bool cached = false;
  };

  bool Reserved(const std::string& host, const VmInfo& vm) const;
  // Whether the stopped VM `vm` on `host` is over capacity (holds no share).
  bool Unreserved(const std::string& host, const VmInfo& vm) const;
  // The hosts passing `set`'s static filters, in name order; computed on the set's first Place.
  const std::vector<Eligible>& EligibleFor(const VMSet& set);
  HostLoad* Find(const std::string& host);

  const HostPool& pool_;
  const PlannerOptions& options_;
  const VmRoles& roles_;
  std::map<std::string, HostLoad> hosts_;  // by name
  std::vector<HostLoad*> by_name_;         // hosts_ in its order, to walk without the tree
  std::vector<HostLoad*> fits_;            // Place's candidates, kept to reuse its memory
  std::unordered_map<const VMSet*, std::vector<Eligible>> eligible_;  // by set
  std::map<std::string, uint32_t> macos_running_;  // running now + starts planned, by host
  std::set<std::pair<std::string, std::string>> unreserved_;  // (host, VM) over capacity
};

}  // namespace flotilla::planner
