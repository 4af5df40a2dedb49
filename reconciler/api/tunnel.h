#pragma once

// Tunnels: GET /api/v1/vms/NAME/port-forward?port=N[&host=HOST], upgraded to a plain byte
// stream to the VM's port (docs/api.md, "Tunnels"). The request carries
// `Connection: Upgrade` and `Upgrade: flotilla-tunnel`; the answer is
// `101 Switching Protocols` with the same, and after it the connection carries the VM port's
// bytes both ways, with no framing, until either end closes it. Every refusal comes before the
// 101, as a JSON error:
//   400  no or a bad port, or not an upgrade request (426 when only the Upgrade is missing)
//   401, 403, 429  admission (routes.h Admit) with the access role
//   403  the pool does not allow the port (spec.access.allowedPorts)
//   404  no VM of that name (managed or not) on an online host
//   409  the VM is not running or has no address; two hosts have a VM of that name (?host=)
//   429  the token has api.tunnels.perToken tunnels open
//   501  the pool's provider cannot open tunnels
//   502  the host or the VM's port refused; 503 the host is offline; 504 no connection in time
// A tunnel is recorded twice as an event of kind "tunnel": when it opens (the token's name,
// the VM, its host and the port) and when it closes (also when it began, how long it lasted,
// the bytes each way and why it ended). The store never holds a token or host credential.
//
// Thread-safety: ServeTunnel runs on the front door's tunnel workers, many at once; the
// counter is shared by them.

#include <atomic>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>

#include "reconciler/api/front_door.h"
#include "reconciler/api/routes.h"

namespace flotilla::api {

// Tunnels open, by the name of the token that opened them.
class TunnelCounter {
 public:
  // Counts one more tunnel of `token` unless it has `limit` open already.
  bool Acquire(const std::string& token, size_t limit);
  void Release(const std::string& token);
  size_t open() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, size_t> open_;
};

// GET /api/v1/vms/NAME/access[?host=HOST] (the access role): what a client needs to reach the
// VM: {"vm", "host", "pool", "vmset" (null when unmanaged), "state", "ssh_user" (its set's
// template access.sshUser; "" when none), "allowed_ports"}. 404, 409 and 503 as for a tunnel.
Reply HandleVmAccess(const httplib::Request& request, const Snapshot* snapshot,
                     RouteContext& context);

// Serves one tunnel request on `stream`, then relays through `handover` (front_door.h) until
// the tunnel ends or `stopping` is set.
void ServeTunnel(httplib::Stream& stream, FrontDoor::Handover& handover, RouteContext& context,
                 const Gate& gate, TunnelCounter& counter, const std::atomic<bool>& stopping);

}  // namespace flotilla::api
