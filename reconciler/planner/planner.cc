#include "reconciler/planner/planner.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "reconciler/model/template_hash.h"
#include "reconciler/model/text.h"

namespace flotilla::planner {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

// One copy of a named VM on a host.
struct Located {
  const ObservedHost* host = nullptr;
  const VmInfo* vm = nullptr;
};

std::string Minutes(std::chrono::system_clock::duration d) {
  const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(d).count();
  return minutes < 1 ? "less than a minute" : std::to_string(minutes) + "m";
}

// Accumulates a plan with ids and dependencies.
class PlanBuilder {
 public:
  int Add(Action action) {
    action.id = static_cast<int>(plan_.actions.size()) + 1;
    plan_.actions.push_back(std::move(action));
    return plan_.actions.back().id;
  }
  void Note(Finding finding) { plan_.findings.push_back(std::move(finding)); }

  Plan Finish() {
    std::stable_sort(
        plan_.findings.begin(), plan_.findings.end(), [](const Finding& a, const Finding& b) {
          return std::tie(a.pool, a.vmset, a.vm, a.kind) < std::tie(b.pool, b.vmset, b.vm, b.kind);
        });
    return std::move(plan_);
  }

 private:
  Plan plan_;
};

// True when recovery deletes the VM with `id` on `host` (PlannerOptions::finish_deletes).
bool Finishing(const PlannerOptions& options, const std::string& host, const std::string& id) {
  return std::any_of(options.finish_deletes.begin(), options.finish_deletes.end(),
                     [&](const FinishDelete& d) { return d.host == host && d.vm_id == id; });
}

// A delete the budget decides on.
struct DeleteCandidate {
  LedgerEntry entry;
  std::string host;
  std::string reason;
  std::string vm_id;  // as the host reports it
};

class PoolPlanner {
 public:
  PoolPlanner(const Desired& desired, const HostPool& pool, const Observed& observed,
              const Ledger& ledger, const PlannerOptions& options, TimePoint now,
              PlanBuilder& builder)
      : desired_(desired),
        pool_(pool),
        observed_(observed),
        ledger_(ledger),
        options_(options),
        now_(now),
        builder_(builder) {
    for (const HostSpec& spec : pool.hosts) {
      specs_[spec.name] = &spec;
      const ObservedHost* host = observed.FindHost(spec.name);
      if (host == nullptr || !host->online) {
        silent_hosts_.push_back(spec.name);
      }
      if (host == nullptr) {
        continue;
      }
      for (const VmInfo& vm : host->vms) {
        if (vm.pending_create_for.empty() && !Finishing(options, spec.name, vm.id)) {
          where_[vm.name].push_back(Located{.host = host, .vm = &vm});
        }
      }
    }
    for (const VMSet& set : desired.sets) {
      if (set.pool != pool.meta.name) {
        continue;
      }
      sets_.push_back(&set);
      for (uint32_t i = 0; i < set.replicas; ++i) {
        desired_vms_[set.VMName(i)] = &set;
      }
    }
    std::set<std::string>& managed = managed_;
    std::set<std::string>& desired_running = desired_running_;
    for (const LedgerEntry& entry : ledger.entries) {
      if (entry.pool == pool.meta.name) {
        managed.insert(entry.vm);
        owned_[entry.vm] = &entry;
      }
    }
    for (const auto& [name, set] : desired_vms_) {
      if (!owned_.contains(name) && Adoptable(*set, name) != nullptr) {
        managed.insert(name);  // adopted by this plan
      }
    }
    for (const std::string& name : managed) {
      auto it = desired_vms_.find(name);
      if (it != desired_vms_.end() && it->second->templ.state == PowerState::kRunning) {
        desired_running.insert(name);
      }
    }
    placer_ = std::make_unique<Placer>(pool, observed, managed, desired_running, options);
  }

  void Run(std::vector<DeleteCandidate>& deletes) {
    for (const VMSet* set : sets_) {
      PlanSet(*set);
    }
    CollectDeletes(deletes);
  }

