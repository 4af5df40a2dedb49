#include "reconciler/model/normalize.h"

#include <algorithm>

namespace flotilla {
namespace {

void SortUnique(std::vector<std::string>& items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
}

template <typename T>
void SortByName(std::vector<T>& items) {
  std::stable_sort(items.begin(), items.end(),
                   [](const T& a, const T& b) { return a.meta.name < b.meta.name; });
}

}  // namespace

void Normalize(HostPool& pool) {
  for (HostSpec& host : pool.hosts) {
    SortUnique(host.tags);
    if (!host.max_vms) {
      host.max_vms = pool.defaults.max_vms;
      host.max_vms_from_pool = host.max_vms.has_value();
    }
    if (!host.arch) {
      host.arch = pool.defaults.arch;
    }
    if (!host.capacity) {
      host.capacity = pool.defaults.capacity;
    }
  }
  std::stable_sort(pool.hosts.begin(), pool.hosts.end(),
                   [](const HostSpec& a, const HostSpec& b) { return a.name < b.name; });
}

void Normalize(VMSet& set) { SortUnique(set.selector_tags); }

void Normalize(Desired& desired) {
  for (HostPool& pool : desired.pools) {
    Normalize(pool);
  }
  for (VMSet& set : desired.sets) {
    Normalize(set);
  }
  SortByName(desired.pools);
  SortByName(desired.sets);
}

}  // namespace flotilla
