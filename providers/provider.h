#pragma once

// The one interface between Flotilla and the machines that run VMs.
//
// A Provider drives the hosts of one HostPool. Every call names the host it is about (HostRef),
// carries a deadline, and answers with a Status or a Result. Errors say whether trying again
// may help (Status::IsRetryable): a host that is down, overloaded or slow gives Unavailable or
// DeadlineExceeded; a refusal that will repeat until something changes (bad credentials, a VM
// in the wrong state, a full host) gives a terminal code.
//
// Calls are idempotent where the world allows it: starting a running VM, stopping a stopped
// one and deleting a VM that is gone all succeed; creating a VM whose name already exists on
// the host returns that VM with `adopted = true` (whether Flotilla owns it is the caller's
// question, answered by the ledger, never by the provider).
//
// Thread-safety: a Provider is safe to call from many threads at once, for the same host or
// different ones. Messages never contain secrets.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/fd.h"
#include "reconciler/model/observed.h"
#include "reconciler/model/quantity.h"
#include "reconciler/model/result.h"
#include "reconciler/model/status.h"
#include "reconciler/model/types.h"

namespace flotilla::providers {

// When a call must have finished. Calls that run out of time return DeadlineExceeded.
using Deadline = std::chrono::steady_clock::time_point;

// A deadline `timeout` from now.
inline Deadline DeadlineIn(std::chrono::steady_clock::duration timeout) {
  return std::chrono::steady_clock::now() + timeout;
}

// Told about every request a provider sends to a host, for metrics. `endpoint` is the request's
// route with ids replaced ("GET /v1/machines/{id}"), so that it has few distinct values; `code`
// is the HTTP status, or 0 when no response came (refused, timed out, TLS failure).
// Thread-safety: called from many threads at once.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void ProviderRequest(std::string_view provider, std::string_view endpoint, int code) = 0;
};

// Everything a provider needs to reach one host.
struct HostRef {
  std::string pool;     // the HostPool's name
  std::string name;     // the host's name in the manifest, for messages
  std::string address;  // the host's address as declared (a URL for parallels)
};

// The observation types (VmState, Resources, HostFacts, VmInfo) live in the model, so that the
// planner can use them without depending on providers.
using ::flotilla::HostFacts;
using ::flotilla::Resources;
using ::flotilla::ToString;
using ::flotilla::VmInfo;
using ::flotilla::VmState;

// Everything one Observe learned. Observe never fails as a call: a host that cannot be reached
// or refuses us is an observation too.
struct HostObservation {
  Status status;            // OK when facts and vms are current
  bool reachable = false;   // the host answered at all (it may still have refused us)
  HostFacts facts;          // meaningful when status is OK
  std::vector<VmInfo> vms;  // sorted by name; meaningful when status is OK
};

// What an interrupted create left behind, so that a later attempt (after a crash, say) can
// finish it instead of starting over. The provider reports it through
// CreateRequest::on_progress as soon as it knows it; the caller journals it.
struct PendingCreate {
  std::string temp_name;  // the name the VM has until it is complete
  std::string job_id;     // the host's job for an asynchronous create; empty if none

  friend bool operator==(const PendingCreate&, const PendingCreate&) = default;
};

struct CreateRequest {
  std::string name;  // the VM's final name
  // What to build. `templ.state` is ignored: a created VM is left stopped; starting it is a
  // separate call. Startup scripts are run by the caller through Exec.
  VMTemplate templ;
  // An earlier attempt's progress, if the caller journalled one.
  std::optional<PendingCreate> resume;
  // Called (possibly more than once, from the calling thread) as the create makes progress.
  std::function<void(const PendingCreate&)> on_progress;
  // Polled while the create waits on the host (a catalog pull can take many minutes). When it
  // returns true the create gives up with Cancelled, leaving what it reported through
  // on_progress for a later attempt to resume or clean up.
  std::function<bool()> cancelled;
  // What the create is doing now, in words for people ("Downloading pack file 45% (9.0 of
  // 20.0 GiB, 1m20s left)"); called from the calling thread whenever that changes. May be
  // unset.
  std::function<void(std::string_view)> on_status;
};

struct CreateResult {
  VmInfo vm;
  bool adopted = false;  // the VM already existed under its final name; nothing was created
};

// What Prepull stages: the image of `templ` (for its architecture).
struct PrepullRequest {
  VMTemplate templ;
  // As for CreateRequest.
  std::function<bool()> cancelled;
  std::function<void(std::string_view)> on_status;
};

struct ExecResult {
  int exit_code = 0;
  std::string stdout_text;
  std::string stderr_text;
};

struct StopOptions {
  // How long a graceful shutdown may take before the VM is powered off.
  std::chrono::milliseconds graceful_timeout{std::chrono::seconds{60}};
};

class Provider {
 public:
  virtual ~Provider() = default;

  // The registry name of this provider ("parallels", "fake").
  virtual std::string_view name() const = 0;

  // Reads the host's facts and every VM on it (managed or not).
  virtual HostObservation Observe(const HostRef& host, Deadline deadline) = 0;

