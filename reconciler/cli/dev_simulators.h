#pragma once

// The simulated Parallels hosts of `flotilla dev`: one `flotilla-hostsim` child process per
// pool (child_process.h: fork and exec, stopped with SIGTERM, on which the simulator saves its
// VMs). flotilla does not link the simulator: it only knows the executable's flags.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/cli/child_process.h"

namespace flotilla::cli {

inline constexpr std::string_view kHostSimBinary = "flotilla-hostsim";

// The provider whose hosts flotilla-hostsim simulates (the Parallels DevOps service).
inline constexpr std::string_view kSimulatedProvider = "parallels";

// The flotilla-hostsim executable, beside flotilla or on PATH (FindCompanion).
Result<std::string> FindHostSim(const std::string& self_dir, std::string_view path_env);

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
  // --guest-port PORT=HOST:PORT, one each: what the simulated guests answer on their ports
  // (through the hosts' reverse proxies); empty: an echo service on 22 and 5900.
  std::vector<std::string> guest_ports;
  // --api-key-file: KEY:SECRET lines. The secret is passed in a file (mode 0600) and never on
  // the command line, which every user of the machine can read (ps, /proc/<pid>/cmdline).
  std::string api_key_file;
  std::string state_file;  // --state-file: the simulated VMs, loaded at start, saved at stop
  std::string port_file;   // --port-file: where the child writes the port it bound
  std::string log_file;    // the child's stdout and stderr (appended to)
};

// The command-line arguments for `spec`, without the program name.
std::vector<std::string> SimulatorArguments(const SimulatorSpec& spec);

// How `binary` is started for `spec`: ready once it has written its port (ready_value()), and
// InvalidArgument with its own message when it refuses its flags (a bad --latency).
ChildSpec SimulatorChild(const std::string& binary, const SimulatorSpec& spec);

// "http://127.0.0.1:PORT" (without /api): where a simulator that bound `port` serves.
std::string SimulatorUrl(int64_t port);

}  // namespace flotilla::cli
