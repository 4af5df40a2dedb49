#include "reconciler/planner/index.h"

#include <algorithm>

namespace flotilla::planner {
namespace {

// True when recovery deletes the VM with `id` on `host` (PlannerOptions::finish_deletes).
bool Finishing(const PlannerOptions& options, const std::string& host, const std::string& id) {
  return std::any_of(options.finish_deletes.begin(), options.finish_deletes.end(),
                     [&](const FinishDelete& d) { return d.host == host && d.vm_id == id; });
}

// The hash VmIndex keys names by.
size_t NameHash(std::string_view name) { return std::hash<std::string_view>{}(name); }

template <typename T>
const std::vector<T>& OfPool(const std::unordered_map<std::string_view, std::vector<T>>& by_pool,
                             std::string_view pool) {
  static const std::vector<T> kNone;
  auto it = by_pool.find(pool);
  return it == by_pool.end() ? kNone : it->second;
}

}  // namespace

FleetIndex::FleetIndex(const Desired& desired, const Ledger& ledger) {
  pools_.reserve(desired.pools.size());
  for (const HostPool& pool : desired.pools) {
    pools_.emplace(pool.meta.name, &pool);
  }
  sets_.reserve(desired.sets.size());
  for (const VMSet& set : desired.sets) {
    sets_.emplace(set.meta.name, &set);
    sets_of_pool_[set.pool].push_back(&set);
  }
  // Ledgers list a pool's entries together: look a pool up again only when it changes.
  std::vector<const LedgerEntry*>* of_pool = nullptr;
  std::string_view pool;
  for (const LedgerEntry& entry : ledger.entries) {
    if (of_pool == nullptr || entry.pool != pool) {
      pool = entry.pool;
      of_pool = &ledger_of_pool_[pool];  // unordered_map: its values stay in place
    }
    of_pool->push_back(&entry);
  }
}

const HostPool* FleetIndex::FindPool(std::string_view name) const {
  auto it = pools_.find(name);
  return it == pools_.end() ? nullptr : it->second;
}

const VMSet* FleetIndex::FindSet(std::string_view name) const {
  auto it = sets_.find(name);
  return it == sets_.end() ? nullptr : it->second;
}

const std::vector<const VMSet*>& FleetIndex::SetsOf(std::string_view pool) const {
  return OfPool(sets_of_pool_, pool);
}

const std::vector<const LedgerEntry*>& FleetIndex::LedgerOf(std::string_view pool) const {
  return OfPool(ledger_of_pool_, pool);
}

const VmIndex::Slot* VmIndex::Lookup(std::string_view name, size_t hash) const {
  const auto low = static_cast<uint32_t>(hash);
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const Entry& e = table_[i];
    if (e.slot == 0) {
      return nullptr;
    }
    if (e.hash == low && slots_[e.slot - 1].name == name) {
      return &slots_[e.slot - 1];
    }
  }
}

VmIndex::Slot& VmIndex::Insert(std::string_view name) {
  const size_t hash = NameHash(name);
  const auto low = static_cast<uint32_t>(hash);
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    Entry& e = table_[i];
    if (e.slot == 0) {
      slots_.push_back(Slot{.name = name});  // within the reserved size: nothing moves
      e = Entry{.slot = static_cast<uint32_t>(slots_.size()), .hash = low};
      return slots_.back();
    }
    if (e.hash == low && slots_[e.slot - 1].name == name) {
      return slots_[e.slot - 1];
    }
  }
}

VmIndex::VmIndex(const HostPool& pool, std::span<const ObservedHost* const> observed,
                 const std::vector<const VMSet*>& sets,
                 const std::vector<const LedgerEntry*>& entries, const PlannerOptions& options) {
  // The copies on the hosts, gathered first (to size the table), then counted per name so that
  // each name's copies can lie side by side in one vector, in the order they are found.
  std::vector<std::pair<Slot*, Located>> found;
  for (size_t i = 0; i < pool.hosts.size(); ++i) {
    const HostSpec& spec = pool.hosts[i];
    const ObservedHost* host = observed[i];
    if (host == nullptr) {
      continue;
    }
    for (const VmInfo& vm : host->vms) {
      if (vm.pending_create_for.empty() && !Finishing(options, spec.name, vm.id)) {
        found.emplace_back(nullptr, Located{.host = host, .vm = &vm});
      }
    }
  }
  size_t replicas = 0;
  for (const VMSet* set : sets) {
    replicas += set->replicas;
  }
  // Every name the pool can hold, at most: the table stays under half full, slots_ never grows.
  const size_t most = found.size() + replicas + entries.size();
  size_t size = 16;
  while (size < 2 * most) {
    size *= 2;
  }
  table_.resize(size);
  mask_ = size - 1;
  slots_.reserve(most);
  for (auto& [slot, copy] : found) {
    slot = &Insert(copy.vm->name);
    ++slot->copy_count;
  }
  size_t next = 0;
  for (Slot& slot : slots_) {
    slot.first_copy = next;
    next += slot.copy_count;
    slot.copy_count = 0;
  }
  located_.resize(found.size());
  for (const auto& [slot, copy] : found) {
    located_[slot->first_copy + slot->copy_count++] = copy;
  }
  for (Slot& slot : slots_) {
    slot.record.copies =
        std::span<const Located>(located_).subspan(slot.first_copy, slot.copy_count);
  }
  desired_names_.reserve(replicas);  // never reallocated: the slots view these strings
  desired_records_.reserve(replicas);
  for (const VMSet* set : sets) {
    for (uint32_t i = 0; i < set->replicas; ++i) {
      desired_names_.push_back(set->VMName(i));
      VmRecord& record = Insert(desired_names_.back()).record;
      record.set = set;
      desired_records_.push_back(&record);
    }
  }
  entry_records_.reserve(entries.size());
  for (const LedgerEntry* entry : entries) {
    VmRecord& record = Insert(entry->vm).record;
    record.owned = entry;
    record.managed = true;
    entry_records_.push_back(&record);
  }
}

const VmRecord* VmIndex::Find(std::string_view vm) const {
  const Slot* slot = Lookup(vm, NameHash(vm));
  return slot == nullptr ? nullptr : &slot->record;
}

VmRecord* VmIndex::Find(std::string_view vm) {
  const Slot* slot = Lookup(vm, NameHash(vm));
  return slot == nullptr ? nullptr : &slots_[static_cast<size_t>(slot - slots_.data())].record;
}

}  // namespace flotilla::planner
