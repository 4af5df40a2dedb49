#include "reconciler/controller/controller.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <thread>
#include <utility>

#include "reconciler/model/template_hash.h"
#include "reconciler/model/text.h"
#include "reconciler/planner/planner.h"

namespace flotilla::controller {
namespace {

using std::chrono::system_clock;

// Passes progress on and counts every finished action in the metrics.
class MeteredProgress final : public executor::Progress {
 public:
  MeteredProgress(executor::Progress* next, PassObserver* telemetry)
      : next_(next), telemetry_(telemetry) {}
  void Started(const Action& action, int attempt, size_t ordinal, size_t total) override {
    if (next_ != nullptr) {
      next_->Started(action, attempt, ordinal, total);
    }
  }
  void Finished(const Action& action, executor::Outcome outcome, const Status& status,
                std::chrono::milliseconds elapsed, size_t ordinal, size_t total) override {
    if (telemetry_ != nullptr) {
      telemetry_->ActionFinished(ToString(action.kind), executor::ToString(outcome), elapsed);
    }
    if (next_ != nullptr) {
      next_->Finished(action, outcome, status, elapsed, ordinal, total);
    }
  }
  void Doing(const Action& action, std::string_view what) override {
    if (next_ != nullptr) {
      next_->Doing(action, what);
    }
  }

 private:
  executor::Progress* next_;
  PassObserver* telemetry_;
};

store::ActionState ToState(executor::Outcome outcome) {
  switch (outcome) {
    case executor::Outcome::kSucceeded:
      return store::ActionState::kSucceeded;
    case executor::Outcome::kFailed:
      return store::ActionState::kFailed;
    case executor::Outcome::kAbandoned:
      return store::ActionState::kAbandoned;
  }
  return store::ActionState::kFailed;
}

// The executor's journal, written to the store as things happen. A write that fails is logged;
// the executor decides what it means (a failed Intend keeps the provider from being called).
class StoreJournal : public executor::Journal {
 public:
  StoreJournal(store::Store& store, int64_t run_id, const Clock& clock,
               std::shared_ptr<spdlog::logger> logger)
      : store_(store), run_id_(run_id), clock_(clock), logger_(std::move(logger)) {}

  Result<int64_t> Intend(const Attempt& attempt) override {
    const Action& a = *attempt.action;
    store::ActionRecord record{.run_id = run_id_,
                               .plan_action_id = a.id,
                               .kind = a.kind,
                               .vm = a.vm,
                               .vmset = a.vmset,
                               .pool = a.pool,
                               .host = a.host,
                               .from_host = a.from_host,
                               .template_hash = a.template_hash,
                               .predecessor_id = attempt.predecessor_id,
                               .create_first = a.create_first,
                               .attempt = attempt.attempt,
                               .state = store::ActionState::kIntended,
                               .started_at = clock_.Now()};
    return Logged(store_.InsertAction(record));
  }
  Status Running(int64_t id) override {
    return Logged(store_.UpdateActionState(id, store::ActionState::kRunning, "", std::nullopt));
  }
  Status Pending(int64_t id, const providers::PendingCreate& pending) override {
    return Logged(store_.UpdateActionPending(id, pending.temp_name, pending.job_id));
  }
  Status Doing(int64_t id, std::string_view what) override {
    return Logged(store_.UpdateActionDoing(id, what));
  }
  Status Finished(int64_t id, executor::Outcome outcome, std::string_view error) override {
    return Logged(store_.UpdateActionState(id, ToState(outcome), error, clock_.Now()));
  }
  Status VmCreated(const LedgerEntry& entry) override {
    return Logged(store_.UpsertLedger(entry, clock_.Now()));
  }
  Status VmDeleted(std::string_view vm, std::string_view host) override {
    // A replace's predecessor deleted on its old host (at once, or by recovery later) leaves
    // the row of the new VM, which already names the new host (found by bench/soak).
    return Logged(store_.RemoveLedger(vm, host));
  }

 private:
  template <typename T>
  T Logged(T result) {
    if (!result.ok()) {
      logger_->error("store: {}", result.status().ToString());
    }
    return result;
  }
  Status Logged(Status status) {
    if (!status.ok()) {
      logger_->error("store: {}", status.ToString());
    }
    return status;
  }