 private:
  struct Outdated {
    std::string vm;
    std::string host;
    VmInfo info;
    bool unknown_template = false;  // adopted from a template Flotilla cannot tell
  };

  // Why an outdated VM is to be replaced, for people.
  static std::string Why(const Outdated& old) {
    return old.unknown_template ? "adopted, template unknown" : "template changed";
  }

  bool Adopting(const VMSet& set) const { return options_.adopt_existing || set.adopt_existing; }

  // The VM this plan adopts for `vm` of `set`: the one copy of the name, on an online host of
  // the pool; null when adoption is off, or there is none, or there are several (conflicts).
  const Located* Adoptable(const VMSet& set, const std::string& vm) const {
    auto found = where_.find(vm);
    if (!Adopting(set) || found == where_.end() || found->second.size() != 1 ||
        !found->second.front().host->online) {
      return nullptr;
    }
    return &found->second.front();
  }

  // Actions on `vm` wait for its adoption in this plan, if any.
  std::vector<int> After(const std::string& vm) const {
    auto it = adopt_ids_.find(vm);
    return it == adopt_ids_.end() ? std::vector<int>{} : std::vector<int>{it->second};
  }

  // A host of the pool that is silent, has never answered (its VMs are unknown: it may run a
  // VM of any name) and is not yet lost; "" when there is none.
  std::string UnansweredHost() const {
    for (const std::string& name : silent_hosts_) {
      const ObservedHost* host = observed_.FindHost(name);
      if (host != nullptr && !host->vms_known && host->last_seen &&
          now_ - *host->last_seen < options_.host_lost_after) {
        return name;
      }
    }
    return "";
  }

  Finding MakeFinding(FindingKind kind, const VMSet* set, const std::string& vm,
                      const std::string& host, std::string message) const {
    return Finding{.kind = kind,
                   .vm = vm,
                   .vmset = set != nullptr ? set->meta.name : "",
                   .pool = pool_.meta.name,
                   .host = host,
                   .message = std::move(message)};
  }

  // The id `host` reports for `vm`; empty when it reports none (or `host` is empty).
  std::string ObservedId(const std::string& vm, const std::string& host) const {
    auto it = where_.find(vm);
    if (it != where_.end()) {
      for (const Located& copy : it->second) {
        if (copy.host->name == host) {
          return copy.vm->id;
        }
      }
    }
    return "";
  }

  const LedgerEntry* OwnEntry(const std::string& vm) const {
    auto it = owned_.find(vm);
    return it == owned_.end() ? nullptr : it->second;
  }

  // Adds a create or replace (and the start that follows it when the VM should run).
  void AddNew(const VMSet& set, const std::string& vm, ActionKind kind, const std::string& host,
              const std::string& from_host, bool create_first, std::string reason) {
    std::vector<int> after = After(vm);
    if (auto it = prepulls_.find({host, set.image_cache_key}); it != prepulls_.end()) {
      after.push_back(it->second);  // the image is being staged there: copy, do not download
    }
    const int id = builder_.Add(Action{.kind = kind,
                                       .vm = vm,
                                       .vmset = set.meta.name,
                                       .pool = pool_.meta.name,
                                       .host = host,
                                       .from_host = from_host,
                                       .reason = std::move(reason),
                                       .depends_on = std::move(after),
                                       .templ = set.templ,
                                       .template_hash = HashOf(set),
                                       .create_first = create_first,
                                       .assumed_placement = Assumed(host),
                                       .vm_id = ObservedId(vm, from_host)});
    if (set.templ.state == PowerState::kRunning) {
      if (set.templ.os == GuestOs::kMacos) {
        placer_->ReserveMacosStart(host);
      }
      builder_.Add(Action{.kind = ActionKind::kStart,
                          .vm = vm,
                          .vmset = set.meta.name,
                          .pool = pool_.meta.name,
                          .host = host,
                          .reason = "new VM; desired running",
                          .depends_on = {id}});
    }
  }

