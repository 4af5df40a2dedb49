#pragma once

#include <chrono>

namespace flotilla::source {

// Replaces libgit2's plain TCP stream (used by git://, http://, https:// under TLS and ssh://)
// with one whose connect, reads and writes give up after `io_timeout` without progress.
// libgit2 1.5 (Debian 12) has no timeout of its own (GIT_OPT_SET_SERVER_TIMEOUT came in 1.7),
// so a server that accepts a connection and then says nothing would hang a fetch forever.
//
// libgit2's stream registry is process-wide and its constructor takes no payload, so the
// timeout is a process-wide setting too: GitLibrary sets it once at start-up.
//
// REQUIRES: libgit2 initialised. Returns 0 or a libgit2 error code.
int RegisterTimeoutSocketStream(std::chrono::milliseconds io_timeout);

}  // namespace flotilla::source
