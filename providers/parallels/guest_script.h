#pragma once

// How a startup script runs in a Parallels guest although the service kills every prlctl call
// after 3 minutes (helpers/os.go ExecutionTimeout) and lets a command run on after the request
// gave up on it (the exec uses the service's context, parallelsdesktop/main.go:2689): the
// script runs detached, with its outcome kept in a folder of the guest, and short commands
// start it, look at it and clean up (audit #3, #8).
//
//   launch  makes the run's folder; only the launch that made it writes the script there and
//           starts it with nohup in the background. Prints "launched", or "running" when the
//           folder was there already (a launch repeated after a lost answer).
//   poll    prints "running", "missing", or "done <exit code> x<stdout> x<stderr>" (both
//           base64; the last 64 KiB of stdout and 8 KiB of stderr).
//   clean   removes the run's folder.
//
// A run is named by the VM and a hash of the script and its environment, so a repeated launch
// finds the first one instead of starting the script twice. Each command is a bash script; the
// caller sends it through ExecCommand (wire.h), which carries it without quotes.

#include <map>
#include <string>
#include <string_view>

#include "reconciler/model/result.h"

namespace flotilla::providers::parallels {

// "<16 hex digits>": FNV-1a of the VM id, the script and its environment.
std::string ScriptRunId(std::string_view vm_id, std::string_view script,
                        const std::map<std::string, std::string>& env);

// The three commands, as bash script text. InvalidArgument if an env name is not a shell name.
Result<std::string> LaunchScript(std::string_view run_id, std::string_view script,
                                 const std::map<std::string, std::string>& env);
std::string PollScript(std::string_view run_id);
std::string CleanScript(std::string_view run_id);

// What a poll printed.
struct ScriptState {
  enum class Kind { kRunning, kMissing, kDone } kind = Kind::kRunning;
  int exit_code = 0;  // kDone
  std::string stdout_text;
  std::string stderr_text;
};
// InvalidArgument when `output` holds no status line.
Result<ScriptState> ParsePoll(std::string_view output);

}  // namespace flotilla::providers::parallels