  bool Assumed(const std::string& host) const {
    const HostLoad* load = placer_->Load(host);
    return load != nullptr && load->assumed;
  }

  // Places and adds a new VM, or reports why it cannot be placed. True if placed.
  bool CreateElsewhere(const VMSet& set, const std::string& vm, ActionKind kind,
                       const std::string& from_host, const std::string& reason) {
    const Placer::Choice choice = placer_->Place(set, vm, from_host);
    if (choice.host.empty()) {
      builder_.Note(MakeFinding(FindingKind::kUnschedulable, &set, vm, "", choice.reason));
      return false;
    }
    AddNew(set, vm, kind, choice.host, from_host, /*create_first=*/true, reason);
    return true;
  }

  // The set's template hash, computed once per set.
  const std::string& HashOf(const VMSet& set) {
    auto it = hashes_.find(&set);
    if (it == hashes_.end()) {
      it = hashes_.emplace(&set, TemplateHash(set.templ)).first;
    }
    return it->second;
  }

  void PlanSet(const VMSet& set) {
    const std::string hash = HashOf(set);
    const bool want_running = set.templ.state == PowerState::kRunning;
    uint32_t unavailable = 0;
    std::vector<Outdated> outdated;
    for (uint32_t ordinal = 0; ordinal < set.replicas; ++ordinal) {
      const std::string vm = set.VMName(ordinal);
      const LedgerEntry* entry = OwnEntry(vm);
      auto found = where_.find(vm);
      static const std::vector<Located> kNone;
      const std::vector<Located>& copies = found == where_.end() ? kNone : found->second;
      // Which copy is ours: with a ledger entry, only the one on the ledger's host; without
      // one, none (a conflict) unless the set adopts, then the only one. Any other copy of the
      // name is someone else's VM: reported, never touched.
      const Located* mine = nullptr;
      std::string owned_hash = entry != nullptr ? entry->template_hash : "";
      if (entry != nullptr) {
        for (const Located& copy : copies) {
          if (copy.host->name == entry->host) {
            mine = &copy;
          }
        }
      } else if ((mine = Adoptable(set, vm)) != nullptr) {
        owned_hash = AdoptedTemplateHash(set.templ, *mine->vm);
        adopt_ids_[vm] = builder_.Add(Action{
            .kind = ActionKind::kAdopt,
            .vm = vm,
            .vmset = set.meta.name,
            .pool = pool_.meta.name,
            .host = mine->host->name,
            .reason = owned_hash == hash
                          ? "existing VM with a desired name"
                          : "existing VM with a desired name; its OS, cpu or memory differ from "
                            "the template, so it counts as outdated",
            .template_hash = owned_hash,
            .vm_id = mine->vm->id});
      }
      for (const Located& copy : copies) {
        if (&copy != mine) {
          builder_.Note(MakeFinding(
              FindingKind::kConflict, &set, vm, copy.host->name,
              "a VM named " + vm + " exists on " + copy.host->name +
                  " but Flotilla did not create it; it is left alone and the set stays short "
                  "(rename or remove it, or adopt it: apply --adopt, or adoptExisting: true" +
                  (copies.size() > 1 ? "; a name found on " + CountOf(copies.size(), "host") +
                                           " is adopted on none"
                                     : "") +
                  ")"));
        }
      }
      if (mine == nullptr && entry == nullptr && !copies.empty()) {
        ++unavailable;
        continue;
      }
      if (mine == nullptr && entry != nullptr && !specs_.contains(entry->host)) {
        ++unavailable;
        PlanRemovedHost(set, vm, entry->host);
        continue;
      }
      if (mine == nullptr && entry != nullptr) {
        const ObservedHost* ledger_host = observed_.FindHost(entry->host);
        if (ledger_host == nullptr || !ledger_host->online) {
          // Not seen because its host is not answering: unknown, not missing.
          ++unavailable;
          PlanSilentHost(set, vm, entry->host, ledger_host);
          continue;
        }
      }
      if (mine == nullptr) {
        if (const std::string silent = entry == nullptr ? UnansweredHost() : ""; !silent.empty()) {
          // A host that never answered may already run it (made by a store that was lost, or
          // by hand): creating it elsewhere could make two, until the host counts as lost.
          builder_.Note(MakeFinding(FindingKind::kUnknown, &set, vm, "",
                                    "not created while " + silent +
                                        " is offline: it has never answered, so it may run " + vm +
                                        " already; created elsewhere once it is lost (" +
                                        Minutes(options_.host_lost_after) + ")"));
        } else if (entry != nullptr && !set.self_heal) {
          builder_.Note(MakeFinding(
              FindingKind::kDrift, &set, vm, entry->host,
              "VM is gone from " + entry->host + "; selfHeal is off, so it is not recreated"));
        } else {
          CreateElsewhere(set, vm, ActionKind::kCreate, "",
                          entry != nullptr ? "VM is gone from " + entry->host : "new VM");
        }
        ++unavailable;
        continue;
      }
      const Located here = *mine;
      const std::string& host = here.host->name;
      if (!here.host->online) {
        ++unavailable;
        PlanSilentHost(set, vm, host, here.host);
        continue;
      }
      auto spec = specs_.find(host);
      if (spec != specs_.end() && spec->second->cordoned) {
        if (!CreateElsewhere(set, vm, ActionKind::kReplace, host,
                             "host " + host + " is cordoned: drained")) {
          // It keeps running where it is until a host can take it.
        }
        continue;
      }
      if (owned_hash != hash) {
        if (want_running && here.vm->state != VmState::kRunning) {
          ++unavailable;
        }
        outdated.push_back(Outdated{.vm = vm,
                                    .host = host,
                                    .info = *here.vm,
                                    .unknown_template = owned_hash == kUnknownTemplateHash});
        continue;
      }
      PlanState(set, vm, host, *here.vm, want_running, unavailable);
    }
    PlanUpdates(set, outdated, unavailable);
  }

