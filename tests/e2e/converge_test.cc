// Converging a fleet end to end: the real `flotilla apply` and `flotilla run` against
// flotilla-hostsim hosts on loopback, with the fleet in a local Git repository
// (tests/support/fleet_fixture.h). What the hosts hold is read back through their DevOps API, and
// what was called through hostsim's counters.

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "reconciler/model/text.h"
#include "tests/integration/servers.h"
#include "tests/support/cli_runner.h"
#include "tests/support/fleet_fixture.h"
#include "tests/support/process.h"

namespace flotilla {
namespace {

using nlohmann::json;
using testing::Contains;
using testing::FleetFixture;
using testing::Outcome;
using testing::WaitUntil;

constexpr int kHosts = 3;

using testing::HostVm;

// Every VM name with each copy of it, across all hosts.
std::map<std::string, std::vector<HostVm>> Inventory(FleetFixture& fx, int hosts = kHosts) {
  std::map<std::string, std::vector<HostVm>> all;
  for (HostVm& vm : testing::ListAll(fx, hosts)) {
    all[vm.name].push_back(std::move(vm));
  }
  return all;
}

// The names of a VMSet's VMs that exist, in order ("ci" -> ci-0, ci-1, ...).
std::vector<std::string> NamesOf(const std::map<std::string, std::vector<HostVm>>& all,
                                 const std::string& set) {
  std::vector<std::string> names;
  for (const auto& [name, copies] : all) {
    if (name.starts_with(set + "-")) {
      names.push_back(name);
    }
  }
  return names;
}

std::vector<std::string> Expected(const std::string& set, int replicas) {
  std::vector<std::string> names;
  for (int i = 0; i < replicas; ++i) {
    names.push_back(set + "-" + std::to_string(i));
  }
  std::sort(names.begin(), names.end());
  return names;
}

// True when exactly set-0..set-(replicas-1) exist, each once, all running.
bool Converged(const std::map<std::string, std::vector<HostVm>>& all, const std::string& set,
               int replicas) {
  if (NamesOf(all, set) != Expected(set, replicas)) {
    return false;
  }
  for (const std::string& name : Expected(set, replicas)) {
    const auto& copies = all.at(name);
    if (copies.size() != 1 || copies[0].state != "running") {
      return false;
    }
  }
  return true;
}

std::string Describe(const std::map<std::string, std::vector<HostVm>>& all) {
  std::vector<HostVm> vms;
  for (const auto& [name, copies] : all) {
    vms.insert(vms.end(), copies.begin(), copies.end());
  }
  return testing::Describe(vms);
}

// VM name -> provider id, for the VMs of one set (each must exist exactly once).
std::map<std::string, std::string> IdsOf(const std::map<std::string, std::vector<HostVm>>& all,
                                         const std::string& set) {
  std::map<std::string, std::string> ids;
  for (const std::string& name : NamesOf(all, set)) {
    EXPECT_EQ(all.at(name).size(), 1U) << name << "\n" << Describe(all);
    ids[name] = all.at(name).front().id;
  }
  return ids;
}

// Calls of hostsim endpoints, summed over every host.
int Calls(FleetFixture& fx, const std::vector<std::string>& endpoints) {
  const json counters = fx.sim().Control("GET", "/_sim/counters");
  int total = 0;
  if (!counters.is_object()) {
    return -1;
  }
  for (const auto& [host, by_endpoint] : counters.items()) {
    for (const std::string& endpoint : endpoints) {
      if (by_endpoint.contains(endpoint) && by_endpoint[endpoint].contains("calls")) {
        total += by_endpoint[endpoint]["calls"].get<int>();
      }
    }
  }
  return total;
}
int Creates(FleetFixture& fx) { return Calls(fx, {"create", "create_async", "clone"}); }
int Deletes(FleetFixture& fx) { return Calls(fx, {"delete"}); }
void ResetCounters(FleetFixture& fx) { fx.sim().Control("POST", "/_sim/counters/reset"); }

// Lines of an apply's plan output that start with `prefix` (e.g. "  ~ replace").
int LinesStartingWith(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    n += line.starts_with(prefix) ? 1 : 0;
  }
  return n;
}

json History(FleetFixture& fx) {
  const Outcome r = fx.Flotilla("history --json --limit 100");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(doc.is_object()) << r.out;
  return doc.is_object() ? doc : json{{"runs", json::array()}, {"revisions", json::array()}};
}

// `history --json` while a loop may be writing; empty when it cannot be read.
json HistoryIfAny(FleetFixture& fx) {
  const Outcome r = fx.Flotilla("history --json --limit 100");
  json doc = json::parse(r.out, nullptr, false);
  return r.exit_code == 0 && doc.is_object() && doc.contains("revisions")
             ? doc
             : json{{"runs", json::array()}, {"revisions", json::array()}};
}

// The first recorded revision with this outcome, or null.
json RevisionWith(const json& history, const std::string& outcome) {
  for (const json& r : history["revisions"]) {
    if (r.value("outcome", "") == outcome) {
      return r;
    }
  }
  return nullptr;
}

void ExpectApplied(const Outcome& r) {
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, "Apply complete") || Contains(r.err, "No changes")) << r.err;
}

