#include "reconciler/model/plan.h"

#include <algorithm>

namespace flotilla {

const LedgerEntry* Ledger::Find(std::string_view vm) const {
  for (const LedgerEntry& entry : entries) {
    if (entry.vm == vm) {
      return &entry;
    }
  }
  return nullptr;
}

std::string_view ToString(ActionKind kind) {
  switch (kind) {
    case ActionKind::kCreate:
      return "create";
    case ActionKind::kReplace:
      return "replace";
    case ActionKind::kStart:
      return "start";
    case ActionKind::kStop:
      return "stop";
    case ActionKind::kDelete:
      return "delete";
    case ActionKind::kPrepull:
      return "prepull";
    case ActionKind::kAdopt:
      return "adopt";
  }
  return "create";
}

std::string PassApproval::Describe() const {
  std::string what;
  if (max_deletions) {
    what = "up to " + std::to_string(*max_deletions) +
           (*max_deletions == 1 ? " deletion" : " deletions");
  }
  if (allow_empty) {
    what += (what.empty() ? "" : ", ") + std::string("emptying the fleet allowed");
  }
  return (by.empty() ? "unknown" : by) + ": " + (what.empty() ? "nothing" : what);
}

std::string_view ToString(FindingKind kind) {
  switch (kind) {
    case FindingKind::kUnschedulable:
      return "unschedulable";
    case FindingKind::kConflict:
      return "conflict";
    case FindingKind::kDeferred:
      return "deferred";
    case FindingKind::kRefused:
      return "refused";
    case FindingKind::kUnknown:
      return "unknown";
    case FindingKind::kWaiting:
      return "waiting";
    case FindingKind::kDrift:
      return "drift";
    case FindingKind::kOutdated:
      return "outdated";
  }
  return "unschedulable";
}

size_t Plan::Count(ActionKind kind) const {
  return static_cast<size_t>(std::count_if(actions.begin(), actions.end(),
                                           [kind](const Action& a) { return a.kind == kind; }));
}

size_t Plan::Count(FindingKind kind) const {
  return static_cast<size_t>(std::count_if(findings.begin(), findings.end(),
                                           [kind](const Finding& f) { return f.kind == kind; }));
}

std::map<std::string, size_t> Plan::CountByPool(FindingKind kind) const {
  std::map<std::string, size_t> counts;
  for (const Finding& f : findings) {
    if (f.kind == kind) {
      ++counts[f.pool];
    }
  }
  return counts;
}

}  // namespace flotilla
