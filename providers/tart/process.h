#pragma once

// Child processes for the SSH transport: a command run to completion with its input on stdin
// and both outputs captured (RunProcess), and a long-lived child (Child: the SSH master).
// Children start in their own session (a terminal's Ctrl-C reaches flotilla, not them) and end
// with flotilla however it ends (PR_SET_PDEATHSIG).

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/provider.h"
#include "reconciler/model/result.h"

namespace flotilla::providers::tart {

struct ProcessOutput {
  int exit_code = -1;  // the exit status, or -1 when a signal ended the process
  int signal = 0;      // the signal that ended it, 0 if none
  std::string out;
  std::string err;
  bool stopped = false;  // ended by us: the deadline passed, or `stop` said so
};

// Runs `argv` (argv[0] an absolute path) with exactly `env` as its environment and `input` on
// its stdin, until it exits. When `stop` returns true (polled every 50 ms) or the deadline
// passes, the process gets SIGTERM, then SIGKILL two seconds later; `stopped` is then set. At
// most `max_output` bytes of each stream are kept (the rest is read and dropped).
// Errors: only when the process cannot be started.
Result<ProcessOutput> RunProcess(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env, std::string_view input,
                                 Deadline deadline, const std::function<bool()>& stop = {},
                                 size_t max_output = size_t{16} << 20);

// Starts `argv` (argv[0] an absolute path) with exactly `env`, in its own session, with the
// given descriptors as its stdin, stdout and stderr and no other descriptor open; the caller
// waits for it. Errors: only when it cannot be started.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    int in_fd, int out_fd, int err_fd);

// A long-lived child with stdin from /dev/null and stdout and stderr appended to a file.
class Child {
 public:
  Child() = default;
  ~Child();  // SIGTERM, then waits (SIGKILL after two seconds)
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  Status Start(const std::vector<std::string>& argv, const std::vector<std::string>& env,
               const std::filesystem::path& log);
  // False once the child has exited (it is then collected) or was never started.
  bool Running();
  // Ends the child: SIGTERM, then SIGKILL after `grace`.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds{2});

 private:
  pid_t pid_ = -1;
};

}  // namespace flotilla::providers::tart