// 1. A fresh fleet converges in one apply; a second apply has nothing to do.
TEST(ConvergeTest, ApplyConvergesAFreshFleet) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 4));
  fx.Commit("ci: 4 replicas");

  ExpectApplied(fx.Apply());
  const auto all = Inventory(fx);
  EXPECT_TRUE(Converged(all, "ci", 4)) << Describe(all);
  EXPECT_EQ(all.size(), 4U) << Describe(all);
  EXPECT_EQ(Creates(fx), 4);

  const Outcome again = fx.Apply();
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_TRUE(Contains(again.out + again.err, "No changes")) << again.out << again.err;
  EXPECT_EQ(Creates(fx), 4);  // nothing more was made

  const Outcome status = fx.Flotilla("status");
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_TRUE(Contains(status.out, "Managed VMs:       4")) << status.out;

  const json history = History(fx);
  ASSERT_EQ(history["runs"].size(), 2U) << history.dump(2);
  for (const json& run : history["runs"]) {
    EXPECT_EQ(run.value("outcome", ""), "succeeded") << run.dump();
  }
  EXPECT_FALSE(RevisionWith(history, "applied").is_null()) << history.dump(2);
}

// 2. Scaling up creates only the new VMs; the existing ones keep their ids.
TEST(ConvergeTest, RaisingReplicasCreatesOnlyTheNewVms) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2));
  fx.Commit("ci: 2 replicas");
  ExpectApplied(fx.Apply());
  const auto before = IdsOf(Inventory(fx), "ci");
  ASSERT_EQ(before.size(), 2U);

  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 4));
  fx.Commit("ci: 4 replicas");
  ResetCounters(fx);
  ExpectApplied(fx.Apply());
  const auto all = Inventory(fx);
  EXPECT_TRUE(Converged(all, "ci", 4)) << Describe(all);
  EXPECT_EQ(Creates(fx), 2);
  EXPECT_EQ(Deletes(fx), 0);
  EXPECT_EQ(Calls(fx, {"stop"}), 0);
  const auto after = IdsOf(all, "ci");
  EXPECT_EQ(after.at("ci-0"), before.at("ci-0"));
  EXPECT_EQ(after.at("ci-1"), before.at("ci-1"));
}

// 3. A template change rolls through the set, at most maxUnavailable replaces per apply, and
// every VM stays available between applies.
TEST(ConvergeTest, TemplateChangeRollsAtMostMaxUnavailableAtATime) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  const std::string rolling =
      "  prune: true\n  updateStrategy: {type: Rolling, maxUnavailable: 1}\n";
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 4, rolling, "catalog://LINUX/v1", 2));
  fx.Commit("ci: 4 replicas");
  ExpectApplied(fx.Apply());
  const auto first = Inventory(fx);
  ASSERT_TRUE(Converged(first, "ci", 4)) << Describe(first);
  for (const auto& [name, copies] : first) {
    EXPECT_EQ(copies.front().cpus, 2) << name;
  }
  const auto old_ids = IdsOf(first, "ci");

  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 4, rolling, "catalog://LINUX/v2", 3));
  fx.Commit("ci: new image, 3 cpus");
  int replaced = 0;
  bool done = false;
  for (int round = 0; round < 8 && !done; ++round) {
    const Outcome r = fx.Apply();
    ASSERT_EQ(r.exit_code, 0) << "round " << round << "\n" << r.out << r.err;
    const int replaces = LinesStartingWith(r.out, "  ~ replace");
    EXPECT_LE(replaces, 1) << "round " << round << ": more than maxUnavailable replaces\n" << r.out;
    replaced += replaces;
    done = Contains(r.out + r.err, "No changes");
    // Between applies, every replica exists once and runs (the new VM is made first).
    const auto now = Inventory(fx);
    EXPECT_TRUE(Converged(now, "ci", 4)) << "round " << round << "\n" << Describe(now);
  }
  EXPECT_TRUE(done) << "no convergence within 8 applies";
  EXPECT_EQ(replaced, 4);
  const auto all = Inventory(fx);
  EXPECT_TRUE(Converged(all, "ci", 4)) << Describe(all);
  for (const auto& [name, copies] : all) {
    EXPECT_EQ(copies.front().cpus, 3) << name << "\n" << Describe(all);
    EXPECT_NE(copies.front().id, old_ids.at(name)) << name << " was not replaced";
  }
  const Outcome plan = fx.Flotilla("plan");
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;

  // No apply ran more than one replace, by the store's account too.
  const json history = History(fx);
  for (const json& run : history["runs"]) {
    EXPECT_EQ(run.value("failed", -1), 0) << run.dump();
  }
}

