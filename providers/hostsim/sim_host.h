#pragma once

// One simulated Mac host: its VMs, catalog cache, jobs, tokens, injected faults and counters,
// and the rules of prl-devops-service (reference §2-§6, §8.3). No HTTP here: every API call
// takes the request's body text and returns a Reply (status + JSON body) that the server
// writes as is.
//
// Thread-safety: every public method is safe to call from any thread. One mutex guards the
// host's state; it is never held while sleeping for a latency, while waiting, or while calling
// SimEnv::OnMutation(), so a slow operation on one VM never blocks others.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "providers/hostsim/sim_guest.h"
#include "providers/hostsim/sim_options.h"
#include "providers/hostsim/sim_version.h"

namespace flotilla::hostsim {

class SimReverseProxy;

// What a host's reverse proxy asks about its VMs (sim_proxy.h). None of these may call back
// into the proxy.
class ProxyVms {
 public:
  virtual ~ProxyVms() = default;
  // The VM's address when `vm_id` (UUID or name) is running with one, as GetVm reports it.
  virtual std::optional<std::string> RunningAddress(const std::string& vm_id) = 0;
  // target_vm_details for a route (GET responses); nullopt when there is no such VM.
  virtual std::optional<nlohmann::json> Details(const std::string& vm_id) = 0;
  // Whether a running VM of the host has the address `ip` now.
  virtual bool GuestAt(const std::string& ip) = 0;
};

// What a host needs from its surroundings. SimWorld implements it.
class SimEnv {
 public:
  virtual ~SimEnv() = default;
  // A fresh lowercase UUID from the seeded generator.
  virtual std::string NewUuid() = 0;
  // An unpredictable opaque token (not seeded: tokens die with the process).
  virtual std::string NewToken() = 0;
  // The configured latency of `op` (a LatencyNames() entry) with jitter applied.
  virtual Duration Latency(std::string_view op) = 0;
  // True with probability `p` (seeded). Draws nothing when p <= 0.
  virtual bool Chance(double p) = 0;
  // Sleeps `d`, returning early when the simulator shuts down.
  virtual void Sleep(Duration d) = 0;
  // Runs `task` on the scheduler thread after `delay`. Tasks must not block.
  virtual void Schedule(Duration delay, std::function<void()> task) = 0;
  // Called after each change worth persisting, with no host lock held.
  virtual void OnMutation() = 0;
  // Where guests run commands (shared by every host); null with --guest-exec succeed.
  virtual const GuestShell* Guests() = 0;
};

// An error as the real service reports it (reference §1.1); Body() is the generic shape.
struct ApiError {
  int status = 500;
  std::string message;

  // errors.NewWithCode(msg, N): HTTP N, "error N: msg".
  static ApiError Coded(int code, std::string_view msg);
  // errors.New(msg): HTTP 400, "error: msg".
  static ApiError Uncoded(std::string_view msg);
  // A failed prlctl call: HTTP 404 with the raw text.
  static ApiError Prlctl(std::string msg);
  // A fixed message with a status (request validation, wrapped pull errors).
  static ApiError Raw(int status, std::string msg);

  nlohmann::json Body() const;  // {"message":..,"code":..}
};

// An HTTP answer: status and JSON body; no body when `body` is empty.
struct Reply {
  int status = 200;
  std::optional<nlohmann::json> body;
  // The connection breaks after the status line and headers: the client never gets the body
  // (the network failing mid-answer; whatever the call did stays done).
  bool drop = false;

