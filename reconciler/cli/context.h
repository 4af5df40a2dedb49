#pragma once

#include <memory>
#include <ostream>

#include <spdlog/logger.h>

#include "providers/registry.h"
#include "reconciler/manifest/loader.h"
#include "reconciler/manifest/schema_validator.h"

namespace flotilla::cli {

// What every command gets from RunCli, built once: where results and messages go, the logger,
// the providers, and the schema validator and manifest loader that know those providers. No
// command builds its own.
struct Context {
  std::ostream& out;   // results (stdout)
  std::ostream& err;   // messages for people (stderr)
  bool color = false;  // stdout is a terminal and NO_COLOR is unset
  std::shared_ptr<spdlog::logger> log;
  const providers::ProviderRegistry& providers;  // built in main
  const manifest::SchemaValidator& validator;    // every schema, every provider's settings
  const manifest::ManifestLoader& loader;        // over `validator`
};

}  // namespace flotilla::cli
