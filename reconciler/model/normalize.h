#pragma once

#include "reconciler/model/types.h"

namespace flotilla {

// Fills every default and puts every list in a canonical order, so that later code compares
// values without asking "was this set?". After Normalize:
//   - each host's max_vms is its own, else the pool's defaults.maxVMs, else empty (no cap);
//     its arch and capacity come from the pool defaults when the host declares none;
//   - tags, selector tags and hosts (by name) are sorted, duplicates removed;
//   - pools and sets are sorted by name.
// Idempotent: Normalize(Normalize(x)) == Normalize(x).
void Normalize(HostPool& pool);
void Normalize(VMSet& set);
void Normalize(Desired& desired);

}  // namespace flotilla
