#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "providers/builtin.h"
#include "reconciler/cli/app.h"

int main(int argc, char** argv) {
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
