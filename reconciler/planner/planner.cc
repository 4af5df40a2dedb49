#include "reconciler/planner/planner.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "reconciler/model/template_hash.h"
#include "reconciler/model/text.h"
#include "reconciler/planner/index.h"

namespace flotilla::planner {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

std::string Minutes(std::chrono::system_clock::duration d) {
  const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(d).count();
  return minutes < 1 ? "less than a minute" : std::to_string(minutes) + "m";
}

// Accumulates a plan with ids and dependencies.
class PlanBuilder {
 public:
  void Reserve(size_t actions) { plan_.actions.reserve(actions); }
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

// A delete the budget decides on.
struct DeleteCandidate {
  LedgerEntry entry;
  std::string host;
  std::string reason;
  std::string vm_id;  // as the host reports it
};

class PoolPlanner {
 public:
  PoolPlanner(const FleetIndex& index, const HostPool& pool, const Observed& observed,
              const Ledger& ledger, const PlannerOptions& options, TimePoint now,
              PlanBuilder& builder)
      : index_(index),
        pool_(pool),
        observed_(observed),
        ledger_(ledger),
        entries_(index.LedgerOf(pool.meta.name)),
        sets_(index.SetsOf(pool.meta.name)),
        options_(options),
        now_(now),
        builder_(builder),
        observed_hosts_(ObservedHostsOf(pool, observed)),
        vms_(pool, observed_hosts_, sets_, entries_, options) {
    specs_.reserve(pool.hosts.size());
    for (size_t i = 0; i < pool.hosts.size(); ++i) {
      const HostSpec& spec = pool.hosts[i];
      specs_[spec.name] = &spec;
      const ObservedHost* host = observed_hosts_[i];
      if (host == nullptr || !host->online) {
        silent_hosts_.push_back(spec.name);
      }
    }
    // The ledger's VMs are managed (VmIndex marks them); so are those this plan adopts.
    for (size_t i = 0; i < vms_.desired_names().size(); ++i) {
      VmRecord& vm = vms_.DesiredRecord(i);
      if (vm.owned == nullptr && Adoptable(*vm.set, vm) != nullptr) {
        vm.managed = true;
      }
    }
    placer_ = std::make_unique<Placer>(pool, observed_hosts_, roles_, options);
  }

  void Run(std::vector<DeleteCandidate>& deletes) {
    size_t first = 0;  // of the set's names in vms_.desired_names(), which lists them set by set
    for (const VMSet* set : sets_) {
      PlanSet(*set, first);
      first += set->replicas;
    }
    CollectDeletes(deletes);
  }

 private:
  struct Outdated {
    std::string vm;
    std::string host;
    const VmInfo* info = nullptr;   // as observed (the inputs outlive the plan)
    bool unknown_template = false;  // adopted from a template Flotilla cannot tell
  };

  // Why an outdated VM is to be replaced, for people.
  static std::string Why(const Outdated& old) {
    return old.unknown_template ? "adopted, template unknown" : "template changed";
  }

  // The VM this plan adopts for `vm` of `set`: the one copy of the name, on an online host of
  // the pool; null when adoption is off, or there is none, or there are several (conflicts).
  const Located* Adoptable(const VMSet& set, const VmRecord& vm) const {
    if (!(options_.adopt_existing || set.adopt_existing) || vm.copies.size() != 1 ||
        !vm.copies.front().host->online) {
      return nullptr;
    }
    return &vm.copies.front();
  }

