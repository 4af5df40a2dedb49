#include "reconciler/render/plan_render.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

namespace flotilla::render {
namespace {

using Json = nlohmann::ordered_json;

struct Group {
  std::vector<const Action*> actions;
  std::vector<const Finding*> findings;
};

// Actions and findings by (pool, VMSet), in name order; plan order within a group.
std::map<std::pair<std::string, std::string>, Group> Groups(const Plan& plan) {
  std::map<std::pair<std::string, std::string>, Group> groups;
  for (const Action& a : plan.actions) {
    groups[{a.pool, a.vmset}].actions.push_back(&a);
  }
  for (const Finding& f : plan.findings) {
    groups[{f.pool, f.vmset}].findings.push_back(&f);
  }
  return groups;
}

std::string_view Symbol(ActionKind kind) {
  switch (kind) {
    case ActionKind::kCreate:
      return "+";
    case ActionKind::kReplace:
      return "~";
    case ActionKind::kStart:
      return ">";
    case ActionKind::kStop:
      return ".";
    case ActionKind::kDelete:
      return "-";
    case ActionKind::kPrepull:
      return "*";
    case ActionKind::kAdopt:
      return "=";
  }
  return "+";
}

std::string_view Symbol(FindingKind kind) {
  switch (kind) {
    case FindingKind::kUnschedulable:
      return "!";
    case FindingKind::kConflict:
      return "?";
    default:
      return "#";
  }
}

std::string_view Colour(ActionKind kind) {
  switch (kind) {
    case ActionKind::kCreate:
      return "\033[32m";
    case ActionKind::kReplace:
      return "\033[33m";
    case ActionKind::kStart:
      return "\033[36m";
    case ActionKind::kStop:
      return "\033[34m";
    case ActionKind::kDelete:
      return "\033[31m";
    case ActionKind::kPrepull:
      return "\033[35m";
    case ActionKind::kAdopt:
      return "\033[1;36m";
  }
  return "";
}

std::string_view Colour(FindingKind kind) {
  switch (kind) {
    case FindingKind::kUnschedulable:
      return "\033[1;31m";
    case FindingKind::kConflict:
      return "\033[35m";
    default:
      return "\033[2m";
  }
}

constexpr std::string_view kReset = "\033[0m";

std::string Pad(std::string_view word, size_t width) {
  std::string out(word);
  if (out.size() < width) {
    out.append(width - out.size(), ' ');
  }
  return out;
}

// "+ create  ios-3 on mini-02 (new VM)", without colour.
std::string Line(const Action& a) {
  std::string where = a.kind == ActionKind::kReplace && a.from_host != a.host
                          ? a.from_host + " -> " + a.host
                          : "on " + a.host;
  // A prepull concerns an image, not a VM.
  const std::string& what = a.kind == ActionKind::kPrepull && a.templ ? a.templ->image : a.vm;
  return std::string(Symbol(a.kind)) + " " + Pad(ToString(a.kind), 14) + what + " " + where + " (" +
         a.reason + ")" + (a.assumed_placement ? kAssumedMark : "");
}

std::string Line(const Finding& f) {
  return std::string(Symbol(f.kind)) + " " + Pad(ToString(f.kind), 14) + f.vm +
         (f.host.empty() ? "" : " on " + f.host) + ": " + f.message;
}

std::string Counts(const Group& g) {
  std::map<ActionKind, size_t> by_kind;
  for (const Action* a : g.actions) {
    ++by_kind[a->kind];
  }
  std::string out;
  for (ActionKind kind :
       {ActionKind::kAdopt, ActionKind::kCreate, ActionKind::kReplace, ActionKind::kDelete,
        ActionKind::kStart, ActionKind::kStop, ActionKind::kPrepull}) {
    if (by_kind[kind] > 0) {
      out += (out.empty() ? "" : ", ") + std::to_string(by_kind[kind]) + " to " +
             std::string(ToString(kind));
    }
  }
  if (!g.findings.empty()) {
    out += (out.empty() ? "" : ", ") + std::to_string(g.findings.size()) +
           (g.findings.size() == 1 ? " finding" : " findings");
  }
  return out.empty() ? "no changes" : out;
}

}  // namespace

namespace {

size_t AssumedPlacements(const Plan& plan) {
  return static_cast<size_t>(std::count_if(plan.actions.begin(), plan.actions.end(),
                                           [](const Action& a) { return a.assumed_placement; }));
}

// Said under a plan that placed VMs on assumed facts.
std::string AssumedNote(const Plan& plan) {
  const size_t n = AssumedPlacements(plan);
  if (n == 0) {
    return "";
  }
  return std::to_string(n) + (n == 1 ? " placement assumes" : " placements assume") +
         " undeclared host facts (" + std::string(kAssumedMark).substr(1) +
         "): hosts without arch or capacity in their HostPool are taken to fit, as validate "
         "does. Declare them, or plan against an inventory snapshot (--inventory), to see "
         "placement for real.";
}

}  // namespace

std::string PlanSummary(const Plan& plan) {
  std::string out = "Plan: " + std::to_string(plan.Count(ActionKind::kCreate)) + " to create, " +
                    std::to_string(plan.Count(ActionKind::kReplace)) + " to replace, " +
                    std::to_string(plan.Count(ActionKind::kDelete)) + " to delete, " +
                    std::to_string(plan.Count(ActionKind::kStart)) + " to start, " +
                    std::to_string(plan.Count(ActionKind::kStop)) + " to stop" +
                    (plan.Count(ActionKind::kPrepull) > 0
                         ? ", " + std::to_string(plan.Count(ActionKind::kPrepull)) + " to prepull"
                         : "") +
                    (plan.Count(ActionKind::kAdopt) > 0
                         ? ", " + std::to_string(plan.Count(ActionKind::kAdopt)) + " to adopt"
                         : "") +
                    "; " + std::to_string(plan.Count(FindingKind::kUnschedulable)) +
                    " unschedulable";
  for (FindingKind kind : {FindingKind::kConflict, FindingKind::kDeferred, FindingKind::kRefused,
                           FindingKind::kUnknown, FindingKind::kWaiting, FindingKind::kDrift,
                           FindingKind::kOutdated}) {
    if (const size_t n = plan.Count(kind); n > 0) {
      out += ", " + std::to_string(n) + " " + std::string(ToString(kind));
    }
  }
  return out + ".";
}

std::string RenderPlanText(const Plan& plan, const RenderOptions& options) {
  std::string out;
  if (!options.revision.empty()) {
    out += "Plan for " + options.revision + "\n\n";
  }
  for (const auto& [key, group] : Groups(plan)) {
    const auto& [pool, vmset] = key;
    out += "pool " + pool + (vmset.empty() ? "" : ", VMSet " + vmset) + ":\n";
    for (const Action* a : group.actions) {
      const std::string line = Line(*a);
      out += options.color ? "  " + std::string(Colour(a->kind)) + line + std::string(kReset)
                           : "  " + line;
      out += "\n";
    }
    for (const Finding* f : group.findings) {
      const std::string line = Line(*f);
      out += options.color ? "  " + std::string(Colour(f->kind)) + line + std::string(kReset)
                           : "  " + line;
      out += "\n";
    }
    out += "\n";
  }
  if (plan.actions.empty() && plan.findings.empty()) {
    out += "No changes: the fleet matches the desired state.\n";
    return out;
  }
  out += PlanSummary(plan) + "\n";
  if (const std::string note = AssumedNote(plan); !note.empty()) {
    out += note + "\n";
  }
  return out;
}

std::string RenderPlanJson(const Plan& plan, const RenderOptions& options) {
  Json doc;
  doc["apiVersion"] = "flotilla.dev/v1";
  doc["kind"] = "Plan";
  if (!options.revision.empty()) {
    doc["revision"] = options.revision;
  }
  if (!options.placement.empty()) {
    doc["placement"] = options.placement;
  }
  doc["summary"] = {{"create", plan.Count(ActionKind::kCreate)},
                    {"replace", plan.Count(ActionKind::kReplace)},
                    {"delete", plan.Count(ActionKind::kDelete)},
                    {"start", plan.Count(ActionKind::kStart)},
                    {"stop", plan.Count(ActionKind::kStop)},
                    {"prepull", plan.Count(ActionKind::kPrepull)},
                    {"adopt", plan.Count(ActionKind::kAdopt)},
                    {"unschedulable", plan.Count(FindingKind::kUnschedulable)},
                    {"conflict", plan.Count(FindingKind::kConflict)},
                    {"deferred", plan.Count(FindingKind::kDeferred)},
                    {"findings", plan.findings.size()},
                    {"assumed_placements", AssumedPlacements(plan)}};
  Json actions = Json::array();
  for (const Action& a : plan.actions) {
    Json action = {{"id", a.id},         {"kind", ToString(a.kind)},
                   {"vm", a.vm},         {"vmset", a.vmset},
                   {"pool", a.pool},     {"host", a.host},
                   {"reason", a.reason}, {"depends_on", a.depends_on}};
    if (!a.from_host.empty()) {
      action["from_host"] = a.from_host;
    }
    if (a.kind == ActionKind::kReplace) {
      action["create_first"] = a.create_first;
    }
    if (a.assumed_placement) {
      action["assumed_placement"] = true;
    }
    if (!a.vm_id.empty()) {
      action["vm_id"] = a.vm_id;
    }
    if (a.kind == ActionKind::kAdopt) {
      action["template_hash"] = a.template_hash;
    }
    if (a.templ) {
      const VMTemplate& t = *a.templ;
      Json templ = {{"image", t.image},
                    {"os", ToString(t.os)},
                    {"arch", ToString(t.arch)},
                    {"cpu", t.cpu},
                    {"memory", t.memory.ToString()}};
      if (t.disk) {
        templ["disk"] = t.disk->ToString();
      }
      templ["state"] = ToString(t.state);
      action["template"] = std::move(templ);
      action["template_hash"] = a.template_hash;
    }
    actions.push_back(std::move(action));
  }
  doc["actions"] = std::move(actions);
  Json findings = Json::array();
  for (const Finding& f : plan.findings) {
    Json finding = {{"kind", ToString(f.kind)}, {"vm", f.vm},     {"vmset", f.vmset},
                    {"pool", f.pool},           {"host", f.host}, {"message", f.message}};
    findings.push_back(std::move(finding));
  }
  doc["findings"] = std::move(findings);
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string CompareSavedPlan(std::string_view saved, const std::string& file, const Plan& plan,
                             const std::string& revision) {
  using nlohmann::json;
  json doc = json::parse(saved, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("actions")) {
    return file + " is not a plan written by 'flotilla plan --out' (no actions)";
  }
  if (doc.contains("revision") && doc["revision"].is_string() &&
      doc["revision"].get<std::string>() != revision) {
    return "the plan was made from revision " + doc["revision"].get<std::string>() +
           "; the revision in force is now " + revision;
  }
  // The actions as the JSON plan lists them: what a saved plan is compared by.
  const json now = json::parse(RenderPlanJson(plan), nullptr, false)["actions"];
  if (doc["actions"] != now) {
    return "the hosts or the ledger changed since the plan was made: it had " +
           std::to_string(doc["actions"].size()) + " action(s), planning now gives " +
           std::to_string(now.size()) + " different ones";
  }
  return "";
}

std::string RenderPlanMarkdown(const Plan& plan, const RenderOptions& options) {
  std::string out = "### Flotilla plan";
  if (!options.revision.empty()) {
    out += " for `" + options.revision + "`";
  }
  out += "\n\n";
  if (plan.actions.empty() && plan.findings.empty()) {
    return out + "No changes: the fleet matches the desired state.\n";
  }
  out += "**" + PlanSummary(plan) + "**\n\n";
  const std::string note = AssumedNote(plan);
  if (!options.placement.empty() || !note.empty()) {
    std::string line = options.placement.empty() ? "" : "Placement: " + options.placement + ".";
    out += line + (line.empty() || note.empty() ? "" : " ") + note + "\n\n";
  }
  const auto groups = Groups(plan);
  out += "| pool | VMSet | create | replace | delete | start | stop | findings |\n";
  out += "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const auto& [key, group] : groups) {
    std::map<ActionKind, size_t> n;
    for (const Action* a : group.actions) {
      ++n[a->kind];
    }
    out += "| " + key.first + " | " + (key.second.empty() ? "—" : key.second) + " | " +
           std::to_string(n[ActionKind::kCreate]) + " | " +
           std::to_string(n[ActionKind::kReplace]) + " | " +
           std::to_string(n[ActionKind::kDelete]) + " | " + std::to_string(n[ActionKind::kStart]) +
           " | " + std::to_string(n[ActionKind::kStop]) + " | " +
           std::to_string(group.findings.size()) + " |\n";
  }
  for (const auto& [key, group] : groups) {
    out += "\n<details><summary><b>" + (key.second.empty() ? key.first : key.second) +
           "</b> (pool " + key.first + "): " + Counts(group) + "</summary>\n\n```diff\n";
    for (const Action* a : group.actions) {
      out += Line(*a) + "\n";
    }
    for (const Finding* f : group.findings) {
      out += Line(*f) + "\n";
    }
    out += "```\n\n</details>\n";
  }
  return out;
}

}  // namespace flotilla::render