  // A VM whose host is offline (or was never observed): unknown until the host has been silent
  // for host_lost_after, then replaced elsewhere if the set self-heals.
  void PlanSilentHost(const VMSet& set, const std::string& vm, const std::string& host,
                      const ObservedHost* observed) {
    const std::optional<TimePoint> last_seen =
        observed != nullptr ? observed->last_seen : std::nullopt;
    const bool lost = !last_seen || now_ - *last_seen >= options_.host_lost_after;
    const std::string silent = last_seen ? " for " + Minutes(now_ - *last_seen) : "";
    if (lost && set.self_heal) {
      CreateElsewhere(set, vm, ActionKind::kReplace, host,
                      "host " + host + " lost: silent" + silent);
      return;
    }
    builder_.Note(MakeFinding(
        FindingKind::kUnknown, &set, vm, host,
        "host " + host + " is offline" + silent + "; the VM's state is unknown" +
            (set.self_heal ? "; replaced elsewhere after " + Minutes(options_.host_lost_after)
                           : "; selfHeal is off")));
  }

  // A VM whose host is no longer in the pool: Flotilla cannot reach it there any more, so it is
  // treated as lost at once (made again elsewhere with selfHeal); the copy on the old host is
  // left alone.
  void PlanRemovedHost(const VMSet& set, const std::string& vm, const std::string& host) {
    const std::string why = "host " + host + " was removed from pool " + pool_.meta.name;
    if (!set.self_heal) {
      builder_.Note(MakeFinding(FindingKind::kDrift, &set, vm, host,
                                why + "; selfHeal is off, so the VM is not made elsewhere"));
      return;
    }
    CreateElsewhere(set, vm, ActionKind::kCreate, "", why + "; the copy there is left alone");
  }

