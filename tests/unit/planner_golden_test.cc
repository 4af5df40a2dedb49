// The planner's plans on many random fleets, pinned in tests/golden/planner_plans.txt: a change
// that is meant to make the planner faster (or to restructure it) must not change any plan.
// Each seed builds a fleet of several pools with offline, lost, never-answered, cordoned and
// removed hosts, hosts of either architecture (or an unknown one), caches, unsupported images and
// VM caps; VM sets with every update strategy, prepulls, selector tags, adoption and selfHeal
// off; VMs in every state, outdated, duplicated, unowned, gone, beyond their replicas, of removed
// sets and pools, and creates in progress; options with deletion budgets, finishing deletes and
// unfinished creates. Its plan (and the plan after that plan is applied in memory) is written out
// in full and recorded as a SHA-256 per seed.
//
// After a deliberate change of behaviour, rewrite the file and review its diff:
//   FLOTILLA_UPDATE_GOLDEN=1 build-test/bin/planner_test --gtest_filter='PlannerGolden*'

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "reconciler/model/digest.h"
#include "reconciler/model/normalize.h"
#include "reconciler/model/template_hash.h"
#include "reconciler/planner/planner.h"
#include "reconciler/planner/simulate.h"
#include "tests/support/fleet_values.h"
#include "tests/support/plan_text.h"
#include "tests/support/text_files.h"

// A named namespace: this file shares a unity build with the other planner tests.
namespace flotilla::planner::golden {
namespace {

using testing::kGi;
using testing::kNow;
constexpr int kSeeds = 200;

// The inputs of one plan.
struct Fleet {
  Desired desired;
  Observed observed;
  Ledger ledger;
  PlannerOptions options;
};

class FleetGenerator {
 public:
  explicit FleetGenerator(uint64_t seed) : random_(seed) {}

