#pragma once

// The controller: one reconcile pass, and what the loop keeps between passes (DESIGN section 6).
//
//   Sync      fetch the source; load and validate a new revision. A revision that cannot be
//             fetched, loaded or validated (or has no manifests at all) is recorded as failed or
//             rejected, and the last applied revision stays in force, with deletions held back
//             ("fail static") until a good revision arrives.
//   Prepare   observe every host (each with its own deadline), recover what a previous process
//             left unfinished (adopt VMs whose create completed, finish replaces, collect
//             creates to resume), and plan.
//   Execute   sweep temporary VMs of creates that will not be resumed, run the plan through the
//             executor, and record the run.
//
// Thread-safety: Sync and Prepare are called from one thread (the loop's); Execute may run on
// another thread while the loop calls Sync, never while it calls Prepare.

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "providers/registry.h"
#include "providers/secrets.h"
#include "reconciler/controller/pass_observer.h"
#include "reconciler/controller/snapshot.h"
#include "reconciler/executor/executor.h"
#include "reconciler/manifest/config.h"
#include "reconciler/manifest/loader.h"
#include "reconciler/model/clock.h"
#include "reconciler/model/plan.h"
#include "reconciler/planner/placement.h"
#include "reconciler/store/store.h"

namespace flotilla::controller {

// Where desired state comes from: a Git repository in production, anything in tests.
class DesiredSource {
 public:
  virtual ~DesiredSource() = default;
  // Fetches (if remote) and returns the commit to apply: the branch tip or the pinned revision.
  virtual Result<std::string> Poll() = 0;
  // The manifests at `sha`; problems inside files are diagnostics.
  virtual Result<manifest::LoadResult> Load(const std::string& sha) = 0;
  // For messages: the repository and branch, without credentials.
  virtual std::string Describe() const = 0;
  // What polling warned about since the last call (an SSH host key accepted unchecked, ...).
  virtual std::vector<std::string> TakeWarnings() { return {}; }
  // The subject, author and time of the commit `sha`, for people; nullopt when unknown.
  virtual std::optional<CommitSummary> Commit(const std::string& /*sha*/) { return std::nullopt; }
};

struct ControllerOptions {
  std::vector<std::string> pools;  // --pools: only these pools (and their VMSets); empty: all
  // Deletion budget (counted over planner.deletion_window from the journal), host_lost_after...
  planner::PlannerOptions planner;
  executor::ExecutorOptions executor;
  std::chrono::milliseconds host_timeout{std::chrono::seconds{15}};  // per observation
  // A host is reported offline once its observations have failed for this long, at least two in
  // a row (until then: degraded); 0: at the first failure. Planning is not affected: a host
  // that did not answer in a pass is never planned on in that pass.
  std::chrono::milliseconds host_offline_after{std::chrono::seconds{30}};
  // Attempts of one observation within a pass, for retryable failures, within host_timeout.
  uint32_t observe_attempts = 3;
  uint32_t observe_concurrency = 32;
  std::string secrets_dir;
  // Take over VMs that already carry desired names (`apply --adopt`): the planner's
  // adopt_existing for every set.
  bool adopt = false;
  // `flotilla plan`: the same fetch, observation, recovery view and planning, with nothing
  // changed anywhere: no revision, event, observation, run or ledger change is written, no host
  // is asked to change anything (recovery's deletions and adoptions are applied to the pass's
  // view only), nothing is announced, and Execute refuses.
  bool preview = false;
  // Told how passes go (metrics); may be null; outlives the controller.
  PassObserver* observer = nullptr;
  // Told of every request the providers send (metrics); may be null; outlives the controller.
  providers::RequestObserver* requests = nullptr;
};

// The key of Prepared::resume and of the creates a process cancelled: "<vm>@<host>".
std::string ResumeKey(std::string_view vm, std::string_view host);

// `base` with everything the configuration file sets: secrets, timeouts, the deletion budget
// and window, host loss, executor limits. apply, run and plan build their controllers with it.
ControllerOptions ConfiguredOptions(const manifest::ReconcilerConfig& config,
                                    ControllerOptions base);

// What the last Sync decided.
struct SyncResult {
  std::string sha;           // the revision in force; empty when none could ever be loaded
  bool changed = false;      // a new revision came into force
  bool fail_static = false;  // the newest revision could not be used; deletions are held
  std::string problem;       // why, when fail_static or when nothing is in force
  std::string problem_sha;   // the revision `problem` is about; empty when none could be read
  std::vector<RevisionDiagnostic> diagnostics;  // when that revision was invalid
};

// Everything a pass decided before acting on it.
struct Prepared {
  std::string sha;
  Desired desired;
  Observed observed;
  Ledger ledger;
  Plan plan;
  bool fail_static = false;
  std::string problem;
  std::map<std::string, providers::PendingCreate> resume;  // by "<vm>@<host>"
  size_t recovered = 0;  // unfinished actions of an earlier process that were settled
  // Why each pool whose provider could not be built (credentials missing, ...) could not (the
  // message names the pool); their hosts count as offline.
  std::vector<std::string> unusable_pools;
  // The approval this pass plans with, if one was given (Controller::Approve).
  std::optional<PassApproval> approval;
  // The name of the API token that asked for this pass (Loop::Trigger); Execute records it with
  // the run. Empty: nobody did.
  std::string actor;

