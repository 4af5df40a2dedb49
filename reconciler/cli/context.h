#pragma once

#include <memory>
#include <ostream>

#include <spdlog/logger.h>

#include "providers/registry.h"

namespace flotilla::cli {

// What every command gets from main: where results and messages go, and the logger.
struct Context {
  std::ostream& out;   // results (stdout)
  std::ostream& err;   // messages for people (stderr)
  bool color = false;  // stdout is a terminal and NO_COLOR is unset
  std::shared_ptr<spdlog::logger> log;
  const providers::ProviderRegistry& providers;  // built in main
};

}  // namespace flotilla::cli
