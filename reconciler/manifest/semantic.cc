#include "reconciler/manifest/semantic.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "reconciler/model/text.h"

namespace flotilla::manifest {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Two spellings of one endpoint compare equal: case of scheme and host, a trailing '/'.
std::string CanonicalAddress(const std::string& address) {
  const size_t scheme_end = address.find("://");
  if (scheme_end == std::string::npos) {
    return address;
  }
  const size_t path_start = address.find('/', scheme_end + 3);
  std::string authority = Lower(address.substr(0, path_start));
  std::string path = path_start == std::string::npos ? "" : address.substr(path_start);
  while (!path.empty() && path.back() == '/') {
    path.pop_back();
  }
  return authority + path;
}

template <typename T>
void DropDuplicates(std::vector<Declared<T>>& items, std::string_view kind,
                    Diagnostics& diagnostics) {
  // Names in strictly increasing order (files named after their objects) are unique already.
  bool increasing = true;
  for (size_t i = 1; i < items.size() && increasing; ++i) {
    increasing = items[i - 1].object.meta.name < items[i].object.meta.name;
  }
  if (increasing) {
    return;
  }
  // The first document of each name; its location is looked up only for a duplicate.
  // Kept items are compacted in place, in order: nothing moves until a duplicate is dropped.
  // Keys view the names at their final place (items[kept]), which nothing moves again.
  std::unordered_map<std::string_view, const YamlDocument*> first;
  first.reserve(items.size());
  size_t kept = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    Declared<T>& item = items[i];
    const std::string& name = item.object.meta.name;
    if (auto it = first.find(name); it != first.end()) {
      diagnostics.Error(item.source->ValueLocation("/metadata/name"),
                        "duplicate " + std::string(kind) + " \"" + name +
                            "\": already defined at " +
                            it->second->ValueLocation("/metadata/name").ToString(),
                        "/metadata/name");
      continue;
    }
    if (kept != i) {
      items[kept] = std::move(item);
    }
    first.emplace(items[kept].object.meta.name, items[kept].source.get());
    ++kept;
  }
  items.erase(items.begin() + static_cast<std::ptrdiff_t>(kept), items.end());
}

