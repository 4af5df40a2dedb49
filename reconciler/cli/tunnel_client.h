#pragma once

// The client side of the API's tunnels (docs/api.md, "Tunnels"): one connection to the API,
// upgraded to a byte stream to a VM's port, for `flotilla port-forward`, `ssh` and `vnc`.
// cpp-httplib's client cannot keep a connection past an answer, so this speaks the one
// request and its answer's head itself, over a socket (and OpenSSL for https).
//
// Thread-safety: a Tunnel is one connection, used by one thread.

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "reconciler/api/relay.h"
#include "reconciler/model/result.h"

namespace flotilla::cli {

struct TunnelTarget {
  std::string server;   // http(s)://host:port of the API
  std::string token;    // bearer token; empty: none
  std::string ca_file;  // PEM CA bundle for https; empty: the system's
  std::string vm;       // the VM's name
  std::string host;     // the host to look on, when VMs of that name are on several; may be empty
  uint16_t port = 0;    // the VM's port
};

class Tunnel {
 public:
  // Connects, asks for the tunnel and reads the answer's head. Errors say what the API said
  // (PermissionDenied for 401 and 403, ResourceExhausted for 429, NotFound for 404,
  // FailedPrecondition for 409, Unavailable otherwise) and never contain the token.
  static Result<std::unique_ptr<Tunnel>> Open(const TunnelTarget& target);
  ~Tunnel();
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;

  // Relays between the tunnel and `read_fd`/`write_fd` (one socket twice, or stdin and stdout)
  // until both directions end or `stopping` is set (api::Relay: a write end that is not a
  // socket is closed to pass on the end of the VM's stream).
  api::RelayOutcome Relay(int read_fd, int write_fd, const std::atomic<bool>& stopping);

 private:
  Tunnel() = default;
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string unread_;  // bytes of the VM's stream read with the answer's head
};

}  // namespace flotilla::cli
