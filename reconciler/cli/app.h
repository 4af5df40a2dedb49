#pragma once

#include <ostream>

namespace flotilla::cli {

// The whole `flotilla` command line: parses `argv`, sets up logging, runs one subcommand and
// returns the process exit code (0 success or nothing to do, 1 error; --help and --version
// exit 0). `color` says whether `out` may carry ANSI colour.
int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err, bool color);

}  // namespace flotilla::cli