  store::Store& store_;
  int64_t run_id_;
  const Clock& clock_;
  std::shared_ptr<spdlog::logger> logger_;
};

// The first few diagnostics of a rejected revision, for the record.
std::vector<RevisionDiagnostic> ForPeople(const manifest::Diagnostics& diagnostics) {
  std::vector<RevisionDiagnostic> out;
  for (const manifest::Diagnostic& d : diagnostics.Sorted()) {
    out.push_back(RevisionDiagnostic{.file = d.location.file,
                                     .line = d.location.line,
                                     .column = d.location.column,
                                     .severity = std::string(manifest::ToString(d.severity)),
                                     .message = d.message,
                                     .text = d.ToString()});
  }
  return out;
}

std::string Summarise(const manifest::Diagnostics& diagnostics) {
  std::string text = std::to_string(diagnostics.error_count()) + " error(s)";
  size_t shown = 0;
  for (const manifest::Diagnostic& d : diagnostics.Sorted()) {
    if (d.severity != manifest::Severity::kError) {
      continue;
    }
    text += (shown == 0 ? ": " : "; ") + d.ToString();
    if (++shown == 3) {
      break;
    }
  }
  return text;
}

// Observation attempts per host kept for its error rate, and how many of them must have failed
// for a host that answers to count as degraded (one blip does not).
constexpr size_t kObservationWindow = 20;
constexpr size_t kDegradedFailures = 2;

// A VM that exists only while a create or a prepull is under way (what PlanCleanups deletes).
bool IsTemporaryVm(const std::string& name) {
  return !providers::ParsePendingCreateName(name).empty() || providers::IsPrepullVmName(name);
}

}  // namespace

std::string ResumeKey(std::string_view vm, std::string_view host) {
  return std::string(vm) + "@" + std::string(host);
}

Controller::Controller(ControllerOptions options, store::Store& store, DesiredSource& source,
                       const providers::ProviderRegistry& registry, const Clock& clock,
                       std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      store_(store),
      source_(source),
      registry_(registry),
      clock_(clock),
      logger_(std::move(logger)),
      secrets_(options_.secrets_dir) {}

Controller::~Controller() = default;

bool Controller::InScope(const std::string& pool) const {
  return options_.pools.empty() ||
         std::find(options_.pools.begin(), options_.pools.end(), pool) != options_.pools.end();
}

void Controller::Event(std::string_view level, std::string_view kind, std::string_view subject,
                       std::string_view message) {
  if (options_.preview) {
    return;
  }
  if (Status s = store_.AddEvent(store::EventRecord{.at = clock_.Now(),
                                                    .level = std::string(level),
                                                    .kind = std::string(kind),
                                                    .subject = std::string(subject),
                                                    .message = std::string(message)});
      !s.ok()) {
    logger_->error("store: {}", s.ToString());
  }
}

SyncResult Controller::Sync() {
  SyncResult result;
  Result<std::string> polled = source_.Poll();
  for (const std::string& warning : source_.TakeWarnings()) {
    if (warned_.insert(warning).second) {
      logger_->warn("{}", warning);  // once per process: the same holds on every fetch
    }
  }
  if (!current_sha_) {
    // Nothing in force yet (a fresh start): the last revision this store applied is, until the
    // newest one proves usable. (After the poll: the mirror holds it then.)
    Result<std::optional<store::RevisionRecord>> applied = store_.LastApplied();
    if (applied.ok() && *applied && !(*applied)->sha.empty()) {
      Result<manifest::LoadResult> loaded = source_.Load((*applied)->sha);
      if (loaded.ok() && loaded->ok()) {
        current_ = loaded->desired.OnlyPools(options_.pools);
        unknown_pools_ = loaded->desired.MissingPools(options_.pools);
        current_sha_ = (*applied)->sha;
        result.changed = true;
        logger_->info("revision {} (the last applied) in force", current_sha_->substr(0, 12));
      }
    }
  }
  auto hold = [&](std::string problem, const std::string& sha, store::RevisionOutcome outcome,
                  std::vector<RevisionDiagnostic> diagnostics = {}) {
    result.problem_sha = sha;
    result.diagnostics = std::move(diagnostics);
    // Record a problem once per revision (or once per distinct fetch error), not every poll.
    const std::string key = sha.empty() ? problem : sha;
    newest_problem_rejected_ = outcome == store::RevisionOutcome::kRejected;
    if (key != newest_problem_sha_) {
      newest_problem_sha_ = key;
      if (options_.observer != nullptr && newest_problem_rejected_) {
        options_.observer->RevisionRejected();
      }
      logger_->warn("{}; {}", problem,
                    current_sha_ ? "keeping revision " + current_sha_->substr(0, 12) +
                                       " in force, without deletions"
                                 : std::string("no revision in force"));
      // Once per revision, also across restarts: a process that starts on the rejected HEAD
      // finds it already recorded.
      Result<std::optional<store::RevisionRecord>> last = store_.LastAttempted();
      const bool recorded =
          !sha.empty() && last.ok() && *last && (*last)->sha == sha && (*last)->outcome == outcome;
      if (!recorded && !options_.preview) {
        (void)store_.RecordRevision(store::RevisionRecord{
            .sha = sha, .attempted_at = clock_.Now(), .outcome = outcome, .reason = problem});
        Event("warn",
              outcome == store::RevisionOutcome::kRejected ? "revision-rejected" : "fetch-failed",
              sha, problem);
      }
    }
    result.fail_static = true;
    result.problem = std::move(problem);
  };
  if (!polled.ok()) {
    hold("cannot read " + source_.Describe() + ": " + polled.status().message(), "",
         store::RevisionOutcome::kFailed);
  } else if (current_sha_ && *polled == *current_sha_) {
    newest_problem_sha_.clear();
  } else if (*polled == newest_problem_sha_) {
    result.fail_static = true;
    result.problem = sync_.problem;
    result.problem_sha = sync_.problem_sha;
    result.diagnostics = sync_.diagnostics;
  } else {
    Result<manifest::LoadResult> loaded = source_.Load(*polled);
    if (!loaded.ok()) {
      hold("cannot load revision " + polled->substr(0, 12) + ": " + loaded.status().message(),
           *polled, store::RevisionOutcome::kFailed);
    } else if (!loaded->ok()) {
      hold("revision " + polled->substr(0, 12) + " is invalid: " + Summarise(loaded->diagnostics),
           *polled, store::RevisionOutcome::kRejected, ForPeople(loaded->diagnostics));
    } else if (loaded->documents == 0) {
      hold("revision " + polled->substr(0, 12) + " has no manifests below the configured path",
           *polled, store::RevisionOutcome::kRejected);
    } else {
      current_ = loaded->desired.OnlyPools(options_.pools);
      unknown_pools_ = loaded->desired.MissingPools(options_.pools);
      current_sha_ = *polled;
      newest_problem_sha_.clear();
      result.changed = true;
      logger_->info("revision {} in force ({}, {})", polled->substr(0, 12),
                    CountOf(current_.pools.size(), "pool"),
                    CountOf(current_.sets.size(), "VM set"));
    }
  }
  if (options_.observer != nullptr) {
    // A revision that was fetched but cannot be used is no successful fetch.
    options_.observer->GitFetch(!polled.ok()                                     ? "failure"
                                : result.fail_static && newest_problem_rejected_ ? "rejected"
                                : result.fail_static                             ? "failure"
                                                                                 : "success");
    options_.observer->FailStatic(result.fail_static);
  }
  result.sha = current_sha_.value_or("");
  sync_ = result;
  return result;
}

Result<Observed> Controller::Observe(const Desired& desired) {
  struct Job {
    const HostPool* pool;
    const HostSpec* host;
    providers::Provider* provider;  // null: the pool's provider could not be built
    std::string error;
  };
  std::vector<Job> jobs;
  for (const HostPool& pool : desired.pools) {
    Result<providers::Provider*> provider = ProviderFor(pool);
    if (!provider.ok()) {
      logger_->error("{}", provider.status().message());  // it names the pool
    }
    for (const HostSpec& host : pool.hosts) {
      jobs.push_back(Job{.pool = &pool,
                         .host = &host,
                         .provider = provider.ok() ? *provider : nullptr,
                         .error = provider.ok() ? "" : provider.status().message()});
    }
  }
  if (!stored_hosts_ || options_.preview) {
    Result<Observed> loaded = store_.LoadHosts();
    if (!loaded.ok()) {
      return loaded.status();
    }
    stored_hosts_ = std::move(*loaded);
  }
  const Observed* stored = &*stored_hosts_;
  const auto now = clock_.Now();
  for (const Job& job : jobs) {
    first_observed_.emplace(job.host->name, now);
  }
  Observed observed;
  std::set<std::string> refused;  // hosts whose failure no retry would change (credentials)
  std::mutex mu;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      const Job& job = jobs[i];
      ObservedHost host;
      host.name = job.host->name;
      host.pool = job.pool->meta.name;
      Status status = Status::Unavailable(job.error);
      std::vector<bool> failed;  // each attempt's outcome
      if (job.provider != nullptr) {
        // A failure the provider calls retryable (a 5xx, a dropped connection) is tried again
        // within the pass, as long as the host's deadline leaves time: one bad answer does not
        // make a host unknown for a pass.
        const providers::Deadline deadline = providers::DeadlineIn(options_.host_timeout);
        for (uint32_t attempt = 1;; ++attempt) {
          providers::HostObservation o = job.provider->Observe(
              providers::HostRef{
                  .pool = host.pool, .name = host.name, .address = job.host->address},
              deadline);
          status = o.status;
          host.facts = std::move(o.facts);
          host.vms = std::move(o.vms);
          failed.push_back(!status.ok());
          const auto pause = std::chrono::milliseconds{100} * attempt;
          if (status.ok() || !status.IsRetryable() || attempt >= options_.observe_attempts ||
              std::chrono::steady_clock::now() + pause >= deadline) {
            break;
          }
          std::this_thread::sleep_for(pause);
        }
      } else {
        failed.push_back(
            true);  // the pool's provider cannot be built (its secrets): no retry helps
      }
      host.online = status.ok();
      if (host.online) {
        host.last_seen = now;
        host.vms_known = true;
      } else {
        host.error = status.message();
        // Keep what was last known (its VMs are unknown, not gone); host loss counts from the
        // last answer, but never from before this process started looking (the grace).
        if (const ObservedHost* before = stored->FindHost(host.name)) {
          host.facts = before->facts;
          host.vms = before->vms;
          host.vms_known = before->vms_known;
          host.last_seen = before->last_seen;
        }
        const auto grace = first_observed_.at(host.name);
        if (!host.last_seen || *host.last_seen < grace) {
          host.last_seen = grace;
        }
      }
      std::lock_guard lock(mu);
      if (!status.ok() && (!status.IsRetryable() || job.provider == nullptr)) {
        refused.insert(host.name);
      }
      auto [window, first] = attempts_.try_emplace(host.name);
      std::deque<bool>& recent = window->second;
      if (first) {
        // A restart keeps what the last process saw: the window starts from the error rate it
        // recorded (as many failed attempts of the last kObservationWindow), so that a degraded
        // host is not declared healthy again by a restart alone.
        if (const ObservedHost* before = stored->FindHost(host.name)) {
          const auto failed_before =
              static_cast<size_t>(std::lround(before->error_rate * kObservationWindow));
          recent.assign(kObservationWindow - failed_before, false);
          recent.insert(recent.end(), failed_before, true);
        }
      }
      recent.insert(recent.end(), failed.begin(), failed.end());
      while (recent.size() > kObservationWindow) {
        recent.pop_front();
      }
      const auto failed_recently =
          static_cast<size_t>(std::count(recent.begin(), recent.end(), true));
      host.error_rate = static_cast<double>(failed_recently) / static_cast<double>(recent.size());
      // Settled below for a host that did not answer.
      host.degraded = failed_recently >= kDegradedFailures;
      observed.hosts[host.name] = std::move(host);
    }
  };
  {
    std::vector<std::jthread> workers;
    const size_t count =
        std::min<size_t>(std::max<uint32_t>(options_.observe_concurrency, 1), jobs.size());
    for (size_t t = 0; t < count; ++t) {
      workers.emplace_back(work);
    }
  }
  // Offline only after failing for host_offline_after (at least twice in a row), or at once when
  // the failure is not one to retry (refused credentials, a missing endpoint, unreadable
  // secrets); offline stays offline until an observation succeeds. Degraded meanwhile, and while
  // at least kDegradedFailures of the recent attempts failed. Transitions are logged and
  // recorded, not blips.
  for (auto& [name, host] : observed.hosts) {
    const ObservedHost* before = stored->FindHost(name);
    const bool was_down = before != nullptr && !before->online && !before->degraded;
    if (host.online) {
      host.failures = 0;
      host.failing_since.reset();
    } else {
      host.failures = before != nullptr && !before->online ? before->failures + 1 : 1;
      host.failing_since = before != nullptr && !before->online && before->failing_since
                               ? before->failing_since
                               : std::optional(now);
    }
    const bool down =
        !host.online &&
        (was_down || options_.host_offline_after.count() == 0 || refused.contains(name) ||
         (host.failures >= 2 && now - *host.failing_since >= options_.host_offline_after));
    if (!host.online) {
      host.degraded = !down;
    }
    const std::string_view was = before == nullptr ? "unknown" : HostState(before);
    const std::string_view is = HostState(&host);
    if (was == is) {
      continue;
    }
    const std::string rate = std::to_string(std::lround(host.error_rate * 100.0)) +
                             "% of its recent observation attempts failed";
    if (is == "offline") {
      logger_->warn("host {} ({}) is offline: {}", name, host.pool, host.error);
      Event("warn", "host-offline", name, host.error);
    } else if (was == "offline") {
      logger_->info("host {} ({}) is back online{}", name, host.pool,
                    host.degraded ? " (degraded: " + rate + ")" : "");
      Event("info", "host-online", name, host.degraded ? "back online, degraded" : "back online");
    } else if (is == "degraded") {
      logger_->warn("host {} ({}) is degraded: {}{}", name, host.pool, rate,
                    host.online ? "" : "; latest: " + host.error);
      Event("warn", "host-degraded", name, rate);
    } else if (was == "degraded") {
      logger_->info("host {} ({}) is healthy again", name, host.pool);
      Event("info", "host-online", name, "healthy again");
    }
  }
  if (options_.preview) {
    return observed;
  }
  if (Status s = store_.SaveHosts(observed, *stored_hosts_); !s.ok()) {
    stored_hosts_.reset();  // loaded again next pass
    return s;
  }
  for (const auto& [name, host] : observed.hosts) {  // hosts no longer in the fleet keep theirs
    ObservedHost& kept = stored_hosts_->hosts[name];
    if (SameApartFromLastSeen(kept, host)) {
      kept.last_seen = host.last_seen;  // copies no VMs
    } else {
      kept = host;
    }
  }
  return observed;
}

