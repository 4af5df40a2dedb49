#pragma once

// How the store writes one host's last observation into the `hosts` table (internal to the
// store). A snapshot is an inventory document (model/inventory_json.h) holding just that host,
// so a row can be exported or read by `diff --inventory` as it is. The inventory format leaves
// out a few fields the planner and people use (pending creates, the VM type, the host's OS and
// agent versions); they ride along under extra keys, which inventory readers ignore.

#include <string>
#include <string_view>

#include "reconciler/model/observed.h"
#include "reconciler/model/result.h"

namespace flotilla::store {

// InvalidArgument when the host holds text that is not UTF-8 (JSON cannot carry it).
Result<std::string> RenderHostSnapshot(const ObservedHost& host);

// The host `name` from a snapshot. Its last_seen has whole seconds only (the inventory format's
// unit) as of when the row was written; the store keeps the latest, exact time in its own table.
Result<ObservedHost> ParseHostSnapshot(std::string_view text, const std::string& name);

}  // namespace flotilla::store