// The index of host `name` in the document's spec.hosts (file order), or -1.
int HostIndex(const YamlDocument& doc, const std::string& name) {
  const nlohmann::json& raw_hosts = doc.value["spec"]["hosts"];
  for (size_t i = 0; i < raw_hosts.size(); ++i) {
    if (raw_hosts[i].value("name", "") == name) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// The provider's own checks of one pool, placed in its document.
void CheckWithProvider(const Declared<HostPool>& declared, const ProviderRules& rules,
                       Diagnostics& diagnostics) {
  std::vector<PoolProblem> problems;
  rules.CheckPool(declared.object, problems);
  const YamlDocument& doc = *declared.source;
  for (PoolProblem& p : problems) {
    std::string pointer = p.pointer;
    if (!p.host.empty()) {
      const int index = HostIndex(doc, p.host);
      pointer = index < 0 ? "/spec/hosts" : "/spec/hosts/" + std::to_string(index) + pointer;
    }
    SourceLocation where = p.at_key ? doc.KeyLocation(pointer) : doc.ValueLocation(pointer);
    if (p.severity == PoolProblem::Severity::kWarning) {
      diagnostics.Warning(std::move(where), std::move(p.message), pointer);
    } else {
      diagnostics.Error(std::move(where), std::move(p.message), pointer);
    }
  }
}

}  // namespace

// Results of earlier CheckFleet calls, by the document they were found in.
struct CheckMemo::Entries {
  struct Pool {
    std::shared_ptr<const YamlDocument> doc;  // held: the address stays this document's
    Diagnostics found;                        // its provider's checks
    bool used = false;
  };
  struct Set {
    std::shared_ptr<const YamlDocument> doc;
    std::shared_ptr<const YamlDocument> pool;  // the document of the pool it was checked with
    Diagnostics found;
    std::string image_cache_key;
    bool used = false;
  };
  std::unordered_map<const YamlDocument*, Pool> pools;
  std::unordered_map<const YamlDocument*, Set> sets;
  size_t set_checks = 0;
  size_t pool_checks = 0;

  // Forgets what the last call did not use.
  template <typename Map>
  static void Trim(Map& entries) {
    for (auto it = entries.begin(); it != entries.end();) {
      if (!it->second.used) {
        it = entries.erase(it);
      } else {
        it->second.used = false;
        ++it;
      }
    }
  }
  void Trim() {
    Trim(pools);
    Trim(sets);
  }
};

CheckMemo::CheckMemo() : entries_(std::make_unique<Entries>()) {}
CheckMemo::~CheckMemo() = default;
CheckMemo::CheckMemo(CheckMemo&&) noexcept = default;
CheckMemo& CheckMemo::operator=(CheckMemo&&) noexcept = default;
size_t CheckMemo::set_checks() const { return entries_ ? entries_->set_checks : 0; }
size_t CheckMemo::pool_checks() const { return entries_ ? entries_->pool_checks : 0; }

CheckMemo::Entries& CheckMemo::For(const ProviderRulesList& rules) {
  if (entries_ == nullptr) {
    entries_ = std::make_unique<Entries>();  // moved from
  }
  if (rules != rules_) {
    const size_t set_checks = entries_->set_checks;
    const size_t pool_checks = entries_->pool_checks;
    entries_ = std::make_unique<Entries>();
    entries_->set_checks = set_checks;
    entries_->pool_checks = pool_checks;
    rules_ = rules;
  }
  return *entries_;
}

namespace {

// The provider's checks of one pool, replayed from `memo` when its document was checked before.
void CheckWithProvider(const Declared<HostPool>& declared, const ProviderRules& rules,
                       CheckMemo::Entries* memo, Diagnostics& diagnostics) {
  if (memo == nullptr) {
    CheckWithProvider(declared, rules, diagnostics);
    return;
  }
  auto [it, fresh] = memo->pools.try_emplace(declared.source.get());
  CheckMemo::Entries::Pool& entry = it->second;
  if (fresh) {
    entry.doc = declared.source;
    CheckWithProvider(declared, rules, entry.found);
    ++memo->pool_checks;
  }
  entry.used = true;
  diagnostics.Append(entry.found);
}

void CheckHosts(const std::vector<Declared<HostPool>>& pools, const ProviderRulesList& rules,
                CheckMemo::Entries* memo, Diagnostics& diagnostics) {
  // Where a name or address was first seen: the place is looked up only for a duplicate.
  struct Seen {
    const std::string* pool;
    const YamlDocument* doc;
    size_t host;  // index in the document's spec.hosts
  };
  auto where = [](const Seen& seen, const char* field) {
    return seen.doc->ValueLocation("/spec/hosts/" + std::to_string(seen.host) + field).ToString();
  };
  std::unordered_map<std::string, Seen> names;
  std::unordered_map<std::string, Seen> addresses;
  for (const Declared<HostPool>& declared : pools) {
    const HostPool& pool = declared.object;
    const YamlDocument& doc = *declared.source;
    if (const ProviderRules* provider = FindRules(rules, pool.provider)) {
      CheckWithProvider(declared, *provider, memo, diagnostics);
    }
    // Hosts are sorted after normalisation; report in file order for readable output.
    const nlohmann::json& raw_hosts = doc.value["spec"]["hosts"];
    for (size_t i = 0; i < raw_hosts.size(); ++i) {
      const Seen here{&pool.meta.name, &doc, i};
      const std::string& name = raw_hosts[i]["name"].get_ref<const std::string&>();
      const std::string& address = raw_hosts[i]["address"].get_ref<const std::string&>();
      if (auto [n, new_name] = names.try_emplace(name, here); !new_name) {
        const std::string pointer = "/spec/hosts/" + std::to_string(i);
        diagnostics.Error(doc.ValueLocation(pointer + "/name"),
                          "host name \"" + name + "\" is already used in pool \"" +
                              *n->second.pool + "\" at " + where(n->second, "/name"),
                          pointer + "/name");
      }
      if (auto [a, new_address] = addresses.try_emplace(CanonicalAddress(address), here);
          !new_address) {
        const std::string pointer = "/spec/hosts/" + std::to_string(i);
        diagnostics.Error(doc.ValueLocation(pointer + "/address"),
                          "host address " + AddressForMessages(address) +
                              " is already used in pool \"" + *a->second.pool + "\" at " +
                              where(a->second, "/address"),
                          pointer + "/address");
      }
    }
  }
}

// Why `host` cannot run `templ`, or empty if it can (or might: undeclared facts pass).
std::string WhyNotFit(const HostSpec& host, const VMTemplate& templ) {
  if (host.arch && *host.arch != templ.arch) {
    return host.name + " is " + std::string(ToString(*host.arch));
  }
  if (!host.capacity) {
    return {};
  }
  const HostCapacity& c = *host.capacity;
  if (c.cpu < templ.cpu) {
    return host.name + " has " + std::to_string(c.cpu) + " cpu";
  }
  if (c.memory < templ.memory) {
    return host.name + " has " + c.memory.ToString() + " memory";
  }
  if (templ.disk && c.disk < *templ.disk) {
    return host.name + " has " + c.disk.ToString() + " disk";
  }
  return {};
}

std::string DescribeTemplate(const VMTemplate& t) {
  std::string s = std::string(ToString(t.arch)) + ", " + std::to_string(t.cpu) + " cpu, " +
                  t.memory.ToString() + " memory";
  if (t.disk) {
    s += ", " + t.disk->ToString() + " disk";
  }
  return s;
}

std::string BracketList(const std::vector<std::string>& items) { return "[" + Join(items) + "]"; }

// `found` is the pool the set names, or null.
void CheckSet(Declared<VMSet>& declared, const Declared<HostPool>* found,
              const std::vector<Declared<HostPool>>& pools, const ProviderRulesList& rules,
              const InvalidNames& invalid, Diagnostics& diagnostics) {
  VMSet& set = declared.object;
  const YamlDocument& doc = *declared.source;

  if (set.replicas > 0) {
    const std::string last = set.VMName(set.replicas - 1);
    if (last.size() > 63) {
      diagnostics.Error(
          doc.ValueLocation("/spec/replicas"),
          "VM names would be longer than 63 characters (\"" + last + "\"); shorten the VMSet name",
          "/spec/replicas");
    }
  }

  if (found == nullptr) {
    if (invalid.pools.count(set.pool) > 0) {
      return;  // the pool's own errors say what is wrong
    }
    std::vector<std::string> names;
    for (const auto& p : pools) {
      names.push_back(p.object.meta.name);
    }
    std::string message = "pool \"" + set.pool + "\" does not exist";
    const std::string guess = ClosestMatch(set.pool, names);
    if (!guess.empty()) {
      message += "; did you mean \"" + guess + "\"?";
    } else if (!names.empty()) {
      message += " (pools: " + Join(names) + ")";
    } else {
      message += " (no HostPool is defined)";
    }
    diagnostics.Error(doc.ValueLocation("/spec/pool"), message, "/spec/pool");
    return;
  }
  const HostPool& pool = found->object;
  if (const ProviderRules* provider = FindRules(rules, pool.provider)) {
    const std::string why = provider->CheckImage(set.templ.image);
    if (!why.empty()) {
      diagnostics.Error(
          doc.ValueLocation("/spec/template/image"),
          "image \"" + set.templ.image + "\" " + why + " (pool \"" + pool.meta.name + "\")",
          "/spec/template/image");
      return;
    }
    set.image_cache_key = provider->ImageCacheKey(set.templ.image);
  }
  if (pool.hosts.empty()) {
    diagnostics.Error(
        doc.ValueLocation("/spec/pool"),
        "pool \"" + pool.meta.name + "\" has no hosts to run VMSet \"" + set.meta.name + "\"",
        "/spec/pool");
    return;
  }

  std::vector<const HostSpec*> matching;
  std::set<std::string> all_tags;
  for (const HostSpec& host : pool.hosts) {
    all_tags.insert(host.tags.begin(), host.tags.end());
    if (host.HasAllTags(set.selector_tags)) {
      matching.push_back(&host);
    }
  }
  if (matching.empty()) {
    diagnostics.Error(doc.ValueLocation("/spec/selector/tags"),
                      "selector tags " + BracketList(set.selector_tags) +
                          " match no host of pool \"" + pool.meta.name + "\" (its hosts carry: " +
                          Join(std::vector<std::string>(all_tags.begin(), all_tags.end())) + ")",
                      "/spec/selector/tags");
    return;
  }

  std::vector<std::string> reasons;
  std::vector<const HostSpec*> fitting;
  for (const HostSpec* host : matching) {
    std::string why = WhyNotFit(*host, set.templ);
    if (why.empty()) {
      fitting.push_back(host);
    } else {
      reasons.push_back(std::move(why));
    }
  }
  if (fitting.empty()) {
    constexpr size_t kMaxReasons = 5;
    std::string listed;
    for (size_t i = 0; i < reasons.size() && i < kMaxReasons; ++i) {
      listed += (i > 0 ? "; " : "") + reasons[i];
    }
    if (reasons.size() > kMaxReasons) {
      listed += "; and " + std::to_string(reasons.size() - kMaxReasons) + " more";
    }
    diagnostics.Error(doc.KeyLocation("/spec/template"),
                      "template (" + DescribeTemplate(set.templ) + ") fits no host of pool \"" +
                          pool.meta.name + "\" that the selector matches: " + listed,
                      "/spec/template");
    return;
  }
  if (set.replicas > 0 &&
      std::all_of(fitting.begin(), fitting.end(), [](const HostSpec* h) { return h->cordoned; })) {
    diagnostics.Warning(doc.ValueLocation("/spec/pool"),
                        "every host that can run VMSet \"" + set.meta.name +
                            "\" is cordoned; its VMs cannot be placed",
                        "/spec/pool");
  }
}

void CheckPoolCapacity(const std::vector<Declared<HostPool>>& pools,
                       const std::vector<Declared<VMSet>>& sets, Diagnostics& diagnostics) {
  std::unordered_map<std::string_view, uint64_t> wanted_in;
  for (const Declared<VMSet>& set : sets) {
    wanted_in[set.object.pool] += set.object.replicas;
  }
  for (const Declared<HostPool>& declared : pools) {
    const HostPool& pool = declared.object;
    uint64_t room = 0;
    size_t schedulable = 0;
    bool uncapped = false;  // a host without maxVMs: its resources bound it, unknown here
    for (const HostSpec& host : pool.hosts) {
      if (!host.cordoned) {
        room += host.max_vms.value_or(0);
        uncapped = uncapped || !host.max_vms;
        ++schedulable;
      }
    }
    if (uncapped) {
      continue;
    }
    const auto it = wanted_in.find(pool.meta.name);
    const uint64_t wanted = it == wanted_in.end() ? 0 : it->second;
    if (wanted > room) {
      diagnostics.Warning(declared.source->ValueLocation("/metadata/name"),
                          "VM sets want " + std::to_string(wanted) + " VMs in pool \"" +
                              pool.meta.name + "\", but its " + std::to_string(schedulable) +
                              " schedulable hosts allow at most " + std::to_string(room) +
                              " (maxVMs); the rest will be unschedulable",
                          "/metadata/name");
    }
  }
}

}  // namespace

void CheckFleet(std::vector<Declared<HostPool>>& pools, std::vector<Declared<VMSet>>& sets,
                const ProviderRulesList& rules, const InvalidNames& invalid,
                Diagnostics& diagnostics, CheckMemo* memo) {
  CheckMemo::Entries* entries = memo == nullptr ? nullptr : &memo->For(rules);
  DropDuplicates(pools, "HostPool", diagnostics);
  DropDuplicates(sets, "VMSet", diagnostics);
  CheckHosts(pools, rules, entries, diagnostics);
  std::unordered_map<std::string_view, const Declared<HostPool>*> by_name;  // unique by now
  by_name.reserve(pools.size());
  for (const Declared<HostPool>& pool : pools) {
    by_name.emplace(pool.object.meta.name, &pool);
  }
  for (Declared<VMSet>& set : sets) {
    const auto it = by_name.find(set.object.pool);
    const Declared<HostPool>* pool = it == by_name.end() ? nullptr : it->second;
    if (entries == nullptr || pool == nullptr) {
      // A missing pool's message lists the others: checked every time (it is an error anyway).
      CheckSet(set, pool, pools, rules, invalid, diagnostics);
      continue;
    }
    // Given the same set and pool documents, CheckSet finds the same, whatever else changed.
    auto [e, fresh] = entries->sets.try_emplace(set.source.get());
    CheckMemo::Entries::Set& entry = e->second;
    if (fresh || entry.pool != pool->source) {
      entry.doc = set.source;
      entry.pool = pool->source;
      entry.found = Diagnostics();
      CheckSet(set, pool, pools, rules, invalid, entry.found);
      entry.image_cache_key = set.object.image_cache_key;
      ++entries->set_checks;
    } else {
      set.object.image_cache_key = entry.image_cache_key;
    }
    entry.used = true;
    diagnostics.Append(entry.found);
  }
  CheckPoolCapacity(pools, sets, diagnostics);
  if (entries != nullptr) {
    entries->Trim();
  }
}

}  // namespace flotilla::manifest
