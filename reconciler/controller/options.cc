// ConfiguredOptions: the configuration file's settings as the controller's options, in one place
// for apply, run and plan.

#include "reconciler/controller/controller.h"

namespace flotilla::controller {

ControllerOptions ConfiguredOptions(const manifest::ReconcilerConfig& config,
                                    ControllerOptions base) {
  const manifest::ReconcilerConfig::Reconcile& r = config.reconcile;
  base.secrets_dir = config.secrets_dir;
  base.host_timeout = r.host_timeout;
  base.host_offline_after = r.host_offline_after;
  base.planner.host_lost_after =
      std::chrono::duration_cast<std::chrono::seconds>(r.host_lost_after);
  base.planner.max_deletions = r.max_deletions;
  base.planner.max_deletions_percent = r.max_deletions_percent;
  base.planner.deletion_window =
      std::chrono::duration_cast<std::chrono::seconds>(r.deletion_window);
  base.executor.concurrency = r.concurrency;
  base.executor.per_host_concurrency = r.per_host_concurrency;
  base.executor.create_timeout = r.create_timeout;
  base.executor.action_timeout = r.action_timeout;
  base.executor.max_attempts = r.max_attempts;
  return base;
}

}  // namespace flotilla::controller
