#pragma once

// A Plan for people and for programs (DESIGN section 7):
//   text      like a Terraform plan, grouped by pool and VMSet, with a one-line summary;
//             colour only when asked (a terminal without NO_COLOR)
//   JSON      apiVersion flotilla.dev/v1, kind Plan; schemas/plan.v1.json describes it
//   Markdown  for pull-request comments: a summary table and collapsible details per VMSet
// All three are deterministic: the same Plan renders to the same bytes.

#include <string>
#include <string_view>

#include "reconciler/model/plan.h"

namespace flotilla::render {

struct RenderOptions {
  bool color = false;    // ANSI colour (text only)
  std::string revision;  // shown in headers when set, e.g. "main@1a2b3c4"
  // Where placement came from, said in the Markdown header and the JSON ("declared host facts",
  // "an inventory snapshot", "the hosts as observed"); empty: not said.
  std::string placement;
};

// Marks the line of an action placed on assumed host facts (Action::assumed_placement).
inline constexpr const char* kAssumedMark = " [assumed host facts]";

// "Plan: 3 to create, 1 to replace, 0 to delete, 2 to start, 0 to stop; 1 unschedulable."
// (other findings are counted after the unschedulable ones when there are any).
std::string PlanSummary(const Plan& plan);

std::string RenderPlanText(const Plan& plan, const RenderOptions& options = {});
std::string RenderPlanJson(const Plan& plan, const RenderOptions& options = {});
std::string RenderPlanMarkdown(const Plan& plan, const RenderOptions& options = {});

// `apply --plan FILE`: checks the plan saved by `flotilla plan --out` (`saved`, the text of
// `file`) against `plan`, about to run at `revision`. It matches when it is a JSON object whose
// "actions" are those RenderPlanJson writes for `plan`, and whose "revision", if it has one, is
// `revision`. Empty when it matches; otherwise what differs, naming `file`.
std::string CompareSavedPlan(std::string_view saved, const std::string& file, const Plan& plan,
                             const std::string& revision);

}  // namespace flotilla::render
