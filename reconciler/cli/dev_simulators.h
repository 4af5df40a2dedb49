#pragma once

// The simulated hosts of `flotilla dev`: one `flotilla-hostsim` child process per pool, started
// with fork and exec (no shell) and stopped with SIGTERM, on which the simulator saves its VMs.
// flotilla does not link the simulator: it only knows the executable's flags.
//
// A child never outlives flotilla: it asks the kernel for SIGTERM when the thread that started
// it ends (PR_SET_PDEATHSIG), so even a SIGKILLed flotilla leaves no simulator behind. It runs
// in its own process group, so that a Ctrl-C in the terminal reaches flotilla alone, which
// stops the loop first and the simulators after it.
//
// Thread-safety: a SimulatorProcess is used by one thread, the one that started it (the main
// thread: the death signal follows that thread).

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reconciler/model/result.h"
#include "reconciler/model/status.h"
#include "reconciler/model/types.h"

namespace flotilla::cli {

inline constexpr std::string_view kHostSimBinary = "flotilla-hostsim";

// The flotilla-hostsim executable: in `self_dir` (the folder of the running flotilla, where the
// install and the build put both), else in the first folder of `path_env` (PATH's value) that
// has it. NotFound names every folder looked in.
Result<std::string> FindHostSim(const std::string& self_dir, std::string_view path_env);

// The provider whose hosts flotilla-hostsim simulates (the Parallels DevOps service).
inline constexpr std::string_view kSimulatedProvider = "parallels";

// What `flotilla dev` can run of the example fleet: the files of `examples` (path -> text, as
// examples/fleet holds them) but those that declare a pool of another provider, or a VM set on
// such a pool. `fleet` is `examples` loaded, with each object's origin file `prefix` + path.
struct SimulatedFleet {
  std::map<std::string, std::string> files;
  std::vector<std::string> left_out;  // "pool tart-minis (provider tart)", "VM set xcode-runners"
};
SimulatedFleet SimulatedExamples(const std::map<std::string, std::string>& examples,
                                 const Desired& fleet, std::string_view prefix);

// What one simulator serves: the flotilla-hostsim flags `flotilla dev` sets. Only one listen
// address (loopback) and no TLS: the simulators are for this machine.
struct SimulatorSpec {
  std::string pool;          // the pool it stands in for (messages only)
  int port = 0;              // --listen 127.0.0.1:PORT; 0: any free port
  int hosts = 1;             // --hosts: served as sim-000.. under /h/<host>/api
  std::string arch;          // --arch: arm64 | x86_64
  int cpu = 0;               // --cpu, per host
  uint64_t memory_mib = 0;   // --memory, per host
  uint64_t disk_mib = 0;     // --disk, per host
  std::string latency;       // --latency spec; empty: none
  double jitter = 0.0;       // --jitter
  std::string lookup_delay;  // --lookup-delay ("300ms")
  std::string guest_boot;    // --guest-boot ("3s")
  std::string guest_exec;    // --guest-exec: shell | succeed
  // --api-key-file: KEY:SECRET lines. The secret is passed in a file (mode 0600) and never on
  // the command line, which every user of the machine can read (ps, /proc/<pid>/cmdline).
  std::string api_key_file;
  std::string state_file;  // --state-file: the simulated VMs, loaded at start, saved at stop
  std::string port_file;   // --port-file: where the child writes the port it bound
  std::string log_file;    // the child's stdout and stderr (appended to)
};

// The command-line arguments for `spec`, without the program name.
std::vector<std::string> SimulatorArguments(const SimulatorSpec& spec);

// One running flotilla-hostsim. Destroying it stops it.
class SimulatorProcess {
 public:
  // Starts `binary` with the flags of `spec` and returns once it has written its port file.
  // Errors: InvalidArgument with the simulator's own message when it rejects its flags (a bad
  // --latency); Unavailable with its message when it cannot start (the port is taken) or does
  // not report a port in time. REQUIRES: the calling thread outlives the child (see above).
  static Result<std::unique_ptr<SimulatorProcess>> Start(const std::string& binary,
                                                         const SimulatorSpec& spec);
  ~SimulatorProcess();
  SimulatorProcess(const SimulatorProcess&) = delete;
  SimulatorProcess& operator=(const SimulatorProcess&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:PORT" (without /api).
  std::string base_url() const;
  pid_t pid() const { return pid_; }

  // Sends SIGTERM (the simulator saves its state file and exits); Wait() collects it.
  void Terminate();
  // Waits for the child to exit, killing it (SIGKILL) if it has not within 30 s. Idempotent.
  void Wait();

 private:
  SimulatorProcess(pid_t pid, std::string log_file, off_t log_offset)
      : pid_(pid), log_file_(std::move(log_file)), log_offset_(log_offset) {}
  // Polls for the port file until the child writes it, exits, or the deadline passes.
  Status AwaitPort(const SimulatorSpec& spec);

  pid_t pid_ = -1;  // -1 once collected
  int port_ = 0;
  std::string log_file_;
  off_t log_offset_ = 0;  // where this start's part of the log begins
};

// Stops every simulator: SIGTERM to all first, then waits for each.
void StopAll(std::vector<std::unique_ptr<SimulatorProcess>>& simulators);

}  // namespace flotilla::cli