  // Execute has something to do.
  bool HasWork() const { return !plan.actions.empty(); }
};

struct PassResult {
  int64_t run_id = 0;
  store::RunOutcome outcome = store::RunOutcome::kSucceeded;
  executor::Report report;
  std::string message;
};

class Controller {
 public:
  // `store`, `source`, `registry`, `clock` and `logger` must outlive the controller.
  Controller(ControllerOptions options, store::Store& store, DesiredSource& source,
             const providers::ProviderRegistry& registry, const Clock& clock,
             std::shared_ptr<spdlog::logger> logger);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Fetches and, if the revision changed, loads and validates it (see above). Never fails: a
  // problem is recorded and reported in the result.
  SyncResult Sync();

  // Observes, recovers and plans against the revision in force. Fails only when no revision
  // is in force, the store cannot be read, or --pools names a pool the revision lacks.
  Result<Prepared> Prepare();

  // Leave to pass the deletion guards for the next Prepare only (then it is spent): its
  // max_deletions replaces the budget and the window, allow_empty lets the revision delete
  // every managed VM. Execute records it with the run. Any thread.
  void Approve(PassApproval approval);

  // Runs the plan and records the run (trigger: "apply", "timer", "change", "manual", ...).
  // `progress` may be null. `on_started`, if set, is called with the run's id as soon as the
  // run is recorded (before any action), or with 0 if it could not be.
  PassResult Execute(const Prepared& prepared, std::string_view trigger,
                     executor::Progress* progress, std::stop_token stop,
                     const std::function<void(int64_t)>& on_started = {});

  // Records a run that could not get as far as executing (no revision, observation failed).
  // Returns its id, or 0 if the store could not record it.
  int64_t RecordFailedRun(std::string_view trigger, std::string_view message);

  const SyncResult& last_sync() const { return sync_; }

  // What the latest Prepare saw and planned; null before the first. Any thread.
  std::shared_ptr<const Snapshot> snapshot() const;

  // A byte stream to TCP `port` of `vm` on host `host` of pool `pool`, through the pool's
  // provider (Provider::OpenTunnel), for the API's tunnels. The pool and host are looked up in
  // the latest snapshot (NotFound when it has neither). Any thread, also while a pass runs.
  // The stream keeps the provider that opened it: a change of the pool builds a new one for
  // what follows, and the old one stays until its last tunnel has closed.
  Result<KeptFd> OpenTunnel(const std::string& pool, const std::string& host, const VmInfo& vm,
                            uint16_t port, providers::Deadline deadline);

 private:
  struct PoolProvider;