// 4. Removing a VMSet (prune: true) deletes its VMs and nothing else.
TEST(ConvergeTest, RemovingAVmSetDeletesOnlyItsVms) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("a.yaml", FleetFixture::VmSetYaml("a", 2));
  fx.WriteManifest("b.yaml", FleetFixture::VmSetYaml("b", 2));
  fx.Commit("a and b");
  ExpectApplied(fx.Apply());
  const auto before = Inventory(fx);
  ASSERT_TRUE(Converged(before, "a", 2)) << Describe(before);
  ASSERT_TRUE(Converged(before, "b", 2)) << Describe(before);
  const auto a_ids = IdsOf(before, "a");

  fx.RemoveManifest("b.yaml");
  fx.Commit("remove b");
  ResetCounters(fx);
  ExpectApplied(fx.Apply("--max-deletions 10"));
  const auto after = Inventory(fx);
  EXPECT_TRUE(NamesOf(after, "b").empty()) << Describe(after);
  EXPECT_TRUE(Converged(after, "a", 2)) << Describe(after);
  EXPECT_EQ(IdsOf(after, "a"), a_ids);
  EXPECT_EQ(Deletes(fx), 2);
  EXPECT_EQ(Creates(fx), 0);
  EXPECT_TRUE(Contains(fx.Flotilla("status").out, "Managed VMs:       2"));
}

// The deletion budget is a rate: maxDeletionsPerRun within deletionWindow, counted from the
// journal, so back-to-back applies (separate processes: a restart each time) delete no more;
// an approval (apply --max-deletions) lets exactly one pass go past it, and is recorded.
TEST(ConvergeTest, TheDeletionBudgetHoldsOverPassesAndRestarts) {
  testing::FleetOptions options;
  options.reconcile_extra = "maxDeletionsPerRun: 1\n  deletionWindow: 1h";
  FleetFixture fx(options);
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("a.yaml", FleetFixture::VmSetYaml("a", 1));
  fx.WriteManifest("b.yaml", FleetFixture::VmSetYaml("b", 4));
  fx.Commit("a and b");
  ExpectApplied(fx.Apply());
  fx.RemoveManifest("b.yaml");
  fx.Commit("remove b");
  ResetCounters(fx);
  const Outcome first = fx.Apply();
  ExpectApplied(first);
  EXPECT_EQ(Deletes(fx), 1);
  EXPECT_TRUE(Contains(first.out, "at most 1 deletions per 60m")) << first.out;
  const Outcome second = fx.Apply();
  EXPECT_EQ(Deletes(fx), 1) << "the window still holds the first deletion\n" << second.out;
  EXPECT_TRUE(Contains(second.out, "1 made within it; the next may run in")) << second.out;

  const Outcome approved = fx.Apply("--max-deletions 2");
  ExpectApplied(approved);
  EXPECT_EQ(Deletes(fx), 3) << approved.out;
  EXPECT_TRUE(Contains(fx.Flotilla("history").out, "approved by local: up to 2 deletions"))
      << fx.Flotilla("history").out;
  fx.Apply();
  EXPECT_EQ(Deletes(fx), 3) << "the approval was spent by its pass";
}

// apply and plan take --pools, like a sharded loop; a misspelt pool is an error naming the
// pools there are, never a silent "nothing to do".
TEST(ConvergeTest, PoolsMustNameRealPools) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("a.yaml", FleetFixture::VmSetYaml("a", 1));
  fx.Commit("a");
  const Outcome apply = fx.Apply("--pools simz");
  EXPECT_EQ(apply.exit_code, 1) << apply.out << apply.err;
  EXPECT_TRUE(Contains(apply.err,
                       "--pools names pools the revision does not have: simz (its "
                       "pools: sims)"))
      << apply.err;
  const Outcome plan = fx.Flotilla("plan --pools simz");
  EXPECT_EQ(plan.exit_code, 1) << plan.out << plan.err;
  EXPECT_TRUE(Contains(plan.err, "its pools: sims")) << plan.err;
  ExpectApplied(fx.Apply("--pools sims"));
  EXPECT_EQ(fx.Flotilla("plan --pools sims").exit_code, 0);
}

