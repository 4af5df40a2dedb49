// What a previous process left unfinished, settled against what the hosts show (Decide, the
// table of docs/converge.md; Recover applies it), and the temporary VMs of creates that nothing
// will resume (PlanCleanups: deletions in the plan).

#include "reconciler/controller/recovery.h"

#include <algorithm>
#include <set>

#include "reconciler/controller/controller.h"

namespace flotilla::controller {
namespace {

bool CreatesOn(const Plan& plan, const std::string& vm, const std::string& host) {
  return std::any_of(plan.actions.begin(), plan.actions.end(), [&](const Action& a) {
    return a.vm == vm && a.host == host &&
           (a.kind == ActionKind::kCreate || a.kind == ActionKind::kReplace);
  });
}

bool HasId(const ObservedHost& host, const std::string& id) {
  return std::any_of(host.vms.begin(), host.vms.end(), [&](const VmInfo& v) { return v.id == id; });
}

RecoveryDecision Settled(RecoveryDecision::Row row, std::string why) {
  return RecoveryDecision{.row = row, .why = std::move(why)};
}

RecoveryDecision DecideCreate(const store::ActionRecord& a, const ObservedHost& host,
                              const ObservedHost* from_host, const Ledger& ledger) {
  using Row = RecoveryDecision::Row;
  const VmInfo* vm = host.FindVm(a.vm);
  const bool reached = !a.pending_temp_name.empty();  // journalled before the host was asked
  if (vm == nullptr) {
    RecoveryDecision d = Settled(Row::kAbandoned, reached ? "interrupted; the next create of it "
                                                            "resumes it"
                                                          : "interrupted; planned again");
    d.resumable = reached;
    return d;
  }
  // The host has the VM: the create finished though its outcome was never recorded. Only an
  // attempt that reached the host can have made it; otherwise the VM is someone else's.
  const LedgerEntry* entry = ledger.Find(a.vm);
  const bool ledger_here = entry != nullptr && entry->host == a.host;
  if (!reached && !ledger_here) {
    return Settled(Row::kAbandoned, "interrupted before reaching the host");
  }
  RecoveryDecision d = Settled(Row::kSucceeded, "completed before a restart; recovered");
  // The ledger names the VM that exists: a row for this name on this host that still holds the
  // id of a VM since gone (deleted out of band, then made again by this create) takes the id
  // observed now.
  const bool stale_id =
      ledger_here && reached && entry->provider_id != vm->id && vm->id != a.predecessor_id;
  if (!ledger_here || stale_id) {
    d.adopt = LedgerEntry{.vm = a.vm,
                          .vmset = a.vmset,
                          .pool = a.pool,
                          .host = a.host,
                          .provider_id = vm->id,
                          .template_hash = a.template_hash};
  }
  if (a.kind == ActionKind::kReplace && a.create_first) {
    // Finished only when the predecessor is gone (the copy the journal names).
    if (from_host == nullptr || !from_host->online) {
      d.row = Row::kOpen;
      return d;
    }
    const VmInfo* old = a.predecessor_id.empty() ? from_host->FindVm(a.vm) : nullptr;
    const bool still_there = a.predecessor_id.empty() ? old != nullptr && old != vm
                                                      : HasId(*from_host, a.predecessor_id);
    if (still_there) {
      d.row = Row::kOpen;
      d.finish = planner::FinishDelete{
          .vm = a.vm,
          .vmset = a.vmset,
          .pool = a.pool,
          .host = a.from_host,
          .vm_id = a.predecessor_id.empty() ? old->id : a.predecessor_id,
          .reason = "finishes the replace of " + a.vm + " that a restart interrupted"};
    }
  }
  return d;
}

}  // namespace

RecoveryDecision Decide(const store::ActionRecord& a, const ObservedHost* host,
                        const ObservedHost* from_host, const Ledger& ledger) {
  using Row = RecoveryDecision::Row;
  if (host == nullptr || !host->online) {
    return {};  // settled once the host answers again
  }
  if (a.kind == ActionKind::kCreate || a.kind == ActionKind::kReplace) {
    return DecideCreate(a, *host, from_host, ledger);
  }
  if (a.kind != ActionKind::kDelete) {
    return Settled(Row::kAbandoned, "interrupted; planned again");
  }
  const LedgerEntry* entry = ledger.Find(a.vm);
  const bool ledger_here = entry != nullptr && entry->host == a.host;
  if (!a.predecessor_id.empty() && HasId(*host, a.predecessor_id)) {
    // A delete journalled by id (the predecessor of a replace, or a VM being pruned): the copy
    // with that id is still to go, unless the ledger says the VM on this host is that copy.
    if (ledger_here && entry->provider_id == a.predecessor_id) {
      return Settled(Row::kAbandoned, "interrupted; planned again");
    }
    RecoveryDecision d;
    d.finish = planner::FinishDelete{
        .vm = a.vm,
        .vmset = a.vmset,
        .pool = a.pool,
        .host = a.host,
        .vm_id = a.predecessor_id,
        .reason = "finishes a delete of " + a.vm + " that a restart interrupted"};
    return d;
  }
  if (!host->HasVm(a.vm)) {
    RecoveryDecision d = Settled(Row::kSucceeded, "completed before a restart; recovered");
    d.drop_ledger = ledger_here;
    return d;
  }
  if (!a.predecessor_id.empty()) {
    return Settled(Row::kSucceeded, "deleted: the VM of that id is gone from the host");
  }
  return Settled(Row::kAbandoned, "interrupted; planned again");
}

Status Controller::Recover(Prepared& prepared, std::map<std::string, Unfinished>& resumable,
                           std::vector<planner::FinishDelete>& finish) {
  resumable = std::move(cancelled_creates_);
  cancelled_creates_.clear();
  Result<std::vector<store::ActionRecord>> unfinished = store_.UnfinishedActions();
  if (!unfinished.ok()) {
    return unfinished.status();
  }
  const bool preview = options_.preview;
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
  const Ledger before = prepared.ledger;
  bool wrote_ledger = false;
  for (const store::ActionRecord& a : *unfinished) {
    if (!InScope(a.pool)) {
      continue;
    }
    const RecoveryDecision d = Decide(a, prepared.observed.FindHost(a.host),
                                      prepared.observed.FindHost(a.from_host), before);
    if (d.resumable) {
      resumable[ResumeKey(a.vm, a.host)] = unfinished_of(a);
    }
    if (d.adopt) {
      if (preview) {
        std::erase_if(prepared.ledger.entries,
                      [&](const LedgerEntry& e) { return e.vm == d.adopt->vm; });
        prepared.ledger.entries.push_back(*d.adopt);
      } else if (Status s = store_.UpsertLedger(*d.adopt, clock_.Now()); !s.ok()) {
        return s;
      }
      wrote_ledger = true;
      logger_->info("recovered {} on {}: its create finished before the last process stopped", a.vm,
                    a.host);
    }
    if (d.drop_ledger) {
      if (preview) {
        std::erase_if(prepared.ledger.entries, [&](const LedgerEntry& e) { return e.vm == a.vm; });
      } else if (Status s = store_.RemoveLedger(a.vm); !s.ok()) {
        return s;
      }
      wrote_ledger = true;
    }
    if (d.finish) {
      finish.push_back(*d.finish);
    }
    if (d.row != RecoveryDecision::Row::kOpen) {
      if (!preview) {
        const store::ActionState state = d.row == RecoveryDecision::Row::kSucceeded
                                             ? store::ActionState::kSucceeded
                                             : store::ActionState::kAbandoned;
        if (Status s = store_.UpdateActionState(a.id, state, d.why, clock_.Now()); !s.ok()) {
          return s;
        }
      }
      ++prepared.recovered;
    }
  }
  if (prepared.recovered > 0 && !preview) {
    Event("info", "recovered", "",
          std::to_string(prepared.recovered) + " unfinished action(s) of an earlier process");
  }
  if (wrote_ledger && !preview) {
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
  // "<set>-<ordinal>" below its set's replicas.
  const auto desired = [&](const LedgerEntry& entry) {
    const VMSet* set = prepared.desired.FindSet(entry.vmset);
    for (uint32_t k = 0; set != nullptr && k < set->replicas; ++k) {
      if (set->VMName(k) == entry.vm) {
        return true;
      }
    }
    return false;
  };
  std::set<std::string> forget;
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
    if (!id_seen && named == nullptr && !desired(entry)) {
      // Gone from its host (deleted out of band) and no longer desired: nothing is left to
      // own or to prune. Kept, the row would claim a VM someone later makes under that name
      // on that host (and prune would delete it).
      logger_->info("ledger: {} is gone from {} and no longer desired; {}", entry.vm, entry.host,
                    options_.preview ? "the next pass forgets it" : "forgotten");
      forget.insert(entry.vm);
      continue;
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
      // Flotilla's VM is gone and someone made another under its name there (found by
      // bench/soak). Kept, the row would make that VM Flotilla's: started, stopped, replaced
      // or pruned. Forgotten, the VM is reported as a conflict and left alone.
      logger_->warn(
          "ledger: {} on {} is recorded with id {}, but the VM of that name there has "
          "id {} and the journal does not show that Flotilla made it; it is not Flotilla's, "
          "the row is {}",
          entry.vm, entry.host, entry.provider_id, named->id,
          options_.preview ? "forgotten by the next pass" : "forgotten");
      forget.insert(entry.vm);
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
  for (const std::string& vm : forget) {
    if (options_.preview) {
      continue;
    }
    if (Status s = store_.RemoveLedger(vm); !s.ok()) {
      return s;
    }
    Event("info", "ledger-forgotten", vm,
          "gone from its host: no longer desired, or another VM holds its name there");
  }
  std::erase_if(prepared.ledger.entries,
                [&](const LedgerEntry& e) { return forget.contains(e.vm); });
  if (options_.observer != nullptr && !options_.preview) {
    options_.observer->LedgerMismatches(mismatches);
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