  void PlanState(const VMSet& set, const std::string& vm, const std::string& host,
                 const VmInfo& info, bool want_running, uint32_t& unavailable) {
    if (want_running && info.state != VmState::kRunning) {
      ++unavailable;
    }
    ActionKind kind = ActionKind::kStart;
    switch (info.state) {
      case VmState::kTransitional:
        builder_.Note(MakeFinding(FindingKind::kWaiting, &set, vm, host,
                                  "VM is " + info.raw_state + "; looked at again next pass"));
        return;
      case VmState::kUnknown:
      case VmState::kInvalid:
        builder_.Note(MakeFinding(FindingKind::kDrift, &set, vm, host,
                                  "VM is in state \"" + info.raw_state + "\"; not touched"));
        return;
      case VmState::kRunning:
        if (want_running) {
          return;
        }
        kind = ActionKind::kStop;
        break;
      case VmState::kStopped:
        if (!want_running) {
          return;
        }
        kind = ActionKind::kStart;
        break;
      case VmState::kSuspended:
      case VmState::kPaused:
        kind = want_running ? ActionKind::kStart : ActionKind::kStop;
        break;
    }
    const std::string reason =
        "VM is " + info.raw_state + "; desired " + std::string(ToString(set.templ.state));
    if (!set.self_heal) {
      builder_.Note(MakeFinding(FindingKind::kDrift, &set, vm, host,
                                reason + "; selfHeal is off, so it is not corrected"));
      return;
    }
    if (kind == ActionKind::kStart && info.state == VmState::kStopped &&
        !placer_->ReserveStart(host, info)) {
      builder_.Note(MakeFinding(
          FindingKind::kUnschedulable, &set, vm, host,
          "cannot start " + vm + ": " + host + " does not have the cpu and memory free"));
      return;
    }
    // Paused VMs already count against the limit; stopped and suspended ones need a slot.
    if (kind == ActionKind::kStart && info.IsMacos() && info.state != VmState::kPaused &&
        !placer_->ReserveMacosStart(host)) {
      builder_.Note(MakeFinding(FindingKind::kUnschedulable, &set, vm, host,
                                "cannot start " + vm + ": " + host + " already runs " +
                                    std::to_string(options_.apple_vm_limit) +
                                    " macOS VMs, the most Apple allows"));
      return;
    }
    builder_.Add(Action{.kind = kind,
                        .vm = vm,
                        .vmset = set.meta.name,
                        .pool = pool_.meta.name,
                        .host = host,
                        .reason = reason,
                        .depends_on = After(vm)});
  }

  void PlanUpdates(const VMSet& set, const std::vector<Outdated>& outdated, uint32_t unavailable) {
    const UpdateStrategy& strategy = set.update_strategy;
    uint32_t budget = 0;
    uint32_t replacing = 0;  // by this plan
    if (strategy.type == UpdateStrategyType::kRolling) {
      budget = strategy.max_unavailable > unavailable ? strategy.max_unavailable - unavailable : 0;
      if (strategy.prepull && !outdated.empty()) {
        Prepull(set);
      }
    }
    for (const Outdated& old : outdated) {
      switch (strategy.type) {
        case UpdateStrategyType::kOnDelete:
          builder_.Note(MakeFinding(FindingKind::kOutdated, &set, old.vm, old.host,
                                    Why(old) + "; updateStrategy OnDelete replaces it once it is "
                                               "deleted"));
          KeepPowerState(set, old);
          break;
        case UpdateStrategyType::kRecreate:
          ReplaceDeleteFirst(set, old, Why(old) + "; Recreate: delete, then create");
          break;
        case UpdateStrategyType::kRolling: {
          if (budget == 0) {
            const uint32_t busy = unavailable + replacing;
            builder_.Note(MakeFinding(FindingKind::kOutdated, &set, old.vm, old.host,
                                      Why(old) + "; waiting: maxUnavailable is " +
                                          std::to_string(strategy.max_unavailable) + " and " +
                                          CountOf(busy, "VM") + " of the set " +
                                          (busy == 1 ? "is" : "are") +
                                          " unavailable or being replaced"));
            KeepPowerState(set, old);
            break;
          }
          --budget;
          ++replacing;
          // With spare capacity the new VM is made first on another host (two VMs of one name
          // never share a host); without, the old one makes room first.
          const Placer::Choice choice = placer_->Place(set, old.vm, old.host);
          if (!choice.host.empty()) {
            AddNew(set, old.vm, ActionKind::kReplace, choice.host, old.host,
                   /*create_first=*/true, Why(old) + "; rolling update");
          } else {
            ReplaceDeleteFirst(set, old,
                               Why(old) + "; rolling update, no spare capacity, so delete first");
          }
          break;
        }
      }
    }
  }

