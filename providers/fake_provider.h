#pragma once

// An in-memory world of hosts behind the Provider interface, for unit tests of the planner,
// executor and loop. It keeps the rules that matter to callers (the Apple limit of two running
// macOS VMs, configure only when stopped, architecture must match, disk must fit, idempotent
// start/stop/delete, adopt-on-create) and answers instantly. It is not a substitute for the
// Parallels provider's tests against flotilla-hostsim over HTTP. Test-only: it lives in its own
// library (flotilla_fake_provider), never in a production binary.
//
// Thread-safety: every method may be called from any thread.

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "providers/provider.h"
#include "reconciler/model/provider_rules.h"

namespace flotilla::providers {

struct FakeHostSpec {
  Arch arch = Arch::kArm64;
  Resources total{.cpu = 12, .memory_bytes = uint64_t{32} << 30, .disk_bytes = uint64_t{1} << 40};
  Resources system_reserved{
      .cpu = 1, .memory_bytes = uint64_t{2} << 30, .disk_bytes = uint64_t{20000} << 20};
  std::vector<std::string> cached_images;  // catalog:// images as written, sorted
  std::string agent_version = "1.0.5";
  bool online = true;
};

// The fake's rules: no settings of its own, any image, and catalog:// images cached under
// their own spelling (as FakeHostSpec::cached_images holds them).
class FakeRules final : public ProviderRules {
 public:
  std::string_view name() const override { return "fake"; }
  std::string_view settings_schema() const override { return "{}"; }
  void CheckPool(const HostPool& /*pool*/, std::vector<PoolProblem>& /*problems*/) const override {}
  std::string CheckImage(std::string_view /*image*/) const override { return ""; }
  std::string ImageCacheKey(std::string_view image) const override {
    return image.starts_with("catalog://") ? std::string(image) : "";
  }
};

class FakeProvider final : public Provider {
 public:
  // Disk a created VM takes when its template names none.
  static constexpr uint64_t kDefaultImageDisk = uint64_t{64} << 30;

  FakeProvider() = default;

  // Hosts are keyed by address.
  void AddHost(const std::string& address, FakeHostSpec spec = {});
  void SetOnline(const std::string& address, bool online);
  // Puts a VM on the host without any checks, as someone else might (an unmanaged VM).
  void PutVm(const std::string& address, VmInfo vm);
  // Changes or removes a VM behind Flotilla's back. NotFound if there is no such VM.
  Status SetVmState(const std::string& address, const std::string& vm, VmState state);
  Status RemoveVm(const std::string& address, const std::string& vm);
  // The next `count` calls of `operation` ("observe", "create", "configure", "start", "stop",
  // "delete", "exec") on any host fail with `status`.
  void FailNext(const std::string& operation, const Status& status, int count = 1);

  std::vector<VmInfo> Vms(const std::string& address) const;  // sorted by name
  int Calls(const std::string& operation) const;              // calls so far, failed or not
  // Scripts run by Exec, in order, per VM name.
  std::vector<std::string> Executions(const std::string& address, const std::string& vm) const;

  std::string_view name() const override { return "fake"; }
  HostObservation Observe(const HostRef& host, Deadline deadline) override;
  Result<CreateResult> Create(const HostRef& host, const CreateRequest& request,
                              Deadline deadline) override;
  Status Configure(const HostRef& host, std::string_view vm, uint32_t cpu, Quantity memory,
                   Deadline deadline) override;
  Status Start(const HostRef& host, std::string_view vm, Deadline deadline) override;
  Status Stop(const HostRef& host, std::string_view vm, const StopOptions& options,
              Deadline deadline) override;
  Status Delete(const HostRef& host, std::string_view vm, Deadline deadline) override;
  // Adds the image to the host's cache (catalog:// images; "prepull" failures can be injected).
  Status Prepull(const HostRef& host, const PrepullRequest& request, Deadline deadline) override;
  Result<ExecResult> Exec(const HostRef& host, std::string_view vm, std::string_view script,
                          const std::map<std::string, std::string>& env,
                          Deadline deadline) override;

 private:
  struct Host {
    FakeHostSpec spec;
    std::map<std::string, VmInfo> vms;  // by name
    std::map<std::string, std::vector<std::string>> executions;
  };

  // REQUIRES: mu_ held. Counts the call, applies injected failures, finds the online host.
  Result<Host*> Enter(const std::string& operation, const HostRef& host);
  // REQUIRES: mu_ held.
  static VmInfo* FindVm(Host& host, std::string_view vm);
  static HostFacts Facts(const Host& host);

  mutable std::mutex mu_;
  std::map<std::string, Host> hosts_;
  std::map<std::string, std::vector<Status>> failures_;
  std::map<std::string, int> calls_;
  uint64_t next_id_ = 1;
};

}  // namespace flotilla::providers
