#pragma once

// bench/soak: the invariants counted at the end, once faults are off and the loop has converged,
// from what the hosts list (through the DevOps API), the store's ledger and journal, and the
// unmanaged VMs the soak made out of band.

#include <cctype>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bench/soak/soak_fleet.h"
#include "reconciler/model/plan.h"
#include "reconciler/store/store.h"
#include "tests/support/fleet_fixture.h"

namespace flotilla::soak {

// A VM the soak made out of band: Flotilla must never change or delete it.
struct UnmanagedVm {
  std::string host;
  std::string id;
  std::string name;
  std::string state;
  int cpus = 0;
  bool desired_name = false;  // made with a name the fleet wants (or may want): a conflict
};

// One row of the final table: what is counted, its count, and whether it must be 0.
struct Count {
  std::string what;
  long value = 0;
  bool invariant = true;
  std::string detail;  // the offending VMs, for the log
};

inline bool IsTemporaryName(const std::string& name) {
  return name.find(".flotilla-") != std::string::npos || name.rfind("flotilla-prepull-h", 0) == 0;
}

// "<set>-<ordinal>" of a set in `sets`: the ordinal, or -1.
inline int OrdinalOf(const std::string& name, const std::string& set) {
  if (name.size() <= set.size() + 1 || name.rfind(set + "-", 0) != 0) {
    return -1;
  }
  const std::string digits = name.substr(set.size() + 1);
  if (digits.empty() || digits.size() > 3 ||
      digits.find_first_not_of("0123456789") != std::string::npos ||
      (digits.size() > 1 && digits[0] == '0')) {
    return -1;
  }
  return std::stoi(digits);
}

inline std::vector<Count> CountInvariants(const std::vector<testing::HostVm>& vms,
                                          const std::vector<UnmanagedVm>& unmanaged,
                                          const std::map<std::string, SetSpec>& desired,
                                          const Ledger& ledger) {
  std::set<std::pair<std::string, std::string>> ours;  // (host, id)
  for (const UnmanagedVm& u : unmanaged) {
    ours.insert({u.host, u.id});
  }
  std::map<std::string, std::vector<const testing::HostVm*>> made;  // by the loop, by name
  std::set<std::string> ids;
  Count temps{.what = "temporary VMs left"};
  for (const testing::HostVm& vm : vms) {
    ids.insert(vm.id);
    if (ours.contains({vm.host, vm.id})) {
      continue;
    }
    if (IsTemporaryName(vm.name)) {
      ++temps.value;
      temps.detail += " " + vm.host + "/" + vm.name;
      continue;
    }
    made[vm.name].push_back(&vm);
  }
  Count duplicates{.what = "duplicate VMs (same desired name twice)"};
  for (const auto& [name, list] : made) {
    if (list.size() > 1) {
      duplicates.value += static_cast<long>(list.size()) - 1;
      duplicates.detail += " " + name + " x" + std::to_string(list.size());
    }
  }
  std::set<std::string> held_by_ours;
  for (const UnmanagedVm& u : unmanaged) {
    held_by_ours.insert(u.name);
  }
  Count missing{.what = "managed VMs missing"};
  Count stopped{.what = "managed VMs not running"};
  Count outdated{.what = "managed VMs with an old template (cpu)"};
  Count conflicts{.what = "desired names held by unmanaged VMs (conflicts, reported)",
                  .invariant = false};
  Count unpruned{.what = "VMs of pruned sets beyond replicas"};
  for (const auto& [set, spec] : desired) {
    for (int k = 0; k < spec.replicas; ++k) {
      const std::string name = set + "-" + std::to_string(k);
      auto it = made.find(name);
      if (it == made.end()) {
        if (held_by_ours.contains(name)) {
          ++conflicts.value;
          conflicts.detail += " " + name;
        } else {
          ++missing.value;
          missing.detail += " " + name;
        }
        continue;
      }
      for (const testing::HostVm* vm : it->second) {
        if (vm->state != "running") {
          ++stopped.value;
          stopped.detail += " " + vm->host + "/" + name + "(" + vm->state + ")";
        }
        if (vm->cpus != spec.cpu) {
          ++outdated.value;
          outdated.detail += " " + vm->host + "/" + name;
        }
      }
    }
    if (spec.prune) {
      for (const auto& [name, list] : made) {
        if (OrdinalOf(name, set) >= spec.replicas) {
          unpruned.value += static_cast<long>(list.size());
          unpruned.detail += " " + name;
        }
      }
    }
  }
  Count untouched_changed{.what = "unmanaged VMs modified"};
  Count untouched_gone{.what = "unmanaged VMs deleted"};
  for (const UnmanagedVm& u : unmanaged) {
    const testing::HostVm* now = nullptr;
    for (const testing::HostVm& vm : vms) {
      if (vm.host == u.host && vm.id == u.id) {
        now = &vm;
      }
    }
    if (now == nullptr) {
      ++untouched_gone.value;
      untouched_gone.detail += " " + u.host + "/" + u.name;
    } else if (now->name != u.name || now->state != u.state || now->cpus != u.cpus) {
      ++untouched_changed.value;
      untouched_changed.detail += " " + u.host + "/" + u.name + " (" + u.state + " -> " +
                                  now->name + " " + now->state + ")";
    }
  }
  Count dangling{.what = "ledger rows pointing at nothing"};
  std::set<std::pair<std::string, std::string>> in_ledger;
  for (const LedgerEntry& e : ledger.entries) {
    in_ledger.insert({e.host, e.provider_id});
    if (!ids.contains(e.provider_id)) {
      ++dangling.value;
      dangling.detail += " " + e.vm + "@" + e.host;
    }
  }
  Count orphans{.what = "VMs the loop made that the ledger lacks"};
  for (const auto& [name, list] : made) {
    for (const testing::HostVm* vm : list) {
      if (!in_ledger.contains({vm->host, vm->id})) {
        ++orphans.value;
        orphans.detail += " " + vm->host + "/" + name;
      }
    }
  }
  return {duplicates,     missing,  stopped, outdated, unpruned, untouched_changed,
          untouched_gone, dangling, orphans, temps,    conflicts};
}

// An action's error without what differs between VMs and hosts ("host sim-002: cannot follow
// job 0c2f..." -> "host # cannot follow job #"), cut to 52 characters, to group failures.
inline std::string ErrorClass(const std::string& error) {
  std::string out;
  bool in_word = false;
  std::string word;
  const auto flush = [&] {
    // Ids, names and addresses carry digits; an HTTP status ("500:") is kept.
    const bool status =
        word.size() <= 4 && word.find_first_not_of("0123456789:") == std::string::npos;
    const bool variable = !status && word.find_first_of("0123456789") != std::string::npos;
    out += variable ? "#" : word;
    word.clear();
  };
  for (char ch : error) {
    const bool part = std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' ||
                      ch == '_' || ch == ':' || ch == '/';
    if (part) {
      word += ch;
      in_word = true;
      continue;
    }
    if (in_word) {
      flush();
      in_word = false;
    }
    out += ch;
  }
  if (in_word) {
    flush();
  }
  return out.substr(0, 52);
}

// Actions of every run in the store's journal (one row per attempt), by state.
struct ActionTally {
  long runs = 0;
  long attempted = 0;
  long succeeded = 0;
  long failed = 0;
  long abandoned = 0;
  long unfinished = 0;  // intended or running (a run that died and was never closed)
  std::map<std::string, long> by_kind;
  std::map<std::string, long> failures;  // first 60 characters of the error -> count
};

inline ActionTally TallyActions(store::Store& store) {
  ActionTally t;
  Result<std::vector<store::RunRecord>> runs = store.Runs(0);
  if (!runs.ok()) {
    return t;
  }
  t.runs = static_cast<long>(runs->size());
  for (const store::RunRecord& run : *runs) {
    Result<std::vector<store::ActionRecord>> actions = store.Actions(run.id);
    if (!actions.ok()) {
      continue;
    }
    for (const store::ActionRecord& a : *actions) {
      ++t.attempted;
      ++t.by_kind[std::string(ToString(a.kind))];
      switch (a.state) {
        case store::ActionState::kSucceeded:
          ++t.succeeded;
          break;
        case store::ActionState::kFailed:
          ++t.failed;
          ++t.failures[ErrorClass(a.error)];
          break;
        case store::ActionState::kAbandoned:
          ++t.abandoned;
          break;
        default:
          ++t.unfinished;
          break;
      }
    }
  }
  return t;
}

}  // namespace flotilla::soak
