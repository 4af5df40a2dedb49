#pragma once

// A Provider that forwards every call to another one, as LevelDB's EnvWrapper does for Env: a
// test provider derives from it and overrides only the calls it changes or watches.

#include <map>
#include <string>
#include <string_view>

#include "providers/provider.h"

namespace flotilla::testing {

class ForwardingProvider : public providers::Provider {
 public:
  // `target` must outlive this provider.
  explicit ForwardingProvider(providers::Provider& target) : target_(target) {}

  std::string_view name() const override { return target_.name(); }
  providers::HostObservation Observe(const providers::HostRef& host,
                                     providers::Deadline deadline) override {
    return target_.Observe(host, deadline);
  }
  Result<providers::CreateResult> Create(const providers::HostRef& host,
                                         const providers::CreateRequest& request,
                                         providers::Deadline deadline) override {
    return target_.Create(host, request, deadline);
  }
  Status Configure(const providers::HostRef& host, std::string_view vm, uint32_t cpu,
                   Quantity memory, providers::Deadline deadline) override {
    return target_.Configure(host, vm, cpu, memory, deadline);
  }
  Status Start(const providers::HostRef& host, std::string_view vm,
               providers::Deadline deadline) override {
    return target_.Start(host, vm, deadline);
  }
  Status Stop(const providers::HostRef& host, std::string_view vm,
              const providers::StopOptions& options, providers::Deadline deadline) override {
    return target_.Stop(host, vm, options, deadline);
  }
  Status Delete(const providers::HostRef& host, std::string_view vm,
                providers::Deadline deadline) override {
    return target_.Delete(host, vm, deadline);
  }
  Status Prepull(const providers::HostRef& host, const providers::PrepullRequest& request,
                 providers::Deadline deadline) override {
    return target_.Prepull(host, request, deadline);
  }
  Result<providers::ExecResult> Exec(const providers::HostRef& host, std::string_view vm,
                                     std::string_view script,
                                     const std::map<std::string, std::string>& env,
                                     providers::Deadline deadline) override {
    return target_.Exec(host, vm, script, env, deadline);
  }

 protected:
  providers::Provider& target() const { return target_; }

 private:
  providers::Provider& target_;
};

}  // namespace flotilla::testing