// 5. VMs Flotilla did not create are never touched: not when sets are removed or scaled down,
// and not when one carries a desired name (a conflict, reported).
TEST(ConvergeTest, UnmanagedVmsAreNeverTouched) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  auto make = [&](int host, const std::string& name, const std::string& state) {
    fx.sim().Control("POST", "/_sim/hosts/" + fx.host(host) + "/vms",
                     {{"name", name},
                      {"os", "linux"},
                      {"cpu", 1},
                      {"memory_mb", 1024},
                      {"disk_mb", 10240},
                      {"state", state}});
  };
  make(0, "manual-1", "stopped");
  make(1, "manual-2", "running");
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 3));
  fx.WriteManifest("tmp.yaml", FleetFixture::VmSetYaml("tmp", 1));
  fx.Commit("ci and tmp");
  ExpectApplied(fx.Apply());
  const auto first = Inventory(fx);
  ASSERT_TRUE(Converged(first, "ci", 3)) << Describe(first);
  ASSERT_TRUE(Converged(first, "tmp", 1)) << Describe(first);
  ASSERT_EQ(first.count("manual-1"), 1U);
  ASSERT_EQ(first.count("manual-2"), 1U);
  const HostVm manual1 = first.at("manual-1").front();
  const HostVm manual2 = first.at("manual-2").front();
  auto expect_untouched = [&](const std::map<std::string, std::vector<HostVm>>& all,
                              const std::string& when) {
    for (const HostVm& want : {manual1, manual2}) {
      const std::string name = want.host == fx.host(0) ? "manual-1" : "manual-2";
      ASSERT_EQ(all.count(name), 1U) << when << ": " << name << " is gone\n" << Describe(all);
      ASSERT_EQ(all.at(name).size(), 1U) << when << "\n" << Describe(all);
      const HostVm& got = all.at(name).front();
      EXPECT_EQ(got.host, want.host) << when << ": " << name;
      EXPECT_EQ(got.id, want.id) << when << ": " << name;
      EXPECT_EQ(got.state, want.state) << when << ": " << name;
      EXPECT_EQ(got.cpus, 1) << when << ": " << name;
    }
  };
  expect_untouched(first, "after the first apply");

  // A set removed and another scaled down: deletions, but only of managed VMs.
  fx.RemoveManifest("tmp.yaml");
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("remove tmp, ci down to 1");
  ResetCounters(fx);
  ExpectApplied(fx.Apply("--max-deletions 10"));
  const auto second = Inventory(fx);
  EXPECT_TRUE(Converged(second, "ci", 1)) << Describe(second);
  EXPECT_TRUE(NamesOf(second, "tmp").empty()) << Describe(second);
  EXPECT_EQ(Deletes(fx), 3);
  expect_untouched(second, "after removing a set and scaling down");

  // A VM made out of band under a desired name, once the ledger owns VMs: a conflict.
  make(2, "ci-5", "stopped");
  const std::string clash_id = Inventory(fx).at("ci-5").front().id;
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 6));
  fx.Commit("ci up to 6");
  ResetCounters(fx);
  const Outcome r = fx.Apply();
  // The rest is applied, but a set left short is an error that says what to do.
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, "ci-5 on " + fx.host(2)) && Contains(r.err, "apply --adopt"))
      << r.err;
  bool reported = false;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    reported = reported || (Contains(line, "conflict") && Contains(line, "ci-5"));
  }
  EXPECT_TRUE(reported) << r.out;
  for (int round = 0; round < 2; ++round) {
    const auto all = Inventory(fx);
    for (const std::string& name : Expected("ci", 5)) {
      ASSERT_EQ(all.count(name), 1U) << name << "\n" << Describe(all);
      EXPECT_EQ(all.at(name).size(), 1U) << name << "\n" << Describe(all);
      EXPECT_EQ(all.at(name).front().state, "running") << name;
    }
    ASSERT_EQ(all.count("ci-5"), 1U) << Describe(all);
    ASSERT_EQ(all.at("ci-5").size(), 1U) << "ci-5 was created a second time\n" << Describe(all);
    EXPECT_EQ(all.at("ci-5").front().id, clash_id);
    EXPECT_EQ(all.at("ci-5").front().host, fx.host(2));
    EXPECT_EQ(all.at("ci-5").front().state, "stopped") << "the unmanaged ci-5 was started";
    expect_untouched(all, "after the conflict, round " + std::to_string(round));
    if (round == 0) {
      const Outcome again = fx.Apply();
      EXPECT_EQ(again.exit_code, 1) << again.out << again.err;
    }
  }
  EXPECT_EQ(Deletes(fx), 0);
  // (Creates rename their temporary VM, so "rename" is not counted here.)
  EXPECT_EQ(Calls(fx, {"stop", "set"}), 0);
  const Outcome status = fx.Flotilla("status");
  EXPECT_TRUE(Contains(status.out, "Managed VMs:       5")) << status.out;
  EXPECT_TRUE(Contains(status.out, "Conflicts:         1")) << status.out;

  // Taken over only when asked, as an action of the plan; its 1 CPU differs from the template,
  // so it is then rolled like any outdated VM (once it runs: it is started first, and until then
  // it is the set's one unavailable VM).
  ResetCounters(fx);
  const Outcome adopted = fx.Apply("--adopt");
  EXPECT_EQ(adopted.exit_code, 0) << adopted.out << adopted.err;
  EXPECT_TRUE(Contains(adopted.out, "= adopt         ci-5 on " + fx.host(2))) << adopted.out;
  EXPECT_TRUE(Contains(adopted.out, "adopted, template unknown")) << adopted.out;
  const Outcome rolled = fx.Apply();
  EXPECT_EQ(rolled.exit_code, 0) << rolled.out << rolled.err;
  EXPECT_TRUE(Contains(rolled.out, "replace       ci-5")) << rolled.out;
  const auto after = Inventory(fx);
  EXPECT_TRUE(Converged(after, "ci", 6)) << Describe(after);
  EXPECT_EQ(after.at("ci-5").front().cpus, 2);
  expect_untouched(after, "after adopting ci-5");
  EXPECT_TRUE(Contains(fx.Flotilla("status").out, "Managed VMs:       6"));
}