  // Stages the set's new image on every host that could run its VMs and lacks it, once per host
  // and image in this plan; replacements on such a host wait for its pull (AddNew). Only images
  // the pool's hosts cache (VMSet::image_cache_key) are pulled.
  void Prepull(const VMSet& set) {
    if (set.image_cache_key.empty()) {
      return;
    }
    const std::string& key = set.image_cache_key;
    for (const std::string& host : placer_->LackingImage(set)) {
      if (prepulls_.contains({host, key})) {
        continue;
      }
      prepulls_[{host, key}] = builder_.Add(
          Action{.kind = ActionKind::kPrepull,
                 .vmset = set.meta.name,
                 .pool = pool_.meta.name,
                 .host = host,
                 .reason = "stage the new image before the rolling update replaces VMs",
                 .templ = set.templ,
                 .template_hash = HashOf(set)});
    }
  }

  // An outdated VM that is not being replaced yet still gets started or stopped as desired.
  void KeepPowerState(const VMSet& set, const Outdated& old) {
    uint32_t ignored = 0;
    PlanState(set, old.vm, old.host, old.info, set.templ.state == PowerState::kRunning, ignored);
  }

  // Deletes `old`, then makes its successor where it fits best (its own host included); if
  // nothing fits even then, the old VM stays and the reason is reported.
  void ReplaceDeleteFirst(const VMSet& set, const Outdated& old, const std::string& reason) {
    placer_->Release(old.host, old.info);
    const Placer::Choice choice = placer_->Place(set, old.vm);
    if (choice.host.empty()) {
      placer_->Release(old.host, old.info, -1);
      builder_.Note(MakeFinding(FindingKind::kUnschedulable, &set, old.vm, old.host,
                                "cannot replace the outdated VM: " + choice.reason));
      return;
    }
    AddNew(set, old.vm, ActionKind::kReplace, choice.host, old.host, /*create_first=*/false,
           reason);
  }

  void CollectDeletes(std::vector<DeleteCandidate>& deletes) {
    std::vector<const LedgerEntry*> entries;
    for (const LedgerEntry& entry : ledger_.entries) {
      if (entry.pool == pool_.meta.name && !desired_vms_.contains(entry.vm)) {
        entries.push_back(&entry);
      }
    }
    std::sort(entries.begin(), entries.end(),
              [](const LedgerEntry* a, const LedgerEntry* b) { return a->vm < b->vm; });
    for (const LedgerEntry* entry : entries) {
      if (!specs_.contains(entry->host)) {
        builder_.Note(Finding{.kind = FindingKind::kDrift,
                              .vm = entry->vm,
                              .vmset = entry->vmset,
                              .pool = pool_.meta.name,
                              .host = entry->host,
                              .message = "no longer desired, and host " + entry->host +
                                         " was removed from the pool: the VM there is left "
                                         "alone (delete it by hand)"});
        continue;
      }
      auto found = where_.find(entry->vm);
      if (found == where_.end()) {
        continue;  // already gone
      }
      const VMSet* set = desired_.FindSet(entry->vmset);
      bool prune = false;
      if (set != nullptr) {
        prune = set->prune;
      } else if (auto it = ledger_.vmset_prune.find(entry->vmset);
                 it != ledger_.vmset_prune.end()) {
        prune = it->second;
      }
      const std::string why = set != nullptr ? "beyond " + std::to_string(set->replicas) +
                                                   " replicas of " + set->meta.name
                                             : "VMSet " + entry->vmset + " was removed";
      // Only the copy on the ledger's host is ours; a same-named VM elsewhere is not.
      const Located* mine = nullptr;
      for (const Located& copy : found->second) {
        if (copy.host->name == entry->host) {
          mine = &copy;
        }
      }
      if (mine == nullptr) {
        continue;  // gone from its host (or its host is not observed)
      }
      const Located& here = *mine;
      if (!prune) {
        builder_.Note(
            Finding{.kind = FindingKind::kDrift,
                    .vm = entry->vm,
                    .vmset = entry->vmset,
                    .pool = pool_.meta.name,
                    .host = here.host->name,
                    .message = "no longer desired (" + why + "); kept because prune is off"});
        continue;
      }
      if (!here.host->online) {
        builder_.Note(Finding{.kind = FindingKind::kUnknown,
                              .vm = entry->vm,
                              .vmset = entry->vmset,
                              .pool = pool_.meta.name,
                              .host = here.host->name,
                              .message = "no longer desired (" + why + "), but host " +
                                         here.host->name + " is offline"});
        continue;
      }
      deletes.push_back(DeleteCandidate{
          .entry = *entry, .host = here.host->name, .reason = why, .vm_id = here.vm->id});
    }
  }

