#pragma once

// `flotilla store`: looking after the store file (docs/operations.md, "The store").
//   store backup FILE   a consistent copy of the live store (SQLite's online backup API); safe
//                       while the loop runs
//   store check         the file's integrity, and the ledger against the hosts as the loop last
//                       observed them
// Both read the store of --config/--state-dir without the owner lock, so a loop may be running.

#include <string>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"
#include "reconciler/cli/converge_command.h"

namespace flotilla::cli {

struct StoreCommandOptions {
  StoreLocation where;
  std::string backup_file;  // store backup FILE
  bool force = false;       // store backup: replace FILE when it exists
  bool json = false;        // store check -o json
};

// Adds `store` with its `backup` and `check` subcommands.
CLI::App* AddStoreCommand(CLI::App& app, StoreCommandOptions& options);
int RunStore(const StoreCommandOptions& options, const CLI::App& cmd, const Context& context);

}  // namespace flotilla::cli
