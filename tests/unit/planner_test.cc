// The planner's rules, table-driven where the rule is a table (DESIGN section 4).

#include "reconciler/planner/planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "reconciler/model/normalize.h"
#include "reconciler/model/template_hash.h"
#include "tests/support/fleet_values.h"

namespace flotilla::planner {
namespace {

using std::chrono::minutes;
using testing::Host;
using testing::kGi;
using testing::kNow;

VMSet Set(const std::string& name, uint32_t replicas, GuestOs os = GuestOs::kMacos) {
  VMSet set;
  set.meta.name = name;
  set.pool = "macs";
  set.replicas = replicas;
  set.templ = testing::Template("catalog://BASE/v1", os, 2, 4, 50);
  set.image_cache_key = "catalog://base/v1";  // as the loader fills it (parallels)
  set.prune = true;
  return set;
}

ObservedHost Online(const std::string& name, uint32_t cpu = 12, uint64_t memory_gi = 32) {
  return testing::Online(name, "macs", {.cpu = cpu, .memory_gi = memory_gi});
}

VmInfo Vm(const std::string& name, VmState state, GuestOs os = GuestOs::kMacos) {
  return VmInfo{
      .id = "id-" + name,
      .name = name,
      .state = state,
      .raw_state = std::string(ToString(state) == "transitional" ? "stopping" : ToString(state)),
      .os = os,
      .cpu = 2,
      .memory_bytes = 4 * kGi,
      .disk_bytes = 50 * kGi};
}

// A fleet under test: one pool "macs", its sets, what the hosts show, and the ledger.
struct Fleet {
  HostPool pool;
  std::vector<VMSet> sets;
  Observed observed;
  Ledger ledger;
  PlannerOptions options;

  explicit Fleet(const std::vector<std::string>& hosts = {"mini-01", "mini-02"}) {
    pool.meta.name = "macs";
    pool.defaults.max_vms = 4;
    for (const std::string& h : hosts) {
      pool.hosts.push_back(Host(h));
      observed.hosts[h] = Online(h);
    }
  }

  // Puts a managed VM on a host (in the ledger, with the set's current template).
  void Own(const VMSet& set, const std::string& vm, const std::string& host, VmState state,
           const std::string& hash = "") {
    observed.hosts[host].vms.push_back(Vm(vm, state, set.templ.os));
    ledger.entries.push_back(
        LedgerEntry{.vm = vm,
                    .vmset = set.meta.name,
                    .pool = "macs",
                    .host = host,
                    .provider_id = "id-" + vm,
                    .template_hash = hash.empty() ? TemplateHash(set.templ) : hash});
  }

