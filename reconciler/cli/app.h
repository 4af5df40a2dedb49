#pragma once

#include <ostream>

#include "providers/registry.h"

namespace flotilla::cli {

// The whole `flotilla` command line: parses `argv`, sets up logging, runs one subcommand and
// returns the process exit code (0 success or nothing to do, 1 error; --help and --version
// exit 0). `color` says whether `out` may carry ANSI colour; `providers` are the providers
// hosts can be driven with (providers::BuiltinProviders() in main; tests may pass their own).
int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err, bool color,
           const providers::ProviderRegistry& providers);

}  // namespace flotilla::cli
