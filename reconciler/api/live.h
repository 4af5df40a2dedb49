#pragma once

// The dashboard's live signal. A generation is an opaque text that changes whenever the loop
// publishes a snapshot (each pass) or the store records something (a run, an action's progress
// or end, an event, a revision). GET /api/v1/changes answers it; GET /api/v1/events/stream
// (server-sent events) pushes it whenever it changes, so a page refetches only then.
//
// Thread-safety: any worker thread.

#include <atomic>
#include <string>

#include "reconciler/api/routes.h"

namespace httplib {
class Stream;
}

namespace flotilla::api {

std::string Generation(Backend& backend, store::Store& store);

// GET /api/v1/changes: {"generation": "..."}.
Reply HandleChanges(const httplib::Request& request, const Snapshot* snapshot,
                    RouteContext& context);

// GET /api/v1/events/stream, on a worker the front door keeps for streams (front_door.h): the
// request is admitted by `gate` with the read role (routes.h Admit: 401, 403 or 429 otherwise);
// then `retry: 2000`,
// `event: change` with {"generation": "..."} at once and after every change (checked four times
// a second), a `: keepalive` comment after ServerOptions::live_keepalive of quiet. The answer
// has no length: it ends with the connection, after ServerOptions::live_lifetime (the page
// connects again), when the page closes its side (seen within 250 ms), or once `stopping` is
// set. Written here, not by
// cpp-httplib, whose streamed answers end at once on a server that does not accept itself.
void ServeLiveStream(httplib::Stream& stream, RouteContext& context, const Gate& gate,
                     const std::atomic<bool>& stopping);

}  // namespace flotilla::api