// 8a. Looking changes nothing: status, history, hosts, vms and plan open the store read-only
// (the file stays byte-identical), and refuse a store of another schema instead of migrating it
// under a running loop of another version. plan judges VMs by the store's ledger, as apply does.
TEST(ConvergeTest, ReadCommandsAndPlanLeaveTheStoreAsItWas) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2));
  fx.Commit("ci: 2 replicas");
  ExpectApplied(fx.Apply());
  auto bytes = [&] {
    std::ifstream in(fx.store_path(), std::ios::binary);
    std::stringstream all;
    all << in.rdbuf();
    return all.str();
  };
  const std::string before = bytes();
  ASSERT_FALSE(before.empty());
  for (const char* command : {"status", "history", "hosts", "vms"}) {
    const Outcome r = fx.Flotilla(command);
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
  }
  const Outcome plan = fx.Flotilla("plan");
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;  // the ledger owns ci-0 and ci-1
  EXPECT_TRUE(Contains(plan.out, "No changes")) << plan.out;
  EXPECT_EQ(bytes(), before) << "a read command changed the store";

  auto set_version = [&](int version) {
    ASSERT_EQ(std::system(("/usr/bin/python3 -c \"import sqlite3; c = sqlite3.connect('" +
                           fx.store_path().string() + "'); c.execute('PRAGMA user_version = " +
                           std::to_string(version) + "'); c.commit()\"")
                              .c_str()),
              0);
  };
  // As an older loop's store looks to this build: refused, not migrated.
  set_version(2);
  const std::string older = bytes();
  for (const char* command : {"status", "vms", "plan"}) {
    const Outcome r = fx.Flotilla(command);
    EXPECT_EQ(r.exit_code, 1) << command;
    EXPECT_TRUE(Contains(r.err, "has store schema 2")) << command << ": " << r.err;
  }
  EXPECT_EQ(bytes(), older) << "a read command migrated the store";
  set_version(99);
  for (const char* command : {"status", "plan"}) {
    const Outcome r = fx.Flotilla(command);
    EXPECT_EQ(r.exit_code, 1) << command;
    EXPECT_TRUE(Contains(r.err, "newer flotilla (schema 99)")) << command << ": " << r.err;
  }
}