  Plan Compute(std::chrono::system_clock::time_point now = kNow) const {
    Desired desired;
    desired.pools.push_back(pool);
    desired.sets = sets;
    Normalize(desired);
    Observed sorted = observed;
    for (auto& [name, host] : sorted.hosts) {
      std::sort(host.vms.begin(), host.vms.end(),
                [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
    }
    return ComputePlan(desired, sorted, ledger, options, now);
  }
};

std::vector<std::string> Summary(const Plan& plan) {
  std::vector<std::string> out;
  for (const Action& a : plan.actions) {
    out.push_back(std::string(ToString(a.kind)) + " " + a.vm + "@" + a.host);
  }
  for (const Finding& f : plan.findings) {
    out.push_back(std::string(ToString(f.kind)) + " " + f.vm);
  }
  return out;
}

TEST(PlannerTest, EmptyHostsGetNewVmsSpreadAndStarted) {
  Fleet fleet;
  fleet.sets.push_back(Set("ios", 3));
  const Plan plan = fleet.Compute();
  EXPECT_EQ(Summary(plan),
            (std::vector<std::string>{"create ios-0@mini-01", "start ios-0@mini-01",
                                      "create ios-1@mini-02", "start ios-1@mini-02",
                                      "create ios-2@mini-01", "start ios-2@mini-01"}));
  EXPECT_EQ(plan.actions[1].depends_on, std::vector<int>{1});
  EXPECT_EQ(plan.actions[0].template_hash, TemplateHash(fleet.sets[0].templ));
}

TEST(PlannerTest, ConvergedFleetGivesAnEmptyPlanAndPlanningIsDeterministic) {
  Fleet fleet;
  fleet.sets.push_back(Set("ios", 2));
  fleet.Own(fleet.sets[0], "ios-0", "mini-01", VmState::kRunning);
  fleet.Own(fleet.sets[0], "ios-1", "mini-02", VmState::kRunning);
  const Plan plan = fleet.Compute();
  EXPECT_TRUE(plan.actions.empty()) << Summary(plan).front();
  EXPECT_TRUE(plan.findings.empty());

  Fleet growing;
  growing.sets.push_back(Set("ios", 5));
  growing.sets.push_back(Set("linux", 3, GuestOs::kLinux));
  EXPECT_EQ(growing.Compute(), growing.Compute());
}

TEST(PlannerTest, AllVmStatesListsEveryState) {
  // ToString must name every enumerator (-Wswitch), so a state appended to the enum but missing
  // from kAllVmStates has its own name one past the end of the list, not the fallback "unknown".
  std::set<std::string_view> names;
  for (VmState state : kAllVmStates) {
    names.insert(ToString(state));
  }
  EXPECT_EQ(names.size(), kAllVmStates.size());
  EXPECT_EQ(ToString(static_cast<VmState>(kAllVmStates.size())), "unknown")
      << "a VmState is missing from kAllVmStates";
}

TEST(PlannerTest, StateTableForExistingVms) {
  // observed x desired -> action kind, finding kind, or "" for nothing.
  const std::map<std::pair<VmState, PowerState>, std::string> table = {
      {{VmState::kRunning, PowerState::kRunning}, ""},
      {{VmState::kRunning, PowerState::kStopped}, "stop"},
      {{VmState::kStopped, PowerState::kRunning}, "start"},
      {{VmState::kStopped, PowerState::kStopped}, ""},
      {{VmState::kSuspended, PowerState::kRunning}, "start"},
      {{VmState::kSuspended, PowerState::kStopped}, "stop"},
      {{VmState::kPaused, PowerState::kRunning}, "start"},
      {{VmState::kPaused, PowerState::kStopped}, "stop"},
      {{VmState::kTransitional, PowerState::kRunning}, "waiting"},
      {{VmState::kTransitional, PowerState::kStopped}, "waiting"},
      {{VmState::kUnknown, PowerState::kRunning}, "drift"},
      {{VmState::kUnknown, PowerState::kStopped}, "drift"},
      {{VmState::kInvalid, PowerState::kRunning}, "drift"},
      {{VmState::kInvalid, PowerState::kStopped}, "drift"},
  };
  // Every cell is defined: the table is walked from the model's list of states, not its own rows.
  for (VmState observed : kAllVmStates) {
    for (PowerState desired : {PowerState::kRunning, PowerState::kStopped}) {
      const auto row = table.find({observed, desired});
      if (row == table.end()) {
        ADD_FAILURE() << "no row for " << ToString(observed) << " x " << ToString(desired);
        continue;
      }
      Fleet fleet;
      VMSet set = Set("ios", 1);
      set.templ.state = desired;
      fleet.sets.push_back(set);
      fleet.Own(set, "ios-0", "mini-01", observed);
      const std::vector<std::string> summary = Summary(fleet.Compute());
      const std::string got =
          summary.empty() ? "" : summary.front().substr(0, summary.front().find(' '));
      EXPECT_EQ(got, row->second) << ToString(observed) << " x " << ToString(desired);
      EXPECT_LE(summary.size(), 1u);
    }
  }
}

TEST(PlannerTest, SelfHealOffOnlyReports) {
  Fleet fleet;
  VMSet set = Set("ios", 2);
  set.self_heal = false;
  fleet.sets.push_back(set);
  fleet.Own(set, "ios-0", "mini-01", VmState::kStopped);
  fleet.ledger.entries.push_back(LedgerEntry{.vm = "ios-1",
                                             .vmset = "ios",
                                             .pool = "macs",
                                             .host = "mini-02",
                                             .template_hash = TemplateHash(set.templ)});
  EXPECT_EQ(Summary(fleet.Compute()), (std::vector<std::string>{"drift ios-0", "drift ios-1"}));
}

TEST(PlannerTest, AppleLimitCountsVmsThePlanWillStart) {
  Fleet fleet({"mini-01"});
  fleet.sets.push_back(Set("ios", 3));
  const Plan plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kCreate), 2u);
  EXPECT_EQ(plan.Count(ActionKind::kStart), 2u);
  ASSERT_EQ(plan.findings.size(), 1u);
  EXPECT_EQ(plan.findings[0].message,
            "no host fits ios-2: 1 host in pool macs; 1 at the macOS limit (2 running per Mac)");

  // Linux guests are not limited.
  Fleet linux({"mini-01"});
  linux.sets.push_back(Set("lin", 3, GuestOs::kLinux));
  EXPECT_EQ(linux.Compute().Count(ActionKind::kCreate), 3u);

  // A stopped macOS VM is not started beside two running unmanaged ones.
  Fleet busy({"mini-01"});
  busy.observed.hosts["mini-01"].vms.push_back(Vm("other-a", VmState::kRunning));
  busy.observed.hosts["mini-01"].vms.push_back(Vm("other-b", VmState::kRunning));
  busy.sets.push_back(Set("ios", 1));
  busy.Own(busy.sets[0], "ios-0", "mini-01", VmState::kStopped);
  const Plan refused = busy.Compute();
  EXPECT_TRUE(refused.actions.empty());
  ASSERT_EQ(refused.findings.size(), 1u);
  EXPECT_EQ(refused.findings[0].kind, FindingKind::kUnschedulable);
}

TEST(PlannerTest, UnschedulableReasonCountsHostsPerFailedFilter) {
  Fleet fleet({"mini-01", "mini-02", "mini-03", "mini-04"});
  fleet.observed.hosts["mini-01"] = Online("mini-01", 12, 8);  // 6Gi free
  fleet.observed.hosts["mini-02"] = Online("mini-02", 12, 7);  // 5Gi free
  fleet.pool.hosts[2].cordoned = true;
  fleet.observed.hosts["mini-04"].online = false;
  VMSet set = Set("ios", 1);
  set.templ.memory = Quantity::FromBytes(8 * kGi);
  fleet.sets.push_back(set);
  const Plan plan = fleet.Compute();
  ASSERT_EQ(plan.findings.size(), 1u);
  EXPECT_EQ(plan.findings[0].message,
            "no host fits ios-0: 4 hosts in pool macs; 2 insufficient memory (need 8Gi, max "
            "free 6Gi); 1 cordoned; 1 offline");
}

TEST(PlannerTest, CapacityPromisedEarlierAndUnmanagedVmsCountAsUsed) {
  Fleet fleet({"mini-01"});
  fleet.observed.hosts["mini-01"] = Online("mini-01", 12, 14);  // 12Gi free
  fleet.observed.hosts["mini-01"].vms.push_back(Vm("someone", VmState::kRunning, GuestOs::kLinux));
  fleet.sets.push_back(Set("lin", 3, GuestOs::kLinux));  // 4Gi each; 8Gi left after "someone"
  const Plan plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kCreate), 2u);
  ASSERT_EQ(plan.Count(FindingKind::kUnschedulable), 1u);
  for (const Action& a : plan.actions) {
    EXPECT_NE(a.vm, "someone") << "unmanaged VMs are never touched";
  }
}

