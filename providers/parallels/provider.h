#pragma once

// The Parallels DevOps provider: drives Mac hosts that run Parallels Desktop and serve the
// DevOps Service REST API, one host = one API endpoint (reference: parallels-devops-api.md).
//
// Create is idempotent and immune to the host's unanchored name check (see Create in
// provider.cc for how). Errors follow the service's status rules: 401 -> PermissionDenied,
// 400 -> FailedPrecondition or InvalidArgument, 404 -> NotFound only for a missing VM (the
// service also answers 404 when a host command fails), 5xx/429/timeouts -> Unavailable or
// DeadlineExceeded (retryable).

#include <map>
#include <memory>
#include <mutex>
#include <random>

#include "providers/parallels/client.h"
#include "providers/parallels/config.h"
#include "providers/provider.h"
#include "providers/registry.h"

namespace flotilla::providers::parallels {

class ParallelsProvider final : public Provider {
 public:
  ParallelsProvider(ParallelsConfig config, std::shared_ptr<spdlog::logger> logger,
                    const Clock& clock);

  std::string_view name() const override { return "parallels"; }
  HostObservation Observe(const HostRef& host, Deadline deadline) override;
  Result<CreateResult> Create(const HostRef& host, const CreateRequest& request,
                              Deadline deadline) override;
  Status Configure(const HostRef& host, std::string_view vm, uint32_t cpu, Quantity memory,
                   Deadline deadline) override;
  Status Start(const HostRef& host, std::string_view vm, Deadline deadline) override;
  Status Stop(const HostRef& host, std::string_view vm, const StopOptions& options,
              Deadline deadline) override;
  Status Delete(const HostRef& host, std::string_view vm, Deadline deadline) override;
  // Pulls a catalog image by creating a VM named "flotilla-prepull-h<hash>" from it (the host
  // caches what it pulls) and deleting that VM; OK at once when the host caches the image.
  Status Prepull(const HostRef& host, const PrepullRequest& request, Deadline deadline) override;
  Result<ExecResult> Exec(const HostRef& host, std::string_view vm, std::string_view script,
                          const std::map<std::string, std::string>& env,
                          Deadline deadline) override;
  // tunnel.cc: through the host's reverse proxy, with a proxy host per VM and port that is kept
  // for reuse (docs/providers.md, "Tunnels").
  Result<Fd> OpenTunnel(const HostRef& host, const VmInfo& vm, uint16_t port,
                        Deadline deadline) override;

 private:
  Result<HostClient*> ClientFor(const HostRef& host);
  Result<std::vector<VmInfo>> ListVms(HostClient& client, Deadline deadline);
  Result<VmInfo> GetVm(HostClient& client, std::string_view vm, Deadline deadline);
  // Polls the VM until `done` holds for its state, or the deadline passes.
  Result<VmInfo> WaitFor(HostClient& client, std::string_view vm,
                         const std::function<bool(VmState)>& done, Deadline deadline);
  // The host's catalog cache for placement: listed again only when the last listing is older
  // than tuning.cache_refresh and no create runs on the host (audit #9).
  std::vector<std::string> CachedImages(HostClient& client, const HostFacts& facts,
                                        Deadline deadline, bool refresh = false);
  // The observation of a host whose API answers a route with the router's 404.
  Status MissingRoutes(HostClient& client, Deadline deadline);
  // Why the host cannot create VMs from catalog images, or "" when it can (or its version is
  // not known: source builds report 0.0.0).
  static std::string CatalogUnsupported(std::string_view agent_version);

  // create.cc
  Result<std::string> CreateFromCatalog(HostClient& client, const CreateRequest& request,
                                        const std::string& temp_name, const std::string& resume_job,
                                        Deadline deadline);
  Result<std::string> CloneTemplate(HostClient& client, const CreateRequest& request,
                                    const std::string& temp_name, Deadline deadline);
  // Follows a job to its VM id ("" when the job names none). NotFound-free errors; a job the
  // caller may not read, or one the host's reaper cancelled while its pull went on, is
  // followed by the temporary VM's name instead (FollowByName).
  Result<std::string> PollJob(HostClient& client, const std::string& job_id,
                              const CreateRequest& request, const std::string& temp_name,
                              Deadline deadline);
  // Waits for a pull to register `temp_name`, stopped, with the requested cpu and memory (the
  // last thing a pull does), and returns its id.
  Result<std::string> FollowByName(HostClient& client, const CreateRequest& request,
                                   const std::string& temp_name, std::string_view why,
                                   Deadline deadline);
  // For a create journalled with its temporary name but no job (the process that asked the
  // host died before the answer came): follows the host's create jobs that no create of this
  // process knows until they end, and says whether one of them made `temp_name`. False when the
  // host lets these credentials list no job.
  Result<bool> AwaitUnheardCreates(HostClient& client, const CreateRequest& request,
                                   const std::string& temp_name, Deadline deadline);
  // Grows the new VM's disk to the template's size when the image's is smaller (hosts apply
  // only cpu and memory of a catalog create, audit #7); FailedPrecondition when the host
  // cannot.
  Status FitDisk(HostClient& client, const CreateRequest& request, const std::string& vm_id,
                 const std::string& temp_name, Deadline deadline);
  Status ForceDelete(HostClient& client, std::string_view vm, Deadline deadline);
  std::string NewNonce();

  // exec.cc: one guest command through PUT /execute, under the host's exec slots.
  struct GuestAnswer {
    int exit_code = 0;
    std::string stdout_text;
    std::string stderr_text;
    std::string error;  // the service's `error`: prlctl's failure, or the command's
  };
  Result<GuestAnswer> RunGuestCommand(HostClient& client, std::string_view vm,
                                      std::string_view script, const Redactor& env_redactor,
                                      Deadline deadline);

  const ParallelsConfig config_;
  const std::shared_ptr<spdlog::logger> logger_;
  const Clock& clock_;
  const std::shared_ptr<Redactor> redactor_;

  // The lock under which tunnels to `address` make proxy hosts (tunnel.cc).
  std::mutex& TunnelLock(const std::string& address);

  std::mutex mu_;  // guards clients_, random_ and tunnel_locks_
  std::map<std::string, std::unique_ptr<HostClient>> clients_;       // by address
  std::map<std::string, std::unique_ptr<std::mutex>> tunnel_locks_;  // by address
  std::mt19937_64 random_;
};

class ParallelsProviderFactory final : public TypedProviderFactory<ParallelsConfig> {
 public:
  explicit ParallelsProviderFactory(ParallelsTuning tuning = {});
  std::string_view name() const override { return "parallels"; }
  std::shared_ptr<const ProviderRules> rules() const override { return rules_; }

 protected:
  Result<ParallelsConfig> ParseConfig(const ProviderContext& context) const override;
  Result<std::unique_ptr<Provider>> Create(ParallelsConfig config,
                                           const ProviderContext& context) const override;

 private:
  ParallelsTuning tuning_;
  std::shared_ptr<const ProviderRules> rules_;  // immutable, shared with the manifest layer
};

}  // namespace flotilla::providers::parallels
