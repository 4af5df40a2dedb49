#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "reconciler/cli/app.h"

int main(int argc, char** argv) {
  // Colour only on a terminal and never with NO_COLOR (https://no-color.org).
  const bool color = isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr;
  const flotilla::providers::ProviderRegistry providers = flotilla::cli::BuiltinProviders();
  return flotilla::cli::RunCli(argc, argv, std::cout, std::cerr, color, providers);
}