TEST(PlannerTest, StoppedVmsDesiredRunningKeepTheirReservation) {
  Fleet fleet({"mini-01"});
  fleet.observed.hosts["mini-01"] = Online("mini-01", 12, 10);  // 8Gi free
  VMSet set = Set("lin", 3, GuestOs::kLinux);
  fleet.sets.push_back(set);
  fleet.Own(set, "lin-0", "mini-01", VmState::kStopped);
  fleet.Own(set, "lin-1", "mini-01", VmState::kStopped);
  const Plan plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kStart), 2u);
  EXPECT_EQ(plan.Count(ActionKind::kCreate), 0u) << "lin-2 does not take lin-0's memory";
  EXPECT_EQ(plan.Count(FindingKind::kUnschedulable), 1u);
}

TEST(PlannerTest, SelectorTagsArchMaxVmsAndPackVersusSpread) {
  Fleet fleet({"a", "b", "c"});
  fleet.pool.hosts[0].tags = {"xcode16"};
  fleet.pool.hosts[1].tags = {"m2", "xcode16"};
  fleet.pool.hosts[2].tags = {"m2", "xcode16"};
  fleet.pool.defaults.max_vms = 2;
  fleet.observed.hosts["c"] = Online("c", 12, 64);
  VMSet set = Set("lin", 3, GuestOs::kLinux);
  set.selector_tags = {"m2", "xcode16"};
  fleet.sets.push_back(set);
  // spread: the host left with the largest free share first (c, with twice b's memory), then
  // b, then c again; never a (not tagged m2).
  EXPECT_EQ(Summary(fleet.Compute()),
            (std::vector<std::string>{"create lin-0@c", "start lin-0@c", "create lin-1@b",
                                      "start lin-1@b", "create lin-2@c", "start lin-2@c"}));
  fleet.sets[0].placement = Placement::kPack;
  EXPECT_EQ(fleet.Compute().actions[0].host, "b");

  VMSet intel = Set("intel", 1, GuestOs::kLinux);
  intel.templ.arch = Arch::kX86_64;
  Fleet x86;
  x86.sets.push_back(intel);
  EXPECT_EQ(x86.Compute().findings.at(0).message,
            "no host fits intel-0: 2 hosts in pool macs; 2 arm64 (need x86_64)");
}

// A host that does not report its free disk (a Parallels service before 1.0.0) is not refused
// for disk; one that reports too little is.
TEST(PlannerTest, UnknownFreeDiskIsNoFilter) {
  Fleet fleet({"a", "b"});
  fleet.observed.hosts["a"].facts.available.disk_bytes = 10 * kGi;
  fleet.observed.hosts["b"].facts.available.disk_bytes = 0;
  fleet.observed.hosts["b"].facts.disk_known = false;
  fleet.sets.push_back(Set("mac", 1));
  const Plan plan = fleet.Compute();
  ASSERT_EQ(plan.actions.size(), 2u);  // create, start
  EXPECT_EQ(plan.actions[0].host, "b");
}

// Hosts that cannot use an image (an agent too old for catalog creates) are skipped, and the
// reason is in the finding when no host is left.
TEST(PlannerTest, HostsThatCannotUseTheImageAreSkippedWithTheirReason) {
  Fleet fleet({"a", "b"});
  fleet.observed.hosts["a"].facts.unsupported_images["catalog://"] = "service 0.9.21 is too old";
  fleet.sets.push_back(Set("mac", 1));
  EXPECT_EQ(fleet.Compute().actions.at(0).host, "b");
  fleet.observed.hosts["b"].facts.unsupported_images["catalog://"] = "service 0.9.21 is too old";
  EXPECT_EQ(fleet.Compute().findings.at(0).message,
            "no host fits mac-0: 2 hosts in pool macs; 2 cannot use the image: service 0.9.21 is "
            "too old");
  fleet.sets[0].templ.image = "vm://golden";
  EXPECT_TRUE(fleet.Compute().findings.empty());
}

// Caps say what they are and where they come from; without maxVMs only resources (and, for
// macOS, Apple's limit) bound a host.
TEST(PlannerTest, CapsNameTheLimitAndItsOrigin) {
  Fleet fleet({"a", "b"});
  fleet.pool.defaults.max_vms.reset();
  fleet.pool.hosts[0].max_vms = 1;  // a: its own
  fleet.pool.hosts[1].max_vms = 1;  // b: as if from the pool
  fleet.pool.hosts[1].max_vms_from_pool = true;
  fleet.sets.push_back(Set("lin", 3, GuestOs::kLinux));
  const Plan capped = fleet.Compute();
  ASSERT_EQ(capped.findings.size(), 1u);
  EXPECT_EQ(capped.findings[0].message,
            "no host fits lin-2: 2 hosts in pool macs; 1 at maxVMs 1 (pool default); 1 at maxVMs 1 "
            "(the host's)");
  fleet.pool.hosts[0].max_vms.reset();
  fleet.pool.hosts[1].max_vms.reset();
  fleet.sets[0].replicas = 12;  // 2 cpu each: 11 free cpus per host
  EXPECT_EQ(fleet.Compute().Count(ActionKind::kCreate), 10u) << "5 per host, by cpu";
}

