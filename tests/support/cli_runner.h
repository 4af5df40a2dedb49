#pragma once

// Running the real `flotilla` binary from tests: a shell command whose exit code, stdout and
// stderr are captured.

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/support/text_files.h"

namespace flotilla::testing {

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `command` through the shell with stdin closed; its output goes through files in
// `scratch`.
inline Outcome RunCommand(const std::string& command, const std::filesystem::path& scratch) {
  const std::filesystem::path out = scratch / "stdout";
  const std::filesystem::path err = scratch / "stderr";
  const int status =
      std::system((command + " </dev/null >" + out.string() + " 2>" + err.string()).c_str());
  return Outcome{.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 .out = Slurp(out),
                 .err = Slurp(err)};
}

}  // namespace flotilla::testing