  const Desired& desired_;
  const HostPool& pool_;
  const Observed& observed_;
  const Ledger& ledger_;
  const PlannerOptions& options_;
  const TimePoint now_;
  PlanBuilder& builder_;
  std::map<std::string, const HostSpec*> specs_;
  std::map<std::string, std::vector<Located>> where_;  // VM name -> copies, by host name
  std::vector<const VMSet*> sets_;
  std::map<std::string, const VMSet*> desired_vms_;  // VM name -> its set
  std::map<std::string, const LedgerEntry*> owned_;  // this pool's ledger, by VM name
  std::vector<std::string> silent_hosts_;            // hosts offline or never observed
  std::set<std::string> managed_;                    // VMs on this pool's hosts that are Flotilla's
  std::set<std::string> desired_running_;            // managed VMs desired running
  std::unique_ptr<Placer> placer_;
  std::map<const VMSet*, std::string> hashes_;
  std::map<std::string, int> adopt_ids_;  // VM name -> its adopt action in this plan
  // Prepull actions of this plan, by (host, VMSet::image_cache_key).
  std::map<std::pair<std::string, std::string>, int> prepulls_;
};

}  // namespace

Plan ComputePlan(const Desired& desired, const Observed& observed, const Ledger& ledger,
                 const PlannerOptions& options, TimePoint now) {
  PlanBuilder builder;
  std::vector<DeleteCandidate> deletes;
  // What interrupted actions still have to delete goes first: it finishes work under way.
  for (const FinishDelete& d : options.finish_deletes) {
    if (desired.FindPool(d.pool) != nullptr) {
      deletes.push_back(DeleteCandidate{
          .entry = LedgerEntry{.vm = d.vm, .vmset = d.vmset, .pool = d.pool, .host = d.host},
          .host = d.host,
          .reason = d.reason,
          .vm_id = d.vm_id});
    }
  }
  for (const HostPool& pool : desired.pools) {
    PoolPlanner(desired, pool, observed, ledger, options, now, builder).Run(deletes);
  }
  // VMs in pools that are gone from the repository: their hosts are no longer known.
  std::vector<const LedgerEntry*> orphaned;
  for (const LedgerEntry& entry : ledger.entries) {
    if (desired.FindPool(entry.pool) == nullptr) {
      orphaned.push_back(&entry);
    }
  }
  std::sort(orphaned.begin(), orphaned.end(),
            [](const LedgerEntry* a, const LedgerEntry* b) { return a->vm < b->vm; });
  for (const LedgerEntry* entry : orphaned) {
    builder.Note(Finding{.kind = FindingKind::kDrift,
                         .vm = entry->vm,
                         .vmset = entry->vmset,
                         .pool = entry->pool,
                         .host = entry->host,
                         .message = "pool " + entry->pool +
                                    " was removed; its VMs are left alone (Flotilla no longer "
                                    "knows how to reach its hosts)"});
  }

  // Deletion safety: the budget, and the guard against emptying the fleet. The guard looks at
  // intent: does any managed VM remain desired (or kept because prune is off)?
  std::map<std::string_view, const VMSet*> sets_by_name;
  for (const VMSet& set : desired.sets) {
    sets_by_name[set.meta.name] = &set;
  }
  const size_t managed = ledger.entries.size();
  size_t survivors = 0;
  for (const LedgerEntry& entry : ledger.entries) {
    auto found = sets_by_name.find(entry.vmset);
    const VMSet* set = found == sets_by_name.end() ? nullptr : found->second;
    // Desired while its ordinal is below the set's replicas ("<set>-<ordinal>").
    bool desired_vm = false;
    if (set != nullptr && entry.vm.size() > set->meta.name.size() + 1 &&
        entry.vm.starts_with(set->meta.name + "-")) {
      const std::string_view ordinal = std::string_view(entry.vm).substr(set->meta.name.size() + 1);
      uint32_t n = 0;
      auto [end, ec] = std::from_chars(ordinal.data(), ordinal.data() + ordinal.size(), n);
      desired_vm = ec == std::errc() && end == ordinal.data() + ordinal.size() &&
                   n < set->replicas && set->VMName(n) == entry.vm;
    }
    auto last = ledger.vmset_prune.find(entry.vmset);
    const bool prune =
        set != nullptr ? set->prune : (last != ledger.vmset_prune.end() && last->second);
    if (desired_vm || !prune) {
      ++survivors;
    }
  }
  const bool empties_fleet = managed > 0 && !deletes.empty() && survivors == 0;
  const size_t allowed = options.max_deletions ? *options.max_deletions
                         : options.max_deletions_percent == 0
                             ? 0
                             : std::max<size_t>(1, managed * options.max_deletions_percent / 100);
  const size_t budget =
      allowed > options.deletions_in_window ? allowed - options.deletions_in_window : 0;
  std::string deferred_why = "delete deferred: at most " + std::to_string(allowed) +
                             " deletions per " + Minutes(options.deletion_window) +
                             " (maxDeletionsPerRun, deletionWindow)";
  if (options.deletions_in_window > 0) {
    deferred_why += "; " + std::to_string(options.deletions_in_window) + " made within it";
  }
  if (allowed == 0) {
    deferred_why += "; approve it with apply --max-deletions or flotilla reconcile --max-deletions";
  } else if (options.window_frees_at && *options.window_frees_at > now) {
    deferred_why += "; the next may run in " + Minutes(*options.window_frees_at - now) +
                    " (or approve more with --max-deletions)";
  } else {
    deferred_why += "; the rest run in later passes (or approve more with --max-deletions)";
  }
  size_t done = 0;
  for (const DeleteCandidate& d : deletes) {
    Finding held{.vm = d.entry.vm, .vmset = d.entry.vmset, .pool = d.entry.pool, .host = d.host};
    if (empties_fleet && !options.allow_empty) {
      held.kind = FindingKind::kRefused;
      held.message = "not deleted: this revision would delete every managed VM (" +
                     std::to_string(managed) + "); allow it with --allow-empty";
      builder.Note(std::move(held));
      continue;
    }
    if (done >= budget) {
      held.kind = FindingKind::kDeferred;
      held.message = deferred_why;
      builder.Note(std::move(held));
      continue;
    }
    ++done;
    builder.Add(Action{.kind = ActionKind::kDelete,
                       .vm = d.entry.vm,
                       .vmset = d.entry.vmset,
                       .pool = d.entry.pool,
                       .host = d.host,
                       .reason = d.reason,
                       .vm_id = d.vm_id});
  }
  return builder.Finish();
}

}  // namespace flotilla::planner
