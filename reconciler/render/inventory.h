#pragma once

// The inventory snapshot as text: every host's facts and VMs plus the ledger, as JSON (the
// format is model/inventory_json.h). `flotilla diff --inventory FILE` reads it to preview
// placement without access to hosts; the API exports it.

#include <string>
#include <string_view>

#include "reconciler/model/inventory_json.h"
#include "reconciler/model/result.h"

namespace flotilla::render {

using Inventory = flotilla::Inventory;

// Indented by two spaces, ending in a newline. Host-reported text that is not UTF-8 is written
// with U+FFFD in place of the bad bytes.
std::string RenderInventoryJson(const Inventory& inventory);

// Errors name the JSON pointer of the problem ("/hosts/3/vms/0/memory: ...").
Result<Inventory> ParseInventoryJson(std::string_view text);

}  // namespace flotilla::render
