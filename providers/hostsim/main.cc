// flotilla-hostsim: simulated Mac hosts speaking the Parallels DevOps Service REST API.
// See sim_options.h for the flags and sim_server.h for the served paths.

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "providers/hostsim/sim_options.h"
#include "providers/hostsim/sim_server.h"

int main(int argc, char** argv) {
  using flotilla::hostsim::SimOptions;
  using flotilla::hostsim::SimService;

  const pid_t parent = getppid();
  SimOptions options;
  if (std::optional<int> exit_code = flotilla::hostsim::ParseCommandLine(argc, argv, &options)) {
    return *exit_code;
  }
  // Block the stop signals in every thread; this one collects them with sigwait().
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (options.exit_with_parent) {
    // The SIGTERM arrives as any other: collected by sigwait below, a clean stop.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) {
      std::fprintf(stderr, "flotilla-hostsim: the parent process has already ended\n");
      return 1;
    }
  }

  flotilla::Result<std::unique_ptr<SimService>> service = SimService::Start(options);
  if (!service.ok()) {
    std::fprintf(stderr, "flotilla-hostsim: %s\n", service.status().message().c_str());
    return 1;
  }
  const SimOptions& o = (*service)->world().options();
  const std::string base = (*service)->base_url();
  const std::string auth = o.no_auth ? "auth off" : "auth on";
  if (o.hosts == 0) {
    std::fprintf(stderr, "flotilla-hostsim: host %s serving %s/api (version %s, %s, %s%s)\n",
                 o.name.c_str(), base.c_str(), o.version.c_str(), o.arch.c_str(), auth.c_str(),
                 o.control ? ", control API at /_sim/" : "");
  } else {
    std::fprintf(stderr,
                 "flotilla-hostsim: %d hosts sim-000..sim-%03d serving %s/h/<host>/api "
                 "(version %s, %s, %s%s)\n",
                 o.hosts, o.hosts - 1, base.c_str(), o.version.c_str(), o.arch.c_str(),
                 auth.c_str(), o.control ? ", control API at /_sim/" : "");
  }
  if (const flotilla::hostsim::GuestShell* guests = (*service)->world().Guests()) {
    // Guest commands run for real: say where, so nobody is surprised.
    std::fprintf(stderr, "flotilla-hostsim: guest commands run with /bin/sh in %s/<vm>\n",
                 guests->dir().c_str());
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::fprintf(stderr, "flotilla-hostsim: signal %d, stopping\n", signal_number);
  (*service)->Stop();
  return 0;
}
