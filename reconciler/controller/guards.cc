// Controller::Announce: what the guards hold back and what conflicts is said every pass while
// it lasts, so that a set left short or a refused revision never goes unnoticed in `run`.

#include <map>
#include <string>

#include "reconciler/controller/controller.h"

namespace flotilla::controller {

void Controller::Announce(const Plan& plan) {
  std::map<std::string, std::string> now;  // key -> event subject
  for (const Finding& f : plan.findings) {
    if (f.kind == FindingKind::kConflict) {
      logger_->warn("conflict: {} on {}: {}", f.vm, f.host, f.message);
      const std::string key = "conflict " + f.vm + " " + f.host;
      now[key] = f.vm;
      if (!announced_.contains(key)) {
        Event("warn", "conflict", f.vm, f.host + ": " + f.message);
      }
    }
  }
  for (const auto& [pool, count] : plan.CountByPool(FindingKind::kRefused)) {
    const std::string message =
        std::to_string(count) + (count == 1 ? " deletion" : " deletions") + " in pool " + pool +
        " refused: the revision would delete every managed VM. If that is meant, approve one "
        "pass with 'flotilla reconcile --allow-empty' (or 'flotilla apply --allow-empty'); "
        "otherwise revert the commit";
    logger_->warn("{}", message);
    const std::string key = "refused " + pool;
    now[key] = pool;
    if (!announced_.contains(key)) {
      Event("warn", "deletions-refused", pool, message);
    }
  }
  for (const auto& [key, subject] : announced_) {
    if (now.contains(key)) {
      continue;
    }
    if (key.starts_with("conflict ")) {
      logger_->info("conflict over {} resolved", subject);
      Event("info", "conflict-resolved", subject, "the name is no longer held by another VM");
    } else {
      logger_->info("pool {}: no deletions refused any more", subject);
      Event("info", "deletions-refused-ended", subject, "no deletions are refused any more");
    }
  }
  announced_ = std::move(now);
}

}  // namespace flotilla::controller