  // Creates a stopped VM named `request.name` from `request.templ`. If a VM with that name
  // already exists on the host, returns it with `adopted = true`. A provider that changes the
  // host must call `request.on_progress` before its first change: the executor only accepts an
  // adopted VM, and crash recovery only adopts a finished create, when the attempt journalled
  // such progress (otherwise the VM is someone else's). Right after that call, and still before
  // the first change, it must look at `request.cancelled`: when it answers true (the journal
  // could not record the progress), the create returns Cancelled and changes nothing.
  // REQUIRES: no other Create of the same name on the same host is running (each attempt
  // cleans up what earlier attempts of that name left behind).
  virtual Result<CreateResult> Create(const HostRef& host, const CreateRequest& request,
                                      Deadline deadline) = 0;

  // Sets the VM's cpu count and memory. REQUIRES: the VM is stopped (FailedPrecondition
  // otherwise). `vm` is the VM's id or name, here and below.
  virtual Status Configure(const HostRef& host, std::string_view vm, uint32_t cpu, Quantity memory,
                           Deadline deadline) = 0;

  // Starts (or resumes) the VM; OK if it is already running.
  virtual Status Start(const HostRef& host, std::string_view vm, Deadline deadline) = 0;

  // Shuts the VM down gracefully, then powers it off if that takes longer than
  // `options.graceful_timeout`; OK if it is already stopped.
  virtual Status Stop(const HostRef& host, std::string_view vm, const StopOptions& options,
                      Deadline deadline) = 0;

  // Deletes the VM, powering it off first if needed; OK if it does not exist.
  virtual Status Delete(const HostRef& host, std::string_view vm, Deadline deadline) = 0;

  // Makes the host hold `request.templ.image` in its cache, so that later creates from it copy
  // instead of downloading; OK when it already does, or when the provider has no cache (the
  // default). Leaves no VM behind. The same cancellation and progress rules as Create.
  virtual Status Prepull(const HostRef& /*host*/, const PrepullRequest& /*request*/,
                         Deadline /*deadline*/) {
    return Status::Ok();
  }

  // Runs `script` in the running VM with `env` set. A script that fails is not an error: look
  // at ExecResult::exit_code. Values of `env` are treated as secrets. A guest that cannot run
  // commands yet (still booting) is a retryable error. If the answer is lost (a timeout), the
  // script may have run, and may still be running: a provider that can tell (parallels) follows
  // that run when called again with the same VM, script and environment; otherwise a retry runs
  // it again, so startup scripts must be safe to repeat.
  virtual Result<ExecResult> Exec(const HostRef& host, std::string_view vm, std::string_view script,
                                  const std::map<std::string, std::string>& env,
                                  Deadline deadline) = 0;
  // A byte stream to TCP `port` of the VM `vm` (as last observed: its id, name and address)
  // on `host`, for a tunnel through the API (docs/api.md, "Tunnels"): a connected stream
  // socket that the caller owns and may read and write without blocking concerns of its own
  // (the provider sets nothing on it the caller must undo). What the caller writes reaches the
  // VM's port; what the port sends, the caller reads; end of stream either way is passed on.
  // The provider resolves the VM's address again rather than trusting `vm.ip` alone, when it
  // can. Errors:
  //   Unimplemented       the provider has no way to reach VM ports (the default);
  //   FailedPrecondition  the VM is not running, has no address, or the host's way in is
  //                       switched off (a message that says what to change);
  //   NotFound            no such VM on the host;
  //   Unavailable         the host, or the VM's port, refused or could not be reached;
  //   DeadlineExceeded    not connected by `deadline`.
  // Messages name no host credential; the host's address may appear.
  virtual Result<Fd> OpenTunnel(const HostRef& /*host*/, const VmInfo& /*vm*/, uint16_t /*port*/,
                                Deadline /*deadline*/) {
    return Status::Unimplemented("this provider cannot open tunnels to VM ports");
  }
};

// Sleeps for `wait`, or until the deadline if that is sooner. False if the deadline has passed.
bool SleepWithin(std::chrono::milliseconds wait, Deadline deadline);

// The name a VM carries while it is being created: "<name>.flotilla-<nonce>". VM names in
// manifests are DNS labels and never contain '.', so these names cannot clash with a desired
// VM, and no desired name is a substring of another create's temporary name.
std::string PendingCreateName(std::string_view final_name, std::string_view nonce);

// The final name inside a temporary create name, or empty if `vm_name` is not one.
std::string ParsePendingCreateName(std::string_view vm_name);

// The VM a provider may make to pull an image into a host's cache (Provider::Prepull), and which
// it deletes again: "flotilla-prepull-h<8 hex digits of the image's cache key>". Never the name of
// a VMSet's VM
// ("<set>-<ordinal>": the part after the last '-' is not a number). The loop deletes such VMs,
// and their temporary forms, that a killed prepull left behind.
std::string PrepullVmName(std::string_view image_cache_key);
bool IsPrepullVmName(std::string_view vm_name);

}  // namespace flotilla::providers
