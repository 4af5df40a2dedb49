#pragma once

// Applying a plan to values instead of hosts: what Observed and the Ledger would be if every
// action succeeded at once. `flotilla diff` uses it to stand up the fleet of a base revision
// without touching a host; tests use it to check that re-planning converges.

#include <string>

#include "reconciler/model/observed.h"
#include "reconciler/model/plan.h"

namespace flotilla::planner {

// Hosts the plan names but `observed` lacks are added, online. Created VMs take the template's
// disk, or `default_disk_bytes` when it names none. `desired` is the revision the plan was
// made for (a prepull caches its set's image_cache_key).
void SimulateApply(const Plan& plan, const Desired& desired, Observed& observed, Ledger& ledger,
                   uint64_t default_disk_bytes = uint64_t{40} << 30);

}  // namespace flotilla::planner
