#pragma once

// The desired state of a fleet, as the manifests of one revision describe it.
//
// These are plain values. The manifest decoder fills what a document says; `Normalize`
// (normalize.h) then fills every default and sorts every list, so that two Desired values
// compare equal exactly when they mean the same fleet, whatever the order or spelling of the
// YAML they came from.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/model/quantity.h"

namespace flotilla {

enum class Arch { kArm64, kX86_64 };
enum class GuestOs { kMacos, kLinux };
enum class PowerState { kRunning, kStopped };
enum class Placement { kSpread, kPack };
enum class UpdateStrategyType { kRolling, kRecreate, kOnDelete };

// Spelling as in manifests ("arm64", "x86_64", "macos", "running", "spread", "Rolling", ...).
std::string_view ToString(Arch arch);
std::string_view ToString(GuestOs os);
std::string_view ToString(PowerState state);
std::string_view ToString(Placement placement);
std::string_view ToString(UpdateStrategyType type);
std::optional<Arch> ParseArch(std::string_view text);
std::optional<GuestOs> ParseGuestOs(std::string_view text);
std::optional<PowerState> ParsePowerState(std::string_view text);
std::optional<Placement> ParsePlacement(std::string_view text);
std::optional<UpdateStrategyType> ParseUpdateStrategyType(std::string_view text);

// Where an object was declared: "fleet/pools.yaml", line and column 1-based.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;

  std::string ToString() const;  // "file:line:column"
  friend bool operator==(const SourceLocation&, const SourceLocation&) = default;
};

struct ObjectMeta {
  std::string name;                           // a DNS label
  std::map<std::string, std::string> labels;  // free-form
  SourceLocation origin;                      // informational; not part of equality

  friend bool operator==(const ObjectMeta& a, const ObjectMeta& b) {
    return a.name == b.name && a.labels == b.labels;
  }
};

// What a host can hold in total, as declared in the manifest. Observed facts from the host
// itself take precedence at run time; the declaration lets `validate` check fit without network.
struct HostCapacity {
  uint32_t cpu = 0;
  Quantity memory;
  Quantity disk;

  friend bool operator==(const HostCapacity&, const HostCapacity&) = default;
};

struct HostSpec {
  std::string name;               // unique across all pools
  std::string address;            // in the provider's terms; unique across all pools
  std::vector<std::string> tags;  // sorted, unique after Normalize
  bool cordoned = false;          // no new VMs; managed VMs are drained
  // After Normalize: the host's own maxVMs, else the pool's defaults.maxVMs; empty: no cap (the
  // host's resources bound it, and for macOS guests Apple's limit of 2 running per Mac).
  std::optional<uint32_t> max_vms;
  bool max_vms_from_pool = false;        // set by Normalize when max_vms is the pool's default
  std::optional<Arch> arch;              // declared; empty = learned from the host
  std::optional<HostCapacity> capacity;  // declared; empty = learned from the host
  SourceLocation origin;

  bool HasAllTags(const std::vector<std::string>& wanted) const;  // REQUIRES: both sorted

  friend bool operator==(const HostSpec& a, const HostSpec& b) {
    return a.name == b.name && a.address == b.address && a.tags == b.tags &&
           a.cordoned == b.cordoned && a.max_vms == b.max_vms && a.arch == b.arch &&
           a.capacity == b.capacity;
  }
};

struct HostDefaults {
  std::optional<uint32_t> max_vms;  // empty: no cap
  std::optional<Arch> arch;
  std::optional<HostCapacity> capacity;

  friend bool operator==(const HostDefaults&, const HostDefaults&) = default;
};

struct HostPool {
  ObjectMeta meta;
  // A ProviderRegistry name. Pools that name none are parallels pools, as they always were.
  std::string provider = "parallels";
  std::string credentials_ref;  // <secretsDir>/<ref>/...; empty = none
  // The provider's own keys of `spec` as the manifest spells them (a JSON object), checked by
  // the schema the provider registers (ProviderRules::settings_schema). Only the provider
  // reads them.
  nlohmann::json settings = nlohmann::json::object();
  HostDefaults defaults;
  std::vector<HostSpec> hosts;  // sorted by name after Normalize
  // spec.access.allowedPorts: the VM ports tunnels through the API may reach.
  std::vector<uint16_t> allowed_ports = {22, 5900};

  friend bool operator==(const HostPool&, const HostPool&) = default;
};

// Everything that decides what a VM is. Changing any field except `state` needs a new VM;
// TemplateHash (template_hash.h) covers exactly those fields.
struct VMTemplate {
  std::string image;  // in the pool's provider's terms (ProviderRules::CheckImage)
  GuestOs os = GuestOs::kMacos;
  Arch arch = Arch::kArm64;
  uint32_t cpu = 0;
  Quantity memory;
  std::optional<Quantity> disk;  // empty = the image's own disk size
  PowerState state = PowerState::kRunning;
  std::string startup_script;  // empty = none

  friend bool operator==(const VMTemplate&, const VMTemplate&) = default;
};

struct UpdateStrategy {
  UpdateStrategyType type = UpdateStrategyType::kRolling;
  uint32_t max_unavailable = 1;  // Rolling only
  // Rolling only: pull a new catalog image onto the hosts that lack it before replacing.
  bool prepull = true;

  friend bool operator==(const UpdateStrategy&, const UpdateStrategy&) = default;
};

struct VMSet {
  ObjectMeta meta;
  std::string pool;
  uint32_t replicas = 0;
  std::vector<std::string> selector_tags;  // hosts must carry all; sorted, unique
  Placement placement = Placement::kSpread;
  VMTemplate templ;
  UpdateStrategy update_strategy;
  // spec.template.access.sshUser: whom `flotilla ssh` logs in as; empty: ssh's default. Not
  // part of the template's hash: changing it replaces no VM.
  std::string ssh_user;
  bool prune = false;     // delete managed VMs that are no longer desired
  bool self_heal = true;  // correct out-of-band changes (false: only report them)
  // Take over VMs that already carry the set's names instead of reporting conflicts.
  bool adopt_existing = false;
  // How the pool's hosts name the image in HostFacts::cached_images; empty when they do not
  // cache it (no prepull, no preference for hosts that hold it). Derived, not declared: the
  // manifest loader fills it from the pool's provider (ProviderRules::ImageCacheKey).
  std::string image_cache_key;

  // "<name>-<ordinal>", the stable name of one replica.
  std::string VMName(uint32_t ordinal) const;

  friend bool operator==(const VMSet&, const VMSet&) = default;
};

// All pools and sets of one revision. Sorted by name after Normalize.
struct Desired {
  std::vector<HostPool> pools;
  std::vector<VMSet> sets;

  const HostPool* FindPool(std::string_view name) const;
  const VMSet* FindSet(std::string_view name) const;
  size_t HostCount() const;
  size_t DesiredVMCount() const;  // sum of replicas

  // Only the pools named (and their VM sets); all of them when `names` is empty (--pools).
  Desired OnlyPools(const std::vector<std::string>& names) const;
  // Why `names` does not fit: the names it lacks, and the pools it has; "" when every name is
  // one of its pools.
  std::string MissingPools(const std::vector<std::string>& names) const;

  friend bool operator==(const Desired&, const Desired&) = default;
};

}  // namespace flotilla