  static Reply Json(int status, nlohmann::json body) { return {status, std::move(body)}; }
  static Reply Empty(int status) { return {status, std::nullopt}; }
  static Reply Error(const ApiError& error) { return {error.status, error.Body()}; }
};

// The seven state operations of §3.2.
enum class StateOp { kStart, kStop, kRestart, kSuspend, kResume, kPause, kReset };
// "start", "stop", ...: the path segment, latency name and endpoint name.
std::string_view StateOpName(StateOp op);
std::optional<StateOp> ParseStateOp(std::string_view name);

// Runtime chaos of one host (POST /_sim/chaos): calls whose answer is lost after the operation
// ran, as when the network between a client and a real host fails. A fault rate set here
// replaces --fault-rate and its per-endpoint rates.
struct Chaos {
  std::optional<double> fault_rate;  // 500 "injected fault" before the call runs; unset: options
  double drop_rate = 0;              // the connection breaks mid-answer (Reply::drop)
  double slow_rate = 0;              // the answer is held back `slow_for` (a client's timeout)
  Duration slow_for{0};
};

// What happens to one answer under Chaos.
enum class LostAnswer { kNone, kDrop, kSlow };

// A command run through PUT machines/{id}/execute.
struct Execution {
  std::string command;
  std::map<std::string, std::string> environment_variables;
};

// A simulated VM.
struct SimVm {
  std::string uuid;  // lowercase, no braces
  std::string name;
  std::string description;
  std::string owner = "root";
  GuestOs os = GuestOs::kLinux;
  int cpus = 2;
  uint64_t memory_mb = 2048;
  uint64_t disk_mb = 65536;
  std::string state = "stopped";
  int ip_octet = 2;  // 10.211.55.<ip_octet> while running
  bool ignore_graceful_stop = false;
  // Final state of the operation in flight ("" when none); persisted in place of `state`.
  std::string pending_state;
  // Parent folder of the bundle ("" = /Users/<owner>/Parallels), from clone's destination_path.
  std::string folder;
  uint64_t op_seq = 0;  // bumped by every operation; stale completions are dropped
  std::vector<Execution> executions;
  // When the guest OS can run commands: set by a start (boot) or a resume (at once).
  std::chrono::steady_clock::time_point booted_at{};
};

class SimHost final : public ProxyVms {
 public:
  // `index` orders hosts (external IP, names); `options` and `env` must outlive the host.
  SimHost(std::string name, int index, const SimOptions& options, SimEnv& env);
  ~SimHost() override;
  SimHost(const SimHost&) = delete;
  SimHost& operator=(const SimHost&) = delete;

  const std::string& name() const { return name_; }

  // --- availability (control API) ---
  bool online() const;
  void SetOnline(bool online);
  // Blocks until the host is online, `max` passed or Shutdown(); returns online().
  bool WaitOnline(Duration max);
  // Wakes every waiter (offline hangs, synchronous creates); they give up.
  void Shutdown();
  // Starts the host's periodic work (the stale-job reaper) on the environment's scheduler.
  void StartBackgroundWork();

  // --- authentication (§2) ---
  Reply Login(std::string_view body);          // POST auth/token
  Reply ValidateToken(std::string_view body);  // POST auth/token/validate
  // Checks the Authorization / X-Api-Key headers (nullptr: absent). nullopt: accepted, with
  // `*user` set when a login token (a user) is calling rather than an API key (which the
  // service authorises without a user); otherwise the 401 reply.
  std::optional<Reply> Authenticate(const std::string* authorization, const std::string* api_key,
                                    bool* user) const;
  void ExpireTokens();

  // --- API (§3-§6, §8.3). `id` is a VM UUID or name, case-insensitive. ---
  Reply Hardware() const;
  // X-Filter "<prop>=<regex>[,i]" (nullptr: none).
  Reply ListVms(const std::string* filter);
  Reply GetVm(const std::string& id);
  Reply VmStatus(const std::string& id);
  // POST machines (sync: blocks until the create finishes) and POST machines/async (202).
  // `user` as for GetJob: a catalog manager is only looked up for a logged-in user.
  Reply Create(std::string_view body, bool async, bool user);
  Reply ListJobs(bool user) const;
  // `user`: the caller is a logged-in user (Authenticate); API-key callers get 401.
  Reply GetJob(const std::string& id, bool user) const;
  Reply Clone(const std::string& id, std::string_view body);
  Reply ChangeState(const std::string& id, StateOp op, bool force);
  Reply Delete(const std::string& id, bool force);
  Reply Set(const std::string& id, std::string_view body);
  Reply Execute(const std::string& id, std::string_view body);
  Reply Rename(const std::string& id, std::string_view body);
  Reply Cache();
  // The reverse proxy's routes (sim_proxy.h); null when the module is off or the version lacks
  // it (then its routes are not registered).
  SimReverseProxy* reverse_proxy() { return proxy_.get(); }

