#pragma once

// Lookups one plan builds once from its inputs, so that planning does not search: the revision's
// pools and sets by name with each pool's sets and ledger entries (FleetIndex), and every VM name
// of one pool with what the plan knows about it (VmIndex). Names are views of the inputs' own
// strings, never copies: the inputs must outlive the index. Not thread-safe; one per plan.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "reconciler/model/observed.h"
#include "reconciler/model/plan.h"
#include "reconciler/model/types.h"
#include "reconciler/planner/placement.h"

namespace flotilla::planner {

// Pools and sets by name (the first of a name, as Desired::FindPool and FindSet find them), and
// each pool's sets and ledger entries in the order of the revision and the ledger.
class FleetIndex {
 public:
  FleetIndex(const Desired& desired, const Ledger& ledger);

  const HostPool* FindPool(std::string_view name) const;
  const VMSet* FindSet(std::string_view name) const;
  const std::vector<const VMSet*>& SetsOf(std::string_view pool) const;
  const std::vector<const LedgerEntry*>& LedgerOf(std::string_view pool) const;

 private:
  std::unordered_map<std::string_view, const HostPool*> pools_;
  std::unordered_map<std::string_view, const VMSet*> sets_;
  std::unordered_map<std::string_view, std::vector<const VMSet*>> sets_of_pool_;
  std::unordered_map<std::string_view, std::vector<const LedgerEntry*>> ledger_of_pool_;
};

// One copy of a named VM on a host.
struct Located {
  const ObservedHost* host = nullptr;
  const VmInfo* vm = nullptr;
};

// What one plan knows about one VM name of a pool.
struct VmRecord {
  // The copies of the name on the pool's observed hosts, in the pool's host order and then as
  // each host lists them; creates in progress and copies being deleted by
  // PlannerOptions::finish_deletes are not copies.
  std::span<const Located> copies;
  const VMSet* set = nullptr;          // the set that desires the name (the last, if several)
  const LedgerEntry* owned = nullptr;  // the pool's ledger entry (the last, if several)
  int adopt_id = 0;                    // the adopt action of this plan; 0 if none
  // Flotilla's: in the pool's ledger (`owned` set) or to be adopted by this plan (the planner
  // marks those).
  bool managed = false;
};

// Every VM name of one pool: on its hosts, desired by its sets, or in its ledger entries.
class VmIndex {
 public:
  // `observed` is ObservedHostsOf(pool, ...).
  VmIndex(const HostPool& pool, std::span<const ObservedHost* const> observed,
          const std::vector<const VMSet*>& sets, const std::vector<const LedgerEntry*>& entries,
          const PlannerOptions& options);

  // The record of `vm`, or null if the pool knows no such name.
  const VmRecord* Find(std::string_view vm) const;
  VmRecord* Find(std::string_view vm);

  // The desired names, set by set (in the order given) and by ordinal.
  const std::vector<std::string>& desired_names() const { return desired_names_; }
  // The record of desired_names()[i], without looking it up.
  VmRecord& DesiredRecord(size_t i) { return *desired_records_[i]; }
  // The record of the i-th ledger entry given, without looking it up.
  const VmRecord& EntryRecord(size_t i) const { return *entry_records_[i]; }

 private:
  struct Slot {
    std::string_view name;
    VmRecord record;
    size_t first_copy = 0;  // in located_
    size_t copy_count = 0;
  };
  // The slot of `name`, or null; with its hash, as Hash() gives it.
  const Slot* Lookup(std::string_view name, size_t hash) const;
  // The slot of `name`, added if the index has none yet.
  Slot& Insert(std::string_view name);

  std::vector<std::string> desired_names_;
  std::vector<VmRecord*> desired_records_;      // one per desired name
  std::vector<const VmRecord*> entry_records_;  // one per ledger entry
  std::vector<Located> located_;
  // An open-addressed table (linear probing) of indices into slots_, with part of each name's
  // hash to pass over most others without comparing names. Sized once for every name the pool
  // can hold and never grown: slots_ keeps its records in place (records are pointed at).
  struct Entry {
    uint32_t slot = 0;  // 1 + index in slots_; 0 when the entry is free
    uint32_t hash = 0;  // the hash's low bits
  };
  std::vector<Entry> table_;
  size_t mask_ = 0;          // table_.size() - 1 (a power of two)
  std::vector<Slot> slots_;  // in the order first seen; reserved, never reallocated
};

}  // namespace flotilla::planner