TEST(PlannerTest, HostsHoldingTheImageArePreferred) {
  Fleet fleet({"a", "b"});
  // As hosts report it (ImageCacheKey): the template says catalog://BASE/v1.
  fleet.observed.hosts["b"].facts.cached_images = {"catalog://base/v1"};
  fleet.observed.hosts["a"] = Online("a", 24, 64);  // roomier, but would have to pull
  fleet.sets.push_back(Set("lin", 1, GuestOs::kLinux));
  EXPECT_EQ(fleet.Compute().actions[0].host, "b");
}

TEST(PlannerTest, NameConflictsAreFindingsNeverDeletes) {
  Fleet fleet;
  fleet.observed.hosts["mini-01"].vms.push_back(Vm("ios-0", VmState::kRunning));
  fleet.sets.push_back(Set("ios", 1));
  const Plan plan = fleet.Compute();
  EXPECT_TRUE(plan.actions.empty());
  ASSERT_EQ(plan.findings.size(), 1u);
  EXPECT_EQ(plan.findings[0].kind, FindingKind::kConflict);
  EXPECT_NE(plan.findings[0].message.find("apply --adopt, or adoptExisting: true"),
            std::string::npos)
      << plan.findings[0].message;
}

TEST(PlannerTest, AdoptionIsAnActionOfItsOwnAndOnlyWhenAsked) {
  Fleet fleet;
  fleet.observed.hosts["mini-01"].vms.push_back(Vm("ios-0", VmState::kStopped));
  fleet.sets.push_back(Set("ios", 1));
  EXPECT_EQ(Summary(fleet.Compute()), (std::vector<std::string>{"conflict ios-0"}));

  for (const bool by_set : {false, true}) {
    fleet.options.adopt_existing = !by_set;
    fleet.sets[0].adopt_existing = by_set;
    const Plan plan = fleet.Compute();
    ASSERT_EQ(Summary(plan),
              (std::vector<std::string>{"adopt ios-0@mini-01", "start ios-0@mini-01"}));
    EXPECT_EQ(plan.actions[0].reason, "existing VM with a desired name");
    EXPECT_EQ(plan.actions[0].vm_id, "id-ios-0");
    // Its OS, cpu and memory are the template's: the template is taken to be its own.
    EXPECT_EQ(plan.actions[0].template_hash, TemplateHash(fleet.sets[0].templ));
    EXPECT_EQ(plan.actions[1].depends_on, std::vector<int>{plan.actions[0].id});
  }

  // Built differently (4 cpus under a 2-cpu template): adopted, but from an unknown template,
  // so the update strategy replaces it in the same plan.
  fleet.observed.hosts["mini-01"].vms[0].cpu = 4;
  fleet.observed.hosts["mini-01"].vms[0].state = VmState::kRunning;
  fleet.sets[0].update_strategy.prepull = false;
  Plan plan = fleet.Compute();
  ASSERT_EQ(Summary(plan), (std::vector<std::string>{"adopt ios-0@mini-01", "replace ios-0@mini-02",
                                                     "start ios-0@mini-02"}));
  EXPECT_EQ(plan.actions[0].template_hash, kUnknownTemplateHash);
  EXPECT_EQ(plan.actions[1].reason, "adopted, template unknown; rolling update");
  EXPECT_EQ(plan.actions[1].depends_on, std::vector<int>{plan.actions[0].id});

  // Once adopted so, OnDelete reports it rather than replacing it.
  fleet.Own(fleet.sets[0], "ios-0", "mini-01", VmState::kRunning,
            std::string(kUnknownTemplateHash));
  fleet.observed.hosts["mini-01"].vms.erase(fleet.observed.hosts["mini-01"].vms.begin());
  fleet.sets[0].update_strategy.type = UpdateStrategyType::kOnDelete;
  plan = fleet.Compute();
  ASSERT_EQ(plan.findings.size(), 1u);
  EXPECT_EQ(plan.findings[0].message,
            "adopted, template unknown; updateStrategy OnDelete replaces it once it is deleted");

  // A name found on two hosts is adopted on neither.
  Fleet twice;
  twice.options.adopt_existing = true;
  twice.observed.hosts["mini-01"].vms.push_back(Vm("ios-0", VmState::kRunning));
  twice.observed.hosts["mini-02"].vms.push_back(Vm("ios-0", VmState::kRunning));
  twice.sets.push_back(Set("ios", 1));
  EXPECT_EQ(Summary(twice.Compute()),
            (std::vector<std::string>{"conflict ios-0", "conflict ios-0"}));
}

