// The unfiltered VM list rendered in kept pieces (reconciler/api/vms_pieces.h): on random
// sequences of snapshots, each rendering is byte for byte VmsText's, its gzip member reads back
// to it, and only the pieces whose rows changed are rendered again.

#include "reconciler/api/vms_pieces.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "reconciler/api/views.h"
#include "reconciler/model/normalize.h"
#include "reconciler/model/template_hash.h"
#include "tests/support/fleet_values.h"
#include "tests/support/gunzip.h"
#include "tests/support/random_snapshot.h"

// A named namespace: this file shares a unity build with the other API tests.
namespace flotilla::api::vms_pieces {
namespace {

using testing::Gunzip;

// One random change of the kinds a pass makes, or that a revision makes.
class Mutator {
 public:
  explicit Mutator(uint64_t seed) : random_(seed) {}

  void Mutate(Snapshot& s) {
    s.observed_at += std::chrono::seconds{1};  // every pass
    switch (Int(0, 11)) {
      case 0:
        break;  // a pass that changed nothing else
      case 1:
        if (VmInfo* vm = AnyVm(s)) {
          vm->state = static_cast<VmState>(Int(0, 5));
        }
        break;
      case 2:
        if (VmInfo* vm = AnyVm(s)) {
          vm->ip = OneIn(2) ? "" : "10.1.2." + std::to_string(Int(0, 255));
          vm->cpu = static_cast<uint32_t>(Int(1, 16));
        }
        break;
      case 3:
        if (ObservedHost* host = AnyHost(s); host != nullptr && !host->vms.empty()) {
          host->vms.erase(host->vms.begin() + Int(0, static_cast<int>(host->vms.size()) - 1));
        }
        break;
      case 4:
        if (ObservedHost* host = AnyHost(s)) {
          VmInfo vm{.id = "new-" + std::to_string(next_),
                    .name = "new-vm-" + std::to_string(next_)};
          vm.state = VmState::kRunning;
          vm.pending_create_for = OneIn(4) ? "a-set" : "";
          ++next_;
          host->vms.push_back(vm);
          if (!s.desired.sets.empty() && OneIn(2)) {
            s.ledger.entries.push_back(LedgerEntry{.vm = vm.name,
                                                   .vmset = s.desired.sets[0].meta.name,
                                                   .pool = host->pool,
                                                   .host = host->name,
                                                   .provider_id = vm.id,
                                                   .template_hash = "old-hash"});
          }
        }
        break;
      case 5:
        if (!s.ledger.entries.empty()) {
          LedgerEntry& entry = s.ledger.entries[Index(s.ledger.entries.size())];
          if (OneIn(2)) {
            entry.template_hash = entry.template_hash == "old-hash" ? "" : "old-hash";
          } else {
            s.ledger.entries.erase(s.ledger.entries.begin() +
                                   static_cast<std::ptrdiff_t>(&entry - s.ledger.entries.data()));
          }
        }
        break;
      case 6:
        if (!s.desired.sets.empty()) {  // a revision: a set's template changes
          VMSet& set = s.desired.sets[Index(s.desired.sets.size())];
          set.templ.cpu = static_cast<uint32_t>(Int(1, 8));
          // Some of its VMs made from it now: no longer outdated.
          for (LedgerEntry& entry : s.ledger.entries) {
            if (entry.vmset == set.meta.name && OneIn(2)) {
              entry.template_hash = TemplateHash(set.templ);
            }
          }
        }
        break;
      case 7:
        if (ObservedHost* host = AnyHost(s)) {
          host->online = !host->online;  // its VMs' host_state
        }
        break;
      case 8:
        if (ObservedHost* host = AnyHost(s)) {
          s.observed.hosts.erase(host->name);  // no observation any more
        }
        break;
      case 9:
        AddHosts(s, Int(1, 20));  // pools of more than one piece
        break;
      case 10: {  // a host leaves its pool's spec: later hosts move between pieces
        HostPool& pool = s.desired.pools[Index(s.desired.pools.size())];
        if (pool.hosts.size() > 1) {
          pool.hosts.erase(pool.hosts.begin() + Int(0, static_cast<int>(pool.hosts.size()) - 1));
        }
        break;
      }
      case 11:
        if (s.desired.pools.size() > 1) {  // a pool goes
          s.desired.pools.erase(s.desired.pools.begin());
        }
        break;
      default:
        break;
    }
  }

  void AddHosts(Snapshot& s, int count) {
    HostPool& pool = s.desired.pools[Index(s.desired.pools.size())];
    for (int i = 0; i < count; ++i) {
      const std::string name = pool.meta.name + "-added-" + std::to_string(next_++);
      pool.hosts.push_back(testing::Host(name));
      ObservedHost& host = s.observed.hosts[name];
      host = testing::Online(name, pool.meta.name);
      for (int v = Int(0, 4); v > 0; --v) {
        host.vms.push_back(VmInfo{.id = name + "-id-" + std::to_string(v),
                                  .name = name + "-vm-" + std::to_string(v),
                                  .state = VmState::kStopped,
                                  .cpu = 2});
      }
    }
  }