Result<Prepared> Controller::Prepare() {
  if (!current_sha_) {
    return Status::FailedPrecondition(
        sync_.problem.empty() ? "no revision of " + source_.Describe() + " has been loaded yet"
                              : sync_.problem);
  }
  if (!unknown_pools_.empty()) {
    return Status::InvalidArgument(unknown_pools_);
  }
  if (!options_.preview) {
    // Writes to a file that was removed would be lost: nothing is done until a restart.
    if (store::StoreHealth health = store_.Health(); health.moved) {
      return Status::Unavailable(health.problem);
    }
  }
  Prepared prepared;
  prepared.sha = *current_sha_;
  prepared.desired = current_;
  prepared.fail_static = sync_.fail_static;
  prepared.problem = sync_.problem;
  RefreshCredentials();
  Result<Observed> observed = Observe(prepared.desired);
  if (!observed.ok()) {
    return observed.status();
  }
  prepared.observed = std::move(*observed);
  for (const HostPool& pool : prepared.desired.pools) {
    if (Result<providers::Provider*> provider = ProviderFor(pool); !provider.ok()) {
      prepared.unusable_pools.push_back(provider.status().message());  // it names the pool
    }
  }
  Result<Ledger> ledger = store_.LoadLedger();
  if (!ledger.ok()) {
    return ledger.status();
  }
  prepared.ledger = std::move(*ledger);
  std::map<std::string, Unfinished> resumable;
  std::vector<planner::FinishDelete> finish;
  if (Status s = Recover(prepared, resumable, finish); !s.ok()) {
    return s;
  }
  if (Status s = CheckLedger(prepared); !s.ok()) {
    return s;
  }
  // Only this loop's pools: other shards' VMs are theirs.
  std::erase_if(prepared.ledger.entries, [&](const LedgerEntry& e) { return !InScope(e.pool); });
  planner::PlannerOptions planner_options = options_.planner;
  planner_options.finish_deletes = std::move(finish);
  {
    std::lock_guard lock(snapshot_mu_);
    prepared.approval = std::exchange(approval_, std::nullopt);
  }
  if (prepared.approval && prepared.approval->max_deletions) {
    planner_options.max_deletions = prepared.approval->max_deletions;  // the window aside
  } else {
    // The budget is a rate: what this loop's pools deleted within the window counts.
    const auto now = clock_.Now();
    Result<std::vector<store::ActionRecord>> recent =
        store_.DeletionsSince(now - std::chrono::duration_cast<Clock::TimePoint::duration>(
                                        options_.planner.deletion_window));
    if (!recent.ok()) {
      return recent.status();
    }
    for (const store::ActionRecord& a : *recent) {
      // The cleanup of a temporary VM deletes no VM of the fleet: it is outside the budget.
      if (!InScope(a.pool) || !a.finished_at || IsTemporaryVm(a.vm)) {
        continue;
      }
      if (planner_options.deletions_in_window++ == 0) {
        planner_options.window_frees_at = *a.finished_at + options_.planner.deletion_window;
      }
    }
  }
  if (prepared.approval && prepared.approval->allow_empty) {
    planner_options.allow_empty = true;
  }
  // Existing VMs with desired names are taken over only when asked (apply --adopt, or a set's
  // adoptExisting), as `adopt` actions of the plan; otherwise they are conflicts.
  planner_options.adopt_existing = options_.adopt;
  if (prepared.fail_static) {
    planner_options.max_deletions = 0;
  }
  // Resume where the work is: a VM whose unfinished create left a job or a temporary VM on a
  // host is placed there when it fits.
  for (const auto& entry : resumable) {
    const Unfinished& u = entry.second;
    const ObservedHost* observed = prepared.observed.FindHost(u.host);
    planner_options.unfinished[u.vm] = planner::PlannerOptions::Unfinished{
        .host = u.host,
        .template_hash = u.template_hash,
        .temporary_seen = observed != nullptr && observed->HasVm(u.pending.temp_name)};
  }
  prepared.plan = planner::ComputePlan(prepared.desired, prepared.observed, prepared.ledger,
                                       planner_options, clock_.Now());
  // Only a create of the same VM, on the same host, from the same template picks up where an
  // unfinished one stopped; what the others left behind is swept (or cleaned up by the
  // provider's next create of that name on that host).
  for (const Action& a : prepared.plan.actions) {
    auto it = resumable.find(ResumeKey(a.vm, a.host));
    if (it != resumable.end() && it->second.template_hash == a.template_hash &&
        (a.kind == ActionKind::kCreate || a.kind == ActionKind::kReplace)) {
      prepared.resume[it->first] = it->second.pending;
    }
  }
  PlanCleanups(prepared);
  if (!options_.preview) {
    Announce(prepared.plan);
  }
  std::optional<RejectedRevision> rejected;
  if (prepared.fail_static) {
    rejected = RejectedRevision{.sha = sync_.problem_sha,
                                .commit = DescribeCommit(sync_.problem_sha),
                                .reason = sync_.problem,
                                .diagnostics = sync_.diagnostics};
  }
  auto snapshot = std::make_shared<Snapshot>(Snapshot{.observed_at = clock_.Now(),
                                                      .sha = prepared.sha,
                                                      .fail_static = prepared.fail_static,
                                                      .problem = prepared.problem,
                                                      .commit = DescribeCommit(prepared.sha),
                                                      .rejected = std::move(rejected),
                                                      .desired = prepared.desired,
                                                      .observed = prepared.observed,
                                                      .ledger = prepared.ledger,
                                                      .plan = prepared.plan});
  std::lock_guard lock(snapshot_mu_);
  snapshot_ = std::move(snapshot);
  return prepared;
}