TEST(PlannerTest, AHostThatNeverAnsweredHoldsCreatesUntilItIsLost) {
  Fleet fleet;
  VMSet set = Set("lin", 2, GuestOs::kLinux);
  fleet.sets.push_back(set);
  fleet.Own(set, "lin-0", "mini-02", VmState::kRunning);  // whatever the store holds
  ObservedHost& silent = fleet.observed.hosts["mini-01"];
  silent.online = false;
  silent.vms_known = false;
  silent.last_seen = kNow - minutes{9};  // since the loop first looked
  Plan plan = fleet.Compute();
  EXPECT_EQ(Summary(plan), (std::vector<std::string>{"unknown lin-1"}));
  EXPECT_NE(plan.findings[0].message.find("mini-01 is offline: it has never answered"),
            std::string::npos)
      << plan.findings[0].message;

  silent.last_seen = kNow - minutes{10};  // hostLostAfter
  EXPECT_EQ(fleet.Compute().Count(ActionKind::kCreate), 1u);

  // A host that answered before and went silent did not list lin-1: it is created.
  silent.last_seen = kNow - minutes{1};
  silent.vms_known = true;
  EXPECT_EQ(fleet.Compute().Count(ActionKind::kCreate), 1u);
}

TEST(PlannerTest, VmsOfAHostRemovedFromItsPoolAreMadeElsewhere) {
  Fleet fleet;
  VMSet set = Set("lin", 1, GuestOs::kLinux);
  fleet.sets.push_back(set);
  fleet.ledger.entries.push_back(LedgerEntry{.vm = "lin-0",
                                             .vmset = "lin",
                                             .pool = "macs",
                                             .host = "retired",
                                             .provider_id = "id-lin-0",
                                             .template_hash = TemplateHash(set.templ)});
  fleet.ledger.entries.push_back(LedgerEntry{.vm = "lin-7",
                                             .vmset = "lin",
                                             .pool = "macs",
                                             .host = "retired",
                                             .provider_id = "id-lin-7",
                                             .template_hash = TemplateHash(set.templ)});
  Plan plan = fleet.Compute();
  ASSERT_EQ(Summary(plan), (std::vector<std::string>{"create lin-0@mini-01", "start lin-0@mini-01",
                                                     "drift lin-7"}));
  EXPECT_EQ(plan.actions[0].reason,
            "host retired was removed from pool macs; the copy there is left alone");
  EXPECT_TRUE(plan.actions[0].from_host.empty()) << "nothing to delete where it cannot reach";
  EXPECT_NE(plan.findings[0].message.find("host retired was removed from the pool"),
            std::string::npos);

  fleet.sets[0].self_heal = false;
  plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kCreate), 0u);
  EXPECT_EQ(plan.Count(FindingKind::kDrift), 2u);
}

TEST(PlannerTest, DeletionsNeedPruneAndStayWithinTheBudget) {
  Fleet fleet;
  VMSet set = Set("lin", 12, GuestOs::kLinux);
  for (uint32_t i = 0; i < 12; ++i) {
    fleet.Own(set, set.VMName(i), i % 2 == 0 ? "mini-01" : "mini-02", VmState::kRunning);
  }
  set.replicas = 9;
  fleet.sets.push_back(set);
  // 10% of 12 managed VMs, at least 1.
  Plan plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kDelete), 1u);
  EXPECT_EQ(plan.Count(FindingKind::kDeferred), 2u);
  EXPECT_EQ(plan.actions[0].vm, "lin-10");

  fleet.options.max_deletions = 5;
  EXPECT_EQ(fleet.Compute().Count(ActionKind::kDelete), 3u);

  // The budget is a rate: deletions made within the window count, and the finding says when
  // the next may run.
  fleet.options.deletions_in_window = 4;
  fleet.options.window_frees_at = kNow + minutes(7);
  plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kDelete), 1u);
  ASSERT_EQ(plan.Count(FindingKind::kDeferred), 2u);
  const auto deferred = std::find_if(plan.findings.begin(), plan.findings.end(),
                                     [](auto& f) { return f.kind == FindingKind::kDeferred; });
  EXPECT_EQ(deferred->message,
            "delete deferred: at most 5 deletions per 10m (maxDeletionsPerRun, deletionWindow); "
            "4 made within it; the next may run in 7m (or approve more with --max-deletions)");
  fleet.options.deletions_in_window = 5;
  EXPECT_EQ(fleet.Compute().Count(ActionKind::kDelete), 0u);

  // 0 and 0% hold every deletion back (a percentage rounds up to 1 otherwise).
  fleet.options.deletions_in_window = 0;
  fleet.options.max_deletions.reset();
  fleet.options.max_deletions_percent = 0;
  EXPECT_EQ(fleet.Compute().Count(ActionKind::kDelete), 0u);
  fleet.options.max_deletions_percent = 1;
  EXPECT_EQ(fleet.Compute().Count(ActionKind::kDelete), 1u);

  fleet.sets[0].prune = false;
  plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kDelete), 0u);
  EXPECT_EQ(plan.Count(FindingKind::kDrift), 3u);
}

TEST(PlannerTest, CreatesProceedWhileDeletionsAreHeld) {
  Fleet fleet;
  VMSet old_set = Set("old", 3, GuestOs::kLinux);
  for (uint32_t i = 0; i < 3; ++i) {
    fleet.Own(old_set, old_set.VMName(i), "mini-01", VmState::kRunning);
  }
  fleet.ledger.vmset_prune["old"] = true;
  VMSet keep = Set("keep", 1, GuestOs::kLinux);
  fleet.Own(keep, "keep-0", "mini-02", VmState::kRunning);
  fleet.sets.push_back(keep);
  fleet.sets.push_back(Set("new", 2, GuestOs::kLinux));
  const Plan plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kCreate), 2u);
  EXPECT_EQ(plan.Count(ActionKind::kDelete), 1u);
  EXPECT_EQ(plan.Count(FindingKind::kDeferred), 2u);
}

