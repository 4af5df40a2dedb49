#pragma once

// Moving bytes both ways between an API client's connection (plain or TLS) and a stream to a
// VM's port, for a tunnel (tunnel.h). End of stream is passed on each way on its own (a
// half-close): a client that has sent everything still receives the rest of the answer.
//
// Thread-safety: one call per pair of connections; `stopping` may be set from any thread.

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace flotilla::api {

struct RelayOutcome {
  uint64_t to_vm = 0;    // bytes the client sent on
  uint64_t from_vm = 0;  // bytes the VM's port sent back
  // Why it ended, in words: "closed" (both ends done), "idle for 30m", "the API is stopping",
  // "the client's connection broke", "the VM's port closed the connection".
  std::string end;
};

// Relays until both directions have ended, either side breaks, nothing moved for
// `idle_timeout`, or `stopping` is set (looked at four times a second). `client_fd` is
// non-blocking (the front door's); `client_ssl` its TLS session or null; `unread` bytes the
// client sent before the relay began. The other end reads from `upstream_read_fd` and writes to
// `upstream_write_fd` (one socket twice, or two pipes: the CLI's stdin and stdout); both are
// made non-blocking. The end of the client's stream is passed on with a half-close when the
// write end is a socket, and by closing it otherwise (a pipe has no half-close; the caller
// must not close it again). Closes nothing else.
RelayOutcome Relay(int client_fd, SSL* client_ssl, std::string unread, int upstream_read_fd,
                   int upstream_write_fd, std::chrono::milliseconds idle_timeout,
                   const std::atomic<bool>& stopping);

}  // namespace flotilla::api