  // Actions on `vm` wait for its adoption in this plan, if any.
  std::vector<int> After(const std::string& vm) const { return After(vms_.Find(vm)); }
  static std::vector<int> After(const VmRecord* record) {
    return record == nullptr || record->adopt_id == 0 ? std::vector<int>{}
                                                      : std::vector<int>{record->adopt_id};
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

  // The id `host` reports for the VM of `record` (may be null); empty when it reports none (or
  // `host` is empty).
  static std::string ObservedId(const VmRecord* record, const std::string& host) {
    if (record != nullptr) {
      for (const Located& copy : record->copies) {
        if (copy.host->name == host) {
          return copy.vm->id;
        }
      }
    }
    return "";
  }

  // Adds a create or replace on the placed host (and the start that follows it when the VM
  // should run).
  void AddNew(const VMSet& set, const std::string& vm, ActionKind kind,
              const Placer::Choice& placed, const std::string& from_host, bool create_first,
              std::string reason) {
    const std::string& host = placed.host;
    const VmRecord* record = vms_.Find(vm);
    const Built& built = BuiltOf(set);
    std::vector<int> after = After(record);
    if (!prepulls_.empty()) {
      if (auto it = prepulls_.find({host, set.image_cache_key}); it != prepulls_.end()) {
        after.push_back(it->second);  // the image is being staged there: copy, do not download
      }
    }
    const int id = builder_.Add(Action{.kind = kind,
                                       .vm = vm,
                                       .vmset = set.meta.name,
                                       .pool = pool_.meta.name,
                                       .host = host,
                                       .from_host = from_host,
                                       .reason = std::move(reason),
                                       .depends_on = std::move(after),
                                       .templ = built.templ,
                                       .template_hash = built.hash,
                                       .create_first = create_first,
                                       .assumed_placement = placed.assumed,
                                       .vm_id = ObservedId(record, from_host)});
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

  // Places and adds a new VM, or reports why it cannot be placed. True if placed.
  bool CreateElsewhere(const VMSet& set, const std::string& vm, ActionKind kind,
                       const std::string& from_host, const std::string& reason) {
    const Placer::Choice choice = placer_->Place(set, vm, from_host);
    if (choice.host.empty()) {
      builder_.Note(MakeFinding(FindingKind::kUnschedulable, &set, vm, "", choice.reason));
      return false;
    }
    AddNew(set, vm, kind, choice, from_host, /*create_first=*/true, reason);
    return true;
  }

  // The set's template, one copy for all its actions, and its hash: made once per set.
  struct Built {
    SharedTemplate templ;
    std::string hash;
  };
  const Built& BuiltOf(const VMSet& set) {
    auto it = built_.find(&set);
    if (it == built_.end()) {
      it = built_.emplace(&set, Built{.templ = set.templ, .hash = TemplateHash(set.templ)}).first;
    }
    return it->second;
  }
  const std::string& HashOf(const VMSet& set) { return BuiltOf(set).hash; }

  // Plans the VMs of `set`, whose names are vms_.desired_names() from `first` on.
  void PlanSet(const VMSet& set, size_t first) {
    const std::string& hash = HashOf(set);
    const bool want_running = set.templ.state == PowerState::kRunning;
    uint32_t unavailable = 0;
    std::vector<Outdated> outdated;
    for (uint32_t ordinal = 0; ordinal < set.replicas; ++ordinal) {
      const std::string& vm = vms_.desired_names()[first + ordinal];  // set.VMName(ordinal)
      VmRecord& record = vms_.DesiredRecord(first + ordinal);
      const LedgerEntry* entry = record.owned;
      const std::span<const Located> copies = record.copies;
      // Which copy is ours: with a ledger entry, only the one on the ledger's host; without
      // one, none (a conflict) unless the set adopts, then the only one. Any other copy of the
      // name is someone else's VM: reported, never touched.
      const Located* mine = nullptr;
      // A view of the ledger's (or the adopted VM's) hash, not a copy per VM.
      std::string adopted_hash;
      std::string_view owned_hash =
          entry != nullptr ? std::string_view(entry->template_hash) : std::string_view();
      if (entry != nullptr) {
        for (const Located& copy : copies) {
          if (copy.host->name == entry->host) {
            mine = &copy;
          }
        }
      } else if ((mine = Adoptable(set, record)) != nullptr) {
        adopted_hash = AdoptedTemplateHash(set.templ, *mine->vm);
        owned_hash = adopted_hash;
        record.adopt_id = builder_.Add(Action{
            .kind = ActionKind::kAdopt,
            .vm = vm,
            .vmset = set.meta.name,
            .pool = pool_.meta.name,
            .host = mine->host->name,
            .reason = owned_hash == hash
                          ? "existing VM with a desired name"
                          : "existing VM with a desired name; its OS, cpu or memory differ from "
                            "the template, so it counts as outdated",
            .template_hash = adopted_hash,
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
                                    .info = here.vm,
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
    std::string reason =
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
                        .reason = std::move(reason),
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
            AddNew(set, old.vm, ActionKind::kReplace, choice, old.host,
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
                 .templ = BuiltOf(set).templ,
                 .template_hash = HashOf(set)});
    }
  }

  // An outdated VM that is not being replaced yet still gets started or stopped as desired.
  void KeepPowerState(const VMSet& set, const Outdated& old) {
    uint32_t ignored = 0;
    PlanState(set, old.vm, old.host, *old.info, set.templ.state == PowerState::kRunning, ignored);
  }

  // Deletes `old`, then makes its successor where it fits best (its own host included); if
  // nothing fits even then, the old VM stays and the reason is reported.
  void ReplaceDeleteFirst(const VMSet& set, const Outdated& old, const std::string& reason) {
    placer_->Release(old.host, *old.info);
    const Placer::Choice choice = placer_->Place(set, old.vm);
    if (choice.host.empty()) {
      placer_->Release(old.host, *old.info, -1);
      builder_.Note(MakeFinding(FindingKind::kUnschedulable, &set, old.vm, old.host,
                                "cannot replace the outdated VM: " + choice.reason));
      return;
    }
    AddNew(set, old.vm, ActionKind::kReplace, choice, old.host, /*create_first=*/false, reason);
  }

  void CollectDeletes(std::vector<DeleteCandidate>& deletes) {
    // Each entry no longer desired, with its record (as the VmIndex made it: not looked up).
    std::vector<std::pair<const LedgerEntry*, const VmRecord*>> entries;
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (const VmRecord& record = vms_.EntryRecord(i); record.set == nullptr) {
        entries.emplace_back(entries_[i], &record);
      }
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first->vm < b.first->vm; });
    for (const auto& [entry, record] : entries) {
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
      const std::span<const Located> copies = record->copies;
      if (copies.empty()) {
        continue;  // already gone
      }
      const VMSet* set = index_.FindSet(entry->vmset);
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
      for (const Located& copy : copies) {
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

  const FleetIndex& index_;
  const HostPool& pool_;
  const Observed& observed_;
  const Ledger& ledger_;
  const std::vector<const LedgerEntry*>& entries_;  // this pool's ledger entries
  const std::vector<const VMSet*>& sets_;           // this pool's sets
  const PlannerOptions& options_;
  const TimePoint now_;
  PlanBuilder& builder_;
  // The observed host of each of the pool's hosts (null if not observed), in the pool's order.
  const std::vector<const ObservedHost*> observed_hosts_;
  VmIndex vms_;  // every VM name of the pool
  std::unordered_map<std::string_view, const HostSpec*> specs_;
  std::vector<std::string> silent_hosts_;  // hosts offline or never observed
  // Which VMs on this pool's hosts are Flotilla's, and which of those are desired running: read
  // from their records.
  struct Roles final : VmRoles {
    explicit Roles(const VmIndex& vms) : vms(vms) {}
    Role Of(std::string_view vm) const override {
      const VmRecord* record = vms.Find(vm);
      if (record == nullptr || !record->managed) {
        return Role{};
      }
      return Role{.managed = true,
                  .desired_running =
                      record->set != nullptr && record->set->templ.state == PowerState::kRunning};
    }
    const VmIndex& vms;
  };
  Roles roles_{vms_};
  std::unique_ptr<Placer> placer_;
  std::map<const VMSet*, Built> built_;
  // Prepull actions of this plan, by (host, VMSet::image_cache_key).
  std::map<std::pair<std::string, std::string>, int> prepulls_;
};

}  // namespace

Plan ComputePlan(const Desired& desired, const Observed& observed, const Ledger& ledger,
                 const PlannerOptions& options, TimePoint now) {
  const FleetIndex index(desired, ledger);
  PlanBuilder builder;
  // Room for every action the plan can hold but a few (a create and a start per desired VM, a
  // delete per ledger entry): moving grown vectors of actions costs more than the address space.
  builder.Reserve(2 * desired.DesiredVMCount() + ledger.entries.size() +
                  options.finish_deletes.size());
  std::vector<DeleteCandidate> deletes;
  // What interrupted actions still have to delete goes first: it finishes work under way.
  for (const FinishDelete& d : options.finish_deletes) {
    if (index.FindPool(d.pool) != nullptr) {
      deletes.push_back(DeleteCandidate{
          .entry = LedgerEntry{.vm = d.vm, .vmset = d.vmset, .pool = d.pool, .host = d.host},
          .host = d.host,
          .reason = d.reason,
          .vm_id = d.vm_id});
    }
  }
  for (const HostPool& pool : desired.pools) {
    PoolPlanner(index, pool, observed, ledger, options, now, builder).Run(deletes);
  }
  // VMs in pools that are gone from the repository: their hosts are no longer known.
  std::vector<const LedgerEntry*> orphaned;
  const LedgerEntry* previous = nullptr;  // a pool's entries lie together: look up each run once
  bool known = false;
  for (const LedgerEntry& entry : ledger.entries) {
    if (previous == nullptr || entry.pool != previous->pool) {
      known = index.FindPool(entry.pool) != nullptr;
    }
    previous = &entry;
    if (!known) {
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
  // (By name, the last set of a name, as this check always took it.)
  std::unordered_map<std::string_view, const VMSet*> sets_by_name;
  sets_by_name.reserve(desired.sets.size());
  for (const VMSet& set : desired.sets) {
    sets_by_name[set.meta.name] = &set;
  }
  const size_t managed = ledger.entries.size();
  // One survivor is enough to know, and without deletes there is nothing to guard.
  bool survivor = false;
  for (const LedgerEntry& entry : ledger.entries) {
    if (survivor || deletes.empty()) {
      break;
    }
    auto found = sets_by_name.find(entry.vmset);
    const VMSet* set = found == sets_by_name.end() ? nullptr : found->second;
    // Desired while its ordinal is below the set's replicas ("<set>-<ordinal>", the ordinal
    // written as VMSet::VMName writes it: no sign, no leading zero).
    bool desired_vm = false;
    const std::string_view vm = entry.vm;
    if (set != nullptr && vm.size() > set->meta.name.size() + 1 && vm.starts_with(set->meta.name) &&
        vm[set->meta.name.size()] == '-') {
      const std::string_view ordinal = vm.substr(set->meta.name.size() + 1);
      uint32_t n = 0;
      auto [end, ec] = std::from_chars(ordinal.data(), ordinal.data() + ordinal.size(), n);
      desired_vm = ec == std::errc() && end == ordinal.data() + ordinal.size() &&
                   n < set->replicas && (ordinal.size() == 1 || ordinal.front() != '0');
    }
    auto last = ledger.vmset_prune.find(entry.vmset);
    const bool prune =
        set != nullptr ? set->prune : (last != ledger.vmset_prune.end() && last->second);
    survivor = desired_vm || !prune;
  }
  const bool empties_fleet = managed > 0 && !deletes.empty() && !survivor;
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
