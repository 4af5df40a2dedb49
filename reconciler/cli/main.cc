#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "providers/builtin.h"
#include "reconciler/cli/app.h"

int main(int argc, char** argv) {
  // A peer that goes away must never kill flotilla: OpenSSL writes TLS records with write(2), so
  // an API client that disconnects from `flotilla run` (or a host or Git server that resets a
  // connection flotilla writes to) would otherwise raise SIGPIPE, whose default action ends the
  // process. The write fails with EPIPE instead, and that connection's error is handled where it
  // happens. Children get the default action back (child_process.cc, providers/tart/process.cc).
  std::signal(SIGPIPE, SIG_IGN);
  // Colour only on a terminal and never with NO_COLOR (https://no-color.org).
  const bool color = isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr;
  flotilla::Result<flotilla::providers::ProviderRegistry> providers =
      flotilla::providers::BuiltinProviders();
  if (!providers.ok()) {
    std::cerr << "flotilla: " << providers.status().message() << "\n";
    return 1;
  }
  return flotilla::cli::RunCli(argc, argv, std::cout, std::cerr, color, *providers);
}
