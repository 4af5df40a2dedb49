#pragma once

// The child processes of `flotilla dev`: the simulators it runs (flotilla-hostsim, and sshd for
// each simulated Mac), started with fork and exec (no shell) and stopped with SIGTERM, and the
// short programs it runs to completion (ssh-keygen). flotilla links none of them: it only knows
// their command lines.
//
// A long-running child never outlives flotilla: it asks the kernel for SIGTERM when the thread
// that started it ends (PR_SET_PDEATHSIG), so even a SIGKILLed flotilla leaves no simulator
// behind. It runs in its own process group, so that a Ctrl-C in the terminal reaches flotilla
// alone, which stops the loop first and the simulators after it.
//
// Thread-safety: a ChildProcess is used by one thread, the one that started it (the main
// thread: the death signal follows that thread).

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reconciler/model/result.h"
#include "reconciler/model/status.h"

namespace flotilla::cli {

// A program `flotilla dev` runs beside it, such as flotilla-hostsim: in `self_dir` (the folder
// of the running flotilla, where the install and the build put them all), else in the first
// folder of `path_env` (PATH's value) that has it. `role` says what it is for in the NotFound
// message ("runs the simulated hosts of 'flotilla dev'"), which also names every folder looked
// in.
Result<std::string> FindCompanion(std::string_view name, std::string_view role,
                                  const std::string& self_dir, std::string_view path_env);

// What to start, and how it says it is ready.
struct ChildSpec {
  std::string name;               // for messages: "flotilla-hostsim", "sshd"
  std::string binary;             // absolute path
  std::vector<std::string> args;  // without the program name
  // The child writes a positive number in this file once it serves (flotilla-hostsim its port,
  // sshd its pid). Removed before the start: a previous start's file is no sign of this one.
  std::string ready_file;
  // The child's stdout and stderr, appended to: a second start on a folder in use must not
  // wipe the log of the child that holds the port.
  std::string log_file;
  // Lines of the log that start with this are the child's own messages ("flotilla-hostsim: "),
  // preferred in errors; empty: the last lines of the log are.
  std::string message_prefix;
  // The exit code by which the child refuses its arguments (InvalidArgument); -1: none.
  int usage_exit_code = -1;
};

// One running child. Destroying it stops it.
class ChildProcess {
 public:
  // Starts `spec.binary` and returns once it has written its ready file.
  // Errors: InvalidArgument with the child's own message when it exits with
  // spec.usage_exit_code; Unavailable with its message (and its log's path) when it cannot
  // start, exits, or does not get ready in time. REQUIRES: the calling thread outlives the
  // child (see above).
  static Result<std::unique_ptr<ChildProcess>> Start(const ChildSpec& spec);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The number of the ready file.
  int64_t ready_value() const { return ready_value_; }
  pid_t pid() const { return pid_; }

  // Sends SIGTERM (flotilla-hostsim saves its state file and exits); Wait() collects it.
  void Terminate();
  // Waits for the child to exit, killing it (SIGKILL) if it has not within 30 s. Idempotent.
  void Wait();

 private:
  ChildProcess(pid_t pid, ChildSpec spec, off_t log_offset)
      : pid_(pid), spec_(std::move(spec)), log_offset_(log_offset) {}
  // Polls for the ready file until the child writes it, exits, or the deadline passes.
  Status AwaitReady();

  pid_t pid_ = -1;  // -1 once collected
  ChildSpec spec_;
  off_t log_offset_ = 0;  // where this start's part of the log begins
  int64_t ready_value_ = 0;
};

// Stops every child: SIGTERM to all first, then waits for each.
void StopAll(std::vector<std::unique_ptr<ChildProcess>>& children);

// Runs `binary` with `args` to completion (stdin /dev/null, stdout and stderr appended to
// `log_file`). Unavailable with its last lines when it cannot start, fails, or runs longer than
// a minute.
Status RunToCompletion(const std::string& binary, const std::vector<std::string>& args,
                       const std::string& log_file);

}  // namespace flotilla::cli
