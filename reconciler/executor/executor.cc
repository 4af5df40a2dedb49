#include "reconciler/executor/executor.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

namespace flotilla::executor {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// What one action has achieved so far in this run, kept across its attempts so that a retry
// picks up where the last attempt stopped (a replace whose new VM exists only deletes).
struct Progressed {
  std::optional<providers::PendingCreate> pending;  // reported by the provider
  bool created = false;                             // the new VM exists under its final name
  bool predecessor_gone = false;                    // replace: the old VM is deleted
};

// The key of Context::resume.
std::string ResumeKey(const std::string& vm, const std::string& host) { return vm + "@" + host; }

// Sleeps for `duration` unless the stop token fires first. False when stopped.
bool SleepUnlessStopped(milliseconds duration, const std::stop_token& stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  return !cv.wait_for(lock, stop, duration, [] { return false; }) && !stop.stop_requested();
}

// The run's journal, watched: after the first call that fails, the store can no longer be
// trusted to record what the run does, so no host is called again (journal first).
class WatchedJournal : public Journal {
 public:
  explicit WatchedJournal(Journal& inner) : inner_(inner) {}

  // The first failure, once there has been one.
  std::optional<Status> failure() const {
    if (!failed_.load()) {
      return std::nullopt;
    }
    std::lock_guard lock(mu_);
    return first_;
  }
  bool failed() const { return failed_.load(); }

  Result<int64_t> Intend(const Attempt& attempt) override { return Watch(inner_.Intend(attempt)); }
  Status Running(int64_t id) override { return Watch(inner_.Running(id)); }
  Status Pending(int64_t id, const providers::PendingCreate& pending) override {
    return Watch(inner_.Pending(id, pending));
  }
  Status Doing(int64_t id, std::string_view what) override { return Watch(inner_.Doing(id, what)); }
  Status Finished(int64_t id, Outcome outcome, std::string_view error) override {
    return Watch(inner_.Finished(id, outcome, error));
  }
  Status VmCreated(const LedgerEntry& entry) override { return Watch(inner_.VmCreated(entry)); }
  Status VmDeleted(std::string_view vm, std::string_view host) override {
    return Watch(inner_.VmDeleted(vm, host));
  }

 private:
  Result<int64_t> Watch(Result<int64_t> result) {
    if (!result.ok()) {
      (void)Watch(result.status());
    }
    return result;
  }
  Status Watch(Status status) {
    if (!status.ok()) {
      std::lock_guard lock(mu_);
      if (!failed_.load()) {
        first_ = status.WithContext("journal");
        failed_.store(true);
      }
    }
    return status;
  }

  Journal& inner_;
  std::atomic<bool> failed_{false};
  mutable std::mutex mu_;
  Status first_;
};

// Why an action is not (or no longer) run once the journal has failed.
Status JournalBroken(const Status& failure) {
  return Status::Unavailable("not run: the journal cannot be written, so no host is called (" +
                             failure.message() + ")");
}

// Shared by the workers of one Run.
class Runner {
 public:
  Runner(const ExecutorOptions& options, const Plan& plan, const Context& context,
         std::stop_token stop, uint64_t seed)
      : options_(options),
        plan_(plan),
        context_(context),
        journal_(*context.journal),
        stop_(std::move(stop)),
        rng_(seed),
        states_(plan.actions.size(), State::kPending),
        reports_(plan.actions.size()) {
    for (size_t i = 0; i < plan.actions.size(); ++i) {
      index_[plan.actions[i].id] = i;
      reports_[i].action_id = plan.actions[i].id;
    }
  }

  Report Run() {
    const size_t workers =
        std::min<size_t>(std::max<uint32_t>(options_.concurrency, 1), plan_.actions.size());
    std::vector<std::jthread> threads;
    threads.reserve(workers);
    for (size_t i = 0; i < workers; ++i) {
      threads.emplace_back([this] { Work(); });
    }
    threads.clear();  // joins
    Report report;
    report.actions = std::move(reports_);
    for (const ActionReport& r : report.actions) {
      switch (r.outcome) {
        case Outcome::kSucceeded:
          ++report.succeeded;
          break;
        case Outcome::kFailed:
          ++report.failed;
          break;
        case Outcome::kAbandoned:
          ++report.abandoned;
          break;
      }
    }
    report.cancelled = stop_.stop_requested() && report.abandoned > 0;
    return report;
  }

