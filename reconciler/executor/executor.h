#pragma once

// The executor: runs a Plan's actions through the providers (DESIGN section 5).
//
// - Concurrency is bounded globally (ExecutorOptions::concurrency) and per host
//   (per_host_concurrency); an action waits until every action it depends on has succeeded, and
//   is skipped (abandoned) when one of them failed.
// - Journal first: every attempt is written to the Journal as `intended` before its provider
//   call, then `running`, then its outcome. A created VM is written to the ledger (VmCreated) as
//   soon as the host confirms it, before anything else happens to it; a deleted one is removed
//   (VmDeleted) as soon as the host confirms the delete. If the journal cannot be written, the
//   provider is not called.
// - Retryable errors (Status::IsRetryable) are retried with exponential backoff (doubling from
//   initial_backoff up to max_backoff) and "equal jitter": each wait is half that delay plus a
//   random part of up to the other half, up to max_attempts per action; terminal errors are not
//   retried. Every provider call has a deadline (create_timeout for creates, action_timeout
//   otherwise).
// - Cancellation (the stop token): no new action or attempt starts, backoff waits end, a
//   create that is waiting on the host gives up, and the remaining actions are recorded as
//   abandoned. Calls already under way finish within their deadlines.
//
// Action semantics:
//   create   Provider::Create (resuming a journalled PendingCreate when given one), then
//            VmCreated.
//   replace  create_first: Create on `host`, VmCreated (the ledger now names the new VM), then
//            Delete the predecessor on `from_host`. Otherwise Delete the predecessor first
//            (VmDeleted), then Create. The predecessor is addressed by its provider id.
//   start    Provider::Start; when the start follows a create or replace of the same VM in this
//            plan and the template has a startup script, the script is run through Exec.
//   stop     Provider::Stop (graceful, then forced).
//   delete   Provider::Delete, then VmDeleted.
//   adopt    VmCreated for the existing VM (Action::vm_id); the host is not called.
//
// Thread-safety: Run may be called from one thread at a time per Executor; the Journal and the
// providers are called from many threads.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "providers/provider.h"
#include "reconciler/model/plan.h"
#include "reconciler/model/result.h"
#include "reconciler/model/status.h"

namespace flotilla::executor {

struct ExecutorOptions {
  uint32_t concurrency = 32;                        // actions under way at once, in all
  uint32_t per_host_concurrency = 2;                // actions under way at once on one host
  uint32_t max_attempts = 4;                        // per action and run, for retryable errors
  std::chrono::milliseconds initial_backoff{1000};  // before the second attempt
  std::chrono::milliseconds max_backoff{30000};
  std::chrono::milliseconds create_timeout{std::chrono::minutes{30}};  // create, replace
  std::chrono::milliseconds action_timeout{std::chrono::minutes{5}};   // everything else
  std::chrono::milliseconds graceful_stop_timeout{std::chrono::seconds{60}};
  // How long a startup script may keep failing to reach a freshly started VM (the guest agent
  // needs a moment after boot) before the start is failed.
  std::chrono::milliseconds startup_script_wait{std::chrono::minutes{5}};
  uint64_t jitter_seed = 0;  // 0: seeded from std::random_device
};

// Where actions go: the provider of every pool and the address of every host.
struct Fleet {
  std::map<std::string, providers::Provider*> providers;  // by pool name; not owned
  std::map<std::string, providers::HostRef> hosts;        // by host name
};

enum class Outcome { kSucceeded, kFailed, kAbandoned };
std::string_view ToString(Outcome outcome);  // "succeeded", "failed", "abandoned"

// Where the executor writes what it does. Implementations must be safe to call from many
// threads. Any method may fail; a failed Intend keeps the provider from being called.
class Journal {
 public:
  virtual ~Journal() = default;

  struct Attempt {
    const Action* action = nullptr;
    int attempt = 1;             // 1-based
    std::string predecessor_id;  // replace and delete: the provider id of the VM going away
  };

  // Before the provider is called; returns an id for the calls below.
  virtual Result<int64_t> Intend(const Attempt& attempt) = 0;
  virtual Status Running(int64_t id) = 0;
  // A create reported its temporary name (and job) for resuming after a crash.
  virtual Status Pending(int64_t id, const providers::PendingCreate& pending) = 0;
  // What a running create is doing, in words ("Downloading pack file 45% ..."), for people
  // following the run. Not needed to resume anything.
  virtual Status Doing(int64_t /*id*/, std::string_view /*what*/) { return Status::Ok(); }
  virtual Status Finished(int64_t id, Outcome outcome, std::string_view error) = 0;
  // The host confirmed the VM exists under its final name: it is Flotilla's from now on.
  virtual Status VmCreated(const LedgerEntry& entry) = 0;
  // The host confirmed the VM is gone.
  virtual Status VmDeleted(std::string_view vm, std::string_view host) = 0;
};

// Live progress, for people. Called from worker threads, one call at a time. `ordinal` is the
// action's place, from 1, in the order this run started its actions (the same in its Started,
// Doing and Finished, whatever the attempt); `total` the actions of the plan.
class Progress {
 public:
  virtual ~Progress() = default;
  virtual void Started(const Action& action, int attempt, size_t ordinal, size_t total) = 0;
  virtual void Finished(const Action& action, Outcome outcome, const Status& status,
                        std::chrono::milliseconds elapsed, size_t ordinal, size_t total) = 0;
  // What a running action is doing, as its provider says (a pull's progress).
  virtual void Doing(const Action& /*action*/, std::string_view /*what*/) {}
};

struct ActionReport {
  int action_id = 0;
  Outcome outcome = Outcome::kAbandoned;
  Status status;     // the last error; OK when succeeded
  int attempts = 0;  // provider attempts made
  std::chrono::milliseconds elapsed{0};
  // A create or replace that did not finish: what the provider reported, to resume later.
  std::optional<providers::PendingCreate> pending;
};

struct Report {
  std::vector<ActionReport> actions;  // one per plan action, in plan order
  size_t succeeded = 0;
  size_t failed = 0;
  size_t abandoned = 0;
  bool cancelled = false;  // the stop token was triggered before everything ran
};

// What the executor needs to know beyond the plan.
struct Context {
  const Fleet* fleet = nullptr;
  Journal* journal = nullptr;
  Progress* progress = nullptr;  // may be null
  // The ledger as planned from: the provider ids of VMs being replaced or deleted.
  const Ledger* ledger = nullptr;
  // Creates left unfinished by an earlier process, by "<vm>@<host>": passed back to the
  // provider as CreateRequest::resume when the plan creates that VM on that host.
  std::map<std::string, providers::PendingCreate> resume;
};

class Executor {
 public:
  explicit Executor(ExecutorOptions options);

  // Runs every action of `plan`; returns when all have finished or been abandoned.
  Report Run(const Plan& plan, const Context& context, std::stop_token stop = {});

 private:
  ExecutorOptions options_;
  uint64_t seed_;
};

}  // namespace flotilla::executor
