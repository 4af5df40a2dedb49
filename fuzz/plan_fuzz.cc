// Saved plans, as `flotilla apply --plan FILE` reads them (reconciler/render/plan_render.h
// CompareSavedPlan), against a fixed plan of every action kind. Invariants: no crash, no
// sanitizer report; the plan as `flotilla plan --out` writes it matches (a round trip, checked
// once); an input matches only when it is a JSON object whose actions are the plan's and whose
// revision, if a string, is the one in force; every refusal names what differs.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz/invariants.h"
#include "reconciler/render/plan_render.h"

namespace {

using flotilla::fuzz::Check;
namespace render = flotilla::render;

constexpr std::string_view kRevision = "main@1a2b3c4";

flotilla::Plan MakePlan() {
  using flotilla::Action;
  using flotilla::ActionKind;
  flotilla::VMTemplate templ{.image = "catalog://macos/15",
                             .cpu = 4,
                             .memory = flotilla::Quantity::FromMiB(8192),
                             .disk = flotilla::Quantity::FromMiB(81920)};
  flotilla::Plan plan;
  plan.actions = {
      Action{.id = 1,
             .kind = ActionKind::kCreate,
             .vm = "ios-0",
             .vmset = "ios",
             .pool = "mac",
             .host = "mini-01",
             .reason = "missing",
             .templ = templ,
             .template_hash = "abc123"},
      Action{.id = 2,
             .kind = ActionKind::kStart,
             .vm = "ios-0",
             .vmset = "ios",
             .pool = "mac",
             .host = "mini-01",
             .reason = "desired running",
             .depends_on = {1}},
      Action{.id = 3,
             .kind = ActionKind::kReplace,
             .vm = "ios-1",
             .vmset = "ios",
             .pool = "mac",
             .host = "mini-02",
             .from_host = "mini-01",
             .reason = "outdated",
             .templ = templ,
             .template_hash = "abc123",
             .create_first = true,
             .vm_id = "uuid-1"},
      Action{.id = 4,
             .kind = ActionKind::kDelete,
             .vm = "old-0",
             .vmset = "old",
             .pool = "mac",
             .host = "mini-02",
             .reason = "removed",
             .vm_id = "uuid-2"},
      Action{.id = 5,
             .kind = ActionKind::kAdopt,
             .vm = "web-0",
             .vmset = "web",
             .pool = "mac",
             .host = "mini-02",
             .reason = "adopt",
             .template_hash = "unknown",
             .vm_id = "uuid-3"},
  };
  plan.findings = {{.kind = flotilla::FindingKind::kUnschedulable,
                    .vm = "ios-2",
                    .vmset = "ios",
                    .pool = "mac",
                    .message = "no host has 8 CPUs free"}};
  return plan;
}

const flotilla::Plan& ThePlan() {
  static const auto* plan = [] {
    auto* p = new flotilla::Plan(MakePlan());
    const std::string saved =
        render::RenderPlanJson(*p, {.revision = std::string(kRevision), .placement = "fuzz"});
    Check(render::CompareSavedPlan(saved, "plan.json", *p, std::string(kRevision)).empty(),
          "a plan as written does not match itself");
    return p;
  }();
  return *plan;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const flotilla::Plan& plan = ThePlan();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string verdict =
      render::CompareSavedPlan(text, "plan.json", plan, std::string(kRevision));
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!verdict.empty()) {
    return 0;
  }
  Check(doc.is_object() && doc.contains("actions"), "a document without actions matched");
  Check(!doc.contains("revision") || !doc["revision"].is_string() || doc["revision"] == kRevision,
        "a plan of another revision matched");
  const nlohmann::json written =
      nlohmann::json::parse(render::RenderPlanJson(plan), nullptr, false)["actions"];
  Check(doc["actions"] == written, "other actions matched");
  return 0;
}
