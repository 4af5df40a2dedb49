#pragma once

// The inventory document as JSON: every host's facts and VMs plus the ledger. It is the one
// codec of ObservedHost and Ledger to JSON and back; render/inventory.h writes and reads it as
// text (`flotilla diff --inventory FILE`, the API's export), and the store keeps each host's
// last observation as a one-host document (store/host_snapshot.h).
//
//   {"apiVersion": "flotilla.dev/v1", "kind": "Inventory",
//    "hosts": [{"name", "pool", "online", "last_seen" (Unix seconds), "error", "failures",
//               "failing_since" (Unix seconds), "error_rate", "degraded", "arch",
//               "total"/"reserved"/"available": {"cpu", "memory", "disk"}, "cached_images",
//               "disk_known" (false: free disk unknown), "unsupported_images": {prefix: why},
//               "vms": [{"id", "name", "state", "raw_state", "os", "cpu", "memory", "disk",
//                        "ip"}]}],
//    "ledger": [{"vm", "vmset", "pool", "host", "provider_id", "template_hash"}],
//    "vmset_prune": {"<vmset>": true}}
// Sizes are quantities ("8Gi"). Unknown fields are ignored.

#include <nlohmann/json_fwd.hpp>

#include "reconciler/model/observed.h"
#include "reconciler/model/plan.h"
#include "reconciler/model/result.h"

namespace flotilla {

struct Inventory {
  Observed observed;
  Ledger ledger;
};

// The document, hosts in name order (as `observed.hosts`) with their VMs in the order of
// ObservedHost::vms, the ledger sorted by VM. Strings are kept as they are: a caller that dumps
// the document must choose what to do with text that is not UTF-8.
nlohmann::ordered_json InventoryToJson(const Inventory& inventory);

// The inventory in `doc`; each host's VMs sorted by name. InvalidArgument naming the JSON
// pointer of the first problem ("inventory: /hosts/3/vms/0/memory: ...").
Result<Inventory> InventoryFromJson(const nlohmann::json& doc);

}  // namespace flotilla