TEST(PlannerTest, ARevisionThatDeletesEverythingIsRefusedUnlessAllowed) {
  Fleet fleet;
  VMSet set = Set("lin", 2, GuestOs::kLinux);
  fleet.Own(set, "lin-0", "mini-01", VmState::kRunning);
  fleet.Own(set, "lin-1", "mini-02", VmState::kRunning);
  fleet.ledger.vmset_prune["lin"] = true;  // the VMSet is gone from the repository
  Plan plan = fleet.Compute();
  EXPECT_TRUE(plan.actions.empty());
  EXPECT_EQ(plan.Count(FindingKind::kRefused), 2u);

  fleet.options.allow_empty = true;
  fleet.options.max_deletions = 10;
  EXPECT_EQ(fleet.Compute().Count(ActionKind::kDelete), 2u);

  fleet.ledger.vmset_prune["lin"] = false;  // the prune it last had decides
  EXPECT_EQ(fleet.Compute().Count(ActionKind::kDelete), 0u);
}

TEST(PlannerTest, VmsOnALostHostAreReplacedOnlyAfterTheGracePeriod) {
  Fleet fleet;
  VMSet set = Set("ios", 1);
  fleet.sets.push_back(set);
  fleet.Own(set, "ios-0", "mini-01", VmState::kRunning);
  fleet.observed.hosts["mini-01"].online = false;
  fleet.observed.hosts["mini-01"].last_seen = kNow - minutes{5};
  Plan plan = fleet.Compute();
  EXPECT_TRUE(plan.actions.empty());
  ASSERT_EQ(plan.findings.size(), 1u);
  EXPECT_EQ(plan.findings[0].kind, FindingKind::kUnknown);

  fleet.observed.hosts["mini-01"].last_seen = kNow - minutes{15};
  plan = fleet.Compute();
  EXPECT_EQ(Summary(plan),
            (std::vector<std::string>{"replace ios-0@mini-02", "start ios-0@mini-02"}));
  EXPECT_EQ(plan.actions[0].from_host, "mini-01");

  fleet.sets[0].self_heal = false;
  EXPECT_TRUE(fleet.Compute().actions.empty());
}

TEST(PlannerTest, CordonedHostsAreDrainedNewVmFirst) {
  Fleet fleet;
  VMSet set = Set("ios", 1);
  fleet.sets.push_back(set);
  fleet.Own(set, "ios-0", "mini-01", VmState::kRunning);
  fleet.pool.hosts[0].cordoned = true;
  const Plan plan = fleet.Compute();
  ASSERT_EQ(plan.actions.size(), 2u);
  EXPECT_EQ(plan.actions[0].kind, ActionKind::kReplace);
  EXPECT_EQ(plan.actions[0].host, "mini-02");
  EXPECT_EQ(plan.actions[0].from_host, "mini-01");
  EXPECT_TRUE(plan.actions[0].create_first);
}

TEST(PlannerTest, RollingUpdatesRespectMaxUnavailable) {
  for (uint32_t max_unavailable : {1u, 2u}) {
    Fleet fleet({"a", "b", "c"});
    VMSet set = Set("lin", 3, GuestOs::kLinux);
    for (uint32_t i = 0; i < 3; ++i) {
      fleet.Own(set, set.VMName(i), std::string(1, static_cast<char>('a' + i)), VmState::kRunning,
                "v1-old");
    }
    set.update_strategy.max_unavailable = max_unavailable;
    fleet.sets.push_back(set);
    const Plan plan = fleet.Compute();
    EXPECT_EQ(plan.Count(ActionKind::kReplace), max_unavailable);
    EXPECT_EQ(plan.Count(FindingKind::kOutdated), 3u - max_unavailable);
    const auto replace =
        std::find_if(plan.actions.begin(), plan.actions.end(),
                     [](const Action& a) { return a.kind == ActionKind::kReplace; });
    ASSERT_NE(replace, plan.actions.end());
    EXPECT_TRUE(replace->create_first) << "spare capacity: the new VM comes first";
  }
  // A VM already unavailable uses the budget.
  Fleet busy({"a", "b"});
  VMSet set = Set("lin", 2, GuestOs::kLinux);
  busy.Own(set, "lin-0", "a", VmState::kStopped, "v1-old");
  busy.Own(set, "lin-1", "b", VmState::kTransitional);
  busy.sets.push_back(set);
  EXPECT_EQ(busy.Compute().Count(ActionKind::kReplace), 0u);
}

