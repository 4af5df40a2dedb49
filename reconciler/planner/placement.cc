#include "reconciler/planner/placement.h"

#include <algorithm>
#include <tuple>

#include "reconciler/model/quantity.h"
#include "reconciler/model/template_hash.h"

namespace flotilla::planner {
namespace {

// States in which a VM holds its cpu and memory (everything but stopped and broken).
bool HoldsResources(VmState state) {
  return state != VmState::kStopped && state != VmState::kInvalid;
}

// States in which a macOS VM counts against Apple's limit.
bool CountsForAppleLimit(VmState state) {
  return state == VmState::kRunning || state == VmState::kTransitional || state == VmState::kPaused;
}

// Free disk of a host that does not report it: more than any template asks for, and far from
// overflowing however much is given and taken back during a plan.
constexpr int64_t kUnknownFreeDisk = INT64_MAX / 4;

// Why `host` cannot create VMs from `image`, or nullptr.
const std::string* Unsupported(const HostLoad& host, const std::string& image) {
  if (host.unsupported_images == nullptr) {
    return nullptr;
  }
  for (const auto& [prefix, why] : *host.unsupported_images) {
    if (image.starts_with(prefix)) {
      return &why;
    }
  }
  return nullptr;
}

std::string Bytes(int64_t bytes) {
  return Quantity::FromBytes(bytes > 0 ? static_cast<uint64_t>(bytes) : 0).ToString();
}

}  // namespace

std::vector<const ObservedHost*> ObservedHostsOf(const HostPool& pool, const Observed& observed) {
  std::vector<const ObservedHost*> hosts;
  hosts.reserve(pool.hosts.size());
  for (const HostSpec& spec : pool.hosts) {
    hosts.push_back(observed.FindHost(spec.name));
  }
  return hosts;
}

Placer::Placer(const HostPool& pool, std::span<const ObservedHost* const> observed,
               const VmRoles& roles, const PlannerOptions& options)
    : pool_(pool), options_(options), roles_(roles) {
  for (size_t i = 0; i < pool.hosts.size(); ++i) {
    const HostSpec& spec = pool.hosts[i];
    HostLoad& load = hosts_[spec.name];
    load.spec = &spec;
    load.arch = spec.arch;
    const ObservedHost* host = observed[i];
    load.online = host != nullptr && host->online;
    if (!load.online) {
      continue;
    }
    const HostFacts& facts = host->facts;
    if (facts.arch) {
      load.arch = facts.arch;
    }
    load.assumed = facts.assumed;
    Resources total = facts.total;
    if (total.cpu == 0 && spec.capacity) {
      total = Resources{.cpu = spec.capacity->cpu,
                        .memory_bytes = spec.capacity->memory.bytes(),
                        .disk_bytes = spec.capacity->disk.bytes()};
    }
    load.total_cpu = total.cpu;
    load.total_memory = static_cast<int64_t>(total.memory_bytes);
    load.free_cpu = static_cast<int64_t>(total.cpu) - facts.system_reserved.cpu;
    load.free_memory = static_cast<int64_t>(total.memory_bytes) -
                       static_cast<int64_t>(facts.system_reserved.memory_bytes);
    // A host that does not say how much disk is free is not filtered by it.
    load.free_disk =
        facts.disk_known ? static_cast<int64_t>(facts.available.disk_bytes) : kUnknownFreeDisk;
    load.unsupported_images = &facts.unsupported_images;
    load.cached_images.insert(facts.cached_images.begin(), facts.cached_images.end());
    uint32_t& running_macos = macos_running_[spec.name];
    std::vector<const VmInfo*> waiting;  // stopped, managed, desired running
    for (const VmInfo& vm : host->vms) {
      const VmRoles::Role role = roles.Of(vm.name);
      const bool is_managed = role.managed;
      if (HoldsResources(vm.state)) {
        load.free_cpu -= vm.cpu;
        load.free_memory -= static_cast<int64_t>(vm.memory_bytes);
        if (vm.IsMacos()) {
          ++load.macos_committed;
        }
      } else if (vm.state == VmState::kStopped && role.desired_running) {
        waiting.push_back(&vm);
      }
      if (vm.IsMacos() && CountsForAppleLimit(vm.state)) {
        ++running_macos;
      }
      if (is_managed) {
        ++load.managed_vms;
      }
    }
    // Stopped VMs that should run keep their share while they are stopped, as far as the host
    // has room (in name order); the rest are over capacity and cannot start until room is made.
    for (const VmInfo* vm : waiting) {
      if (load.free_cpu >= vm->cpu && load.free_memory >= static_cast<int64_t>(vm->memory_bytes)) {
        load.free_cpu -= vm->cpu;
        load.free_memory -= static_cast<int64_t>(vm->memory_bytes);
        if (vm->IsMacos()) {
          ++load.macos_committed;
        }
      } else {
        unreserved_.insert({spec.name, vm->name});
      }
    }
  }
  by_name_.reserve(hosts_.size());
  for (auto& [name, load] : hosts_) {
    by_name_.push_back(&load);
  }
}

bool Placer::Reserved(const std::string& host, const VmInfo& vm) const {
  if (HoldsResources(vm.state)) {
    return true;
  }
  return vm.state == VmState::kStopped && roles_.Of(vm.name).desired_running &&
         !Unreserved(host, vm);
}

bool Placer::Unreserved(const std::string& host, const VmInfo& vm) const {
  // Most plans have none: no (host, name) pair of copied strings to look for then.
  return !unreserved_.empty() && unreserved_.contains({host, vm.name});
}

bool Placer::ReserveStart(const std::string& host, const VmInfo& vm) {
  if (!Unreserved(host, vm)) {
    return true;  // its share is held already
  }
  auto it = hosts_.find(host);
  if (it == hosts_.end()) {
    return false;
  }
  HostLoad& load = it->second;
  if (load.free_cpu < vm.cpu || load.free_memory < static_cast<int64_t>(vm.memory_bytes)) {
    return false;
  }
  load.free_cpu -= vm.cpu;
  load.free_memory -= static_cast<int64_t>(vm.memory_bytes);
  if (vm.IsMacos()) {
    ++load.macos_committed;
  }
  unreserved_.erase({host, vm.name});
  return true;
}

void Placer::Release(const std::string& host, const VmInfo& vm, int sign) {
  auto it = hosts_.find(host);
  if (it == hosts_.end() || !it->second.online) {
    return;
  }
  HostLoad& load = it->second;
  if (Reserved(host, vm)) {
    load.free_cpu += sign * static_cast<int64_t>(vm.cpu);
    load.free_memory += sign * static_cast<int64_t>(vm.memory_bytes);
    if (vm.IsMacos()) {
      load.macos_committed -= sign;
    }
  }
  if (vm.IsMacos() && CountsForAppleLimit(vm.state)) {
    macos_running_[host] -= sign;
  }
  load.free_disk += sign * static_cast<int64_t>(vm.disk_bytes);
  if (roles_.Of(vm.name).managed) {
    load.managed_vms -= sign;
  }
}

std::vector<std::string> Placer::LackingImage(const VMSet& set) const {
  const VMTemplate& t = set.templ;
  const std::string& key = set.image_cache_key;
  const int64_t disk =
      static_cast<int64_t>(t.disk ? t.disk->bytes() : options_.default_image_disk_bytes);
  std::vector<std::string> hosts;
  for (const auto& [name, load] : hosts_) {
    const bool arch_fits = load.arch ? *load.arch == t.arch : load.assumed;
    if (load.online && !load.spec->cordoned && arch_fits &&
        load.spec->HasAllTags(set.selector_tags) && Unsupported(load, t.image) == nullptr &&
        load.free_disk >= disk && !key.empty() && !load.cached_images.contains(key)) {
      hosts.push_back(name);
    }
  }
  return hosts;
}

HostLoad* Placer::Find(const std::string& host) {
  if (host.empty()) {
    return nullptr;  // no host is unnamed: no need to search
  }
  auto it = hosts_.find(host);
  return it == hosts_.end() ? nullptr : &it->second;
}

const std::vector<Placer::Eligible>& Placer::EligibleFor(const VMSet& set) {
  auto [it, inserted] = eligible_.try_emplace(&set);
  if (inserted) {
    const VMTemplate& t = set.templ;
    const std::string& key = set.image_cache_key;
    for (HostLoad* load : by_name_) {
      // As Place's filters take them, up to the image.
      const bool arch_fits = load->arch ? *load->arch == t.arch : load->assumed;
      if (load->online && !load->spec->cordoned && arch_fits &&
          load->spec->HasAllTags(set.selector_tags) && Unsupported(*load, t.image) == nullptr) {
        it->second.push_back(
            Eligible{.load = load, .cached = !key.empty() && load->cached_images.contains(key)});
      }
    }
  }
  return it->second;
}

bool Placer::ReserveMacosStart(const std::string& host) {
  uint32_t& running = macos_running_[host];
  if (running >= options_.apple_vm_limit) {
    return false;
  }
  ++running;
  return true;
}

Placer::Choice Placer::Place(const VMSet& set, const std::string& vm, const std::string& avoid) {
  const VMTemplate& t = set.templ;
  const bool running = t.state == PowerState::kRunning;
  const bool macos = t.os == GuestOs::kMacos;
  const int64_t cpu = running ? t.cpu : 0;
  const int64_t memory = running ? static_cast<int64_t>(t.memory.bytes()) : 0;
  const int64_t disk =
      static_cast<int64_t>(t.disk ? t.disk->bytes() : options_.default_image_disk_bytes);
  // The host where an unfinished create of this VM from this template left its work.
  std::string resume_host;
  bool disk_held = false;  // by the temporary VM there
  if (auto it = options_.unfinished.find(vm);
      it != options_.unfinished.end() && it->second.template_hash == TemplateHash(t)) {
    resume_host = it->second.host;
    disk_held = it->second.temporary_seen;
  }
  const auto disk_on = [&](const std::string& host) {
    return host == resume_host && disk_held ? 0 : disk;
  };

  const bool spread = set.placement == ::flotilla::Placement::kSpread;
  // The free share a host would have left, averaged over cpu and memory.
  auto left = [&](const HostLoad* h) {
    const double c = h->total_cpu > 0 ? double(h->free_cpu - cpu) / double(h->total_cpu) : 0.0;
    const double m =
        h->total_memory > 0 ? double(h->free_memory - memory) / double(h->total_memory) : 0.0;
    return (c + m) / 2.0;
  };
  const auto reserve = [&](HostLoad* best) {
    best->free_cpu -= cpu;
    best->free_memory -= memory;
    best->free_disk -= disk_on(best->spec->name);
    ++best->managed_vms;
    if (macos && running) {
      ++best->macos_committed;
    }
    return Choice{.host = best->spec->name, .assumed = best->assumed};
  };

  // The hosts passing the set's static filters, checked for what changes as the plan places
  // VMs: the same candidates in the same order as the full walk below, which is left to say
  // why nothing fits.
  {
    const HostLoad* skip = Find(avoid);
    const HostLoad* resume = Find(resume_host);
    HostLoad* best = nullptr;
    bool best_cached = false;
    double best_left = 0.0;
    for (const Eligible& e : EligibleFor(set)) {
      HostLoad* h = e.load;
      const HostSpec& spec = *h->spec;
      if (h == skip || (spec.max_vms && h->managed_vms >= *spec.max_vms) ||
          (macos && running && h->macos_committed >= options_.apple_vm_limit) ||
          h->free_cpu < cpu || h->free_memory < memory ||
          h->free_disk < (h == resume && disk_held ? 0 : disk)) {
        continue;
      }
      if (h == resume) {
        best = h;  // the work is there
        break;
      }
      const double l = left(h);
      const bool wins = best == nullptr || (e.cached != best_cached && e.cached) ||
                        (e.cached == best_cached && (spread ? l > best_left : l < best_left));
      if (wins) {
        best = h;
        best_cached = e.cached;
        best_left = l;
      }
    }
    if (best != nullptr) {
      return reserve(best);
    }
  }

  std::map<std::string, int> failed;  // reason -> hosts
  int64_t max_free_cpu = INT64_MIN;
  int64_t max_free_memory = INT64_MIN;
  int64_t max_free_disk = INT64_MIN;
  std::vector<HostLoad*>& fits = fits_;
  fits.clear();
  for (HostLoad* host : by_name_) {
    HostLoad& load = *host;
    const HostSpec& spec = *load.spec;
    const std::string& name = spec.name;
    if (name == avoid) {
      ++failed["holds the VM being replaced"];
    } else if (!load.online) {
      ++failed["offline"];
    } else if (spec.cordoned) {
      ++failed["cordoned"];
    } else if (!load.arch && !load.assumed) {
      ++failed["architecture unknown"];
    } else if (load.arch && *load.arch != t.arch) {
      ++failed[std::string(ToString(*load.arch))];
    } else if (!spec.HasAllTags(set.selector_tags)) {
      ++failed["missing selector tags"];
    } else if (const std::string* why = Unsupported(load, t.image)) {
      ++failed["cannot use the image: " + *why];
    } else if (spec.max_vms && load.managed_vms >= *spec.max_vms) {
      ++failed["at maxVMs " + std::to_string(*spec.max_vms) +
               (spec.max_vms_from_pool ? " (pool default)" : " (the host's)")];
    } else if (macos && running && load.macos_committed >= options_.apple_vm_limit) {
      ++failed["at the macOS limit (" + std::to_string(options_.apple_vm_limit) +
               " running per Mac)"];
    } else if (load.free_cpu < cpu) {
      ++failed["insufficient cpu"];
      max_free_cpu = std::max(max_free_cpu, load.free_cpu);
    } else if (load.free_memory < memory) {
      ++failed["insufficient memory"];
      max_free_memory = std::max(max_free_memory, load.free_memory);
    } else if (load.free_disk < disk_on(name)) {
      ++failed["insufficient disk"];
      max_free_disk = std::max(max_free_disk, load.free_disk);
    } else {
      fits.push_back(&load);
    }
  }
  if (fits.empty()) {
    std::vector<std::pair<std::string, int>> parts(failed.begin(), failed.end());
    std::stable_sort(parts.begin(), parts.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string reason = "no host fits " + vm + ": " + std::to_string(hosts_.size()) +
                         (hosts_.size() == 1 ? " host" : " hosts") + " in pool " + pool_.meta.name;
    for (const auto& [what, count] : parts) {
      reason += "; " + std::to_string(count) + " ";
      if (what == "arm64" || what == "x86_64") {
        reason += what + " (need " + std::string(ToString(t.arch)) + ")";
      } else if (what == "insufficient cpu") {
        reason += what + " (need " + std::to_string(cpu) + ", max free " +
                  std::to_string(std::max<int64_t>(max_free_cpu, 0)) + ")";
      } else if (what == "insufficient memory") {
        reason += what + " (need " + Bytes(memory) + ", max free " + Bytes(max_free_memory) + ")";
      } else if (what == "insufficient disk") {
        reason += what + " (need " + Bytes(disk) + ", max free " + Bytes(max_free_disk) + ")";
      } else if (what == "missing selector tags") {
        std::string tags;
        for (const std::string& tag : set.selector_tags) {
          tags += (tags.empty() ? "" : ", ") + tag;
        }
        reason += what + " (" + tags + ")";
      } else {
        reason += what;
      }
    }
    return Choice{.reason = reason};
  }
  const std::string& cache_key = set.image_cache_key;
  // Cached image first, then the score (spread: most left; pack: least left), then the name
  // (the map's order, so the first of equals wins).
  HostLoad* best = nullptr;
  bool best_cached = false;
  double best_left = 0.0;
  for (HostLoad* h : fits) {
    if (h->spec->name == resume_host) {
      best = h;  // the work is there
      break;
    }
    const bool cached = !cache_key.empty() && h->cached_images.contains(cache_key);
    const double l = left(h);
    const bool wins = best == nullptr || (cached != best_cached && cached) ||
                      (cached == best_cached && (spread ? l > best_left : l < best_left));
    if (wins) {
      best = h;
      best_cached = cached;
      best_left = l;
    }
  }
  return reserve(best);
}

}  // namespace flotilla::planner
