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
  Result<ExecResult> Exec(const HostRef& host, std::string_view vm, std::string_view script,
                          const std::map<std::string, std::string>& env,
                          Deadline deadline) override;

 private:
  Result<HostClient*> ClientFor(const HostRef& host);
  Result<std::vector<VmInfo>> ListVms(HostClient& client, Deadline deadline);
  Result<VmInfo> GetVm(HostClient& client, std::string_view vm, Deadline deadline);
  // Polls the VM until `done` holds for its state, or the deadline passes.
  Result<VmInfo> WaitFor(HostClient& client, std::string_view vm,
                         const std::function<bool(VmState)>& done, Deadline deadline);
  Result<std::string> CreateFromCatalog(HostClient& client, const CreateRequest& request,
                                        const std::string& temp_name, const std::string& resume_job,
                                        Deadline deadline);
  Result<std::string> CloneTemplate(HostClient& client, const CreateRequest& request,
                                    const std::string& temp_name, Deadline deadline);
  Result<std::string> PollJob(HostClient& client, const std::string& job_id, std::string_view what,
                              const std::function<bool()>& cancelled, Deadline deadline);
  Status ForceDelete(HostClient& client, std::string_view vm, Deadline deadline);
  std::string NewNonce();

  const ParallelsConfig config_;
  const std::shared_ptr<spdlog::logger> logger_;
  const Clock& clock_;
  const std::shared_ptr<Redactor> redactor_;

  std::mutex mu_;                                               // guards clients_ and random_
  std::map<std::string, std::unique_ptr<HostClient>> clients_;  // by address
  std::mt19937_64 random_;
};

class ParallelsProviderFactory final : public TypedProviderFactory<ParallelsConfig> {
 public:
  explicit ParallelsProviderFactory(ParallelsTuning tuning = {}) : tuning_(tuning) {}
  std::string_view name() const override { return "parallels"; }

 protected:
  Result<ParallelsConfig> ParseConfig(const ProviderContext& context) const override;
  Result<std::unique_ptr<Provider>> Create(ParallelsConfig config,
                                           const ProviderContext& context) const override;

 private:
  ParallelsTuning tuning_;
};

}  // namespace flotilla::providers::parallels
