#pragma once

// What libgit2 asks during one network operation (internal to the source library): which
// credentials to present (auth.sshKeyFile, tokenFile, tokenEnv), whether to trust the server's
// SSH host key (known_hosts), and whether to go on (the fetch deadline). The callbacks record
// why they refused and which secrets they handed out, so that the caller can explain a failure
// without leaking them (ClassifyFetchError in libgit2_mirror.h).

#include <git2.h>

#include <chrono>
#include <string>
#include <vector>

#include "reconciler/source/git_source.h"
#include "reconciler/source/git_url.h"
#include "reconciler/source/socket_stream.h"
#include "reconciler/ssh/known_hosts.h"

namespace flotilla::source::libgit2 {

using SteadyClock = std::chrono::steady_clock;

// State shared with libgit2's callbacks during one network operation.
struct NetworkContext {
  const GitUrl* url = nullptr;
  const GitAuth* auth = nullptr;
  const ssh::KnownHosts* known_hosts = nullptr;  // null: none configured
  SteadyClock::time_point deadline;
  std::chrono::seconds timeout{0};
  int credential_attempts = 0;
  bool auth_refused = false;
  bool timed_out = false;
  std::string refusal;                // why we refused (credentials, host key)
  std::vector<std::string> secrets;   // values to scrub from any message
  std::vector<std::string> warnings;  // for FetchResult
  const FetchWatch* watch = nullptr;  // cuts the sockets at the deadline

  // True (and remembered in timed_out) once the deadline or the watch has passed.
  bool Expired();
};

// Sets the credential, certificate and progress callbacks of `callbacks`, all with `context`
// as their payload. `context` must outlive every use of `callbacks`.
void SetNetworkCallbacks(git_remote_callbacks& callbacks, NetworkContext& context);

}  // namespace flotilla::source::libgit2
