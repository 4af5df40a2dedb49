#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"
#include "reconciler/cli/plan_output.h"
#include "reconciler/cli/repository.h"

namespace flotilla::cli {

struct DiffOptions {
  RepositoryOptions git;  // git.repo defaults to "." (the repository of the current folder)
  std::string base;       // required
  std::string head = "HEAD";
  std::string path;       // folder of the manifests inside the repository
  std::string inventory;  // inventory snapshot JSON; empty = simulate the base revision
  PlanFormat format = PlanFormat::kText;
  std::string out;  // also write the JSON plan here
  bool fail_on_unschedulable = false;
  std::optional<uint32_t> max_deletions;
  bool allow_empty = false;
};

// Adds `diff` to `app`, filling `options` when parsed.
CLI::App* AddDiffCommand(CLI::App& app, DiffOptions& options);

// What changing the repository from `base` to `head` does to the fleet, without credentials or
// host access. Exit code: 0 no changes, 2 changes, 1 error (head invalid, unreadable revision,
// or unschedulable VMs with --fail-on-unschedulable).
int RunDiff(const DiffOptions& options, const Context& context);

}  // namespace flotilla::cli
