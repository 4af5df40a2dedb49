// The API's views of the store's records: runs, actions, revisions, events and status, and
// the snapshot made from the store for commands without a running loop (views.h declares them;
// views.cc has the views of a snapshot).

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "reconciler/api/views.h"  // declares what this file defines

namespace flotilla::api {
namespace {

using nlohmann::json;

json NullableTime(const std::optional<std::chrono::system_clock::time_point>& t) {
  return t ? json(FormatTime(*t)) : json(nullptr);
}

json CommitJson(const std::optional<controller::CommitSummary>& commit) {
  if (!commit) {
    return nullptr;
  }
  return {{"sha", commit->sha},
          {"subject", commit->subject},
          {"author", commit->author},
          {"time",
           FormatTime(std::chrono::system_clock::time_point(std::chrono::seconds{commit->time}))}};
}

json RejectedJson(const controller::RejectedRevision& rejected) {
  json diagnostics = json::array();
  for (const controller::RevisionDiagnostic& d : rejected.diagnostics) {
    diagnostics.push_back({{"file", d.file},
                           {"line", d.line},
                           {"column", d.column},
                           {"severity", d.severity},
                           {"message", d.message},
                           {"text", d.text}});
  }
  json out = {{"sha", rejected.sha},       {"subject", nullptr},
              {"author", nullptr},         {"time", nullptr},
              {"reason", rejected.reason}, {"diagnostics", std::move(diagnostics)}};
  if (json commit = CommitJson(rejected.commit); !commit.is_null()) {
    for (const char* key : {"subject", "author", "time"}) {
      out[key] = commit[key];
    }
  }
  return out;
}

}  // namespace

json RunJson(const store::RunRecord& r) {
  return {{"id", r.id},
          {"trigger", r.trigger},
          {"revision", r.revision},
          {"started_at", FormatTime(r.started_at)},
          {"finished_at", NullableTime(r.finished_at)},
          {"outcome", store::ToString(r.outcome)},
          {"planned", r.counts.planned},
          {"succeeded", r.counts.succeeded},
          {"failed", r.counts.failed},
          {"abandoned", r.counts.abandoned},
          {"findings", r.counts.findings},
          {"conflicts", r.counts.conflicts},
          {"refused", r.counts.refused},
          {"message", r.message},
          {"approval", r.approval},
          {"actor", r.actor}};
}

json ActionJson(const store::ActionRecord& a) {
  return {{"id", a.id},
          {"plan_action", a.plan_action_id},
          {"kind", ToString(a.kind)},
          {"vm", a.vm},
          {"vmset", a.vmset},
          {"pool", a.pool},
          {"host", a.host},
          {"from_host", a.from_host},
          {"attempt", a.attempt},
          {"state", store::ToString(a.state)},
          {"error", a.error},
          {"doing", a.doing},
          {"started_at", FormatTime(a.started_at)},
          {"finished_at", NullableTime(a.finished_at)}};
}

json RevisionJson(const store::RevisionRecord& r) {
  return {{"sha", r.sha},
          {"attempted_at", FormatTime(r.attempted_at)},
          {"outcome", store::ToString(r.outcome)},
          {"reason", r.reason}};
}

Result<json> RunsJson(store::Store& store, size_t limit) {
  Result<std::vector<store::RunRecord>> runs = store.Runs(limit);
  if (!runs.ok()) {
    return runs.status();
  }
  json out = json::array();
  for (const store::RunRecord& run : *runs) {
    out.push_back(RunJson(run));
  }
  return json{{"runs", std::move(out)}};
}

Result<json> RevisionsJson(store::Store& store, size_t limit, const Snapshot* snapshot) {
  Result<std::vector<store::RevisionRecord>> revisions = store.Revisions(limit);
  Result<std::optional<store::RevisionRecord>> attempted = store.LastAttempted();
  Result<std::optional<store::RevisionRecord>> applied = store.LastApplied();
  for (const Status& s : {revisions.status(), attempted.status(), applied.status()}) {
    if (!s.ok()) {
      return s;
    }
  }
  json out = json::array();
  for (const store::RevisionRecord& r : *revisions) {
    out.push_back(RevisionJson(r));
  }
  return json{{"in_force", snapshot != nullptr ? json(snapshot->sha) : json(nullptr)},
              {"fail_static", snapshot != nullptr && snapshot->fail_static},
              {"problem", snapshot != nullptr ? snapshot->problem : std::string()},
              {"last_attempted", *attempted ? RevisionJson(**attempted) : json(nullptr)},
              {"last_applied", *applied ? RevisionJson(**applied) : json(nullptr)},
              {"revisions", std::move(out)}};
}

json EventJson(const store::EventRecord& e) {
  return {{"id", e.id},     {"at", FormatTime(e.at)}, {"level", e.level},
          {"kind", e.kind}, {"subject", e.subject},   {"message", e.message}};
}

Result<json> EventsJson(store::Store& store, const EventFilter& filter) {
  const bool filtered = !filter.level.empty() || !filter.kind.empty() || !filter.subject.empty();
  Result<std::vector<store::EventRecord>> events = store.Events(filtered ? 0 : filter.limit);
  if (!events.ok()) {
    return events.status();
  }
  const size_t limit = filter.limit == 0 ? SIZE_MAX : filter.limit;
  json out = json::array();
  for (const store::EventRecord& e : *events) {
    if (out.size() >= limit) {
      break;
    }
    if ((!filter.level.empty() && e.level != filter.level) ||
        (!filter.kind.empty() && e.kind != filter.kind) ||
        (!filter.subject.empty() && e.subject.find(filter.subject) == std::string::npos)) {
      continue;
    }
    out.push_back(EventJson(e));
  }
  return json{{"events", std::move(out)}};
}

Result<json> StatusJson(store::Store& store, const Snapshot* snapshot) {
  Result<std::optional<store::RevisionRecord>> applied = store.LastApplied();
  Result<std::optional<store::RevisionRecord>> attempted = store.LastAttempted();
  Result<std::vector<store::RunRecord>> runs = store.Runs(1);
  Result<Ledger> ledger = store.LoadLedger();
  Result<std::vector<store::ActionRecord>> unfinished = store.UnfinishedActions();
  Result<std::vector<store::EventRecord>> events = store.Events(5);
  Result<Observed> saved =
      snapshot != nullptr ? Result<Observed>(snapshot->observed) : store.LoadHosts();
  for (const Status& s : {applied.status(), attempted.status(), runs.status(), ledger.status(),
                          unfinished.status(), events.status(), saved.status()}) {
    if (!s.ok()) {
      return s.WithContext("store " + store.path());
    }
  }
  json offline = json::array();
  json degraded = json::array();
  size_t online = 0;
  for (const auto& [name, host] : saved->hosts) {
    online += host.online ? 1 : 0;
    if (host.degraded) {
      degraded.push_back({{"name", name},
                          {"pool", host.pool},
                          {"error_rate", host.error_rate},
                          {"error", host.error}});
    } else if (!host.online) {
      offline.push_back({{"name", name}, {"pool", host.pool}, {"error", host.error}});
    }
  }
  const bool problem = *attempted && (*attempted)->outcome != store::RevisionOutcome::kApplied;
  // What the guards hold back: from the loop's latest plan, else from the last run's record
  // (which does not keep deferrals).
  json guards = json(nullptr);
  if (snapshot != nullptr) {
    guards = {{"conflicts", snapshot->plan.Count(FindingKind::kConflict)},
              {"refused_deletions", snapshot->plan.Count(FindingKind::kRefused)},
              {"deferred_deletions", snapshot->plan.Count(FindingKind::kDeferred)}};
  } else if (!runs->empty()) {
    guards = {{"conflicts", runs->front().counts.conflicts},
              {"refused_deletions", runs->front().counts.refused},
              {"deferred_deletions", nullptr}};
  }
  json recent = json::array();
  for (const store::EventRecord& e : *events) {
    recent.push_back(EventJson(e));
  }
  const store::StoreHealth health = store.Health();
  return json{
      {"store",
       {{"path", store.path()},
        {"writable", health.writable},
        {"problem", health.writable ? json(nullptr) : json(health.problem)},
        {"write_failures", health.failures}}},
      {"applied", *applied ? json((*applied)->sha) : json(nullptr)},
      {"applied_at", *applied ? json(FormatTime((*applied)->attempted_at)) : json(nullptr)},
      {"in_force", snapshot != nullptr ? json(snapshot->sha) : json(nullptr)},
      {"revision", snapshot != nullptr ? CommitJson(snapshot->commit) : json(nullptr)},
      {"fail_static", snapshot != nullptr && snapshot->fail_static},
      {"rejected", snapshot != nullptr && snapshot->rejected ? RejectedJson(*snapshot->rejected)
                                                             : json(nullptr)},
      {"observed_at",
       snapshot != nullptr ? json(FormatTime(snapshot->observed_at)) : json(nullptr)},
      {"latest_problem", problem ? json({{"sha", (*attempted)->sha},
                                         {"outcome", store::ToString((*attempted)->outcome)},
                                         {"reason", (*attempted)->reason}})
                                 : json(nullptr)},
      {"hosts",
       {{"total", saved->hosts.size()},
        {"online", online},
        {"degraded", degraded},
        {"offline", offline}}},
      {"managed_vms", ledger->entries.size()},
      {"unfinished_actions", unfinished->size()},
      {"guards", std::move(guards)},
      {"last_run", runs->empty() ? json(nullptr) : RunJson(runs->front())},
      {"events", std::move(recent)}};
}

Result<Snapshot> SnapshotFromStore(store::Store& store) {
  Result<Observed> observed = store.LoadHosts();
  Result<Ledger> ledger = store.LoadLedger();
  if (!observed.ok() || !ledger.ok()) {
    return (observed.ok() ? ledger.status() : observed.status())
        .WithContext("store " + store.path());
  }
  Snapshot snapshot;
  snapshot.observed = std::move(*observed);
  snapshot.ledger = std::move(*ledger);
  std::map<std::string, HostPool> pools;
  for (const auto& [name, host] : snapshot.observed.hosts) {
    HostPool& pool = pools[host.pool];
    pool.meta.name = host.pool;
    HostSpec spec;
    spec.name = name;
    pool.hosts.push_back(std::move(spec));
    if (host.last_seen && *host.last_seen > snapshot.observed_at) {
      snapshot.observed_at = *host.last_seen;
    }
  }
  for (auto& [name, pool] : pools) {
    snapshot.desired.pools.push_back(std::move(pool));
  }
  return snapshot;
}

}  // namespace flotilla::api
