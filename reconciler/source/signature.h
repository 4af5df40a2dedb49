#pragma once

#include <string>
#include <string_view>

#include "reconciler/model/status.h"

namespace flotilla::source {

// Checks an SSH signature (git's `gpg.format=ssh`) over `signed_data` with OpenSSH's
// `ssh-keygen -Y find-principals` and `ssh-keygen -Y verify` against an allowed-signers file
// (the format of ssh-keygen(1), ALLOWED SIGNERS), in the "git" namespace.
//
// OK when some principal of the file signed the data with its key. Otherwise PermissionDenied
// saying why (not an SSH signature, key not allowed, signature does not verify);
// Unavailable if ssh-keygen cannot be run. `what` names the commit in messages.
Status VerifySshSignature(std::string_view signature, std::string_view signed_data,
                          const std::string& allowed_signers_file, const std::string& what);

}  // namespace flotilla::source
