#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"
#include "reconciler/cli/diff_command.h"
#include "reconciler/cli/repository.h"

namespace flotilla::cli {

struct PlanOptions {
  std::string config;  // flotilla.yaml: source, secretsDir and reconcile settings
  std::string path;    // a directory of manifests, or one file; default "." unless --config
                       // names a source
  // With git.repo: plan revision `rev` of that repository, manifests below `repo_path`.
  RepositoryOptions git;
  std::optional<std::string> rev;        // default HEAD (or the config's)
  std::optional<std::string> repo_path;  // default the root (or the config's)
  std::string state_dir;                 // overrides the config's stateDir (where the store is)
  std::string secrets_dir;               // <dir>/<credentialsRef>/{apiKey,username,password}
  std::optional<double> host_timeout_seconds;  // per host; default reconcile.hostTimeout (15s)
  std::optional<uint32_t> max_deletions;
  bool allow_empty = false;
  bool adopt = false;  // show VMs with desired names as adopted, as apply --adopt would
  std::string pools;   // comma-separated: only these pools and their VM sets; empty: all
  PlanFormat format = PlanFormat::kText;
  std::string out;  // also write the JSON plan here
};

CLI::App* AddPlanCommand(CLI::App& app, PlanOptions& options);

// Desired state against the live hosts, observed, recovered and planned by a preview
// controller (the code apply and run use), against the store's ledger opened read-only;
// changes nothing.
// Exit code: 0 no changes, 2 changes, 3 nothing placeable (PlanExitCode), 1 error.
int RunPlan(const PlanOptions& options, const Context& context);

}  // namespace flotilla::cli
