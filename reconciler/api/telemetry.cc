#include "reconciler/api/telemetry.h"

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "reconciler/api/views.h"

namespace flotilla::api {
namespace {

double Seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

using Series = std::vector<std::pair<std::vector<std::string>, double>>;

Series ToSeries(const std::map<std::vector<std::string>, double>& counts) {
  return {counts.begin(), counts.end()};
}

}  // namespace

Telemetry::Telemetry()
    : runs_(registry_.AddCounter("flotilla_reconcile_runs_total",
                                 "Reconcile runs recorded, by outcome.", {"outcome"})),
      run_duration_(registry_.AddHistogram("flotilla_reconcile_duration_seconds",
                                           "Time from the start to the end of a run.", {},
                                           DurationBuckets())),
      actions_(registry_.AddCounter("flotilla_actions_total",
                                    "Plan actions that ended, by kind and outcome.",
                                    {"kind", "outcome"})),
      action_duration_(registry_.AddHistogram("flotilla_action_duration_seconds",
                                              "Time an action took, retries included, by kind.",
                                              {"kind"}, DurationBuckets())),
      hosts_(registry_.AddGauge("flotilla_hosts",
                                "Hosts of the fleet at the latest observation, by state.",
                                {"pool", "state"})),
      vms_(registry_.AddGauge(
          "flotilla_vms",
          "VMs on the fleet's hosts at the latest observation (vmset is empty for VMs "
          "flotilla does not own).",
          {"pool", "vmset", "state"})),
      unschedulable_(registry_.AddGauge("flotilla_vms_unschedulable",
                                        "Desired VMs that no host can take.", {"pool", "vmset"})),
      drift_(registry_.AddGauge(
          "flotilla_drift_vms",
          "VMs that differ from what the repository says (the next pass would act on them, "
          "or self-heal is off, or the update strategy holds them).",
          {"pool", "vmset"})),
      fetches_(registry_.AddCounter("flotilla_git_fetch_total",
                                    "Polls of the fleet repository, by outcome.", {"outcome"})),
      last_applied_(registry_.AddGauge(
          "flotilla_git_last_applied_timestamp_seconds",
          "When the revision in force was first applied (Unix time; 0 when never).", {})),
      revision_(registry_.AddGauge("flotilla_revision_info", "The revision in force (value 1).",
                                   {"sha"})),
      deferred_(registry_.AddCounter(
          "flotilla_deletions_deferred_total",
          "Deletions held back by the deletion budget or by fail static, summed over runs.", {})),
      requests_(registry_.AddCounter("flotilla_provider_requests_total",
                                     "Requests providers sent to hosts (code 0: no response).",
                                     {"provider", "endpoint", "code"})),
      rejected_(registry_.AddCounter("flotilla_source_rejected_revisions_total",
                                     "Revisions of the repository rejected (invalid or empty), "
                                     "once each.",
                                     {})),
      fail_static_(registry_.AddGauge("flotilla_fail_static",
                                      "1 while the newest revision cannot be used and the last "
                                      "good one stays in force with deletions held.",
                                      {})),
      ledger_mismatches_(registry_.AddGauge(
          "flotilla_ledger_mismatches",
          "Ledger rows of the latest pass whose provider id their host does not report while it "
          "reports a VM of that name (repaired when the journal shows this store made it).",
          {})),
      observation_age_(registry_.AddGauge(
          "flotilla_host_observation_age_seconds",
          "Seconds since each host last answered an observation (hosts never seen are absent).",
          {"pool", "host"})),
      deferred_now_(registry_.AddGauge(
          "flotilla_deletions_deferred",
          "Deletions the latest plan holds back (deletion budget, fail static).", {"pool"})),
      conflicts_(registry_.AddGauge("flotilla_conflicts",
                                    "Desired names held by VMs flotilla does not own: the set "
                                    "is short of them until they are moved away.",
                                    {"pool", "vmset"})),
      refused_(registry_.AddGauge("flotilla_refused_deletions",
                                  "Deletions refused because the revision would delete every "
                                  "managed VM (approve with --allow-empty).",
                                  {"pool"})),
      auth_refusals_(registry_.AddCounter(
          "flotilla_api_auth_refusals_total",
          "API requests refused by authentication: 401 (no known token), 403 (the token lacks "
          "the role), 429 (too many failed authentications from the address).",
          {"code"})),
      tunnels_(registry_.AddCounter(
          "flotilla_api_tunnels_total",
          "Tunnel requests to VM ports by their answer: 101 (opened), or the refusal's status "
          "(400: a bad port or request head; 401; 403: the role or a port the pool does not "
          "allow; 404; 409; 426: not an upgrade; 429; 501; 502; 503; 504).",
          {"code"})),
      tunnels_open_(
          registry_.AddGauge("flotilla_api_tunnels_open", "Tunnels to VM ports open now.", {})),
      tunnel_bytes_(registry_.AddCounter(
          "flotilla_api_tunnel_bytes_total",
          "Bytes carried by closed tunnels: to the VM (sent by clients) or from it.",
          {"direction"})),
      view_renders_(registry_.AddCounter(
          "flotilla_api_view_renders_total",
          "Renderings of the API's snapshot views: on a request (its client waited for it), or "
          "ahead, once a pass published a snapshot (for the views clients were reading).",
          {"when"})),
      store_writable_(registry_.AddGauge(
          "flotilla_store_writable",
          "1 while the store takes writes; 0 while it cannot (full disk, read-only, damaged or "
          "removed file), and then no host is changed.",
          {})),
      store_failures_(registry_.AddCounter(
          "flotilla_store_write_failures_total",
          "Store operations that failed on the file itself (full disk, I/O error, read-only or "
          "damaged file).",
          {})) {
  store_writable_.Set({}, 1.0);
}

void Telemetry::StoreHealth(bool writable, uint64_t failures) {
  store_writable_.Set({}, writable ? 1.0 : 0.0);
  std::lock_guard lock(store_mu_);
  if (failures > store_failures_seen_) {
    store_failures_.Inc({}, static_cast<double>(failures - store_failures_seen_));
    store_failures_seen_ = failures;
  }
}

void Telemetry::GitFetch(std::string_view outcome) { fetches_.Inc({std::string(outcome)}); }

void Telemetry::RevisionRejected() { rejected_.Inc({}); }

void Telemetry::FailStatic(bool on) { fail_static_.Set({}, on ? 1.0 : 0.0); }

void Telemetry::LedgerMismatches(size_t count) {
  ledger_mismatches_.Set({}, static_cast<double>(count));
}

void Telemetry::RunFinished(std::string_view outcome, std::chrono::milliseconds duration) {
  runs_.Inc({std::string(outcome)});
  run_duration_.Observe({}, Seconds(duration));
}

void Telemetry::ActionFinished(std::string_view kind, std::string_view outcome,
                               std::chrono::milliseconds elapsed) {
  actions_.Inc({std::string(kind), std::string(outcome)});
  action_duration_.Observe({std::string(kind)}, Seconds(elapsed));
}

void Telemetry::DeletionsDeferred(size_t count) { deferred_.Inc({}, static_cast<double>(count)); }

void Telemetry::ProviderRequest(std::string_view provider, std::string_view endpoint, int code) {
  requests_.Inc({std::string(provider), std::string(endpoint), std::to_string(code)});
}

void Telemetry::AuthRefused(int code) { auth_refusals_.Inc({std::to_string(code)}); }

void Telemetry::TunnelRefused(int code) { tunnels_.Inc({std::to_string(code)}); }

void Telemetry::TunnelOpened() {
  tunnels_.Inc({"101"});
  std::lock_guard lock(tunnels_mu_);
  tunnels_open_.Set({}, ++open_tunnels_);
}

void Telemetry::TunnelClosed(uint64_t to_vm, uint64_t from_vm) {
  tunnel_bytes_.Inc({"to_vm"}, static_cast<double>(to_vm));
  tunnel_bytes_.Inc({"from_vm"}, static_cast<double>(from_vm));
  std::lock_guard lock(tunnels_mu_);
  tunnels_open_.Set({}, --open_tunnels_);
}

void Telemetry::ViewsRendered(std::string_view when, size_t count) {
  if (count > 0) {
    view_renders_.Inc({std::string(when)}, static_cast<double>(count));
  }
}

uint64_t Telemetry::ViewRenders(std::string_view when) const {
  return static_cast<uint64_t>(view_renders_.Value({std::string(when)}));
}

std::string Telemetry::Render(const Snapshot* snapshot,
                              std::optional<std::chrono::system_clock::time_point> last_applied,
                              std::chrono::system_clock::time_point now) {
  last_applied_.Set({}, last_applied
                            ? static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                                      last_applied->time_since_epoch())
                                                      .count())
                            : 0.0);
  if (snapshot != nullptr) {
    std::map<std::vector<std::string>, double> hosts;
    std::map<std::vector<std::string>, double> vms;
    std::map<std::vector<std::string>, double> unschedulable;
    std::map<std::vector<std::string>, double> drift;
    const OwnerIndex owners(snapshot->ledger);
    for (const VMSet& set : snapshot->desired.sets) {
      unschedulable[{set.pool, set.meta.name}] = 0;
      drift[{set.pool, set.meta.name}] = 0;
    }
    for (const HostPool& pool : snapshot->desired.pools) {
      for (const HostSpec& spec : pool.hosts) {
        const ObservedHost* host = snapshot->observed.FindHost(spec.name);
        hosts[{pool.meta.name, std::string(HostState(host))}] += 1;
        if (host == nullptr) {
          continue;
        }
        for (const VmInfo& vm : host->vms) {
          if (!vm.pending_create_for.empty()) {
            continue;  // a create under way; counted once it has its name
          }
          const LedgerEntry* owned = owners.Owner(vm, spec.name);
          vms[{pool.meta.name, owned != nullptr ? owned->vmset : std::string(),
               std::string(ToString(vm.state))}] += 1;
        }
      }
    }
    for (const Finding& f : snapshot->plan.findings) {
      if (f.kind == FindingKind::kUnschedulable) {
        unschedulable[{f.pool, f.vmset}] += 1;
      }
    }
    std::set<std::pair<std::string, std::string>> drifted;  // (vmset, vm)
    for (const Action& a : snapshot->plan.actions) {
      drifted.insert({a.vmset, a.vm});
    }
    for (const Finding& f : snapshot->plan.findings) {
      if (f.kind == FindingKind::kDrift || f.kind == FindingKind::kOutdated) {
        drifted.insert({f.vmset, f.vm});
      }
    }
    for (const auto& [vmset, vm] : drifted) {
      const VMSet* set = snapshot->desired.FindSet(vmset);
      const LedgerEntry* owned = owners.Find(vm);
      const std::string pool = set != nullptr ? set->pool : owned != nullptr ? owned->pool : "";
      drift[{pool, vmset}] += 1;
    }
    std::map<std::vector<std::string>, double> ages;
    for (const auto& [name, host] : snapshot->observed.hosts) {
      if (host.last_seen) {
        ages[{host.pool, name}] = std::chrono::duration<double>(now - *host.last_seen).count();
      }
    }
    std::map<std::vector<std::string>, double> deferred;
    std::map<std::vector<std::string>, double> conflicts;
    std::map<std::vector<std::string>, double> refused;
    for (const HostPool& pool : snapshot->desired.pools) {
      deferred[{pool.meta.name}] = 0;
      refused[{pool.meta.name}] = 0;
    }
    for (const VMSet& set : snapshot->desired.sets) {
      conflicts[{set.pool, set.meta.name}] = 0;
    }
    for (const Finding& f : snapshot->plan.findings) {
      if (f.kind == FindingKind::kDeferred) {
        deferred[{f.pool}] += 1;
      } else if (f.kind == FindingKind::kConflict) {
        conflicts[{f.pool, f.vmset}] += 1;
      } else if (f.kind == FindingKind::kRefused) {
        refused[{f.pool}] += 1;
      }
    }
    observation_age_.Replace(ToSeries(ages));
    deferred_now_.Replace(ToSeries(deferred));
    conflicts_.Replace(ToSeries(conflicts));
    refused_.Replace(ToSeries(refused));
    hosts_.Replace(ToSeries(hosts));
    vms_.Replace(ToSeries(vms));
    unschedulable_.Replace(ToSeries(unschedulable));
    drift_.Replace(ToSeries(drift));
    if (!snapshot->sha.empty()) {
      revision_.Replace({{{snapshot->sha}, 1.0}});
    }
  }
  return registry_.Render();
}

}  // namespace flotilla::api
