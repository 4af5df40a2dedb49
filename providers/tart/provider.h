#pragma once

// Provider tart: Apple-silicon Macs running Tart, driven agentlessly over SSH (Design A of
// tart-provider-design.md). Nothing runs on a host but Tart and sshd; every call is one or a
// few scripts (scripts.h) sent over the host's one SSH connection (ssh.h).
//
//   Observe    one round trip: facts, `tart list`/`get`/`ip` of every VM, the cached images and
//              the state of the `tart run` processes Flotilla started.
//   Create     `tart clone IMAGE <name>.flotilla-<nonce>` (after `tart pull` with pullPolicy
//              Always), `tart set --cpu --memory --disk-size --random-mac`, `tart rename`; the
//              steps run detached from the connection, so a dropped connection leaves a create
//              that the next attempt follows and finishes. Never a clone onto a final name
//              (`tart clone` silently replaces an existing VM).
//   Start      `tart run --no-graphics` in its own session with its output in a log beside
//              Flotilla's files, then a settle window (Tart says running before the macOS VM
//              limit is checked).
//   Stop       a graceful request (SIGUSR2 for Linux guests, `shutdown -h now` through the
//              guest agent for macOS), then `tart stop --timeout`.
//   Delete     stop, then `tart delete`.
//   Exec       `tart exec -i VM /bin/sh -s` with the script and its environment on stdin.
//   OpenTunnel the VM's address now (`tart ip --wait`), then `ssh -W IP:PORT` over the host's
//              connection: sshd on the Mac dials the guest (ssh.h, SshHost::OpenTunnel).
//
// Errors: SSH failures are Unavailable, a refused host or user key PermissionDenied; Tart's
// exit codes and texts are classified in wire.h (the macOS VM limit and a locked keychain are
// FailedPrecondition). Messages carry Tart's first line, redacted, at most 300 characters.

#include <spdlog/logger.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>

#include "providers/provider.h"
#include "providers/registry.h"
#include "providers/secrets.h"
#include "providers/tart/config.h"
#include "providers/tart/scripts.h"
#include "providers/tart/ssh.h"
#include "providers/tart/wire.h"

namespace flotilla::providers::tart {

class TartProvider final : public Provider {
 public:
  // Keeps the pool's key (and known_hosts from the secret) in a private folder for ssh, under
  // /dev/shm when it exists; removed again by the destructor.
  static Result<std::unique_ptr<TartProvider>> Create(TartConfig config,
                                                      std::shared_ptr<spdlog::logger> logger,
                                                      const Clock& clock);
  ~TartProvider() override;

  std::string_view name() const override { return "tart"; }
  HostObservation Observe(const HostRef& host, Deadline deadline) override;
  Result<CreateResult> Create(const HostRef& host, const CreateRequest& request,
                              Deadline deadline) override;
  Status Configure(const HostRef& host, std::string_view vm, uint32_t cpu, Quantity memory,
                   Deadline deadline) override;
  Status Start(const HostRef& host, std::string_view vm, Deadline deadline) override;
  Status Stop(const HostRef& host, std::string_view vm, const StopOptions& options,
              Deadline deadline) override;
  Status Delete(const HostRef& host, std::string_view vm, Deadline deadline) override;
  // `tart pull IMAGE` unless the host caches it already.
  Status Prepull(const HostRef& host, const PrepullRequest& request, Deadline deadline) override;
  Result<ExecResult> Exec(const HostRef& host, std::string_view vm, std::string_view script,
                          const std::map<std::string, std::string>& env,
                          Deadline deadline) override;
  // port_forward.cc. Errors as Provider's; FailedPrecondition also when the pool's
  // ssh.maxTunnels is 0, Unavailable when that many tunnels are open to the host already.
  Result<Fd> OpenTunnel(const HostRef& host, const VmInfo& vm, uint16_t port,
                        Deadline deadline) override;

  // SSH connections made to `address` so far (for tests and benchmarks).
  int ConnectionsTo(const std::string& address);
  // Tunnels open to `address` now, their ssh clients not yet collected (for tests).
  int TunnelsTo(const std::string& address);

 private:
  TartProvider(TartConfig config, std::shared_ptr<spdlog::logger> logger, const Clock& clock,
               std::filesystem::path state_dir);

  Result<RemoteShell*> ShellFor(const HostRef& host);
  // Runs `script` on the host (through RemoteCommand), counting it as `what` for metrics.
  Result<RemoteResult> Run(const HostRef& host, std::string_view what, const std::string& script,
                           Deadline deadline, const std::function<bool()>& cancelled = {});
  // One VM now: its details (nullopt when it does not exist) and its job.
  struct VmNow {
    std::optional<VmDetails> details;
    std::optional<HostReport::Job> job;
    std::string ip;
    int64_t now = 0;
  };
  Result<VmNow> Look(const HostRef& host, std::string_view vm, Deadline deadline);
  static VmNow NowFrom(const HostReport& report, const std::string& name);
  VmInfo ToVmInfo(const std::string& name, const VmDetails& details,
                  const std::optional<HostReport::Job>& job, const std::string& ip,
                  int64_t now) const;
  // Status for a tart command that failed.
  Status TartError(const HostRef& host, std::string_view what, const RemoteResult& result) const;
  Status PowerOff(const HostRef& host, std::string_view vm, Deadline deadline);
  // The macOS VM limit refused a start: FailedPrecondition; with fewer macOS VMs running than
  // the limit the host is put on a cool-down (Observe then reports it full for macOS VMs).
  Status LimitRefused(const HostRef& host, std::string_view vm, std::string_view line,
                      Deadline deadline);
  bool CoolingDown(const std::string& address);
  // The host's Tart version as its last observation saw it, else asked now.
  Result<std::string> TartVersion(const HostRef& host, Deadline deadline);
  std::string NewNonce();
  std::map<std::string, std::string> RegistryEnv() const;

  // create.cc
  // Waits while the create of `temp` (started by an earlier attempt) still runs on the host,
  // then looks for its VM: the VM when that create made it, nullopt when it did not (it failed,
  // or stopped before its rename).
  Result<std::optional<CreateResult>> FollowCreate(const HostRef& host,
                                                   const CreateRequest& request,
                                                   const std::string& temp, Deadline deadline);

  const TartConfig config_;
  const std::shared_ptr<spdlog::logger> logger_;
  const Clock& clock_;
  const std::filesystem::path state_dir_;
  const Scripts scripts_;
  Redactor redactor_;

  std::mutex mu_;                                           // guards the members below
  std::map<std::string, std::unique_ptr<SshHost>> hosts_;   // by address
  std::map<std::string, Clock::TimePoint> cooldown_until_;  // by address
  std::map<std::string, std::string> cooldown_note_;        // by address
  std::map<std::string, std::string> tart_versions_;        // by address, from Observe
  std::mt19937_64 random_;
};

class TartProviderFactory final : public TypedProviderFactory<TartConfig> {
 public:
  explicit TartProviderFactory(TartTuning tuning = {});
  std::string_view name() const override { return "tart"; }
  std::shared_ptr<const ProviderRules> rules() const override { return rules_; }

 protected:
  Result<TartConfig> ParseConfig(const ProviderContext& context) const override;
  Result<std::unique_ptr<Provider>> Create(TartConfig config,
                                           const ProviderContext& context) const override;

 private:
  TartTuning tuning_;
  std::shared_ptr<const ProviderRules> rules_;
};

}  // namespace flotilla::providers::tart