std::optional<CommitSummary> Controller::DescribeCommit(const std::string& sha) {
  if (sha.empty()) {
    return std::nullopt;
  }
  if (auto known = commits_.find(sha); known != commits_.end()) {
    return known->second;
  }
  if (commits_.size() >= 8) {
    commits_.clear();  // only the one in force and the newest rejected are asked for
  }
  return commits_[sha] = source_.Commit(sha);
}

void Controller::Approve(PassApproval approval) {
  std::lock_guard lock(snapshot_mu_);
  approval_ = std::move(approval);
}

std::shared_ptr<const Snapshot> Controller::snapshot() const {
  std::lock_guard lock(snapshot_mu_);
  return snapshot_;
}

PassResult Controller::Execute(const Prepared& prepared, std::string_view trigger,
                               executor::Progress* progress, std::stop_token stop,
                               const std::function<void(int64_t)>& on_started) {
  PassResult result;
  if (options_.preview) {
    result.outcome = store::RunOutcome::kFailed;
    result.message = "a preview controller changes nothing";
    return result;
  }
  const auto started = std::chrono::steady_clock::now();
  Result<int64_t> run = store_.BeginRun(trigger, prepared.sha, clock_.Now());
  if (run.ok() && prepared.approval) {
    const std::string approval = prepared.approval->Describe();
    if (Status s = store_.SetRunApproval(*run, approval); !s.ok()) {
      logger_->error("store: {}", s.ToString());
    }
    logger_->warn("run {} approved by {}", *run, approval);
    Event("warn", "approval", "", "run " + std::to_string(*run) + " approved by " + approval);
  }
  if (run.ok() && !prepared.actor.empty()) {
    if (Status s = store_.SetRunActor(*run, prepared.actor); !s.ok()) {
      logger_->error("store: {}", s.ToString());
    }
  }
  if (on_started) {
    on_started(run.ok() ? *run : 0);
  }
  if (!run.ok()) {
    logger_->error("store: {}", run.status().ToString());
    result.outcome = store::RunOutcome::kFailed;
    result.message = run.status().ToString();
    if (options_.observer != nullptr) {
      options_.observer->RunFinished(store::ToString(result.outcome), {});
    }
    return result;
  }
  result.run_id = *run;
  // Remember each VMSet's prune before any of its VMs exist, so that VMs of a set later removed
  // are deleted only if it allowed that when it was last applied, even if this run is cut short.
  std::map<std::string, bool> prune = prepared.ledger.vmset_prune;
  for (const VMSet& set : prepared.desired.sets) {
    prune[set.meta.name] = set.prune;
  }
  if (prune != prepared.ledger.vmset_prune) {
    if (Status s = store_.SetVmsetPrune(prune); !s.ok()) {
      logger_->error("store: {}", s.ToString());
    }
  }
  // Journal first, for the run as a whole: while the store cannot take writes, no host is
  // called; a later pass finds it writable again (space freed) and acts then.
  if (store::StoreHealth health = store_.Health(); !health.writable) {
    result.outcome = store::RunOutcome::kFailed;
    result.message = "the store cannot be written, so no host was changed: " + health.problem;
    logger_->error("run {}: {}", result.run_id, result.message);
    (void)store_.FinishRun(result.run_id, result.outcome, {}, result.message, clock_.Now());
    if (options_.observer != nullptr) {
      options_.observer->RunFinished(store::ToString(result.outcome), {});
    }
    return result;
  }
  if (!prepared.plan.actions.empty()) {
    const executor::Fleet fleet = FleetFor(prepared.desired);
    MeteredProgress metered(progress, options_.observer);
    StoreJournal journal(store_, result.run_id, clock_, logger_);
    executor::Context context{
        .fleet = &fleet,
        .journal = &journal,
        .progress = progress != nullptr || options_.observer != nullptr ? &metered : nullptr,
        .ledger = &prepared.ledger,
        .resume = prepared.resume};
    executor::Executor executor(options_.executor);
    result.report = executor.Run(prepared.plan, context, std::move(stop));
    for (size_t i = 0; i < result.report.actions.size(); ++i) {
      const executor::ActionReport& r = result.report.actions[i];
      const Action& a = prepared.plan.actions[i];
      if (r.pending) {
        cancelled_creates_[ResumeKey(a.vm, a.host)] = Unfinished{
            .vm = a.vm, .host = a.host, .pending = *r.pending, .template_hash = a.template_hash};
      }
      if (r.outcome == executor::Outcome::kFailed) {
        Event("error", "action-failed", a.vm,
              std::string(ToString(a.kind)) + " on " + a.host + ": " + r.status.ToString());
      }
    }
  }
  const executor::Report& report = result.report;
  store::RunCounts counts{
      .planned = static_cast<int64_t>(prepared.plan.actions.size()),
      .succeeded = static_cast<int64_t>(report.succeeded),
      .failed = static_cast<int64_t>(report.failed),
      .abandoned = static_cast<int64_t>(report.abandoned),
      .findings = static_cast<int64_t>(prepared.plan.findings.size()),
      .conflicts = static_cast<int64_t>(prepared.plan.Count(FindingKind::kConflict)),
      .refused = static_cast<int64_t>(prepared.plan.Count(FindingKind::kRefused))};
  result.outcome = report.cancelled                              ? store::RunOutcome::kCancelled
                   : (report.failed > 0 || report.abandoned > 0) ? store::RunOutcome::kPartial
                                                                 : store::RunOutcome::kSucceeded;
  result.message = std::to_string(report.succeeded) + " of " +
                   std::to_string(prepared.plan.actions.size()) + " action(s) succeeded";
  if (report.failed > 0) {
    result.message += ", " + std::to_string(report.failed) + " failed";
  }
  if (report.abandoned > 0) {
    result.message += ", " + std::to_string(report.abandoned) + " abandoned";
  }
  if (counts.refused > 0) {
    result.message += "; " + std::to_string(counts.refused) +
                      " deletion(s) refused (the revision would delete every managed VM)";
  }
  if (counts.conflicts > 0) {
    result.message += "; " + std::to_string(counts.conflicts) +
                      " conflict(s): desired names held by VMs Flotilla does not own";
  }
  if (prepared.fail_static) {
    result.message += "; " + prepared.problem + " (deletions held back)";
  }
  if (Status s =
          store_.FinishRun(result.run_id, result.outcome, counts, result.message, clock_.Now());
      !s.ok()) {
    logger_->error("store: {}", s.ToString());
  }
  if (options_.observer != nullptr) {
    options_.observer->RunFinished(store::ToString(result.outcome),
                                   std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now() - started));
    options_.observer->DeletionsDeferred(prepared.plan.Count(FindingKind::kDeferred));
  }
  // The revision is recorded as applied the first time a pass acts on it.
  Result<std::optional<store::RevisionRecord>> applied = store_.LastApplied();
  if (applied.ok() && (!*applied || (*applied)->sha != prepared.sha)) {
    (void)store_.RecordRevision(store::RevisionRecord{.sha = prepared.sha,
                                                      .attempted_at = clock_.Now(),
                                                      .outcome = store::RevisionOutcome::kApplied});
  }
  return result;
}

int64_t Controller::RecordFailedRun(std::string_view trigger, std::string_view message) {
  if (options_.preview) {
    return 0;
  }
  if (options_.observer != nullptr) {
    options_.observer->RunFinished(store::ToString(store::RunOutcome::kFailed), {});
  }
  Result<int64_t> run = store_.BeginRun(trigger, current_sha_.value_or(""), clock_.Now());
  if (!run.ok()) {
    return 0;
  }
  (void)store_.FinishRun(*run, store::RunOutcome::kFailed, {}, message, clock_.Now());
  return *run;
}

}  // namespace flotilla::controller