// 8b. Removing the last VM set of a pool is refused, and says so: apply exits 1 naming the
// approval, status and history count it, an event records it; an approval lets it through.
TEST(ConvergeTest, RemovingThePoolsLastVmSetIsRefusedLoudly) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2));
  fx.Commit("ci: 2 replicas");
  ExpectApplied(fx.Apply());
  fx.RemoveManifest("ci.yaml");
  fx.Commit("remove ci");
  ResetCounters(fx);
  const Outcome r = fx.Apply("--max-deletions 10");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, "2 deletions in pool sims refused") &&
              Contains(r.err, "apply --allow-empty"))
      << r.err;
  EXPECT_EQ(Deletes(fx), 0);
  const Outcome status = fx.Flotilla("status");
  EXPECT_TRUE(Contains(status.out, "Refused:           2")) << status.out;
  EXPECT_TRUE(Contains(status.out, "deletions-refused")) << status.out;
  const json runs = History(fx)["runs"];
  ASSERT_FALSE(runs.empty());
  EXPECT_EQ(runs[0].value("refused", -1), 2) << runs[0].dump();
  EXPECT_TRUE(Contains(runs[0].value("message", ""), "refused")) << runs[0].dump();

  const Outcome approved = fx.Apply("--max-deletions 10 --allow-empty");
  EXPECT_EQ(approved.exit_code, 0) << approved.out << approved.err;
  EXPECT_EQ(Deletes(fx), 2);
}

// 6. Without --yes and without a terminal, apply refuses and changes nothing.
TEST(ConvergeTest, ApplyWithoutYesRefusesWhenStdinIsNotATerminal) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2));
  fx.Commit("ci: 2 replicas");
  const Outcome r = fx.Flotilla("apply");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, "--yes")) << r.err;
  EXPECT_TRUE(Inventory(fx).empty()) << Describe(Inventory(fx));
  EXPECT_EQ(Creates(fx), 0);
}

// 7. One owner per state directory: while a loop runs, apply and a second loop are refused.
TEST(ConvergeTest, ALoopLocksTheStateDirectory) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2));
  fx.Commit("ci: 2 replicas");
  auto loop = fx.StartLoop();
  ASSERT_TRUE(WaitUntil([&] { return Contains(fx.LoopLog(), "flotilla run:"); })) << fx.LoopLog();

  const Outcome apply = fx.Apply();
  EXPECT_EQ(apply.exit_code, 1) << apply.out << apply.err;
  EXPECT_TRUE(Contains(apply.err, "another flotilla")) << apply.err;

  // `timeout`: a second loop that wrongly got the lock would otherwise run forever.
  const Outcome second = testing::RunCommand(
      "NO_COLOR=1 timeout 20 " FLOTILLA_BIN " run --config " + fx.config().string(), fx.dir());
  EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
  EXPECT_TRUE(Contains(second.err, "another flotilla")) << second.err;

  loop->Stop();
  EXPECT_TRUE(Contains(fx.LoopLog(), "stopped")) << fx.LoopLog();
  ExpectApplied(fx.Apply());
  const auto all = Inventory(fx);
  EXPECT_TRUE(Converged(all, "ci", 2)) << Describe(all);
}

// 8. The loop converges, follows new commits, and stops cleanly on SIGTERM.
TEST(ConvergeTest, TheLoopConvergesAndFollowsCommits) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2));
  fx.Commit("ci: 2 replicas");
  auto loop = fx.StartLoop();
  ASSERT_TRUE(
      WaitUntil([&] { return Converged(Inventory(fx), "ci", 2); }, std::chrono::seconds(30)))
      << Describe(Inventory(fx)) << fx.LoopLog();

  const auto before = IdsOf(Inventory(fx), "ci");
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 3));
  fx.Commit("ci: 3 replicas");
  ASSERT_TRUE(
      WaitUntil([&] { return Converged(Inventory(fx), "ci", 3); }, std::chrono::seconds(30)))
      << Describe(Inventory(fx)) << fx.LoopLog();
  const auto after = IdsOf(Inventory(fx), "ci");
  EXPECT_EQ(after.at("ci-0"), before.at("ci-0"));
  EXPECT_EQ(after.at("ci-1"), before.at("ci-1"));
  // The second pass numbers its actions from 1 again, and an action's start and end lines
  // carry the same number.
  ASSERT_TRUE(WaitUntil([&] { return Contains(fx.LoopLog(), "] start ci-2 on "); }))
      << fx.LoopLog();
  EXPECT_TRUE(Contains(fx.LoopLog(), "[1/2] create ci-2 on ")) << fx.LoopLog();
  EXPECT_TRUE(std::regex_search(fx.LoopLog(), std::regex(R"(\[1/2\] create ci-2 on [^:]+: )")))
      << fx.LoopLog();
  EXPECT_TRUE(std::regex_search(fx.LoopLog(), std::regex(R"(\[2/2\] start ci-2 on [^:]+: )")))
      << fx.LoopLog();

  // An invalid commit that would scale down: rejected; the loop keeps reconciling against the
  // last good revision (ci-2, removed out of band, comes back) and deletes nothing.
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1, "  prune: true\n  bogus: 1\n"));
  const std::string bad = fx.Commit("ci: 1 replica, and a typo");
  ASSERT_TRUE(WaitUntil([&] {
    const json r = RevisionWith(HistoryIfAny(fx), "rejected");
    return !r.is_null() && r.value("sha", "") == bad;
  })) << fx.LoopLog();
  ResetCounters(fx);
  fx.sim().Control("DELETE", "/_sim/hosts/" + Inventory(fx).at("ci-2").front().host + "/vms/ci-2");
  ASSERT_TRUE(
      WaitUntil([&] { return Converged(Inventory(fx), "ci", 3); }, std::chrono::seconds(30)))
      << Describe(Inventory(fx)) << fx.LoopLog();
  EXPECT_EQ(Deletes(fx), 0);
  EXPECT_EQ(IdsOf(Inventory(fx), "ci").at("ci-0"), before.at("ci-0"));

  // SIGTERM: the loop drains and says so (Stop() would SIGKILL it after 5 s otherwise, and
  // then "stopped" is never logged).
  loop->Stop();
  EXPECT_TRUE(Contains(fx.LoopLog(), "stopped")) << fx.LoopLog();
  const json history = History(fx);
  EXPECT_GE(history["runs"].size(), 2U) << history.dump(2);
  EXPECT_GE(history["revisions"].size(), 2U) << history.dump(2);
  for (const json& run : history["runs"]) {
    EXPECT_NE(run.value("outcome", ""), "failed") << run.dump();
  }
}

