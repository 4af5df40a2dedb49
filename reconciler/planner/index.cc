#include "reconciler/planner/index.h"

#include <algorithm>

namespace flotilla::planner {
namespace {

// True when recovery deletes the VM with `id` on `host` (PlannerOptions::finish_deletes).
bool Finishing(const PlannerOptions& options, const std::string& host, const std::string& id) {
  return std::any_of(options.finish_deletes.begin(), options.finish_deletes.end(),
                     [&](const FinishDelete& d) { return d.host == host && d.vm_id == id; });
}

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
  for (const LedgerEntry& entry : ledger.entries) {
    ledger_of_pool_[entry.pool].push_back(&entry);
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

VmIndex::VmIndex(const HostPool& pool, const Observed& observed,
                 const std::vector<const VMSet*>& sets,
                 const std::vector<const LedgerEntry*>& entries, const PlannerOptions& options) {
  // The copies on the hosts, counted per name first so that each name's copies can lie side by
  // side in one vector, in the order they are found.
  std::vector<std::pair<std::string_view, Located>> found;
  for (const HostSpec& spec : pool.hosts) {
    const ObservedHost* host = observed.FindHost(spec.name);
    if (host == nullptr) {
      continue;
    }
    for (const VmInfo& vm : host->vms) {
      if (vm.pending_create_for.empty() && !Finishing(options, spec.name, vm.id)) {
        found.emplace_back(vm.name, Located{.host = host, .vm = &vm});
      }
    }
  }
  size_t replicas = 0;
  for (const VMSet* set : sets) {
    replicas += set->replicas;
  }
  desired_names_.reserve(replicas);  // never reallocated: the records view these strings
  for (const VMSet* set : sets) {
    for (uint32_t i = 0; i < set->replicas; ++i) {
      desired_names_.push_back(set->VMName(i));
    }
  }
  records_.reserve(found.size() + replicas + entries.size());
  for (const auto& [name, copy] : found) {
    ++records_[name].copy_count;
  }
  size_t next = 0;
  for (auto& [name, slot] : records_) {
    slot.first_copy = next;
    next += slot.copy_count;
    slot.copy_count = 0;
  }
  located_.resize(found.size());
  for (const auto& [name, copy] : found) {
    Slot& slot = records_[name];
    located_[slot.first_copy + slot.copy_count++] = copy;
  }
  for (auto& [name, slot] : records_) {
    slot.record.copies =
        std::span<const Located>(located_).subspan(slot.first_copy, slot.copy_count);
  }
  size_t name = 0;
  desired_records_.reserve(replicas);
  for (const VMSet* set : sets) {
    for (uint32_t i = 0; i < set->replicas; ++i) {
      VmRecord& record = records_[desired_names_[name++]].record;  // nodes never move
      record.set = set;
      desired_records_.push_back(&record);
    }
  }
  for (const LedgerEntry* entry : entries) {
    records_[entry->vm].record.owned = entry;
  }
}

const VmRecord* VmIndex::Find(std::string_view vm) const {
  auto it = records_.find(vm);
  return it == records_.end() ? nullptr : &it->second.record;
}

VmRecord* VmIndex::Find(std::string_view vm) {
  auto it = records_.find(vm);
  return it == records_.end() ? nullptr : &it->second.record;
}

}  // namespace flotilla::planner
