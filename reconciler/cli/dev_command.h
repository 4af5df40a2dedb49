#pragma once

// `flotilla dev`: the whole system on one machine, with no configuration. Simulated hosts stand
// in for the example fleet's Macs, with the same architecture and resources per pool: one
// flotilla-hostsim child process per Parallels pool (dev_simulators.h), and for each Tart pool
// one sshd child process per Mac whose sessions run flotilla-tartsim as `tart` (dev_macs.h).
// A local Git repository seeded from examples/fleet (compiled into the binary) points its pools
// at them; and the loop with its API runs against both, fetching every 5 s. Everything lives in
// one data folder (./.flotilla-dev by default): the repository, the store, the simulated hosts'
// VMs and keys, the API token. The next start reuses it, so edits and VMs survive (the Macs'
// VMs stop with flotilla and are started again); --reset starts over. Ctrl-C stops everything
// cleanly. Without sshd (or flotilla-tartsim) the Tart pools are left out, and the banner says
// why.

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"

namespace flotilla::cli {

struct DevOptions {
  std::string dir = ".flotilla-dev";
  std::string listen = "127.0.0.1:8080";  // the API
  // Simulated latencies (hostsim --latency), so that a converge can be watched; "none" for 0.
  // The simulated Macs have fixed ones (clone 2 s, pull 4 s, boot 1 s), or none with "none".
  std::string latency = "create=3s,pull=4s,start=1s,stop=1s,delete=1s,exec=500ms";
  bool reset = false;
  // What the simulated guests answer on their ports (hostsim and tartsim --guest-port): each
  // "PORT=HOST:PORT" makes every simulated VM's PORT a relay to that address (a real sshd, say);
  // with none, the simulated guests answer on 22 and 5900 with an echo service.
  std::vector<std::string> guest_ports;
};

CLI::App* AddDevCommand(CLI::App& app, DevOptions& options);

// Exit codes: 0 after Ctrl-C (or SIGTERM), 1 when it cannot start (flotilla-hostsim not found
// beside this binary nor on PATH, a reused folder's simulated Mac that cannot listen on its
// port, among other reasons).
// REQUIRES: called on the main thread (the simulators end when the thread that started them
// ends).
int RunDev(const DevOptions& options, const Context& context);

}  // namespace flotilla::cli