// 9a. Git unreachable: the last applied revision stays in force (from the mirror), drift is
// still corrected, nothing is deleted, and the failed fetch is recorded.
TEST(ConvergeTest, FailStaticWhenGitIsUnreachable) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  testing::GitDaemon daemon(fx.dir());
  ASSERT_TRUE(daemon.ready());
  fx.WriteConfig(daemon.Url("fleet"));
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 3));
  fx.Commit("ci: 3 replicas");
  ExpectApplied(fx.Apply());
  const auto first = Inventory(fx);
  ASSERT_TRUE(Converged(first, "ci", 3)) << Describe(first);
  const auto ids = IdsOf(first, "ci");

  daemon.Stop();
  // Drift while Git is away: ci-1 vanishes from its host. A newer commit (which nobody can
  // fetch) would scale down.
  fx.sim().Control("DELETE", "/_sim/hosts/" + first.at("ci-1").front().host + "/vms/ci-1");
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("ci: 1 replica");
  ResetCounters(fx);
  const Outcome r = fx.Apply("--max-deletions 10");
  // The last good revision was applied, but the newest was not: that is reported as an error.
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, "warning") && Contains(r.err, "cannot read")) << r.err;
  const auto all = Inventory(fx);
  EXPECT_TRUE(Converged(all, "ci", 3)) << "the last applied revision was not applied\n"
                                       << Describe(all);
  EXPECT_EQ(Deletes(fx), 0);
  EXPECT_EQ(Creates(fx), 1);
  const auto now = IdsOf(all, "ci");
  EXPECT_EQ(now.at("ci-0"), ids.at("ci-0"));
  EXPECT_EQ(now.at("ci-2"), ids.at("ci-2"));

  const json failed = RevisionWith(History(fx), "failed");
  ASSERT_FALSE(failed.is_null()) << History(fx).dump(2);
  EXPECT_FALSE(failed.value("reason", "").empty()) << failed.dump();
}

