// Properties of the planner over randomly generated fleets (seeded, so every failure
// reproduces): a plan never places beyond capacity or beyond two running macOS VMs per host,
// never touches unmanaged VMs, never deletes beyond the budget, is deterministic, and applying
// plans to an in-memory world converges within a bounded number of rounds.

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <random>

#include "reconciler/model/normalize.h"
#include "reconciler/model/template_hash.h"
#include "reconciler/planner/planner.h"
#include "reconciler/planner/simulate.h"
#include "tests/support/fleet_values.h"

namespace flotilla::planner {
namespace {

using testing::kGi;
using testing::kNow;
constexpr int kCases = 1000;
constexpr int kMaxRounds = 40;

// An in-memory world the plans are applied to.
struct World {
  Observed observed;
  Ledger ledger;

  void Apply(const Plan& plan, const Desired& desired) {
    SimulateApply(plan, desired, observed, ledger);
  }

  static void Sort(ObservedHost& host) {
    std::sort(host.vms.begin(), host.vms.end(),
              [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
  }
};

struct Generator {
  std::mt19937_64 random;
  explicit Generator(uint64_t seed) : random(seed) {}

  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(random); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(random); }

  HostPool Pool(World& world) {
    HostPool pool;
    pool.meta.name = "p";
    pool.defaults.max_vms = static_cast<uint32_t>(Int(1, 4));
    const int hosts = Int(1, 5);
    for (int i = 0; i < hosts; ++i) {
      HostSpec spec{.name = "h" + std::to_string(i), .address = "http://h" + std::to_string(i)};
      if (Chance(0.5)) {
        spec.tags.push_back("fast");
      }
      spec.cordoned = Chance(0.1);
      pool.hosts.push_back(spec);
      ObservedHost host;
      host.name = spec.name;
      host.pool = "p";
      host.online = !Chance(0.1);
      host.last_seen = kNow;
      host.facts.arch = Chance(0.8) ? Arch::kArm64 : Arch::kX86_64;
      const uint32_t cpu = static_cast<uint32_t>(Int(4, 16));
      const uint64_t memory = static_cast<uint64_t>(Int(8, 64)) * kGi;
      host.facts.total = Resources{.cpu = cpu, .memory_bytes = memory, .disk_bytes = 2000 * kGi};
      host.facts.system_reserved = Resources{.cpu = 1, .memory_bytes = 2 * kGi};
      host.facts.available.disk_bytes = static_cast<uint64_t>(Int(100, 1000)) * kGi;
      // Unmanaged VMs, within capacity and within Apple's limit.
      int64_t cpu_left = cpu - 1;
      int64_t memory_left = static_cast<int64_t>(memory - 2 * kGi);
      int macos_running = 0;
      for (int u = Int(0, 2); u > 0; --u) {
        VmInfo vm{.id = "um", .name = "um-" + spec.name + "-" + std::to_string(u)};
        vm.os = Chance(0.5) ? GuestOs::kMacos : GuestOs::kLinux;
        vm.cpu = 2;
        vm.memory_bytes = 2 * kGi;
        vm.disk_bytes = 10 * kGi;
        const bool run = Chance(0.6) && cpu_left >= 2 && memory_left >= int64_t(2 * kGi) &&
                         (vm.os != GuestOs::kMacos || macos_running < 1);
        vm.state = run ? VmState::kRunning : VmState::kStopped;
        vm.raw_state = std::string(ToString(vm.state));
        if (run) {
          cpu_left -= 2;
          memory_left -= int64_t(2 * kGi);
          macos_running += vm.os == GuestOs::kMacos ? 1 : 0;
        }
        host.vms.push_back(vm);
      }
      World::Sort(host);
      world.observed.hosts[spec.name] = host;
    }
    return pool;
  }

  std::vector<VMSet> Sets() {
    std::vector<VMSet> sets;
    const int count = Int(0, 3);
    for (int i = 0; i < count; ++i) {
      VMSet set;
      set.meta.name = "s" + std::to_string(i);
      set.pool = "p";
      set.replicas = static_cast<uint32_t>(Int(0, 6));
      set.templ = VMTemplate{
          .image = Chance(0.5) ? "catalog://A/1" : "catalog://B/" + std::to_string(Int(1, 2)),
          .os = Chance(0.5) ? GuestOs::kMacos : GuestOs::kLinux,
          .arch = Chance(0.85) ? Arch::kArm64 : Arch::kX86_64,
          .cpu = static_cast<uint32_t>(Int(1, 4)),
          .memory = Quantity::FromBytes(static_cast<uint64_t>(Int(1, 8)) * kGi),
          .disk = Quantity::FromBytes(static_cast<uint64_t>(Int(10, 80)) * kGi),
          .state = Chance(0.8) ? PowerState::kRunning : PowerState::kStopped};
      if (Chance(0.3)) {
        set.selector_tags = {"fast"};
      }
      set.placement = Chance(0.5) ? Placement::kSpread : Placement::kPack;
      set.prune = Chance(0.7);
      const int strategy = Int(0, 2);
      set.update_strategy.type = strategy == 0   ? UpdateStrategyType::kRolling
                                 : strategy == 1 ? UpdateStrategyType::kRecreate
                                                 : UpdateStrategyType::kOnDelete;
      set.update_strategy.max_unavailable = static_cast<uint32_t>(Int(1, 2));
      sets.push_back(set);
    }
    return sets;
  }
};

Desired MakeDesired(const HostPool& pool, const std::vector<VMSet>& sets) {
  Desired desired;
  desired.pools.push_back(pool);
  desired.sets = sets;
  Normalize(desired);
  return desired;
}

// Checks a plan's promises against the world before and after it is applied.
void CheckPlan(const Desired& desired, const World& before, const Plan& plan,
               const PlannerOptions& options, const std::string& where) {
  const size_t managed = before.ledger.entries.size();
  const size_t budget =
      options.max_deletions ? *options.max_deletions : std::max<size_t>(1, managed / 10);
  EXPECT_LE(plan.Count(ActionKind::kDelete), budget) << where;
  // Creates, replaces and prepulls carry their set's template, one copy per set and plan.
  std::map<std::string, const VMTemplate*> templ_of;  // by set
  for (const Action& a : plan.actions) {
    EXPECT_FALSE(a.vm.starts_with("um-")) << where << ": touched unmanaged " << a.vm;
    for (int dep : a.depends_on) {
      EXPECT_LT(dep, a.id) << where;
    }
    const bool builds = a.kind == ActionKind::kCreate || a.kind == ActionKind::kReplace ||
                        a.kind == ActionKind::kPrepull;
    ASSERT_EQ(a.templ.has_value(), builds) << where << ": action " << a.id;
    if (builds) {
      const VMSet* set = desired.FindSet(a.vmset);
      ASSERT_NE(set, nullptr) << where << ": action " << a.id;
      EXPECT_EQ(*a.templ, set->templ) << where << ": action " << a.id;
      EXPECT_EQ(a.template_hash, TemplateHash(set->templ)) << where << ": action " << a.id;
      const VMTemplate*& shared = templ_of[a.vmset];
      if (shared == nullptr) {
        shared = &*a.templ;
      }
      EXPECT_EQ(&*a.templ, shared) << where << ": action " << a.id << " has its own copy";
    }
  }
  World after = before;
  after.Apply(plan, desired);
  for (const auto& [name, host] : after.observed.hosts) {
    if (!host.online) {
      continue;
    }
    int64_t cpu = 0;
    int64_t memory = 0;
    int macos = 0;
    for (const VmInfo& vm : host.vms) {
      if (vm.state == VmState::kRunning) {
        cpu += vm.cpu;
        memory += static_cast<int64_t>(vm.memory_bytes);
        macos += vm.IsMacos() ? 1 : 0;
      }
    }
    EXPECT_LE(macos, 2) << where << ": host " << name;
    EXPECT_LE(cpu, int64_t(host.facts.total.cpu) - 1) << where << ": host " << name;
    EXPECT_LE(memory, int64_t(host.facts.total.memory_bytes - 2 * kGi))
        << where << ": host " << name;
  }
  (void)desired;
}

TEST(PlannerPropertyTest, RandomFleetsKeepEveryPromiseAndConverge) {
  int converged = 0;
  for (int seed = 1; seed <= kCases; ++seed) {
    Generator gen(static_cast<uint64_t>(seed));
    World world;
    const HostPool pool = gen.Pool(world);
    PlannerOptions options;
    options.allow_empty = gen.Chance(0.5);
    // First converge to one desired state, then move to another.
    const std::vector<VMSet> first = gen.Sets();
    std::vector<VMSet> second = gen.Sets();
    for (const VMSet& set : first) {
      world.ledger.vmset_prune[set.meta.name] = set.prune;
    }
    for (const auto& sets : {first, second}) {
      const Desired desired = MakeDesired(pool, sets);
      bool done = false;
      for (int round = 0; round < kMaxRounds && !done; ++round) {
        const std::string where =
            "seed " + std::to_string(seed) + " round " + std::to_string(round);
        const Plan plan = ComputePlan(desired, world.observed, world.ledger, options, kNow);
        ASSERT_EQ(plan, ComputePlan(desired, world.observed, world.ledger, options, kNow))
            << where << ": not deterministic";
        CheckPlan(desired, world, plan, options, where);
        if (::testing::Test::HasFailure()) {
          for (const auto& [n, h] : world.observed.hosts) {
            std::cerr << n << " online=" << h.online << " cpu=" << h.facts.total.cpu
                      << " mem=" << h.facts.total.memory_bytes / kGi << "\n";
            for (const VmInfo& vm : h.vms) {
              std::cerr << "  " << vm.name << " " << ToString(vm.state) << " " << vm.cpu << "\n";
            }
          }
          for (const Action& a : plan.actions) {
            std::cerr << ToString(a.kind) << " " << a.vm << "@" << a.host << " " << a.reason
                      << "\n";
          }
          return;
        }
        done = plan.actions.empty();
        world.Apply(plan, desired);
      }
      ASSERT_TRUE(done) << "seed " << seed << " did not converge in " << kMaxRounds << " rounds";
      for (const VMSet& set : sets) {
        world.ledger.vmset_prune[set.meta.name] = set.prune;
      }
    }
    ++converged;
  }
  EXPECT_EQ(converged, kCases);
}

}  // namespace
}  // namespace flotilla::planner