 private:
  int Int(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random_); }
  bool OneIn(int n) { return Int(1, n) == 1; }
  size_t Index(size_t size) { return static_cast<size_t>(Int(0, static_cast<int>(size) - 1)); }

  ObservedHost* AnyHost(Snapshot& s) {
    if (s.observed.hosts.empty()) {
      return nullptr;
    }
    auto it = s.observed.hosts.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(Index(s.observed.hosts.size())));
    return &it->second;
  }
  VmInfo* AnyVm(Snapshot& s) {
    ObservedHost* host = AnyHost(s);
    if (host == nullptr || host->vms.empty()) {
      return nullptr;
    }
    return &host->vms[Index(host->vms.size())];
  }

  std::mt19937_64 random_;
  int next_ = 0;
};

TEST(VmsPiecesTest, RandomSnapshotSequencesRenderAsAWholeRenderingDoes) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Snapshot snapshot = testing::RandomSnapshot(seed).Make();
    Mutator mutator(seed);
    if (seed % 2 == 0) {
      mutator.AddHosts(snapshot, 40);
    }
    VmsPieces pieces;
    for (int step = 0; step < 30; ++step) {
      const VmsPieces::Rendered rendered = pieces.Render(snapshot);
      const std::string whole = VmsText(snapshot, {});
      ASSERT_EQ(rendered.body->Joined(), whole) << "seed " << seed << ", step " << step;
      ASSERT_EQ(Gunzip(rendered.gzipped), whole) << "seed " << seed << ", step " << step;
      mutator.Mutate(snapshot);
    }
  }
}

TEST(VmsPiecesTest, AnEmptyFleetIsAnEmptyList) {
  Snapshot snapshot;
  snapshot.observed_at = testing::kNow;
  VmsPieces pieces;
  const VmsPieces::Rendered rendered = pieces.Render(snapshot);
  EXPECT_EQ(rendered.body->Joined(), VmsText(snapshot, {}));
  EXPECT_EQ(Gunzip(rendered.gzipped), rendered.body->Joined());
  EXPECT_EQ(rendered.pieces, 0U);
}

// 3 pools of 40 hosts with 2 VMs each: 3 pieces per pool.
Snapshot Fleet() {
  Snapshot snapshot;
  snapshot.observed_at = testing::kNow;
  for (int p = 0; p < 3; ++p) {
    HostPool pool;
    pool.meta.name = "pool-" + std::to_string(p);
    for (int h = 0; h < 40; ++h) {
      const std::string name = pool.meta.name + "-host-" + std::to_string(h);
      pool.hosts.push_back(testing::Host(name));
      ObservedHost& host = snapshot.observed.hosts[name];
      host = testing::Online(name, pool.meta.name);
      for (int v = 0; v < 2; ++v) {
        host.vms.push_back(VmInfo{.id = name + "-" + std::to_string(v),
                                  .name = name + "-vm-" + std::to_string(v),
                                  .state = VmState::kRunning,
                                  .cpu = 4});
      }
    }
    snapshot.desired.pools.push_back(pool);
  }
  return snapshot;
}

TEST(VmsPiecesTest, OnlyThePiecesWhoseRowsChangedAreRenderedAgain) {
  Snapshot snapshot = Fleet();
  VmsPieces pieces;
  VmsPieces::Rendered rendered = pieces.Render(snapshot);
  EXPECT_EQ(rendered.pieces, 9U);
  EXPECT_EQ(rendered.rendered, 9U);

  snapshot.observed_at += std::chrono::seconds{30};  // a pass that changed nothing
  rendered = pieces.Render(snapshot);
  EXPECT_EQ(rendered.rendered, 0U);
  EXPECT_EQ(rendered.body->Joined(), VmsText(snapshot, {}));

  snapshot.observed.hosts.at("pool-1-host-20").vms[1].state = VmState::kStopped;
  rendered = pieces.Render(snapshot);
  EXPECT_EQ(rendered.rendered, 1U);  // hosts 16 to 31 of pool-1
  EXPECT_EQ(rendered.body->Joined(), VmsText(snapshot, {}));
  EXPECT_EQ(Gunzip(rendered.gzipped), rendered.body->Joined());

  // A ledger entry (what "managed" and "vmset" show) is a change of its VM's row.
  snapshot.ledger.entries.push_back(LedgerEntry{.vm = "pool-2-host-3-vm-0",
                                                .vmset = "ci",
                                                .pool = "pool-2",
                                                .host = "pool-2-host-3",
                                                .provider_id = "",
                                                .template_hash = "h"});
  rendered = pieces.Render(snapshot);
  EXPECT_EQ(rendered.rendered, 1U);
  EXPECT_EQ(rendered.body->Joined(), VmsText(snapshot, {}));

  // A host going offline changes the host_state of each of its VMs' rows.
  snapshot.observed.hosts.at("pool-0-host-39").online = false;
  rendered = pieces.Render(snapshot);
  EXPECT_EQ(rendered.rendered, 1U);
  EXPECT_EQ(rendered.body->Joined(), VmsText(snapshot, {}));
}

}  // namespace
}  // namespace flotilla::api::vms_pieces
