// VmIndex: every VM name of a pool (on its hosts, desired by its sets, in its ledger) found by
// name, with its copies in host order, its set and its ledger entry.

#include "reconciler/planner/index.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/fleet_values.h"

namespace flotilla::planner {
namespace {

VMSet IndexSet(const std::string& name, uint32_t replicas) {
  VMSet set;
  set.meta.name = name;
  set.pool = "macs";
  set.replicas = replicas;
  return set;
}

VmInfo IndexVm(const std::string& name) {
  return VmInfo{.id = "id-" + name, .name = name, .state = VmState::kRunning};
}

TEST(VmIndexTest, FindsCopiesDesiredNamesAndLedgerEntries) {
  HostPool pool;
  pool.meta.name = "macs";
  pool.hosts = {testing::Host("mini-01"), testing::Host("mini-02"), testing::Host("mini-03")};
  Observed observed;
  observed.hosts["mini-01"] = testing::Online("mini-01", "macs");
  observed.hosts["mini-01"].vms = {IndexVm("ci-0"), IndexVm("ci-1"), IndexVm("stray")};
  observed.hosts["mini-02"] = testing::Online("mini-02", "macs");
  observed.hosts["mini-02"].vms = {IndexVm("ci-1"), IndexVm("old-7")};
  // mini-03 is not observed.
  const VMSet ci = IndexSet("ci", 3);
  const VMSet build = IndexSet("build", 2);
  const std::vector<const VMSet*> sets = {&ci, &build};
  const std::vector<LedgerEntry> ledger = {
      {.vm = "ci-0", .vmset = "ci", .pool = "macs", .host = "mini-01"},
      {.vm = "old-7", .vmset = "old", .pool = "macs", .host = "mini-02"},
      {.vm = "gone-1", .vmset = "gone", .pool = "macs", .host = "mini-03"}};
  const std::vector<const LedgerEntry*> entries = {&ledger[0], &ledger[1], &ledger[2]};
  VmIndex index(pool, ObservedHostsOf(pool, observed), sets, entries, PlannerOptions{});

  EXPECT_EQ(index.desired_names(),
            (std::vector<std::string>{"ci-0", "ci-1", "ci-2", "build-0", "build-1"}));
  for (size_t i = 0; i < index.desired_names().size(); ++i) {
    EXPECT_EQ(index.Find(index.desired_names()[i]), &index.DesiredRecord(i)) << i;
  }

  const VmRecord* ci0 = index.Find("ci-0");
  ASSERT_NE(ci0, nullptr);
  EXPECT_EQ(ci0->set, &ci);
  EXPECT_EQ(ci0->owned, &ledger[0]);
  ASSERT_EQ(ci0->copies.size(), 1u);
  EXPECT_EQ(ci0->copies[0].host->name, "mini-01");

  const VmRecord* ci1 = index.Find("ci-1");  // on two hosts, in the pool's host order
  ASSERT_NE(ci1, nullptr);
  ASSERT_EQ(ci1->copies.size(), 2u);
  EXPECT_EQ(ci1->copies[0].host->name, "mini-01");
  EXPECT_EQ(ci1->copies[1].host->name, "mini-02");
  EXPECT_EQ(ci1->owned, nullptr);

  const VmRecord* ci2 = index.Find("ci-2");  // desired, nowhere yet
  ASSERT_NE(ci2, nullptr);
  EXPECT_TRUE(ci2->copies.empty());
  EXPECT_EQ(ci2->set, &ci);

  const VmRecord* stray = index.Find("stray");  // on a host, neither desired nor owned
  ASSERT_NE(stray, nullptr);
  EXPECT_EQ(stray->set, nullptr);
  EXPECT_EQ(stray->owned, nullptr);
  EXPECT_EQ(stray->copies.size(), 1u);

  const VmRecord* old = index.Find("old-7");  // owned, no longer desired
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->set, nullptr);
  EXPECT_EQ(old->owned, &ledger[1]);

  const VmRecord* gone = index.Find("gone-1");  // owned, its host not observed
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(gone->owned, &ledger[2]);
  EXPECT_TRUE(gone->copies.empty());

  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(&index.EntryRecord(i), index.Find(entries[i]->vm)) << i;
    EXPECT_EQ(index.EntryRecord(i).owned, entries[i]);
    EXPECT_TRUE(index.EntryRecord(i).managed);
  }
  EXPECT_FALSE(ci1->managed);
  EXPECT_FALSE(stray->managed);

  EXPECT_EQ(index.Find("ci-3"), nullptr);
  EXPECT_EQ(index.Find(""), nullptr);
  EXPECT_EQ(index.Find("ci"), nullptr);
  const VmIndex& read_only = index;
  EXPECT_EQ(read_only.Find("ci-1"), ci1);
  EXPECT_EQ(read_only.Find("nothing"), nullptr);
}

// Many names, most of them in several places: each is found once, with its own record, and
// records written through one lookup are read through another.
TEST(VmIndexTest, ManyNamesEachFoundOnce) {
  HostPool pool;
  pool.meta.name = "macs";
  Observed observed;
  for (int h = 0; h < 20; ++h) {
    const std::string name = "mini-" + std::to_string(h);
    pool.hosts.push_back(testing::Host(name));
    observed.hosts[name] = testing::Online(name, "macs");
  }
  const VMSet big = IndexSet("big", 3000);
  std::vector<LedgerEntry> ledger;
  for (uint32_t i = 0; i < 3500; i += 2) {  // some beyond the replicas
    const std::string vm = big.VMName(i);
    const std::string host = "mini-" + std::to_string(i % 20);
    observed.hosts[host].vms.push_back(IndexVm(vm));
    ledger.push_back(LedgerEntry{.vm = vm, .vmset = "big", .pool = "macs", .host = host});
  }
  std::vector<const LedgerEntry*> entries;
  for (const LedgerEntry& entry : ledger) {
    entries.push_back(&entry);
  }
  VmIndex index(pool, ObservedHostsOf(pool, observed), {&big}, entries, PlannerOptions{});
  ASSERT_EQ(index.desired_names().size(), 3000u);
  for (size_t i = 0; i < 3000; ++i) {
    index.DesiredRecord(i).adopt_id = static_cast<int>(i) + 1;
  }
  for (uint32_t i = 0; i < 4000; ++i) {
    const std::string vm = big.VMName(i);
    const VmRecord* record = index.Find(vm);
    const bool known = i < 3000 || (i < 3500 && i % 2 == 0);
    ASSERT_EQ(record != nullptr, known) << vm;
    if (record == nullptr) {
      continue;
    }
    EXPECT_EQ(record->set, i < 3000 ? &big : nullptr) << vm;
    EXPECT_EQ(record->adopt_id, i < 3000 ? static_cast<int>(i) + 1 : 0) << vm;
    EXPECT_EQ(record->owned != nullptr, i % 2 == 0) << vm;
    if (record->owned != nullptr) {
      EXPECT_EQ(record->owned->vm, vm);
      ASSERT_EQ(record->copies.size(), 1u) << vm;
      EXPECT_EQ(record->copies[0].vm->name, vm);
      EXPECT_EQ(record->copies[0].host->name, record->owned->host);
    } else {
      EXPECT_TRUE(record->copies.empty()) << vm;
    }
  }
}

}  // namespace
}  // namespace flotilla::planner
