#pragma once

// Flotilla's Prometheus metrics (docs/api.md lists them). Counters are fed as things happen:
// the controller reports fetches, runs, actions and deferred deletions, providers report every
// request they send. Fleet gauges (hosts, VMs, drift, unschedulable) are computed from the
// latest snapshot when /metrics is scraped, so they can never drift from what the API shows.
//
// Thread-safety: every method may be called from any thread.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "providers/provider.h"
#include "reconciler/api/metrics.h"
#include "reconciler/api/snapshot.h"

namespace flotilla::api {

class Telemetry final : public providers::RequestObserver {
 public:
  Telemetry();
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  // One poll of the source: outcome "success", "failure" (unreadable), or "rejected" (the
  // newest revision cannot be used).
  void GitFetch(std::string_view outcome);
  // A revision was rejected (once per revision).
  void RevisionRejected();
  // Whether the loop fails static after this poll (the newest revision cannot be used).
  void FailStatic(bool on);
  // Ledger rows whose provider id the host of the row did not report in the latest pass, while
  // it reports a VM of that name (repaired or not).
  void LedgerMismatches(size_t count);
  // A run ended: outcome as the store spells it ("succeeded", "failed", ...).
  void RunFinished(std::string_view outcome, std::chrono::milliseconds duration);
  // An action ended: kind "create", ...; outcome "succeeded", "failed" or "abandoned".
  void ActionFinished(std::string_view kind, std::string_view outcome,
                      std::chrono::milliseconds elapsed);
  // Deletions the plan of a run held back (deletion budget, fail static).
  void DeletionsDeferred(size_t count);
  void ProviderRequest(std::string_view provider, std::string_view endpoint, int code) override;

  // The exposition text. `snapshot` (may be null before the first observation) feeds the fleet
  // gauges; `last_applied` is when the revision in force was applied, if ever; `now` ages the
  // hosts' observations.
  std::string Render(const Snapshot* snapshot,
                     std::optional<std::chrono::system_clock::time_point> last_applied,
                     std::chrono::system_clock::time_point now);

 private:
  MetricsRegistry registry_;
  CounterFamily& runs_;
  HistogramFamily& run_duration_;
  CounterFamily& actions_;
  HistogramFamily& action_duration_;
  GaugeFamily& hosts_;
  GaugeFamily& vms_;
  GaugeFamily& unschedulable_;
  GaugeFamily& drift_;
  CounterFamily& fetches_;
  GaugeFamily& last_applied_;
  GaugeFamily& revision_;
  CounterFamily& deferred_;
  CounterFamily& requests_;
  CounterFamily& rejected_;
  GaugeFamily& fail_static_;
  GaugeFamily& ledger_mismatches_;
  GaugeFamily& observation_age_;
  GaugeFamily& deferred_now_;
  GaugeFamily& conflicts_;
  GaugeFamily& refused_;
};

// The state word the API and metrics use for a host: "online", "degraded", "offline" or
// "unknown" (never observed).
std::string_view HostState(const ObservedHost* host);

}  // namespace flotilla::api
