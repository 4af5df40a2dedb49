#pragma once

// The inside of simulated guests, as PUT machines/{id}/execute reaches it through
// `prlctl exec` (parallelsdesktop/main.go ExecuteCommandOnVm, helpers/os.go
// ExecuteWithOutput): a command runs with /bin/sh on this machine, in a folder per VM that is
// the guest's HOME, and is killed when the prlctl time limit passes.
//
// Thread-safety: Run may be called from many threads at once.

#include <memory>
#include <string>

#include "providers/hostsim/sim_options.h"
#include "reconciler/model/result.h"

namespace flotilla::hostsim {

// What the service answers for one exec: {"stdout","stderr","exit_code","error"}, already
// shaped the way ExecuteWithOutput shapes it (see Shape).
struct ExecOutcome {
  std::string stdout_text;
  std::string stderr_text;
  int exit_code = 0;
  std::string error;  // empty when the command exited 0
};

// The service's shaping of a finished command: a trailing newline is cut from stdout (and, on
// failure, from stderr); stderr is blanked when the command succeeded; a failure carries
// error = "<stderr>, err: exit status N" (Go's exec.ExitError), or "..., err: signal: killed"
// with exit_code -1 when the time limit killed it.
ExecOutcome Shape(std::string raw_stdout, std::string raw_stderr, int exit_code, bool killed);

class GuestShell {
 public:
  // Makes `options.guest_dir` (or a new folder under $TMPDIR when it is empty). The folder is
  // removed again by the destructor only when this object made it.
  static Result<std::unique_ptr<GuestShell>> Open(const SimOptions& options);
  ~GuestShell();
  GuestShell(const GuestShell&) = delete;
  GuestShell& operator=(const GuestShell&) = delete;

  // Runs `command` as `/bin/sh -c command` in <dir>/<vm_uuid>/ (made if missing; also HOME),
  // with PATH=/usr/bin:/bin, killing the process after `timeout`. Output past 1 MiB per stream
  // is dropped.
  ExecOutcome Run(const std::string& vm_uuid, const std::string& command, Duration timeout) const;

  const std::string& dir() const { return dir_; }

 private:
  GuestShell(std::string dir, bool owned) : dir_(std::move(dir)), owned_(owned) {}
  const std::string dir_;
  const bool owned_;
};

}  // namespace flotilla::hostsim
