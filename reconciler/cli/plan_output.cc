#include "reconciler/cli/plan_output.h"

#include <fstream>
#include <sstream>

#include "reconciler/model/text.h"
#include "reconciler/render/plan_render.h"

namespace flotilla::cli {

void AddPlanFormatFlag(CLI::App& cmd, PlanFormat& format) {
  cmd.add_option_function<std::string>(
         "--format",
         [&format](const std::string& value) {
           format = value == "json"       ? PlanFormat::kJson
                    : value == "markdown" ? PlanFormat::kMarkdown
                                          : PlanFormat::kText;
         },
         "Output format: text (default), json (schemas/plan.v1.json) or markdown (for pull "
         "requests)")
      ->check(CLI::IsMember({"text", "json", "markdown"}));
}

void AddDeletionSafetyFlags(CLI::App& cmd, std::optional<uint32_t>& max_deletions,
                            bool& allow_empty) {
  cmd.add_option_function<uint32_t>(
      "--max-deletions", [&max_deletions](uint32_t n) { max_deletions = n; },
      "Approve up to this many deletions in this run, whatever the deletion window already "
      "holds (default: reconcile.maxDeletionsPerRun per reconcile.deletionWindow)");
  cmd.add_flag("--allow-empty", allow_empty,
               "Approve a revision that deletes every managed VM of a pool (the empty-fleet "
               "guard), for this run");
}

void AddAdoptFlag(CLI::App& cmd, bool& adopt) {
  cmd.add_flag("--adopt", adopt,
               "Take over VMs that already carry a desired name (made by hand, or by a store "
               "that was lost) instead of reporting conflicts; the plan shows them as '= adopt'. "
               "A VMSet's adoptExisting: true does this for good");
}

std::vector<std::string> SplitPools(const std::string& text) {
  std::vector<std::string> pools;
  std::stringstream in(text);
  for (std::string pool; std::getline(in, pool, ',');) {
    pool = std::string(TrimAscii(pool));
    if (!pool.empty()) {
      pools.push_back(pool);
    }
  }
  return pools;
}

bool EmitPlan(const Plan& plan, PlanFormat format, const std::string& out_file,
              const std::string& revision, const Context& context, const std::string& placement) {
  const render::RenderOptions options{.color = context.color && format == PlanFormat::kText,
                                      .revision = revision,
                                      .placement = placement};
  switch (format) {
    case PlanFormat::kJson:
      context.out << render::RenderPlanJson(plan, options);
      break;
    case PlanFormat::kMarkdown:
      context.out << render::RenderPlanMarkdown(plan, options);
      break;
    case PlanFormat::kText:
      context.out << render::RenderPlanText(plan, options);
      break;
  }
  if (!out_file.empty()) {
    std::ofstream out(out_file, std::ios::binary | std::ios::trunc);
    out << render::RenderPlanJson(plan, options);
    if (!out) {
      context.err << "flotilla: cannot write " << out_file << "\n";
      return false;
    }
  }
  return true;
}

}  // namespace flotilla::cli
