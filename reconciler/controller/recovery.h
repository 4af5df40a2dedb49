#pragma once

// What to do with one journal row a previous process left unfinished, given what its hosts show
// now: the recovery table of docs/converge.md as a pure function. The controller applies the
// decision (settles the row, writes the ledger, resumes creates) and hands the deletions that
// finish an action to the planner, so that they run as plan actions: journalled, retried and
// counted against the deletion budget like every other delete.

#include <optional>
#include <string>

#include "reconciler/model/observed.h"
#include "reconciler/model/plan.h"
#include "reconciler/planner/placement.h"
#include "reconciler/store/store.h"

namespace flotilla::controller {

struct RecoveryDecision {
  enum class Row {
    kOpen,       // leave the row as it is: its host is offline, or a deletion still finishes it
    kSucceeded,  // the action's effect is on the hosts
    kAbandoned,  // it never took effect; the planner plans what is still wanted
  };
  Row row = Row::kOpen;
  std::string why;  // for the row, when settled
  // create/replace that left a temporary name: the next create of the VM on the host, from
  // the same template, resumes it.
  bool resumable = false;
  // The create finished: this entry goes into the ledger (the id the host reports now).
  std::optional<LedgerEntry> adopt;
  // The delete finished: the ledger row of the action's VM on its host goes.
  bool drop_ledger = false;
  // The VM still to delete to finish the action (a create-first replace's predecessor, the copy
  // a delete by id was removing), by the id its host reports. The row stays open until it is
  // gone.
  std::optional<planner::FinishDelete> finish;
};

// `host`: the action's host as observed (null when not observed); `from_host`: a replace's
// predecessor host, likewise. `ledger` as loaded, before this pass changed it.
RecoveryDecision Decide(const store::ActionRecord& action, const ObservedHost* host,
                        const ObservedHost* from_host, const Ledger& ledger);

}  // namespace flotilla::controller