  Fleet Make() {
    Fleet fleet;
    const int pools = Int(1, 3);
    for (int p = 0; p < pools; ++p) {
      AddPool(fleet, "p" + std::to_string(p));
    }
    // A pool removed from the repository still has VMs in the ledger.
    if (Chance(0.2)) {
      for (int i = Int(1, 3); i > 0; --i) {
        fleet.ledger.entries.push_back(LedgerEntry{.vm = "gone-pool-" + std::to_string(i),
                                                   .vmset = "gone-pool",
                                                   .pool = "gone",
                                                   .host = "gone-h0",
                                                   .provider_id = "gp" + std::to_string(i),
                                                   .template_hash = "v1-old"});
      }
    }
    // Now and then a revision that would delete every managed VM.
    if (Chance(0.08)) {
      for (VMSet& set : fleet.desired.sets) {
        set.replicas = 0;
        set.prune = true;
      }
      for (auto& [set, prune] : fleet.ledger.vmset_prune) {
        prune = true;
      }
    }
    PlannerOptions& options = fleet.options;
    options.allow_empty = Chance(0.3);
    options.adopt_existing = Chance(0.15);
    if (Chance(0.5)) {
      options.max_deletions = static_cast<uint32_t>(Int(0, 6));
    } else {
      options.max_deletions_percent = static_cast<uint32_t>(Int(0, 2) * 25);
    }
    if (Chance(0.2)) {
      options.deletions_in_window = static_cast<uint32_t>(Int(1, 3));
      if (Chance(0.5)) {
        options.window_frees_at = kNow + std::chrono::minutes(Int(1, 9));
      }
    }
    options.host_lost_after = std::chrono::minutes(Chance(0.5) ? 10 : 30);
    for (auto& [name, host] : fleet.observed.hosts) {
      std::sort(host.vms.begin(), host.vms.end(),
                [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
    }
    Normalize(fleet.desired);
    return fleet;
  }

 private:
  // Not std::uniform_int_distribution and std::bernoulli_distribution: their results differ
  // between standard libraries, and the golden file must not (std::mt19937_64's do not).
  int Int(int lo, int hi) {
    return lo + static_cast<int>(random_() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool Chance(double p) { return static_cast<double>(random_() >> 11) * 0x1.0p-53 < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[static_cast<size_t>(Int(0, static_cast<int>(items.size()) - 1))];
  }

  static constexpr std::array kStates = {
      VmState::kRunning, VmState::kRunning,   VmState::kRunning, VmState::kStopped,
      VmState::kStopped, VmState::kSuspended, VmState::kPaused,  VmState::kTransitional,
      VmState::kUnknown, VmState::kInvalid,
  };

  VmState State() { return kStates[static_cast<size_t>(Int(0, kStates.size() - 1))]; }

  void AddPool(Fleet& fleet, const std::string& name) {
    HostPool pool;
    pool.meta.name = name;
    if (Chance(0.6)) {
      pool.defaults.max_vms = static_cast<uint32_t>(Int(1, 6));
    }
    std::vector<std::string> online_hosts;
    const int hosts = Int(1, 8);
    for (int i = 0; i < hosts; ++i) {
      const std::string host_name = name + "-h" + std::to_string(i);
      HostSpec spec = testing::Host(host_name);
      if (Chance(0.5)) {
        spec.tags.push_back("fast");
      }
      if (Chance(0.2)) {
        spec.tags.push_back("gpu");
      }
      spec.cordoned = Chance(0.1);
      if (Chance(0.15)) {
        spec.max_vms = static_cast<uint32_t>(Int(0, 4));
      }
      if (Chance(0.1)) {
        spec.capacity = HostCapacity{.cpu = 8,
                                     .memory = Quantity::FromBytes(16 * kGi),
                                     .disk = Quantity::FromBytes(500 * kGi)};
      }
      pool.hosts.push_back(spec);
      const int kind = Int(0, 19);  // 0: never observed, 1-2: offline, 3: never answered
      if (kind == 0) {
        continue;
      }
      ObservedHost host = testing::Online(host_name, name,
                                          {.cpu = static_cast<uint32_t>(Int(4, 24)),
                                           .memory_gi = static_cast<uint64_t>(Int(8, 96)),
                                           .disk_gi = 2000,
                                           .free_disk_gi = static_cast<uint64_t>(Int(30, 1200))},
                                          kNow - std::chrono::minutes(Int(0, 1) * 20));
      if (kind <= 2) {
        host.online = false;
        host.error = "connection refused";
      } else if (kind == 3) {
        host.online = false;
        host.vms_known = false;
        host.last_seen = Chance(0.5) ? std::optional(kNow - std::chrono::minutes(2)) : std::nullopt;
      }
      const int arch = Int(0, 9);
      host.facts.arch = arch == 0   ? std::nullopt
                        : arch <= 2 ? std::optional(Arch::kX86_64)
                                    : std::optional(Arch::kArm64);
      host.facts.assumed = Chance(0.1);
      host.facts.disk_known = !Chance(0.1);
      if (Chance(0.1)) {
        host.facts.total.cpu = 0;  // learned from the declared capacity, if any
      }
      if (Chance(0.4)) {
        host.facts.cached_images.push_back("A/1");
      }
      if (Chance(0.3)) {
        host.facts.cached_images.push_back("B/2");
      }
      if (Chance(0.1)) {
        host.facts.unsupported_images["catalog://B"] = "agent too old";
      }
      // Unmanaged VMs.
      for (int u = Int(0, 2); u > 0; --u) {
        host.vms.push_back(VmInfo{.id = "um" + std::to_string(u),
                                  .name = "um-" + host_name + "-" + std::to_string(u),
                                  .state = Chance(0.6) ? VmState::kRunning : VmState::kStopped,
                                  .os = Chance(0.3) ? GuestOs::kMacos : GuestOs::kLinux,
                                  .cpu = static_cast<uint32_t>(Int(1, 4)),
                                  .memory_bytes = static_cast<uint64_t>(Int(1, 8)) * kGi,
                                  .disk_bytes = 20 * kGi});
        host.vms.back().raw_state = std::string(ToString(host.vms.back().state));
      }
      if (host.online) {
        online_hosts.push_back(host_name);
      }
      fleet.observed.hosts[host_name] = std::move(host);
    }
    std::vector<std::string> all_hosts;
    for (const HostSpec& spec : pool.hosts) {
      all_hosts.push_back(spec.name);
    }
    // A host removed from the pool (still observed, still in the ledger).
    const std::string removed_host = name + "-removed";
    if (Chance(0.2)) {
      fleet.observed.hosts[removed_host] = testing::Online(removed_host, name);
      all_hosts.push_back(removed_host);
    }
    fleet.desired.pools.push_back(pool);

    const int sets = Int(0, 5);
    for (int s = 0; s < sets; ++s) {
      AddSet(fleet, pool, name + "s" + std::to_string(s), all_hosts);
    }
    // A set removed from the repository: its VMs remain in the ledger.
    if (Chance(0.3)) {
      const std::string set_name = name + "-old";
      fleet.ledger.vmset_prune[set_name] = Chance(0.6);
      for (int i = 0; i < Int(1, 3); ++i) {
        const std::string vm = set_name + "-" + std::to_string(i);
        const std::string& host = Pick(all_hosts);
        AddVm(fleet, host, vm, "id-" + vm, GuestOs::kLinux, 2, 2);
        fleet.ledger.entries.push_back(LedgerEntry{.vm = vm,
                                                   .vmset = set_name,
                                                   .pool = name,
                                                   .host = host,
                                                   .provider_id = "id-" + vm,
                                                   .template_hash = "v1-old"});
      }
    }
  }

  // Puts a VM on `host` if it is observed with its VMs known; returns whether it did.
  bool AddVm(Fleet& fleet, const std::string& host, const std::string& vm, const std::string& id,
             GuestOs os, uint32_t cpu, uint64_t memory_gi) {
    auto it = fleet.observed.hosts.find(host);
    if (it == fleet.observed.hosts.end() || !it->second.vms_known || it->second.HasVm(vm)) {
      return false;
    }
    VmInfo info{.id = id,
                .name = vm,
                .state = State(),
                .os = os,
                .cpu = cpu,
                .memory_bytes = memory_gi * kGi,
                .disk_bytes = static_cast<uint64_t>(Int(10, 60)) * kGi};
    info.raw_state = std::string(ToString(info.state));
    it->second.vms.push_back(std::move(info));
    return true;
  }

  void AddSet(Fleet& fleet, const HostPool& pool, const std::string& name,
              const std::vector<std::string>& hosts) {
    VMSet set;
    set.meta.name = name;
    set.pool = pool.meta.name;
    set.replicas = static_cast<uint32_t>(Int(0, 8));
    const bool image_a = Chance(0.5);
    const std::string version = std::to_string(Int(1, 2));
    set.templ = VMTemplate{.image = image_a ? "catalog://A/" + version : "catalog://B/" + version,
                           .os = Chance(0.4) ? GuestOs::kMacos : GuestOs::kLinux,
                           .arch = Chance(0.85) ? Arch::kArm64 : Arch::kX86_64,
                           .cpu = static_cast<uint32_t>(Int(1, 6)),
                           .memory = Quantity::FromBytes(static_cast<uint64_t>(Int(1, 12)) * kGi),
                           .state = Chance(0.75) ? PowerState::kRunning : PowerState::kStopped};
    if (Chance(0.8)) {
      set.templ.disk = Quantity::FromBytes(static_cast<uint64_t>(Int(10, 120)) * kGi);
    }
    if (Chance(0.8)) {
      set.image_cache_key = (image_a ? "A/" : "B/") + version;
    }
    if (Chance(0.3)) {
      set.selector_tags = {"fast"};
    }
    set.placement = Chance(0.5) ? Placement::kSpread : Placement::kPack;
    set.prune = Chance(0.7);
    set.self_heal = !Chance(0.15);
    set.adopt_existing = Chance(0.15);
    const int strategy = Int(0, 5);
    set.update_strategy.type = strategy <= 3   ? UpdateStrategyType::kRolling
                               : strategy == 4 ? UpdateStrategyType::kRecreate
                                               : UpdateStrategyType::kOnDelete;
    set.update_strategy.max_unavailable = static_cast<uint32_t>(Int(0, 3));
    set.update_strategy.prepull = Chance(0.7);
    const std::string hash = TemplateHash(set.templ);
    const uint32_t memory_gi = static_cast<uint32_t>(set.templ.memory.bytes() / kGi);

    for (uint32_t i = 0; i < set.replicas + 3; ++i) {
      const std::string vm = set.VMName(i);
      const int kind = Int(0, 19);
      const std::string& host = Pick(hosts);
      const std::string id = "id-" + vm;
      // 0-3: none; 4-12: ours; 13: ours, the ledger names another host; 14: ours, gone from its
      // host; 15-16: not ours; 17: ours, and a copy elsewhere; 18: a create in progress;
      // 19: ours on a host removed from the pool or never observed.
      if (kind <= 3) {
        continue;
      }
      const bool outdated = Chance(0.25);
      LedgerEntry entry{.vm = vm,
                        .vmset = name,
                        .pool = pool.meta.name,
                        .host = host,
                        .provider_id = id,
                        .template_hash = outdated ? "v1-old" : hash};
      if (kind == 15 || kind == 16) {
        AddVm(fleet, host, vm, id, set.templ.os, set.templ.cpu, memory_gi);
        continue;
      }
      if (kind == 18) {
        if (AddVm(fleet, host, vm + ".flotilla-tmp", "tmp-" + vm, set.templ.os, set.templ.cpu,
                  memory_gi)) {
          fleet.observed.hosts[host].vms.back().pending_create_for = vm;
        }
        fleet.options.unfinished[vm] =
            PlannerOptions::Unfinished{.host = host,
                                       .template_hash = Chance(0.7) ? hash : "v1-old",
                                       .temporary_seen = Chance(0.5)};
        continue;
      }
      if (kind != 14 && kind != 19) {
        AddVm(fleet, host, vm, id, set.templ.os, set.templ.cpu, memory_gi);
      }
      if (kind == 13) {
        entry.host = Pick(hosts);
      }
      if (kind == 17) {
        AddVm(fleet, Pick(hosts), vm, "other-" + vm, set.templ.os, set.templ.cpu, memory_gi);
      }
      if (kind == 19) {
        entry.host = pool.meta.name + "-removed";
        AddVm(fleet, entry.host, vm, id, set.templ.os, set.templ.cpu, memory_gi);
      }
      // A recovery delete of the VM's copy (by id), now and then.
      if (Chance(0.05)) {
        fleet.options.finish_deletes.push_back(FinishDelete{.vm = vm,
                                                            .vmset = name,
                                                            .pool = pool.meta.name,
                                                            .host = host,
                                                            .vm_id = id,
                                                            .reason = "finish a replace"});
      }
      fleet.ledger.entries.push_back(std::move(entry));
    }
    fleet.ledger.vmset_prune[name] = set.prune;
    fleet.desired.sets.push_back(std::move(set));
  }

  std::mt19937_64 random_;
};

// One line per seed: the digest of its first plan and of the plan after it, and their sizes.
std::string Record(int seed, std::string* first_plan) {
  Fleet fleet = FleetGenerator(static_cast<uint64_t>(seed)).Make();
  const Plan first = ComputePlan(fleet.desired, fleet.observed, fleet.ledger, fleet.options, kNow);
  SimulateApply(first, fleet.desired, fleet.observed, fleet.ledger);
  fleet.options.finish_deletes.clear();
  const Plan second = ComputePlan(fleet.desired, fleet.observed, fleet.ledger, fleet.options, kNow);
  *first_plan = testing::PlanText(first);
  const std::string text = *first_plan + "--\n" + testing::PlanText(second);
  return "seed " + std::to_string(seed) + ": " + std::to_string(first.actions.size()) +
         " actions, " + std::to_string(first.findings.size()) + " findings; then " +
         std::to_string(second.actions.size()) + " actions, " +
         std::to_string(second.findings.size()) + " findings; sha256 " + Sha256Hex(text) + "\n";
}

TEST(PlannerGoldenTest, RandomFleetsPlanAsRecorded) {
  const std::string path = std::string(FLOTILLA_SOURCE_DIR) + "/tests/golden/planner_plans.txt";
  std::string actual;
  std::vector<std::string> plans;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    plans.emplace_back();
    actual += Record(seed, &plans.back());
  }
  if (testing::UpdateRequested("FLOTILLA_UPDATE_GOLDEN")) {
    if (testing::Slurp(path) != actual) {
      testing::RewriteAndFail(path, actual);
    }
    return;
  }
  const std::string expected = testing::Slurp(path);
  ASSERT_FALSE(expected.empty()) << "missing golden file " << path
                                 << " (run with FLOTILLA_UPDATE_GOLDEN=1 to create it)";
  std::istringstream want(expected);
  std::istringstream got(actual);
  std::string want_line;
  std::string got_line;
  int differing = 0;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    std::getline(want, want_line);
    std::getline(got, got_line);
    if (want_line != got_line && ++differing <= 3) {
      ADD_FAILURE() << "plan changed: want " << want_line << "\n got " << got_line
                    << "\nfirst plan now:\n"
                    << plans[static_cast<size_t>(seed - 1)];
    }
  }
  EXPECT_EQ(differing, 0) << "of " << kSeeds << " seeds (" << path << ")";
  EXPECT_EQ(actual, expected);
}

// The generator makes the fleets the golden file needs: every action and finding kind occurs.
TEST(PlannerGoldenTest, RandomFleetsCoverEveryActionAndFinding) {
  std::set<ActionKind> actions;
  std::set<FindingKind> findings;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    const Fleet fleet = FleetGenerator(static_cast<uint64_t>(seed)).Make();
    const Plan plan = ComputePlan(fleet.desired, fleet.observed, fleet.ledger, fleet.options, kNow);
    for (const Action& a : plan.actions) {
      actions.insert(a.kind);
    }
    for (const Finding& f : plan.findings) {
      findings.insert(f.kind);
    }
  }
  for (ActionKind kind :
       {ActionKind::kCreate, ActionKind::kReplace, ActionKind::kStart, ActionKind::kStop,
        ActionKind::kDelete, ActionKind::kPrepull, ActionKind::kAdopt}) {
    EXPECT_TRUE(actions.contains(kind)) << "no " << ToString(kind);
  }
  for (FindingKind kind : {FindingKind::kUnschedulable, FindingKind::kConflict,
                           FindingKind::kDeferred, FindingKind::kRefused, FindingKind::kUnknown,
                           FindingKind::kWaiting, FindingKind::kDrift, FindingKind::kOutdated}) {
    EXPECT_TRUE(findings.contains(kind)) << "no " << ToString(kind);
  }
}

}  // namespace
}  // namespace flotilla::planner::golden