// A rolling update first pulls the new image onto every host that could run the set's VMs and
// lacks it (once per host and image, whatever the budget); a replacement waits for the pull on
// its host. Hosts that cache the image, cannot run the set or have no disk for it get none.
TEST(PlannerTest, RollingUpdatesPrepullTheNewImageWhereItIsMissing) {
  Fleet fleet({"a", "b", "c", "d", "e"});
  VMSet set = Set("lin", 2, GuestOs::kLinux);
  fleet.Own(set, "lin-0", "a", VmState::kRunning, "v1-old");
  fleet.Own(set, "lin-1", "b", VmState::kRunning, "v1-old");
  fleet.observed.hosts["c"].facts.cached_images = {"catalog://base/v1"};
  fleet.pool.hosts[3].cordoned = true;                              // d
  fleet.observed.hosts["e"].facts.available.disk_bytes = 10 * kGi;  // the image needs 50Gi
  VMSet second = Set("other", 1, GuestOs::kLinux);
  fleet.Own(second, "other-0", "a", VmState::kRunning, "v1-old");
  fleet.sets = {set, second};
  const Plan plan = fleet.Compute();
  std::map<std::string, int> prepull_on;
  for (const Action& a : plan.actions) {
    if (a.kind == ActionKind::kPrepull) {
      EXPECT_TRUE(a.vm.empty());
      EXPECT_EQ(a.templ->image, "catalog://BASE/v1");
      EXPECT_FALSE(prepull_on.contains(a.host)) << "one pull per host and image";
      prepull_on[a.host] = a.id;
    }
  }
  EXPECT_EQ(prepull_on.size(), 2u) << "a and b; not c (cached), d (cordoned), e (full)";
  EXPECT_TRUE(prepull_on.contains("a") && prepull_on.contains("b"));
  for (const Action& a : plan.actions) {
    if (a.kind == ActionKind::kReplace && prepull_on.contains(a.host)) {
      EXPECT_EQ(a.depends_on, std::vector<int>{prepull_on[a.host]}) << a.vm;
    }
    if (a.kind == ActionKind::kReplace && a.host == "c") {
      EXPECT_TRUE(a.depends_on.empty());
    }
  }
  EXPECT_EQ(plan.Count(ActionKind::kReplace), 2u) << "one per set (maxUnavailable 1)";

  // Turned off, or with an image the provider does not cache (a template VM), nothing is pulled.
  fleet.sets[0].update_strategy.prepull = false;
  fleet.sets[1].update_strategy.prepull = false;
  EXPECT_EQ(fleet.Compute().Count(ActionKind::kPrepull), 0u);
  fleet.sets[0].update_strategy.prepull = true;
  fleet.sets[0].templ.image = "vm://golden";
  fleet.sets[0].image_cache_key.clear();
  fleet.sets.resize(1);
  EXPECT_EQ(fleet.Compute().Count(ActionKind::kPrepull), 0u);
}

TEST(PlannerTest, RecreateReplacesAllAtOnceAndOnDeleteOnlyReports) {
  Fleet fleet;
  VMSet set = Set("lin", 2, GuestOs::kLinux);
  fleet.Own(set, "lin-0", "mini-01", VmState::kRunning, "v1-old");
  fleet.Own(set, "lin-1", "mini-02", VmState::kRunning, "v1-old");
  set.update_strategy.type = UpdateStrategyType::kRecreate;
  fleet.sets.push_back(set);
  Plan plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kReplace), 2u);
  EXPECT_FALSE(plan.actions[0].create_first);
  EXPECT_EQ(plan.actions[0].host, plan.actions[0].from_host);

  fleet.sets[0].update_strategy.type = UpdateStrategyType::kOnDelete;
  plan = fleet.Compute();
  EXPECT_TRUE(plan.actions.empty());
  EXPECT_EQ(plan.Count(FindingKind::kOutdated), 2u);
}

TEST(PlannerTest, OnlyTheCopyOnTheLedgersHostIsOurs) {
  Fleet fleet;
  VMSet old_set = Set("old", 1, GuestOs::kLinux);
  fleet.Own(old_set, "old-0", "mini-02", VmState::kRunning);
  // Someone else's VM of the same name, on a host that sorts first.
  fleet.observed.hosts["mini-01"].vms.push_back(Vm("old-0", VmState::kRunning, GuestOs::kLinux));
  VMSet keep = Set("keep", 1, GuestOs::kLinux);
  fleet.Own(keep, "keep-0", "mini-02", VmState::kRunning);
  fleet.sets.push_back(keep);
  fleet.ledger.vmset_prune["old"] = true;
  Plan plan = fleet.Compute();
  ASSERT_EQ(plan.Count(ActionKind::kDelete), 1u);
  EXPECT_EQ(plan.actions[0].host, "mini-02");

  // A desired VM whose ledger host lacks it while a same-named VM sits elsewhere: that one is a
  // conflict, and ours is recreated.
  Fleet moved;
  VMSet set = Set("ios", 1, GuestOs::kLinux);
  moved.sets.push_back(set);
  moved.ledger.entries.push_back(LedgerEntry{.vm = "ios-0",
                                             .vmset = "ios",
                                             .pool = "macs",
                                             .host = "mini-02",
                                             .template_hash = TemplateHash(set.templ)});
  moved.observed.hosts["mini-01"].vms.push_back(Vm("ios-0", VmState::kRunning, GuestOs::kLinux));
  plan = moved.Compute();
  EXPECT_EQ(plan.Count(FindingKind::kConflict), 1u);
  EXPECT_EQ(plan.Count(ActionKind::kStop), 0u);
}

TEST(PlannerTest, AManagedVmOnASilentHostIsUnknownNotMissing) {
  Fleet fleet;
  VMSet set = Set("ios", 1, GuestOs::kLinux);
  fleet.sets.push_back(set);
  fleet.ledger.entries.push_back(LedgerEntry{.vm = "ios-0",
                                             .vmset = "ios",
                                             .pool = "macs",
                                             .host = "mini-01",
                                             .template_hash = TemplateHash(set.templ)});
  fleet.observed.hosts["mini-01"].online = false;  // and its VM list is empty
  fleet.observed.hosts["mini-01"].last_seen = kNow - minutes{1};
  const Plan plan = fleet.Compute();
  EXPECT_TRUE(plan.actions.empty());
  EXPECT_EQ(plan.Count(FindingKind::kUnknown), 1u);
}