  // ProxyVms.
  std::optional<std::string> RunningAddress(const std::string& vm_id) override;
  std::optional<nlohmann::json> Details(const std::string& vm_id) override;
  bool GuestAt(const std::string& ip) override;

  // --- faults and counters ---
  // The fault to answer with for this call of `endpoint`, if any (one-shot rules first, then
  // the configured random rate).
  std::optional<ApiError> TakeFault(const std::string& endpoint);
  // Fails the next `count` calls of `endpoint` with `status` ("error <status>: <message>").
  void AddFault(const std::string& endpoint, int count, int status, const std::string& message);
  void RecordCall(const std::string& endpoint, int status);
  void SetChaos(const Chaos& chaos);
  // Whether the answer to the call that just ran is lost, and how (`*slow_for` for kSlow).
  LostAnswer TakeLostAnswer(Duration* slow_for);
  nlohmann::json Counters() const;
  void ResetCounters();

  // --- out-of-band changes (control API); bodies are JSON text ---
  Reply ControlCreateVm(std::string_view body);
  Reply ControlPatchVm(const std::string& name, std::string_view body);
  Reply ControlDeleteVm(const std::string& name);
  Reply ControlExecutions(const std::string& name) const;
  size_t VmCount() const;
  // Work under way that changes the VMs without its caller: create jobs (pending or running, or
  // failed by the stale-job reaper while their pull goes on), clones, and state changes or
  // deletes waiting for their latency. Tests wait for 0 instead of sleeping.
  size_t InFlight() const;

  // --- persistence: VMs, cache and online flag (not tokens, jobs or counters) ---
  nlohmann::json Snapshot() const;
  Status Restore(const nlohmann::json& snapshot);

 private:
  struct CacheEntry {
    std::string catalog_id;
    std::string version;
    std::string architecture;
    uint64_t size_mb = 0;
    GuestOs os = GuestOs::kLinux;
    std::string date;  // RFC 3339
  };
  struct JobStep {
    std::string name;
    std::string state = "pending";  // pending | running | completed | skipped | failed
    // Progress of a step that has it (the download): bytes done of total, with an ETA.
    bool has_percentage = false;
    uint64_t value = 0;
    uint64_t total = 0;
    std::string unit;
    std::string eta;
  };
  struct Job {
    std::string id;
    std::string owner = "root";
    std::string state = "pending";  // pending | running | completed | failed
    std::string operation = "create";
    std::string message;
    std::string error;
    int progress = 0;
    std::vector<JobStep> steps;
    // Set when the job completes (jobs/main.go MarkJobCompleteWithRecord): while it runs, a
    // job does not say which VM it makes.
    std::string result_record_id;
    std::string result_record_name;
    std::string result;
    std::string vm_name;  // what the job makes; the simulator's own bookkeeping, never served
    std::string created_at;
    std::string updated_at;
    std::chrono::steady_clock::time_point touched;  // updated_at, for the stale-job reaper
  };
  // A parsed, validated create request (§3.3).
  struct CreateRequest {
    std::string name;
    std::string owner = "root";
    std::string catalog_id;  // upper-cased
    std::string version = "latest";
    std::string architecture;  // as requested; normalised during the pull
    bool start_on_create = false;
    std::optional<int> cpu;
    std::optional<uint64_t> memory_mb;
    std::optional<uint64_t> disk_mb;
    std::optional<GuestOs> type;
  };
  // What a running create or clone has reserved: its name and disk.
  struct Pending {
    std::string key;  // job id or clone uuid
    std::string name;
    uint64_t disk_mb = 0;
  };
  // A create whose pull checks passed, waiting for its latency.
  struct CreatePlan {
    CreateRequest request;
    std::string version;  // resolved
    GuestOs os = GuestOs::kLinux;
    uint64_t image_mb = 0;
    uint64_t disk_mb = 0;
    bool cached = false;
    std::string cache_key;  // normalised catalog id and version, as the cache stores them
  };