// 9b. An invalid commit is rejected with its file:line; the last good revision is applied
// (drift corrected) and its scale-down is not.
TEST(ConvergeTest, FailStaticOnAnInvalidRevision) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 4));
  fx.Commit("ci: 4 replicas");
  ExpectApplied(fx.Apply());
  const auto first = Inventory(fx);
  ASSERT_TRUE(Converged(first, "ci", 4)) << Describe(first);
  const auto ids = IdsOf(first, "ci");

  fx.sim().Control("DELETE", "/_sim/hosts/" + first.at("ci-3").front().host + "/vms/ci-3");
  // Line 8 of ci.yaml is an unknown field; the same commit drops replicas to 2.
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2, "  prune: true\n  bogus: 1\n"));
  const std::string bad = fx.Commit("ci: 2 replicas, and a typo");
  ResetCounters(fx);
  const Outcome r = fx.Apply("--max-deletions 10");
  // The last good revision was applied, but the newest was not: that is reported as an error.
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, "warning") && Contains(r.err, "unknown field")) << r.err;
  const auto all = Inventory(fx);
  EXPECT_TRUE(Converged(all, "ci", 4)) << Describe(all);
  EXPECT_EQ(Deletes(fx), 0);
  EXPECT_EQ(Creates(fx), 1);  // ci-3, as the last good revision wants
  const auto now = IdsOf(all, "ci");
  for (const char* name : {"ci-0", "ci-1", "ci-2"}) {
    EXPECT_EQ(now.at(name), ids.at(name)) << name;
  }
  const json rejected = RevisionWith(History(fx), "rejected");
  ASSERT_FALSE(rejected.is_null()) << History(fx).dump(2);
  EXPECT_EQ(rejected.value("sha", ""), bad);
  // "ci.yaml@<sha>:8:3: error: unknown field ..."
  EXPECT_TRUE(
      std::regex_search(rejected.value("reason", ""), std::regex(R"(ci\.yaml(@[0-9a-f]+)?:8:)")))
      << rejected.dump();
  const Outcome status = fx.Flotilla("status");
  EXPECT_TRUE(Contains(status.out, "rejected")) << status.out;
}

// 9c. A commit that removes every manifest is rejected, not taken as "delete everything".
TEST(ConvergeTest, FailStaticOnAnEmptyRevision) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 3));
  fx.Commit("ci: 3 replicas");
  ExpectApplied(fx.Apply());
  const auto ids = IdsOf(Inventory(fx), "ci");
  ASSERT_EQ(ids.size(), 3U);

  fx.RemoveManifest("ci.yaml");
  fx.RemoveManifest("pool.yaml");
  fx.Commit("remove everything");
  ResetCounters(fx);
  const Outcome r = fx.Apply("--max-deletions 10 --allow-empty");
  // The last good revision was applied, but the newest was not: that is reported as an error.
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, "warning") && Contains(r.err, "no manifests")) << r.err;
  const auto all = Inventory(fx);
  EXPECT_TRUE(Converged(all, "ci", 3)) << Describe(all);
  EXPECT_EQ(IdsOf(all, "ci"), ids);
  EXPECT_EQ(Deletes(fx), 0);
  const json rejected = RevisionWith(History(fx), "rejected");
  ASSERT_FALSE(rejected.is_null()) << History(fx).dump(2);
  EXPECT_TRUE(Contains(rejected.value("reason", ""), "no manifests")) << rejected.dump();
}

// 10. apply --plan applies exactly a saved plan, and refuses one that went stale.
TEST(ConvergeTest, ApplyASavedPlanOnlyWhileItIsCurrent) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  const std::string plan = (fx.dir() / "plan.json").string();
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2));
  fx.Commit("ci: 2 replicas");
  Outcome p = fx.Flotilla("plan --out " + plan);
  ASSERT_EQ(p.exit_code, 2) << p.out << p.err;

  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 3));
  fx.Commit("ci: 3 replicas");
  const Outcome stale = fx.Flotilla("apply --plan " + plan);
  EXPECT_EQ(stale.exit_code, 1) << stale.out << stale.err;
  EXPECT_TRUE(Contains(stale.err, "refusing")) << stale.err;
  EXPECT_TRUE(Inventory(fx).empty()) << Describe(Inventory(fx));

  p = fx.Flotilla("plan --out " + plan);
  ASSERT_EQ(p.exit_code, 2) << p.out << p.err;
  const Outcome current = fx.Flotilla("apply --plan " + plan);
  ExpectApplied(current);
  const auto all = Inventory(fx);
  EXPECT_TRUE(Converged(all, "ci", 3)) << Describe(all);
}

// 10b. `apply --help`: a saved plan is "refused if the revision ... changed since". A commit that
// changes nothing the plan does is still a new revision.
TEST(ConvergeTest, ApplyASavedPlanRefusesANewRevision) {
  FleetFixture fx;
  ASSERT_TRUE(fx.ready());
  const std::string plan = (fx.dir() / "plan.json").string();
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2));
  fx.Commit("ci: 2 replicas");
  const Outcome p = fx.Flotilla("plan --out " + plan);
  ASSERT_EQ(p.exit_code, 2) << p.out << p.err;

  fx.WriteManifest("ci.yaml", "# reviewed\n" + FleetFixture::VmSetYaml("ci", 2));
  fx.Commit("ci: a comment");
  // The actions are the same, but the plan names the revision it was made from.
  const Outcome r = fx.Flotilla("apply --plan " + plan);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, "refusing")) << r.err;
}

}  // namespace
}  // namespace flotilla