 private:
  enum class State { kPending, kRunning, kDone };

  // Takes eligible actions until every action is done.
  void Work() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (done_ == plan_.actions.size()) {
        return;
      }
      std::optional<size_t> next;
      std::string skip;  // why the chosen action is not run
      for (size_t i = 0; i < plan_.actions.size() && !next; ++i) {
        if (states_[i] != State::kPending) {
          continue;
        }
        const Action& action = plan_.actions[i];
        bool ready = true;
        for (int dep : action.depends_on) {
          auto it = index_.find(dep);
          if (it == index_.end()) {
            continue;
          }
          if (states_[it->second] != State::kDone) {
            ready = false;
            break;
          }
          if (reports_[it->second].outcome != Outcome::kSucceeded) {
            skip = "not run: " + std::string(ToString(plan_.actions[it->second].kind)) + " " +
                   plan_.actions[it->second].vm + " did not succeed";
            break;
          }
        }
        if (skip.empty() && stop_.stop_requested()) {
          skip = "not run: cancelled";
        }
        if (skip.empty() && journal_.failed()) {
          skip = JournalBroken(*journal_.failure()).message();
        }
        if (!skip.empty()) {
          next = i;
          break;
        }
        if (!ready || host_busy_[action.host] >= options_.per_host_concurrency) {
          continue;
        }
        next = i;
      }
      if (!next) {
        // Wake up when an action finishes (freeing a host or a dependency) or on cancellation.
        const uint64_t seen = generation_;
        if (stop_.stop_requested()) {
          cv_.wait(lock, [&] { return generation_ != seen; });  // only finishes are left
        } else {
          cv_.wait(lock, stop_, [&] { return generation_ != seen; });
        }
        continue;
      }
      const size_t i = *next;
      states_[i] = State::kRunning;
      const Action& action = plan_.actions[i];
      const bool run = skip.empty();
      if (run) {
        ++host_busy_[action.host];
      }
      lock.unlock();
      ActionReport report = run ? Execute(action) : Skip(action, skip);
      lock.lock();
      if (run) {
        --host_busy_[action.host];
      }
      report.action_id = action.id;
      reports_[i] = std::move(report);
      states_[i] = State::kDone;
      ++done_;
      ++generation_;
      cv_.notify_all();
    }
  }

  // Records an action that will not run (a dependency failed, or cancelled).
  ActionReport Skip(const Action& action, const std::string& why) {
    ActionReport report{.outcome = Outcome::kAbandoned, .status = Status::Cancelled(why)};
    Result<int64_t> id = journal_.Intend(Journal::Attempt{.action = &action, .attempt = 0});
    if (id.ok()) {
      (void)journal_.Finished(*id, Outcome::kAbandoned, why);
    }
    Announce(action, report);
    return report;
  }

  ActionReport Execute(const Action& action) {
    const auto started = steady_clock::now();
    ActionReport report;
    Progressed progressed;
    const std::string predecessor = PredecessorId(action);
    for (int attempt = 1;; ++attempt) {
      if (stop_.stop_requested()) {
        report.outcome = Outcome::kAbandoned;
        report.status = Status::Cancelled("cancelled before attempt " + std::to_string(attempt));
        break;
      }
      if (std::optional<Status> broken = journal_.failure()) {
        report.outcome = Outcome::kAbandoned;
        report.status = JournalBroken(*broken);
        break;
      }
      Result<int64_t> id = journal_.Intend(
          Journal::Attempt{.action = &action, .attempt = attempt, .predecessor_id = predecessor});
      if (!id.ok()) {
        // Journal first: without a record of the intent the provider is not called.
        report.outcome = Outcome::kFailed;
        report.status = id.status().WithContext("journal");
        break;
      }
      report.attempts = attempt;
      if (Status s = journal_.Running(*id); !s.ok()) {
        report.outcome = Outcome::kAbandoned;
        report.status = JournalBroken(s);
        break;
      }
      {
        std::lock_guard lock(progress_mu_);
        if (context_.progress != nullptr) {
          context_.progress->Started(action, attempt, Ordinal(action), plan_.actions.size());
        }
      }
      Status status = Attempt(action, *id, predecessor, progressed);
      const bool retry = !status.ok() && status.IsRetryable() &&
                         attempt < static_cast<int>(options_.max_attempts) &&
                         !stop_.stop_requested();
      const Outcome outcome = status.ok()            ? Outcome::kSucceeded
                              : status.IsCancelled() ? Outcome::kAbandoned
                                                     : Outcome::kFailed;
      (void)journal_.Finished(*id, outcome, status.ok() ? "" : status.ToString());
      report.status = status;
      report.outcome = outcome;
      if (!retry) {
        break;
      }
      if (!SleepUnlessStopped(Backoff(attempt), stop_)) {
        report.outcome = Outcome::kAbandoned;
        break;
      }
    }
    report.elapsed = std::chrono::duration_cast<milliseconds>(steady_clock::now() - started);
    if (report.outcome != Outcome::kSucceeded && !progressed.created) {
      report.pending = progressed.pending;
    }
    if (action.kind == ActionKind::kReplace && action.create_first && progressed.created &&
        !progressed.predecessor_gone) {
      // The ledger already names the new VM; the old one must not become an unowned twin.
      // Journal its delete and leave it unfinished: recovery deletes it (by provider id) once
      // its host answers.
      Action leftover{.id = action.id,
                      .kind = ActionKind::kDelete,
                      .vm = action.vm,
                      .vmset = action.vmset,
                      .pool = action.pool,
                      .host = action.from_host,
                      .reason = "predecessor of a replace"};
      (void)journal_.Intend(
          Journal::Attempt{.action = &leftover, .attempt = 1, .predecessor_id = predecessor});
    }
    Announce(action, report);
    return report;
  }

  void Announce(const Action& action, const ActionReport& report) {
    std::lock_guard lock(progress_mu_);
    if (context_.progress != nullptr) {
      context_.progress->Finished(action, report.outcome, report.status, report.elapsed,
                                  Ordinal(action), plan_.actions.size());
    }
  }

  // The action's place in the order this run started actions (a skipped one gets the next).
  // REQUIRES: progress_mu_ held.
  size_t Ordinal(const Action& action) {
    auto [it, added] = ordinals_.try_emplace(action.id, ordinals_.size() + 1);
    return it->second;
  }

  // The provider id of the VM a replace or delete removes: the one the host reported when the
  // plan was made, else the ledger's; empty when unknown (the VM is then addressed by name).
  std::string PredecessorId(const Action& action) const {
    if (action.kind != ActionKind::kReplace && action.kind != ActionKind::kDelete) {
      return "";
    }
    if (!action.vm_id.empty()) {
      return action.vm_id;
    }
    if (context_.ledger == nullptr) {
      return "";
    }
    const LedgerEntry* entry = context_.ledger->Find(action.vm);
    const std::string& where = action.kind == ActionKind::kReplace ? action.from_host : action.host;
    return entry != nullptr && entry->host == where ? entry->provider_id : "";
  }

  milliseconds Backoff(int attempt) {
    const int64_t base = options_.initial_backoff.count();
    const int64_t cap = options_.max_backoff.count();
    int64_t delay = base;
    for (int i = 1; i < attempt && delay < cap; ++i) {
      delay *= 2;
    }
    delay = std::min(delay, cap);
    // Half fixed, half random: spreads retries of many actions without ever retrying at once.
    std::lock_guard lock(rng_mu_);
    std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(delay / 2, 0));
    return milliseconds(delay - delay / 2 + jitter(rng_));
  }

  // One attempt; picks up from what earlier attempts achieved.
  Status Attempt(const Action& action, int64_t id, const std::string& predecessor,
                 Progressed& progressed) {
    auto provider_it = context_.fleet->providers.find(action.pool);
    auto host_it = context_.fleet->hosts.find(action.host);
    if (provider_it == context_.fleet->providers.end() || host_it == context_.fleet->hosts.end()) {
      return Status::Internal("no provider for host " + action.host + " of pool " + action.pool);
    }
    providers::Provider& provider = *provider_it->second;
    const providers::HostRef& host = host_it->second;
    const auto short_deadline = [&] { return providers::DeadlineIn(options_.action_timeout); };
    switch (action.kind) {
      case ActionKind::kCreate:
        return progressed.created ? Status::Ok() : Create(provider, host, action, id, progressed);
      case ActionKind::kReplace: {
        auto from_it = context_.fleet->hosts.find(action.from_host);
        if (from_it == context_.fleet->hosts.end()) {
          return Status::Internal("replace " + action.vm + ": unknown host " + action.from_host);
        }
        const std::string old = predecessor.empty() ? action.vm : predecessor;
        if (action.create_first) {
          if (!progressed.created) {
            if (Status s = Create(provider, host, action, id, progressed); !s.ok()) {
              return s;
            }
          }
          if (!progressed.predecessor_gone) {
            if (std::optional<Status> broken = journal_.failure()) {
              return JournalBroken(*broken);
            }
            if (Status s = provider.Delete(from_it->second, old, short_deadline()); !s.ok()) {
              return s.WithContext("deleting the replaced VM on " + action.from_host);
            }
            progressed.predecessor_gone = true;
          }
          return Status::Ok();
        }
        if (!progressed.predecessor_gone) {
          if (Status s = provider.Delete(from_it->second, old, short_deadline()); !s.ok()) {
            return s.WithContext("deleting the replaced VM on " + action.from_host);
          }
          progressed.predecessor_gone = true;
          if (Status s = journal_.VmDeleted(action.vm, action.from_host); !s.ok()) {
            return s.WithContext("journal");
          }
        }
        return progressed.created ? Status::Ok() : Create(provider, host, action, id, progressed);
      }
      case ActionKind::kStart:
        return Start(provider, host, action);
      case ActionKind::kStop:
        return provider.Stop(
            host, action.vm,
            providers::StopOptions{.graceful_timeout = options_.graceful_stop_timeout},
            providers::DeadlineIn(options_.graceful_stop_timeout + options_.action_timeout));
      case ActionKind::kDelete: {
        const std::string id_or_name = predecessor.empty() ? action.vm : predecessor;
        if (Status s = provider.Delete(host, id_or_name, short_deadline()); !s.ok()) {
          return s;
        }
        return journal_.VmDeleted(action.vm, action.host);
      }
      case ActionKind::kAdopt:
        // Nothing changes on the host: the VM is Flotilla's from now on.
        return journal_.VmCreated(LedgerEntry{.vm = action.vm,
                                              .vmset = action.vmset,
                                              .pool = action.pool,
                                              .host = action.host,
                                              .provider_id = action.vm_id,
                                              .template_hash = action.template_hash});
      case ActionKind::kPrepull: {
        if (!action.templ) {
          return Status::Internal("prepull on " + action.host + " has no template");
        }
        // A pull takes as long as a create's.
        return provider.Prepull(
            host,
            providers::PrepullRequest{
                .templ = *action.templ,
                .cancelled = [this] { return stop_.stop_requested(); },
                .on_status = [&](std::string_view what) { Doing(id, action, what); }},
            providers::DeadlineIn(options_.create_timeout));
      }
    }
    return Status::Internal("unknown action kind");
  }

  // What a running action is doing, for the journal and for people.
  void Doing(int64_t id, const Action& action, std::string_view what) {
    (void)journal_.Doing(id, what);
    std::lock_guard lock(progress_mu_);
    if (context_.progress != nullptr) {
      context_.progress->Doing(action, what);
    }
  }

  Status Create(providers::Provider& provider, const providers::HostRef& host, const Action& action,
                int64_t id, Progressed& progressed) {
    if (!action.templ) {
      return Status::Internal(std::string(ToString(action.kind)) + " " + action.vm +
                              " has no template");
    }
    providers::CreateRequest request{.name = action.vm, .templ = *action.templ};
    if (progressed.pending) {
      request.resume = progressed.pending;
    } else if (auto it = context_.resume.find(ResumeKey(action.vm, action.host));
               it != context_.resume.end()) {
      request.resume = it->second;
    }
    request.on_progress = [&](const providers::PendingCreate& pending) {
      progressed.pending = pending;
      (void)journal_.Pending(id, pending);
    };
    // A temporary name the journal did not take must not reach the host: the provider looks
    // at `cancelled` after on_progress, before its first change.
    request.cancelled = [this] { return stop_.stop_requested() || journal_.failed(); };
    request.on_status = [&](std::string_view what) { Doing(id, action, what); };
    const bool ours_to_adopt = request.resume.has_value() || progressed.pending.has_value();
    Result<providers::CreateResult> created =
        provider.Create(host, request, providers::DeadlineIn(options_.create_timeout));
    if (!created.ok()) {
      return created.status();
    }
    // The provider adopts a VM that already has the name. That is ours only if an attempt of
    // ours got as far as asking the host for it; otherwise someone else made it (between
    // planning and now, or under a name differing only in case): it is never taken over.
    if (created->adopted && (!ours_to_adopt || created->vm.name != action.vm)) {
      return Status::Conflict("host " + host.name + " already has a VM named " + created->vm.name +
                              " that Flotilla did not create; left alone");
    }
    progressed.created = true;
    if (Status s = journal_.VmCreated(LedgerEntry{.vm = action.vm,
                                                  .vmset = action.vmset,
                                                  .pool = action.pool,
                                                  .host = action.host,
                                                  .provider_id = created->vm.id,
                                                  .template_hash = action.template_hash});
        !s.ok()) {
      // The VM exists; the next attempt adopts it and writes the ledger again.
      progressed.created = false;
      return s.WithContext("journal");
    }
    return Status::Ok();
  }

  // The create or replace of the same VM this start follows, if any.
  const Action* Creator(const Action& start) const {
    for (int dep : start.depends_on) {
      auto it = index_.find(dep);
      if (it == index_.end()) {
        continue;
      }
      const Action& a = plan_.actions[it->second];
      if (a.vm == start.vm && (a.kind == ActionKind::kCreate || a.kind == ActionKind::kReplace)) {
        return &a;
      }
    }
    return nullptr;
  }

  Status Start(providers::Provider& provider, const providers::HostRef& host,
               const Action& action) {
    if (Status s = provider.Start(host, action.vm, providers::DeadlineIn(options_.action_timeout));
        !s.ok()) {
      return s;
    }
    const Action* creator = Creator(action);
    if (creator == nullptr || !creator->templ || creator->templ->startup_script.empty()) {
      return Status::Ok();
    }
    // A guest that has just booted may not answer yet: connection-level failures are retried
    // here for a while; a script that runs and fails is final.
    const auto give_up = steady_clock::now() + options_.startup_script_wait;
    milliseconds wait{500};
    for (;;) {
      Result<providers::ExecResult> ran =
          provider.Exec(host, action.vm, creator->templ->startup_script,
                        {{"FLOTILLA_VM", action.vm}, {"FLOTILLA_VMSET", action.vmset}},
                        providers::DeadlineIn(options_.action_timeout));
      if (ran.ok()) {
        if (ran->exit_code == 0) {
          return Status::Ok();
        }
        std::string tail = ran->stderr_text.size() > 300
                               ? ran->stderr_text.substr(ran->stderr_text.size() - 300)
                               : ran->stderr_text;
        return Status::FailedPrecondition("startup script of " + action.vm + " exited with " +
                                          std::to_string(ran->exit_code) +
                                          (tail.empty() ? "" : ": " + tail));
      }
      if (steady_clock::now() + wait >= give_up || ran.status().IsPermissionDenied() ||
          ran.status().IsInvalidArgument()) {
        return ran.status().WithContext("startup script of " + action.vm);
      }
      if (!SleepUnlessStopped(wait, stop_)) {
        return Status::Cancelled("startup script of " + action.vm + " not run: cancelled");
      }
      wait = std::min(wait * 2, milliseconds{10000});
    }
  }

  const ExecutorOptions& options_;
  const Plan& plan_;
  const Context& context_;
  WatchedJournal journal_;
  std::stop_token stop_;

  std::mutex rng_mu_;
  std::mt19937_64 rng_;

  std::mutex progress_mu_;
  std::map<int, size_t> ordinals_;  // by action id: see Ordinal

  std::mutex mu_;  // guards everything below
  std::condition_variable_any cv_;
  uint64_t generation_ = 0;  // counts finished actions; waiters wait for it to move
  std::vector<State> states_;
  std::vector<ActionReport> reports_;
  std::map<std::string, uint32_t> host_busy_;
  std::map<int, size_t> index_;  // action id -> index; written only in the constructor
  size_t done_ = 0;
};

}  // namespace

std::string_view ToString(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSucceeded:
      return "succeeded";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kAbandoned:
      return "abandoned";
  }
  return "unknown";
}

Executor::Executor(ExecutorOptions options)
    : options_(options),
      seed_(options.jitter_seed != 0 ? options.jitter_seed : std::random_device{}()) {}

Report Executor::Run(const Plan& plan, const Context& context, std::stop_token stop) {
  if (plan.actions.empty()) {
    return Report{};
  }
  Runner runner(options_, plan, context, std::move(stop), seed_++);
  return runner.Run();
}

}  // namespace flotilla::executor