  Result<Observed> Observe(const Desired& desired);
  // A create that did not finish, and the template hash it was building.
  struct Unfinished {
    std::string vm;
    std::string host;
    providers::PendingCreate pending;
    std::string template_hash;
  };
  // Settles unfinished actions of an earlier process; collects creates to resume by
  // "<vm>@<host>" into `unfinished`.
  // Applies Decide (recovery.h) to every unfinished journal row of this loop's pools: settles
  // rows, writes the ledger (or, in a preview, only `prepared.ledger`), and collects the
  // creates to resume and the deletions that finish interrupted actions (for the planner).
  Status Recover(Prepared& prepared, std::map<std::string, Unfinished>& unfinished,
                 std::vector<planner::FinishDelete>& finish);
  // Ledger rows against what the hosts report: a row whose id its host does not report while
  // it reports a VM of that name takes the observed id when the journal shows this store may
  // have made that VM without recording it (Store::MadeOn; otherwise it is reported); counted
  // in flotilla_ledger_mismatches.
  Status CheckLedger(Prepared& prepared);
  // Temporary VMs of creates that this plan does not resume, added to the plan as deletions
  // ("left by an interrupted create of lx-8"), so that `plan` shows what `apply` does and the
  // journal records them. Only temporaries this store's journal asked a host for (and what a
  // provider's prepull made) are Flotilla's; any other VM is someone else's.
  void PlanCleanups(Prepared& prepared) const;
  // Says what the guards hold back and what conflicts, every pass while it lasts (a warning
  // each), with an event when each starts and ends.
  void Announce(const Plan& plan);
  Result<providers::Provider*> ProviderFor(const HostPool& pool);
  // ProviderFor's entry, built when missing or stale. REQUIRES: providers_mu_ held.
  Result<std::shared_ptr<PoolProvider>> EntryFor(const HostPool& pool);
  // Forgets the providers whose secrets now read differently, so that they are built again
  // with the new values. Once per pass (Prepare).
  void RefreshCredentials();
  executor::Fleet FleetFor(const Desired& desired);
  bool InScope(const std::string& pool) const;
  void Event(std::string_view level, std::string_view kind, std::string_view subject,
             std::string_view message);

  ControllerOptions options_;
  store::Store& store_;
  DesiredSource& source_;
  const providers::ProviderRegistry& registry_;
  const Clock& clock_;
  std::shared_ptr<spdlog::logger> logger_;
  providers::FileSecretSource secrets_;

  std::optional<std::string> current_sha_;  // the revision in force
  Desired current_;                         // its desired state (filtered to the pools)
  std::string newest_problem_sha_;          // a revision already rejected: not recorded again
  bool newest_problem_rejected_ = false;    // it was rejected (invalid), not unreadable
  std::string unknown_pools_;               // MissingPools of the revision in force
  std::set<std::string> warned_;            // source warnings already logged by this process
  SyncResult sync_;
  // The commit `sha` for the snapshot, asked of the source once.
  std::optional<CommitSummary> DescribeCommit(const std::string& sha);
  // Commits already described for the snapshot (the one in force and the newest rejected).
  std::map<std::string, std::optional<CommitSummary>> commits_;
  // By pool (shared_ptr: PoolProvider is complete only in pool_providers.cc; a tunnel holds
  // its entry while it opens). Guarded by providers_mu_: the API opens tunnels from its threads.
  mutable std::mutex providers_mu_;
  std::map<std::string, std::shared_ptr<PoolProvider>> providers_;
  // When this process first tried to observe each host: host loss counts from here at the
  // earliest (the grace after start).
  std::map<std::string, std::chrono::system_clock::time_point> first_observed_;
  // What the store holds of the hosts: loaded at the first pass, then kept in step with what
  // each pass saves (the previous observation, and what SaveHosts need not rewrite); empty until
  // loaded, and again after a save failed (its outcome on the file is not known). A preview saves
  // nothing and loads it at every pass.
  std::optional<Observed> stored_hosts_;
  // The outcomes of each host's latest observation attempts (true: failed), newest last, at most
  // kObservationWindow: its error rate.
  std::map<std::string, std::deque<bool>> attempts_;
  // Creates cancelled by this process (superseded or shut down), to resume or sweep.
  std::map<std::string, Unfinished> cancelled_creates_;
  // What Announce reported in the last pass: "conflict <vm> <host>" or "refused <pool>", with
  // the event subject; an event marks each one's end.
  std::map<std::string, std::string> announced_;

  mutable std::mutex snapshot_mu_;  // guards snapshot_ and approval_
  std::shared_ptr<const Snapshot> snapshot_;
  std::optional<PassApproval> approval_;  // for the next Prepare
};

}  // namespace flotilla::controller
