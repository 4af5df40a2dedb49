#pragma once

// How plan and diff show a plan: --format text|json|markdown on stdout, --out FILE for JSON.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"
#include "reconciler/model/plan.h"

namespace flotilla::cli {

enum class PlanFormat { kText, kJson, kMarkdown };

// Adds --format.
void AddPlanFormatFlag(CLI::App& cmd, PlanFormat& format);

// "a, b,,c" -> {"a", "b", "c"}: the --pools flag.
std::vector<std::string> SplitPools(const std::string& text);

// Adds --max-deletions and --allow-empty, the per-run overrides of the planner's safety guards.
void AddDeletionSafetyFlags(CLI::App& cmd, std::optional<uint32_t>& max_deletions,
                            bool& allow_empty);
// --adopt, for plan and apply.
void AddAdoptFlag(CLI::App& cmd, bool& adopt);

// Prints `plan` in `format` (text in colour when the context allows) and, if `out_file` is set,
// writes its JSON form there. `placement` says where placement came from (RenderOptions).
// False (with a message) if the file cannot be written.
bool EmitPlan(const Plan& plan, PlanFormat format, const std::string& out_file,
              const std::string& revision, const Context& context,
              const std::string& placement = "");

// Exit statuses of plan and diff, after Terraform's detailed exit codes:
//   0  nothing to do
//   2  changes: actions, or changes held back (deferred deletes, outdated VMs waiting their turn)
//   3  no action can be taken, but VMs find no host or deletions are refused
// (1 is an error.) So a check can tell "nothing" from "nothing placeable".
inline int PlanExitCode(const Plan& plan) {
  if (!plan.actions.empty()) {
    return 2;
  }
  if (plan.Count(FindingKind::kUnschedulable) > 0 || plan.Count(FindingKind::kRefused) > 0) {
    return 3;
  }
  return plan.Count(FindingKind::kDeferred) > 0 || plan.Count(FindingKind::kOutdated) > 0 ? 2 : 0;
}

}  // namespace flotilla::cli
