// What a previous process left unfinished, settled against what the hosts show (Recover), and
// the temporary VMs of creates that nothing will resume (PlanCleanups: deletions in the plan).
// The recovery table is in docs/converge.md.

#include <algorithm>

#include "reconciler/controller/controller.h"

namespace flotilla::controller {
namespace {

bool CreatesOn(const Plan& plan, const std::string& vm, const std::string& host) {
  return std::any_of(plan.actions.begin(), plan.actions.end(), [&](const Action& a) {
    return a.vm == vm && a.host == host &&
           (a.kind == ActionKind::kCreate || a.kind == ActionKind::kReplace);
  });
}

}  // namespace

Status Controller::Recover(Prepared& prepared, std::map<std::string, Unfinished>& resumable) {
  resumable = std::move(cancelled_creates_);
  cancelled_creates_.clear();
  Result<std::vector<store::ActionRecord>> unfinished = store_.UnfinishedActions();
  if (!unfinished.ok()) {
    return unfinished.status();
  }
  const bool preview = options_.preview;
  const auto settle = [&](const store::ActionRecord& a, store::ActionState state,
                          const std::string& why) {
    if (!preview) {
      (void)store_.UpdateActionState(a.id, state, why, clock_.Now());
    }
    ++prepared.recovered;
  };
  // In a preview, what recovery would delete is only taken out of the pass's view.
  const auto forget = [&](const std::string& host, const std::string& id_or_name) {
    if (auto it = prepared.observed.hosts.find(host); it != prepared.observed.hosts.end()) {
      std::erase_if(it->second.vms,
                    [&](const VmInfo& v) { return v.id == id_or_name || v.name == id_or_name; });
    }
  };
  // Work an earlier attempt left on a host, whatever became of its row: a process killed again
  // before it resumed a create leaves the row abandoned, and the work (a pull of tens of GiB)
  // would otherwise be deleted and done again under another name.
  Result<std::vector<store::ActionRecord>> resumable_creates = store_.ResumableCreates();
  if (!resumable_creates.ok()) {
    return resumable_creates.status();
  }
  const auto unfinished_of = [](const store::ActionRecord& a) {
    return Unfinished{.vm = a.vm,
                      .host = a.host,
                      .pending = providers::PendingCreate{.temp_name = a.pending_temp_name,
                                                          .job_id = a.pending_job_id},
                      .template_hash = a.template_hash};
  };
  for (const store::ActionRecord& a : *resumable_creates) {
    const ObservedHost* host = prepared.observed.FindHost(a.host);
    if (!InScope(a.pool) || host == nullptr || !host->online || host->HasVm(a.vm)) {
      continue;
    }
    // Without a job id there is work to resume only if the temporary VM is there, or a job
    // nobody heard of may still make it: not beyond the time a create may take.
    if (a.pending_job_id.empty() && !host->HasVm(a.pending_temp_name) &&
        clock_.Now() - a.started_at > options_.executor.create_timeout) {
      continue;
    }
    resumable.try_emplace(ResumeKey(a.vm, a.host), unfinished_of(a));
  }
  for (const store::ActionRecord& a : *unfinished) {
    if (!InScope(a.pool)) {
      continue;
    }
    const ObservedHost* host = prepared.observed.FindHost(a.host);
    if (host == nullptr || !host->online) {
      continue;  // settled once the host answers again
    }
    const VmInfo* vm = nullptr;
    for (const VmInfo& v : host->vms) {
      if (v.name == a.vm) {
        vm = &v;
      }
    }
    if (a.kind == ActionKind::kCreate || a.kind == ActionKind::kReplace) {
      if (vm == nullptr) {
        if (!a.pending_temp_name.empty()) {
          resumable[ResumeKey(a.vm, a.host)] = unfinished_of(a);
        }
        settle(a, store::ActionState::kAbandoned,
               "interrupted; " + std::string(a.pending_temp_name.empty()
                                                 ? "planned again"
                                                 : "the next create of it resumes it"));
        continue;
      }
      // The host has the VM: the create finished though its outcome was never recorded. Only
      // an attempt that reached the host (it journals the temporary name before asking) can
      // have made it; otherwise the VM is someone else's and stays unmanaged.
      const LedgerEntry* entry = prepared.ledger.Find(a.vm);
      if (a.pending_temp_name.empty() && (entry == nullptr || entry->host != a.host)) {
        settle(a, store::ActionState::kAbandoned, "interrupted before reaching the host");
        continue;
      }
      // The ledger names the VM that exists: a row for this name on this host that still holds
      // the id of a VM since gone (deleted out of band, then made again by this create) takes
      // the id observed now.
      const bool stale_id = entry != nullptr && entry->host == a.host &&
                            !a.pending_temp_name.empty() && entry->provider_id != vm->id &&
                            vm->id != a.predecessor_id;
      if (entry == nullptr || entry->host != a.host || stale_id) {
        LedgerEntry adopted{.vm = a.vm,
                            .vmset = a.vmset,
                            .pool = a.pool,
                            .host = a.host,
                            .provider_id = vm->id,
                            .template_hash = a.template_hash};
        if (preview) {
          std::erase_if(prepared.ledger.entries,
                        [&](const LedgerEntry& e) { return e.vm == adopted.vm; });
          prepared.ledger.entries.push_back(adopted);
        } else if (Status s = store_.UpsertLedger(adopted, clock_.Now()); !s.ok()) {
          return s;
        }
        logger_->info("recovered {} on {}: its create finished before the last process stopped",
                      a.vm, a.host);
      }
      if (a.kind == ActionKind::kReplace && a.create_first) {
        // Finish the replace: the predecessor goes (only the copy the journal names).
        const ObservedHost* from = prepared.observed.FindHost(a.from_host);
        if (from == nullptr || !from->online) {
          continue;
        }
        const bool still_there = std::any_of(from->vms.begin(), from->vms.end(), [&](auto& v) {
          return a.predecessor_id.empty() ? v.name == a.vm : v.id == a.predecessor_id;
        });
        if (still_there) {
          const HostPool* pool = prepared.desired.FindPool(a.pool);
          if (pool == nullptr) {
            continue;
          }
          Result<providers::Provider*> provider = ProviderFor(*pool);
          const HostSpec* spec = nullptr;
          for (const HostSpec& h : pool->hosts) {
            if (h.name == a.from_host) {
              spec = &h;
            }
          }
          if (!provider.ok() || spec == nullptr) {
            continue;
          }
          const std::string& which = a.predecessor_id.empty() ? a.vm : a.predecessor_id;
          Status deleted =
              preview ? (forget(a.from_host, which), Status::Ok())
                      : (*provider)->Delete(
                            providers::HostRef{
                                .pool = a.pool, .name = spec->name, .address = spec->address},
                            which, providers::DeadlineIn(options_.executor.action_timeout));
          if (!deleted.ok()) {
            logger_->warn("finishing the replace of {}: {}", a.vm, deleted.ToString());
            continue;
          }
          forget(a.from_host, which);  // gone: the rest of this pass must not see it
        }
      }
      settle(a, store::ActionState::kSucceeded, "completed before a restart; recovered");
      continue;
    }
    if (a.kind == ActionKind::kDelete && !a.predecessor_id.empty()) {
      // A delete journalled by id (the predecessor of a replace, or a VM being pruned): the
      // copy with that id is ours unless the ledger says the VM on this host is.
      const LedgerEntry* entry = prepared.ledger.Find(a.vm);
      const bool still_there =
          std::any_of(host->vms.begin(), host->vms.end(),
                      [&](const VmInfo& v) { return v.id == a.predecessor_id; });
      const bool ledger_names_it =
          entry != nullptr && entry->host == a.host && entry->provider_id == a.predecessor_id;
      if (still_there && !ledger_names_it) {
        const HostPool* pool = prepared.desired.FindPool(a.pool);
        Result<providers::Provider*> provider =
            pool == nullptr ? Result<providers::Provider*>(Status::NotFound("pool"))
                            : ProviderFor(*pool);
        auto spec = pool == nullptr
                        ? std::vector<HostSpec>::const_iterator{}
                        : std::find_if(pool->hosts.begin(), pool->hosts.end(),
                                       [&](const HostSpec& h) { return h.name == a.host; });
        if (!provider.ok() || spec == pool->hosts.end()) {
          continue;
        }
        Status deleted =
            preview
                ? (forget(a.host, a.predecessor_id), Status::Ok())
                : (*provider)->Delete(
                      providers::HostRef{.pool = a.pool, .name = a.host, .address = spec->address},
                      a.predecessor_id, providers::DeadlineIn(options_.executor.action_timeout));
        if (!deleted.ok()) {
          logger_->warn("deleting the replaced {} on {}: {}", a.vm, a.host, deleted.ToString());
          continue;
        }
        forget(a.host, a.predecessor_id);  // gone: the rest of this pass must not see it
        settle(a, store::ActionState::kSucceeded, "deleted after a restart");
        continue;
      }
    }
    if (a.kind == ActionKind::kDelete && vm == nullptr) {
      const LedgerEntry* entry = prepared.ledger.Find(a.vm);
      if (entry != nullptr && entry->host == a.host) {
        if (preview) {
          std::erase_if(prepared.ledger.entries,
                        [&](const LedgerEntry& e) { return e.vm == a.vm; });
        } else {
          (void)store_.RemoveLedger(a.vm);
        }
      }
      settle(a, store::ActionState::kSucceeded, "completed before a restart; recovered");
      continue;
    }
    settle(a, store::ActionState::kAbandoned, "interrupted; planned again");
  }
  if (prepared.recovered > 0 && !preview) {
    Event("info", "recovered", "",
          std::to_string(prepared.recovered) + " unfinished action(s) of an earlier process");
    Result<Ledger> ledger = store_.LoadLedger();
    if (!ledger.ok()) {
      return ledger.status();
    }
    prepared.ledger = std::move(*ledger);
  }
  return Status::Ok();
}

Status Controller::CheckLedger(Prepared& prepared) {
  size_t mismatches = 0;
  for (LedgerEntry& entry : prepared.ledger.entries) {
    const ObservedHost* host = prepared.observed.FindHost(entry.host);
    if (!InScope(entry.pool) || host == nullptr || !host->online) {
      continue;
    }
    const VmInfo* named = nullptr;
    bool id_seen = false;
    for (const VmInfo& vm : host->vms) {
      named = vm.name == entry.vm ? &vm : named;
      id_seen = id_seen || vm.id == entry.provider_id;
    }
    if (id_seen || named == nullptr) {
      continue;  // as recorded, or gone (the planner makes it again)
    }
    ++mismatches;
    Result<bool> made = store_.MadeOn(entry.vm, entry.host);
    if (!made.ok()) {
      return made.status();
    }
    if (!*made) {
      logger_->warn(
          "ledger: {} on {} is recorded with id {}, but the VM of that name there has "
          "id {} and the journal does not show that Flotilla made it; left as it is",
          entry.vm, entry.host, entry.provider_id, named->id);
      continue;
    }
    logger_->warn(
        "ledger: {} on {} had id {}, but the host reports {}, which the journal shows "
        "Flotilla made; {}",
        entry.vm, entry.host, entry.provider_id, named->id,
        options_.preview ? "the next pass corrects it" : "corrected");
    entry.provider_id = named->id;
    if (options_.preview) {
      continue;
    }
    if (Status s = store_.UpsertLedger(entry, clock_.Now()); !s.ok()) {
      return s;
    }
    Event("warn", "ledger-corrected", entry.vm,
          "on " + entry.host + ": the id the host reports replaced a stale one");
  }
  if (options_.telemetry != nullptr && !options_.preview) {
    options_.telemetry->LedgerMismatches(mismatches);
  }
  return Status::Ok();
}

void Controller::PlanCleanups(Prepared& prepared) const {
  // A temporary VM is ours when it was for "<set>-<ordinal>" of a VM set this store has applied
  // (vmset_prune keeps every set ever applied, written before any of its VMs is created) or
  // wants now: a user's VM that merely looks like one is never touched.
  auto ours = [&](const std::string& vm) {
    if (providers::IsPrepullVmName(vm)) {
      return true;  // made by a provider's prepull, only ever to be deleted
    }
    const size_t dash = vm.rfind('-');
    if (dash == std::string::npos || dash + 1 == vm.size() ||
        vm.find_first_not_of("0123456789", dash + 1) != std::string::npos) {
      return false;
    }
    const std::string set = vm.substr(0, dash);
    return prepared.ledger.vmset_prune.contains(set) || prepared.desired.FindSet(set) != nullptr;
  };
  auto journalled = [&](const std::string& temp_name, const std::string& host) {
    Result<bool> asked = store_.AskedFor(temp_name, host);
    if (!asked.ok()) {
      logger_->error("store: {}", asked.status().ToString());
    }
    return asked.ok() && *asked;  // unsure: keep it
  };
  std::vector<Action> cleanups;
  for (const auto& [name, host] : prepared.observed.hosts) {
    if (!host.online || !InScope(host.pool)) {
      continue;
    }
    for (const VmInfo& vm : host.vms) {
      // Temporary names ("<name>.flotilla-<nonce>") cannot clash with a manifest's names, which
      // never contain '.'; but the name alone proves nothing: only a temporary name this
      // store's journal asked the host for is Flotilla's, any other is someone else's VM,
      // left alone. A prepull's VMs are named by the provider (flotilla-prepull-h<hash>) and
      // only ever made to be deleted, so what a killed prepull left goes too. A leftover goes
      // whether or not its VM set still exists.
      const bool unfinished_create =
          !vm.pending_create_for.empty() && ours(vm.pending_create_for) &&
          !CreatesOn(prepared.plan, vm.pending_create_for, name) &&
          (providers::IsPrepullVmName(vm.pending_create_for) || journalled(vm.name, name));
      if (!unfinished_create && !providers::IsPrepullVmName(vm.name)) {
        continue;
      }
      const std::string& of = vm.pending_create_for.empty() ? vm.name : vm.pending_create_for;
      const size_t dash = of.rfind('-');
      const bool prepull = providers::IsPrepullVmName(of);
      cleanups.push_back(
          Action{.kind = ActionKind::kDelete,
                 .vm = vm.name,
                 .vmset = prepull || dash == std::string::npos ? "" : of.substr(0, dash),
                 .pool = host.pool,
                 .host = name,
                 .reason = prepull ? "left by an interrupted pre-staging of an image"
                                   : "left by an interrupted create of " + of,
                 .vm_id = vm.id});
    }
  }
  for (Action& a : cleanups) {
    a.id = static_cast<int>(prepared.plan.actions.size()) + 1;
    prepared.plan.actions.push_back(std::move(a));
  }
}

}  // namespace flotilla::controller
