#pragma once

// bench/soak: the fleet the soak's driver wants, as values it changes at random and writes to the
// fleet repository (one commit per change): VM sets with replicas, template, prune and rolling
// updates, and which hosts are cordoned. `web` always exists (a revision that deletes every
// managed VM is refused, and the soak wants something to converge); `batch`, `ci` and `lab` come
// and go, with and without prune.

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/support/fleet_fixture.h"

namespace flotilla::soak {

inline constexpr int kMaxReplicas = 3;  // per set; four sets fit on two of four hosts

struct SetSpec {
  int replicas = 1;
  int cpu = 1;
  int image_version = 1;  // catalog://LINUX/v<N>
  bool prune = true;
};

class SoakFleet {
 public:
  SoakFleet(testing::FleetFixture& fixture, int hosts, uint32_t max_vms)
      : fixture_(fixture), hosts_(hosts), max_vms_(max_vms) {
    sets_["web"] = SetSpec{.replicas = 2, .cpu = 1, .image_version = 1, .prune = true};
    sets_["batch"] = SetSpec{.replicas = 1, .cpu = 2, .image_version = 1, .prune = false};
  }

  const std::map<std::string, SetSpec>& sets() const { return sets_; }
  const std::set<int>& cordoned() const { return cordoned_; }
  static const std::vector<std::string>& AllSetNames() {
    static const std::vector<std::string> kNames = {"web", "batch", "ci", "lab"};
    return kNames;
  }

  // One random change; returns what it did, for the log. Does not commit.
  std::string RandomChange(std::mt19937_64& rng) {
    std::uniform_int_distribution<int> pick(0, 5);
    for (;;) {
      switch (pick(rng)) {
        case 0:
        case 1: {  // replicas up or down
          const std::string name = RandomPresent(rng);
          SetSpec& s = sets_[name];
          const int before = s.replicas;
          s.replicas = std::uniform_int_distribution<int>(name == "web" ? 1 : 0, kMaxReplicas)(rng);
          if (s.replicas == before) {
            continue;
          }
          return name + " replicas " + std::to_string(before) + " -> " + std::to_string(s.replicas);
        }
        case 2: {  // template change: a rolling update
          const std::string name = RandomPresent(rng);
          SetSpec& s = sets_[name];
          if (std::bernoulli_distribution(0.5)(rng)) {
            s.cpu = s.cpu == 1 ? 2 : 1;
            return name + " template cpu -> " + std::to_string(s.cpu);
          }
          s.image_version = s.image_version % 3 + 1;
          return name + " template image -> v" + std::to_string(s.image_version);
        }
        case 3: {  // a set added, or removed
          std::vector<std::string> absent;
          std::vector<std::string> present;
          for (const std::string& name : AllSetNames()) {
            if (name != "web") {
              (sets_.contains(name) ? present : absent).push_back(name);
            }
          }
          const bool add =
              present.empty() || (!absent.empty() && std::bernoulli_distribution(0.5)(rng));
          if (add) {
            const std::string name = absent[Index(rng, absent.size())];
            sets_[name] = SetSpec{.replicas = std::uniform_int_distribution<int>(1, 2)(rng),
                                  .cpu = std::uniform_int_distribution<int>(1, 2)(rng),
                                  .image_version = std::uniform_int_distribution<int>(1, 3)(rng),
                                  .prune = std::bernoulli_distribution(0.5)(rng)};
            return "add " + name + " (" + std::to_string(sets_[name].replicas) +
                   " replicas, prune " + (sets_[name].prune ? "true" : "false") + ")";
          }
          const std::string name = present[Index(rng, present.size())];
          const bool prune = sets_[name].prune;
          sets_.erase(name);
          return "remove " + name + " (prune " + (prune ? "true" : "false") + ")";
        }
        case 4: {  // prune on or off
          const std::string name = RandomPresent(rng);
          sets_[name].prune = !sets_[name].prune;
          return name + " prune -> " + (sets_[name].prune ? "true" : "false");
        }
        case 5: {  // cordon a host (at most one at a time), or uncordon it
          if (!cordoned_.empty()) {
            const int host = *cordoned_.begin();
            cordoned_.clear();
            return "uncordon " + fixture_.host(host);
          }
          const int host = static_cast<int>(Index(rng, static_cast<size_t>(hosts_)));
          cordoned_.insert(host);
          return "cordon " + fixture_.host(host);
        }
        default:
          break;
      }
    }
  }

  void UncordonAll() { cordoned_.clear(); }
  SetSpec& Set(const std::string& name) { return sets_[name]; }

  // Writes the pool and every set to the repository and commits; the commit's SHA.
  std::string Commit(const std::string& message) {
    fixture_.WriteManifest("pool.yaml", PoolYaml());
    for (const std::string& name : AllSetNames()) {
      fixture_.RemoveManifest(name + ".yaml");
    }
    for (const auto& [name, s] : sets_) {
      fixture_.WriteManifest(name + ".yaml",
                             testing::FleetFixture::VmSetYaml(
                                 name, s.replicas,
                                 std::string("  prune: ") + (s.prune ? "true" : "false") +
                                     "\n  updateStrategy: {type: Rolling, maxUnavailable: 1}\n",
                                 "catalog://LINUX/v" + std::to_string(s.image_version), s.cpu));
    }
    return fixture_.Commit(message);
  }

 private:
  static size_t Index(std::mt19937_64& rng, size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  }
  std::string RandomPresent(std::mt19937_64& rng) const {
    auto it = sets_.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(Index(rng, sets_.size())));
    return it->first;
  }
  std::string PoolYaml() const {
    std::string yaml =
        "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: sims}\nspec:\n"
        "  credentialsRef: sims\n  catalog: {connectionRef: catalog}\n"
        "  defaults: {maxVMs: " +
        std::to_string(max_vms_) + "}\n  hosts:\n";
    for (int i = 0; i < hosts_; ++i) {
      yaml += "    - {name: " + fixture_.host(i) + ", address: \"" + fixture_.Address(i) + "\"" +
              (cordoned_.contains(i) ? ", cordoned: true" : "") + "}\n";
    }
    return yaml;
  }

  testing::FleetFixture& fixture_;
  int hosts_;
  uint32_t max_vms_;
  std::map<std::string, SetSpec> sets_;
  std::set<int> cordoned_;
};

}  // namespace flotilla::soak
