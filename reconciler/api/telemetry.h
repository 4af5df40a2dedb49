#pragma once

// Flotilla's Prometheus metrics (docs/api.md lists them). Counters are fed as things happen:
// the controller reports fetches, runs, actions and deferred deletions, providers report every
// request they send. Fleet gauges (hosts, VMs, drift, unschedulable) are computed from the
// latest snapshot when /metrics is scraped, so they can never drift from what the API shows.
//
// Thread-safety: every method may be called from any thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "providers/provider.h"
#include "reconciler/api/metrics.h"
#include "reconciler/controller/pass_observer.h"
#include "reconciler/controller/snapshot.h"

namespace flotilla::api {

using controller::Snapshot;

class Telemetry final : public controller::PassObserver, public providers::RequestObserver {
 public:
  Telemetry();
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  // controller::PassObserver (its header says what each call means).
  void GitFetch(std::string_view outcome) override;
  void RevisionRejected() override;
  void FailStatic(bool on) override;
  void LedgerMismatches(size_t count) override;
  void RunFinished(std::string_view outcome, std::chrono::milliseconds duration) override;
  void ActionFinished(std::string_view kind, std::string_view outcome,
                      std::chrono::milliseconds elapsed) override;
  void DeletionsDeferred(size_t count) override;
  // providers::RequestObserver.
  void ProviderRequest(std::string_view provider, std::string_view endpoint, int code) override;
  // An API request refused with `code` (401, 403 or 429; routes.h Admit).
  void AuthRefused(int code);
  // Tunnels (tunnel.h): one opened (or refused with `code`, the answer's status), one closed
  // with the bytes it moved each way. Any thread.
  void TunnelRefused(int code);
  void TunnelOpened();
  void TunnelClosed(uint64_t to_vm, uint64_t from_vm);
  // `count` renderings of snapshot views (view_cache.h), `when` "request" (on a request's time)
  // or "ahead" (warmed after a publication).
  void ViewsRendered(std::string_view when, size_t count);
  // How many so far (the metric's value).
  uint64_t ViewRenders(std::string_view when) const;

  // Whether the store takes writes, and its failed writes since it opened (Store::Health); set
  // before each Render.
  void StoreHealth(bool writable, uint64_t failures);

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
  CounterFamily& auth_refusals_;
  CounterFamily& tunnels_;
  GaugeFamily& tunnels_open_;
  CounterFamily& tunnel_bytes_;
  std::mutex tunnels_mu_;  // orders tunnels_open_'s read and write
  double open_tunnels_ = 0;
  CounterFamily& view_renders_;
  GaugeFamily& store_writable_;
  CounterFamily& store_failures_;
  std::mutex store_mu_;
  uint64_t store_failures_seen_ = 0;  // guarded by store_mu_
};

}  // namespace flotilla::api
