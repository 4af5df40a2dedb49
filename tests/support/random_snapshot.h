#pragma once

// Random snapshots for tests of the API's views (tests/unit/api_views_golden_test.cc pins their
// renderings, so a change here changes the recorded hashes): 1 to 3 pools of 1 to 5 hosts, VM
// sets, and VMs and hosts whose names, states, OS words and addresses hold quotes, backslashes,
// control characters, non-ASCII text and bytes that are not UTF-8; managed, unmanaged, outdated
// and pending VMs; offline, never observed and cordoned hosts; addresses with credentials.

#include <array>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/controller/snapshot.h"
#include "reconciler/model/normalize.h"
#include "tests/support/fleet_values.h"

namespace flotilla::testing {

using controller::Snapshot;

class RandomSnapshot {
 public:
  explicit RandomSnapshot(uint64_t seed) : random_(seed) {}

  Snapshot Make() {
    Snapshot snapshot;
    snapshot.observed_at = kNow + std::chrono::seconds{Int(0, 100000)};
    snapshot.sha = std::string(40, 'c');
    const int pools = Int(1, 3);
    for (int p = 0; p < pools; ++p) {
      AddPool(snapshot, "p" + std::to_string(p));
    }
    Normalize(snapshot.desired);
    return snapshot;
  }

 private:
  int Int(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random_); }
  bool OneIn(int n) { return Int(1, n) == 1; }

  // Mostly plain words, sometimes the text a JSON writer must escape or repair.
  std::string Word(const std::string& plain) {
    static constexpr std::array kOdd = {std::string_view("quote\"d"),
                                        std::string_view("back\\slash"),
                                        std::string_view("tab\tand\nline"),
                                        std::string_view("bell\x07\x1f"),
                                        std::string_view("caf\xc3\xa9"),
                                        std::string_view("\xe6\x97\xa5\xe6\x9c\xac"),
                                        std::string_view("bad\xff\xfe"),
                                        std::string_view("cut\xe6\x97"),
                                        std::string_view("del\x7f"),
                                        std::string_view("\xf0\x9f\x9a\x80rocket"),
                                        std::string_view(""),
                                        std::string_view("slash/</script>")};
    if (!OneIn(4)) {
      return plain;
    }
    return plain +
           std::string(kOdd[static_cast<size_t>(Int(0, static_cast<int>(kOdd.size()) - 1))]);
  }

  void AddPool(Snapshot& snapshot, const std::string& name) {
    HostPool pool;
    pool.meta.name = name;
    pool.provider = OneIn(2) ? "parallels" : "tart";
    std::vector<std::string> sets;
    const int set_count = Int(0, 2);
    for (int s = 0; s < set_count; ++s) {
      VMSet set;
      set.meta.name = name + "-set" + std::to_string(s);
      set.pool = name;
      set.replicas = static_cast<uint32_t>(Int(0, 5));
      set.templ = Template("catalog://img" + std::to_string(Int(0, 1)),
                           OneIn(2) ? GuestOs::kLinux : GuestOs::kMacos, 2, 4, 40);
      sets.push_back(set.meta.name);
      snapshot.desired.sets.push_back(set);
    }
    const int hosts = Int(1, 5);
    for (int h = 0; h < hosts; ++h) {
      const std::string host = Word(name + "-h" + std::to_string(h));
      HostSpec spec = Host(host);
      if (OneIn(3)) {
        spec.address = "https://admin:s3cret@" + host + ":8080/path?x=1";
      }
      spec.cordoned = OneIn(6);
      for (int t = Int(0, 2); t > 0; --t) {
        spec.tags.push_back(Word("tag" + std::to_string(t)));
      }
      if (OneIn(3)) {
        spec.max_vms = static_cast<uint32_t>(Int(0, 8));
      }
      pool.hosts.push_back(spec);
      if (OneIn(8)) {
        continue;  // never observed
      }
      ObservedHost& observed = snapshot.observed.hosts[host];
      observed = Online(host, name);
      observed.online = !OneIn(5);
      if (!observed.online) {
        observed.error = Word("connection refused");
        observed.failures = static_cast<uint32_t>(Int(1, 9));
        observed.error_rate = static_cast<double>(Int(1, 9)) / Int(1, 9);
        if (OneIn(2)) {
          observed.last_seen.reset();  // never answered
        }
      }
      if (OneIn(3)) {
        observed.facts.arch.reset();
      }
      observed.facts.os_name = Word(OneIn(2) ? "macOS" : "Ubuntu");
      observed.facts.os_version = Word("15.5");
      observed.facts.agent_version = Word("1.0.5");
      observed.facts.running_macos_vms = static_cast<uint32_t>(Int(0, 2));
      observed.facts.disk_known = !OneIn(4);
      if (OneIn(4)) {
        observed.facts.unsupported_images[Word("oci")] = Word("no tart on this host");
      }
      const int vms = Int(0, 6);
      for (int v = 0; v < vms; ++v) {
        VmInfo vm{.id = Word("id-" + std::to_string(v)),
                  .name = Word(host + "-vm" + std::to_string(v)),
                  .state = static_cast<VmState>(Int(0, 5)),
                  .os_raw = Word(OneIn(2) ? "ubuntu" : "macosx"),
                  .type = Word("APPLE_VZ_VM"),
                  .cpu = static_cast<uint32_t>(Int(1, 16)),
                  .memory_bytes = static_cast<uint64_t>(Int(1, 64)) * kGi + 7,
                  .disk_bytes = static_cast<uint64_t>(Int(0, 500)) * kGi,
                  .ip = OneIn(2) ? "10.0.0." + std::to_string(v) : ""};
        if (OneIn(3)) {
          vm.raw_state = Word("suspended");
        }
        if (!OneIn(4)) {
          vm.os = OneIn(2) ? GuestOs::kLinux : GuestOs::kMacos;
        }
        if (OneIn(10)) {
          vm.pending_create_for = "some-set";
        }
        if (!sets.empty() && !OneIn(3)) {
          const std::string& set =
              sets[static_cast<size_t>(Int(0, static_cast<int>(sets.size()) - 1))];
          snapshot.ledger.entries.push_back(
              LedgerEntry{.vm = vm.name,
                          .vmset = set,
                          .pool = name,
                          .host = host,
                          .provider_id = OneIn(2) ? vm.id : "",
                          .template_hash = OneIn(2) ? "old-hash" : ""});
        }
        observed.vms.push_back(vm);
      }
    }
    snapshot.desired.pools.push_back(pool);
  }

  std::mt19937_64 random_;
};

}  // namespace flotilla::testing