TEST(PlannerTest, TheEmptyGuardLooksAtIntentNotAtWhatCanBeDeletedNow) {
  Fleet fleet;
  VMSet set = Set("lin", 2, GuestOs::kLinux);
  fleet.Own(set, "lin-0", "mini-01", VmState::kRunning);
  fleet.Own(set, "lin-1", "mini-02", VmState::kRunning);
  fleet.observed.hosts["mini-02"].online = false;  // lin-1 cannot be a delete candidate now
  fleet.ledger.vmset_prune["lin"] = true;
  fleet.options.max_deletions = 10;
  const Plan plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kDelete), 0u);
  EXPECT_EQ(plan.Count(FindingKind::kRefused), 1u);
}

TEST(PlannerTest, StartsNeedRoomAndResumingCountsForTheAppleLimit) {
  Fleet fleet({"mini-01"});
  fleet.observed.hosts["mini-01"] = Online("mini-01", 7, 32);  // 6 usable cpus
  VMSet set = Set("lin", 4, GuestOs::kLinux);
  for (uint32_t i = 0; i < 4; ++i) {
    fleet.Own(set, set.VMName(i), "mini-01", VmState::kStopped);
  }
  fleet.sets.push_back(set);
  Plan plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kStart), 3u);
  EXPECT_EQ(plan.Count(FindingKind::kUnschedulable), 1u);

  Fleet mac({"mini-01"});
  mac.observed.hosts["mini-01"].vms.push_back(Vm("a", VmState::kRunning));
  mac.observed.hosts["mini-01"].vms.push_back(Vm("b", VmState::kRunning));
  VMSet ios = Set("ios", 1);
  mac.sets.push_back(ios);
  mac.Own(ios, "ios-0", "mini-01", VmState::kSuspended);
  plan = mac.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kStart), 0u);
  EXPECT_EQ(plan.Count(FindingKind::kUnschedulable), 1u);
}

TEST(PlannerTest, OutdatedVmsStillGetTheirPowerStateAndCountAsUnavailable) {
  Fleet fleet({"a", "b", "c"});
  VMSet set = Set("lin", 2, GuestOs::kLinux);
  fleet.Own(set, "lin-0", "a", VmState::kStopped, "v1-old");
  fleet.Own(set, "lin-1", "b", VmState::kRunning, "v1-old");
  set.update_strategy.type = UpdateStrategyType::kOnDelete;
  fleet.sets.push_back(set);
  Plan plan = fleet.Compute();
  EXPECT_EQ(Summary(plan),
            (std::vector<std::string>{"start lin-0@a", "outdated lin-0", "outdated lin-1"}));
  // Rolling, maxUnavailable 1: the stopped outdated VM already uses the budget.
  fleet.sets[0].update_strategy.type = UpdateStrategyType::kRolling;
  plan = fleet.Compute();
  EXPECT_EQ(plan.Count(ActionKind::kReplace), 0u);
}

}  // namespace
}  // namespace flotilla::planner

namespace flotilla::planner {
namespace {

// Issue 18, item 5: the work of an unfinished create (a host job, or a complete temporary VM) is
// finished where it is, not started again on the host that ranks best.
TEST(PlannerTest, AVmWhoseUnfinishedCreateLeftWorkOnAHostIsPlacedThere) {
  Fleet fleet;
  fleet.sets.push_back(Set("ios", 1));
  fleet.observed.hosts["mini-02"].facts.available.disk_bytes = 30 * kGi;  // the pull's disk
  fleet.observed.hosts["mini-02"].facts.disk_known = true;
  // Without it, spread and the free disk put ios-0 on mini-01.
  EXPECT_EQ(Summary(fleet.Compute()).front(), "create ios-0@mini-01");
  // Its temporary VM is not seen on mini-02 (a job may still make it): preferred, but the disk
  // the VM needs must be free there.
  fleet.options.unfinished["ios-0"] = PlannerOptions::Unfinished{
      .host = "mini-02", .template_hash = TemplateHash(fleet.sets[0].templ)};
  EXPECT_EQ(Summary(fleet.Compute()).front(), "create ios-0@mini-01");
  fleet.observed.hosts["mini-02"].facts.available.disk_bytes = 60 * kGi;
  EXPECT_EQ(Summary(fleet.Compute()).front(), "create ios-0@mini-02");
  // Seen there: the 50Gi the template asks for are already taken by the temporary VM.
  fleet.observed.hosts["mini-02"].facts.available.disk_bytes = 30 * kGi;
  fleet.options.unfinished["ios-0"].temporary_seen = true;
  EXPECT_EQ(Summary(fleet.Compute()).front(), "create ios-0@mini-02");
  // Built from another template, the work is not resumed: placed as usual.
  fleet.options.unfinished["ios-0"].template_hash = "older";
  EXPECT_EQ(Summary(fleet.Compute()).front(), "create ios-0@mini-01");
  // A host that cannot take the VM any more is not forced.
  fleet.options.unfinished["ios-0"].template_hash = TemplateHash(fleet.sets[0].templ);
  fleet.pool.hosts[1].cordoned = true;
  EXPECT_EQ(Summary(fleet.Compute()).front(), "create ios-0@mini-01");
}

}  // namespace
}  // namespace flotilla::planner
