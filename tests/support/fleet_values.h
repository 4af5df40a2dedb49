#pragma once

// Values for planner tests and benchmarks: sizes, a fixed time, and hosts and templates as
// desired and as observed. Everything is built in memory; nothing talks to a host.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "reconciler/model/observed.h"
#include "reconciler/model/quantity.h"
#include "reconciler/model/types.h"

namespace flotilla::testing {

inline constexpr uint64_t kGi = uint64_t{1} << 30;

// A fixed "now" for plans, so that they do not depend on the clock.
inline const std::chrono::system_clock::time_point kNow{std::chrono::hours{500000}};

// The size of an observed host; `cpu` and `memory_gi` include the 1 CPU and 2 GiB the host keeps
// for itself.
struct HostSize {
  uint32_t cpu = 12;
  uint64_t memory_gi = 32;
  uint64_t disk_gi = 1000;
  uint64_t free_disk_gi = 900;
};

// An arm64 host of `pool` that answered at `seen`, with its VM list known (and empty): what the
// provider reports for a reachable host.
inline ObservedHost Online(const std::string& name, const std::string& pool, HostSize size = {},
                           std::chrono::system_clock::time_point seen = kNow) {
  ObservedHost host;
  host.name = name;
  host.pool = pool;
  host.online = true;
  host.vms_known = true;
  host.last_seen = seen;
  host.facts.arch = Arch::kArm64;
  host.facts.total = Resources{
      .cpu = size.cpu, .memory_bytes = size.memory_gi * kGi, .disk_bytes = size.disk_gi * kGi};
  host.facts.system_reserved = Resources{.cpu = 1, .memory_bytes = 2 * kGi};
  host.facts.available = Resources{.cpu = size.cpu - 1,
                                   .memory_bytes = (size.memory_gi - 2) * kGi,
                                   .disk_bytes = size.free_disk_gi * kGi};
  return host;
}

// A host of a HostPool, reached at `scheme`://`name`.
inline HostSpec Host(const std::string& name, std::vector<std::string> tags = {},
                     const std::string& scheme = "http") {
  return HostSpec{.name = name, .address = scheme + "://" + name, .tags = std::move(tags)};
}

// An arm64 VM template.
inline VMTemplate Template(const std::string& image, GuestOs os, uint32_t cpu, uint64_t memory_gi,
                           uint64_t disk_gi) {
  return VMTemplate{.image = image,
                    .os = os,
                    .arch = Arch::kArm64,
                    .cpu = cpu,
                    .memory = Quantity::FromBytes(memory_gi * kGi),
                    .disk = Quantity::FromBytes(disk_gi * kGi)};
}

}  // namespace flotilla::testing
