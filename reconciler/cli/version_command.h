#pragma once

// `flotilla version` (and `flotilla --version`): what a bug report needs. The version, the Git
// commit it was built from ("-dirty" when the tree had changes; -DFLOTILLA_COMMIT names it for
// builds without Git history), the build type and compiler, sanitizers, the providers built in,
// and the libraries it runs with: libgit2, SQLite and OpenSSL as loaded (their run-time version
// calls), yaml-cpp and cpp-httplib as built with (they have no such call).

#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "providers/registry.h"
#include "reconciler/cli/context.h"

namespace flotilla::cli {

struct VersionReport {
  struct Library {
    std::string name;
    std::string version;
    bool runtime = true;  // false: the version built with
  };
  std::string version;     // "0.1.0"
  std::string commit;      // full hash, "-dirty" suffix, or "unknown"
  std::string build_type;  // CMake's: Debug, Release, RelWithDebInfo, ...
  std::string compiler;    // "gcc 12.2.0"
  std::vector<std::string> sanitizers;
  std::vector<std::string> providers;
  std::vector<Library> libraries;
};

VersionReport CurrentVersion(const providers::ProviderRegistry& providers);
// "flotilla 0.1.0" on the first line (what --version parsers read), then one line per fact.
std::string VersionText(const VersionReport& report);
nlohmann::json VersionJson(const VersionReport& report);

struct VersionOptions {
  bool json = false;  // -o json
};

CLI::App* AddVersionCommand(CLI::App& app, VersionOptions& options);
int RunVersion(const VersionOptions& options, const Context& context);

}  // namespace flotilla::cli
