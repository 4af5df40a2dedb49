#include "reconciler/model/normalize.h"

#include <gtest/gtest.h>

namespace flotilla {
namespace {

HostPool SamplePool() {
  HostPool pool;
  pool.meta.name = "mac";
  pool.defaults.max_vms = 3;
  pool.defaults.arch = Arch::kArm64;
  pool.defaults.capacity = HostCapacity{8, Quantity::FromMiB(16384), Quantity::FromMiB(100000)};
  HostSpec b;
  b.name = "b";
  b.address = "https://b";
  b.tags = {"z", "a", "z"};
  HostSpec a;
  a.name = "a";
  a.address = "https://a";
  a.tags = {"m"};
  a.max_vms = 1;
  a.arch = Arch::kX86_64;
  pool.hosts = {b, a};
  return pool;
}

TEST(NormalizeTest, HostsInheritPoolDefaults) {
  HostPool pool = SamplePool();
  Normalize(pool);
  ASSERT_EQ(pool.hosts.size(), 2u);
  const HostSpec& a = pool.hosts[0];
  const HostSpec& b = pool.hosts[1];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.max_vms, 1u);  // own value wins
  EXPECT_EQ(a.arch, Arch::kX86_64);
  EXPECT_EQ(b.max_vms, 3u);  // pool default
  EXPECT_TRUE(b.max_vms_from_pool);
  EXPECT_FALSE(a.max_vms_from_pool);
  EXPECT_EQ(b.arch, Arch::kArm64);
  ASSERT_TRUE(b.capacity.has_value());
  EXPECT_EQ(b.capacity->cpu, 8u);
}

// Without maxVMs anywhere a host has no cap: its resources bound it (and Apple's licence, the
// macOS VMs it runs), not a number copied from the macOS limit.
TEST(NormalizeTest, NoMaxVMsMeansNoCap) {
  HostPool pool;
  HostSpec host;
  host.name = "h";
  host.address = "https://h";
  pool.hosts = {host};
  Normalize(pool);
  EXPECT_FALSE(pool.hosts[0].max_vms.has_value());
  EXPECT_FALSE(pool.hosts[0].max_vms_from_pool);
  EXPECT_FALSE(pool.hosts[0].arch.has_value());  // unknown until observed
}

TEST(NormalizeTest, SortsAndDeduplicatesTags) {
  HostPool pool = SamplePool();
  Normalize(pool);
  EXPECT_EQ(pool.hosts[1].tags, (std::vector<std::string>{"a", "z"}));

  VMSet set;
  set.selector_tags = {"x", "b", "x"};
  Normalize(set);
  EXPECT_EQ(set.selector_tags, (std::vector<std::string>{"b", "x"}));
}

TEST(NormalizeTest, OrderOfDeclarationDoesNotMatter) {
  Desired one;
  one.pools = {SamplePool()};
  one.pools[0].meta.name = "p2";
  HostPool p1 = SamplePool();
  p1.meta.name = "p1";
  one.pools.push_back(p1);
  VMSet s1, s2;
  s1.meta.name = "s1";
  s2.meta.name = "s2";
  one.sets = {s2, s1};

  Desired two = one;
  std::reverse(two.pools.begin(), two.pools.end());
  std::reverse(two.sets.begin(), two.sets.end());
  for (HostPool& p : two.pools) {
    std::reverse(p.hosts.begin(), p.hosts.end());
  }
  EXPECT_NE(one, two);
  Normalize(one);
  Normalize(two);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one.pools[0].meta.name, "p1");
  EXPECT_EQ(one.sets[0].meta.name, "s1");
}

TEST(NormalizeTest, IsIdempotent) {
  Desired d;
  d.pools = {SamplePool()};
  Normalize(d);
  Desired again = d;
  Normalize(again);
  EXPECT_EQ(d, again);
}

TEST(NormalizeTest, TemplateDefaultsAreFilledByConstruction) {
  VMSet set;
  EXPECT_EQ(set.placement, Placement::kSpread);
  EXPECT_EQ(set.templ.state, PowerState::kRunning);
  EXPECT_EQ(set.update_strategy.type, UpdateStrategyType::kRolling);
  EXPECT_EQ(set.update_strategy.max_unavailable, 1u);
  EXPECT_FALSE(set.prune);
  EXPECT_TRUE(set.self_heal);
}

TEST(NamesTest, VMNamesAreSetNameAndOrdinal) {
  VMSet set;
  set.meta.name = "ios-runners";
  EXPECT_EQ(set.VMName(0), "ios-runners-0");
  EXPECT_EQ(set.VMName(12), "ios-runners-12");
  EXPECT_EQ(set.VMName(4294967295u), "ios-runners-4294967295");  // the largest ordinal
  set.meta.name = "a-set-name-longer-than-a-short-string";
  EXPECT_EQ(set.VMName(100), "a-set-name-longer-than-a-short-string-100");
}

TEST(NamesTest, EnumSpellingsRoundTrip) {
  for (Arch a : {Arch::kArm64, Arch::kX86_64}) {
    EXPECT_EQ(ParseArch(ToString(a)), a);
  }
  for (UpdateStrategyType t : {UpdateStrategyType::kRolling, UpdateStrategyType::kRecreate,
                               UpdateStrategyType::kOnDelete}) {
    EXPECT_EQ(ParseUpdateStrategyType(ToString(t)), t);
  }
  EXPECT_EQ(ParseArch("amd64"), std::nullopt);
  EXPECT_EQ(ParseGuestOs("macos"), GuestOs::kMacos);
  EXPECT_EQ(ParsePowerState("stopped"), PowerState::kStopped);
  EXPECT_EQ(ParsePlacement("pack"), Placement::kPack);
}

}  // namespace
}  // namespace flotilla