  // Lookups; REQUIRES mu_ held.
  SimVm* FindLocked(const std::string& id);
  const SimVm* FindLocked(const std::string& id) const;
  SimVm* FindByUuidLocked(const std::string& uuid);
  Job* FindJobLocked(const std::string& id);
  const Job* FindJobLocked(const std::string& id) const;
  // Finds `id`; on a miss releases `lock` for the lookup delay and looks again.
  SimVm* FindOrWait(std::unique_lock<std::mutex>& lock, const std::string& id);
  uint64_t UsedDiskLocked() const;
  uint64_t ReservedDiskLocked() const;
  // Apple's 2-macOS-VM limit and (unless overcommit is allowed) cpu/memory availability for
  // making `vm` run; the prlctl-style error when it cannot.
  std::optional<ApiError> CheckCanRunLocked(const SimVm& vm) const;
  nlohmann::json VmJsonLocked(const SimVm& vm) const;
  nlohmann::json JobJsonLocked(const Job& job) const;
  bool NameTrapLocked(const std::string& name) const;
  bool ExactNameTakenLocked(const std::string& name, const std::string& except_uuid) const;
  int NextIpOctetLocked();
  std::string Now() const;

  std::optional<ApiError> ParseCreate(std::string_view body, bool user, CreateRequest* out) const;
  // The cache holds `cache_key` ("<normalised id>/<normalised version>") for `arch`.
  bool CachedLocked(const std::string& cache_key, const std::string& arch) const;
  void RunCreate(const std::string& job_id, const CreateRequest& request);
  // The download of a pull: moves the job's progress every second until `done`.
  void Download(const std::string& job_id, const CreatePlan& plan,
                std::chrono::steady_clock::time_point started, Duration length);
  void FinishCreate(const std::string& job_id, const CreatePlan& plan);
  void FailJobLocked(Job& job, const std::string& error);
  void TouchJobLocked(Job& job);
  // Fails jobs without an update for ghost_job_timeout (1.0.1+); runs every 5 s.
  void ReapStaleJobs();
  // Runs one guest command under the exec semaphore and the prlctl time limit.
  ExecOutcome RunInGuest(const SimVm& vm, const std::string& command);
  // Records what the VM list shows from now on (--list-lag), then tells the environment.
  void Mutated();

  const std::string name_;
  const int index_;
  const SimOptions& options_;
  const ServiceFeatures features_;
  SimEnv& env_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // online changes, job completions, shutdown
  bool online_ = true;
  bool shutting_down_ = false;
  std::vector<SimVm> vms_;  // in creation order
  std::vector<CacheEntry> cache_;
  std::vector<Pending> pending_;
  std::vector<Job> jobs_;
  int next_ip_ = 0;
  std::map<std::string, std::chrono::system_clock::time_point> tokens_;
  int failed_logins_ = 0;  // of the one user hostsim knows, for the brute-force guard
  int exec_running_ = 0;   // guest commands running (at most options_.exec_slots)
  int exec_requests_ = 0;  // exec requests running or waiting for a slot
  // Pulls caching an image now (job id -> cache key), and those a cache listing disturbed.
  std::map<std::string, std::string> caching_;
  std::vector<std::string> cache_disturbed_;
  // What GET machines shows, newest last, when --list-lag is set: (when, list).
  std::vector<std::pair<std::chrono::steady_clock::time_point, nlohmann::json>> listings_;
  struct FaultRule {
    std::string endpoint;
    int remaining = 0;
    int status = 500;
    std::string message;
  };
  std::vector<FaultRule> faults_;
  Chaos chaos_;
  std::map<std::string, std::map<std::string, int64_t>> counters_;
  // Last, so that its listeners and relays (which call ProxyVms) stop first.
  std::unique_ptr<SimReverseProxy> proxy_;
};

}  // namespace flotilla::hostsim
