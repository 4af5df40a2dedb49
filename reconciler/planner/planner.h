#pragma once

// The planner: a pure function from what should be (Desired), what is (Observed) and what
// Flotilla owns (Ledger) to what to do (Plan). No I/O, no clock, no logging: `now` is an input,
// and the same inputs always give the same Plan (DESIGN section 4).
//
// Per desired VM (a VMSet's `<name>-<ordinal>`), in order:
//   not on any host, not ours              -> create on a placed host (+ start if running)
//   exists, not in the ledger              -> conflict finding (never touched), unless
//                                             PlannerOptions::adopt_unowned
//   on an offline host                     -> unknown; replaced elsewhere once the host has
//                                             been silent for host_lost_after, if selfHeal
//   on a cordoned host                     -> replaced elsewhere first (drain)
//   template hash differs from the ledger  -> replaced per updateStrategy (Rolling: at most
//                                             maxUnavailable unavailable at once, new VM first
//                                             when capacity allows; Recreate: delete first;
//                                             OnDelete: reported only)
//   state differs                          -> start / stop (selfHeal off: reported only);
//                                             in-between states wait
// Managed VMs no longer desired (ordinal beyond replicas, VMSet removed) are deleted when the
// VMSet's prune (for a removed VMSet: the prune it last had) allows, within the deletion budget;
// a revision that would delete every managed VM is refused unless allowed. The deletion budget
// covers these prune deletes; replacements are bounded by the update strategy instead
// (Recreate replaces a whole set at once by design). Only the copy of a VM on the host the
// ledger names is Flotilla's: a same-named VM elsewhere is a conflict. A managed VM whose host
// is offline or unobserved is unknown, not missing. Unmanaged VMs count against capacity and are
// never touched.

#include <chrono>

#include "reconciler/model/observed.h"
#include "reconciler/model/plan.h"
#include "reconciler/model/types.h"
#include "reconciler/planner/placement.h"

namespace flotilla::planner {

Plan ComputePlan(const Desired& desired, const Observed& observed, const Ledger& ledger,
                 const PlannerOptions& options, std::chrono::system_clock::time_point now);

}  // namespace flotilla::planner
