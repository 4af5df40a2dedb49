#pragma once

// The inventory snapshot: every host's facts and VMs plus the ledger, as JSON. `flotilla diff
// --inventory FILE` reads it to preview placement without access to hosts; the API (and, later,
// the store) exports it.
//
//   {"apiVersion": "flotilla.dev/v1", "kind": "Inventory",
//    "hosts": [{"name", "pool", "online", "last_seen" (Unix seconds), "error", "arch",
//               "total"/"reserved"/"available": {"cpu", "memory", "disk"}, "cached_images",
//               "disk_known" (false: free disk unknown), "unsupported_images": {prefix: why},
//               "vms": [{"id", "name", "state", "raw_state", "os", "cpu", "memory", "disk",
//                        "ip"}]}],
//    "ledger": [{"vm", "vmset", "pool", "host", "provider_id", "template_hash"}],
//    "vmset_prune": {"<vmset>": true}}
// Sizes are quantities ("8Gi"). Unknown fields are ignored.

#include <string>
#include <string_view>

#include "reconciler/model/observed.h"
#include "reconciler/model/plan.h"
#include "reconciler/model/result.h"

namespace flotilla::render {

struct Inventory {
  Observed observed;
  Ledger ledger;
};

std::string RenderInventoryJson(const Inventory& inventory);

// Errors name the JSON pointer of the problem ("/hosts/3/vms/0/memory: ...").
Result<Inventory> ParseInventoryJson(std::string_view text);

}  // namespace flotilla::render
