#include "providers/fake_provider.h"

#include <algorithm>

namespace flotilla::providers {

void FakeProvider::AddHost(const std::string& address, FakeHostSpec spec) {
  std::lock_guard lock(mu_);
  std::sort(spec.cached_images.begin(), spec.cached_images.end());
  hosts_[address].spec = std::move(spec);
}

void FakeProvider::SetOnline(const std::string& address, bool online) {
  std::lock_guard lock(mu_);
  hosts_[address].spec.online = online;
}

void FakeProvider::PutVm(const std::string& address, VmInfo vm) {
  std::lock_guard lock(mu_);
  if (vm.id.empty()) {
    vm.id = "fake-" + std::to_string(next_id_++);
  }
  if (vm.raw_state.empty()) {
    vm.raw_state = std::string(ToString(vm.state));
  }
  std::string name = vm.name;
  hosts_[address].vms[name] = std::move(vm);
}

Status FakeProvider::SetVmState(const std::string& address, const std::string& vm, VmState state) {
  std::lock_guard lock(mu_);
  auto host = hosts_.find(address);
  VmInfo* info = host == hosts_.end() ? nullptr : FindVm(host->second, vm);
  if (info == nullptr) {
    return Status::NotFound("no VM " + vm + " on " + address);
  }
  info->state = state;
  info->raw_state = std::string(ToString(state));
  return Status::Ok();
}

Status FakeProvider::RemoveVm(const std::string& address, const std::string& vm) {
  std::lock_guard lock(mu_);
  auto host = hosts_.find(address);
  VmInfo* info = host == hosts_.end() ? nullptr : FindVm(host->second, vm);
  if (info == nullptr) {
    return Status::NotFound("no VM " + vm + " on " + address);
  }
  host->second.vms.erase(info->name);
  return Status::Ok();
}

void FakeProvider::FailNext(const std::string& operation, const Status& status, int count) {
  std::lock_guard lock(mu_);
  for (int i = 0; i < count; ++i) {
    failures_[operation].push_back(status);
  }
}

std::vector<VmInfo> FakeProvider::Vms(const std::string& address) const {
  std::lock_guard lock(mu_);
  std::vector<VmInfo> out;
  if (auto host = hosts_.find(address); host != hosts_.end()) {
    for (const auto& [name, vm] : host->second.vms) {
      out.push_back(vm);
    }
  }
  return out;
}

int FakeProvider::Calls(const std::string& operation) const {
  std::lock_guard lock(mu_);
  auto it = calls_.find(operation);
  return it == calls_.end() ? 0 : it->second;
}

std::vector<std::string> FakeProvider::Executions(const std::string& address,
                                                  const std::string& vm) const {
  std::lock_guard lock(mu_);
  auto host = hosts_.find(address);
  if (host == hosts_.end()) {
    return {};
  }
  auto it = host->second.executions.find(vm);
  return it == host->second.executions.end() ? std::vector<std::string>{} : it->second;
}

Result<FakeProvider::Host*> FakeProvider::Enter(const std::string& operation, const HostRef& host) {
  ++calls_[operation];
  if (auto it = failures_.find(operation); it != failures_.end() && !it->second.empty()) {
    Status status = it->second.front();
    it->second.erase(it->second.begin());
    return status;
  }
  auto it = hosts_.find(host.address);
  if (it == hosts_.end() || !it->second.spec.online) {
    return Status::Unavailable("host " + host.name + " (" + host.address + ") does not answer");
  }
  return &it->second;
}

VmInfo* FakeProvider::FindVm(Host& host, std::string_view vm) {
  if (auto it = host.vms.find(std::string(vm)); it != host.vms.end()) {
    return &it->second;
  }
  for (auto& [name, info] : host.vms) {
    if (info.id == vm) {
      return &info;
    }
  }
  return nullptr;
}

HostFacts FakeProvider::Facts(const Host& host) {
  HostFacts facts;
  facts.arch = host.spec.arch;
  facts.os_name = "macOS";
  facts.os_version = "15.5";
  facts.agent_version = host.spec.agent_version;
  facts.hypervisor_version = "fake";
  facts.total = host.spec.total;
  facts.system_reserved = host.spec.system_reserved;
  facts.cached_images = host.spec.cached_images;
  Resources running;
  uint64_t disk_used = 0;
  for (const auto& [name, vm] : host.vms) {
    disk_used += vm.disk_bytes;
    if (vm.state == VmState::kRunning) {
      running.cpu += vm.cpu;
      running.memory_bytes += vm.memory_bytes;
      if (vm.IsMacos()) {
        ++facts.running_macos_vms;
      }
    }
  }
  auto minus = [](uint64_t a, uint64_t b, uint64_t c) { return a > b + c ? a - b - c : 0; };
  facts.available.cpu =
      static_cast<uint32_t>(minus(host.spec.total.cpu, host.spec.system_reserved.cpu, running.cpu));
  facts.available.memory_bytes = minus(
      host.spec.total.memory_bytes, host.spec.system_reserved.memory_bytes, running.memory_bytes);
  facts.available.disk_bytes =
      minus(host.spec.total.disk_bytes, host.spec.system_reserved.disk_bytes, disk_used);
  return facts;
}

HostObservation FakeProvider::Observe(const HostRef& host, Deadline /*deadline*/) {
  std::lock_guard lock(mu_);
  HostObservation observation;
  Result<Host*> entered = Enter("observe", host);
  if (!entered.ok()) {
    observation.status = entered.status();
    return observation;
  }
  observation.reachable = true;
  observation.facts = Facts(**entered);
  for (const auto& [name, vm] : (*entered)->vms) {
    observation.vms.push_back(vm);
    observation.vms.back().pending_create_for = ParsePendingCreateName(name);
  }
  return observation;
}

Result<CreateResult> FakeProvider::Create(const HostRef& host, const CreateRequest& request,
                                          Deadline /*deadline*/) {
  std::unique_lock lock(mu_);
  Result<Host*> entered = Enter("create", host);
  if (!entered.ok()) {
    return entered.status();
  }
  Host& h = **entered;
  if (VmInfo* existing = FindVm(h, request.name)) {
    return CreateResult{.vm = *existing, .adopted = true};
  }
  if (h.spec.arch != request.templ.arch) {
    return Status::FailedPrecondition("host " + host.name + " is " +
                                      std::string(ToString(h.spec.arch)) + ", the image is " +
                                      std::string(ToString(request.templ.arch)));
  }
  const uint64_t disk = request.templ.disk ? request.templ.disk->bytes() : kDefaultImageDisk;
  if (Facts(h).available.disk_bytes < disk) {
    return Status::ResourceExhausted("not enough free disk on host " + host.name);
  }
  if (request.on_progress) {
    // The callback may call back into the fake.
    lock.unlock();
    request.on_progress(PendingCreate{.temp_name = PendingCreateName(request.name, "fake")});
    if (request.cancelled && request.cancelled()) {
      return Status::Cancelled("create of " + request.name +
                               " cancelled before the host was asked");
    }
    if (request.on_status) {
      request.on_status("copying " + request.templ.image);
    }
    lock.lock();
    if (VmInfo* existing = FindVm(h, request.name)) {
      return CreateResult{.vm = *existing, .adopted = true};
    }
  }
  VmInfo vm{.id = "fake-" + std::to_string(next_id_++),
            .name = request.name,
            .state = VmState::kStopped,
            .raw_state = "stopped",
            .os = request.templ.os,
            .os_raw = request.templ.os == GuestOs::kMacos ? "macosx" : "ubuntu",
            .type = request.templ.os == GuestOs::kMacos ? "APPLE_VZ_VM" : "VM",
            .cpu = request.templ.cpu,
            .memory_bytes = request.templ.memory.bytes(),
            .disk_bytes = disk};
  h.vms[vm.name] = vm;
  if (request.templ.image.starts_with("catalog://")) {
    auto& cached = h.spec.cached_images;
    const std::string& key = request.templ.image;  // the fake keys catalog images as written
    if (!std::binary_search(cached.begin(), cached.end(), key)) {
      cached.insert(std::upper_bound(cached.begin(), cached.end(), key), key);
    }
  }
  return CreateResult{.vm = std::move(vm), .adopted = false};
}

Status FakeProvider::Configure(const HostRef& host, std::string_view vm, uint32_t cpu,
                               Quantity memory, Deadline /*deadline*/) {
  std::lock_guard lock(mu_);
  Result<Host*> entered = Enter("configure", host);
  if (!entered.ok()) {
    return entered.status();
  }
  VmInfo* info = FindVm(**entered, vm);
  if (info == nullptr) {
    return Status::NotFound("no VM " + std::string(vm) + " on host " + host.name);
  }
  if (info->state != VmState::kStopped) {
    return Status::FailedPrecondition("VM " + info->name + " is not stopped");
  }
  info->cpu = cpu;
  info->memory_bytes = memory.bytes();
  return Status::Ok();
}

Status FakeProvider::Start(const HostRef& host, std::string_view vm, Deadline /*deadline*/) {
  std::lock_guard lock(mu_);
  Result<Host*> entered = Enter("start", host);
  if (!entered.ok()) {
    return entered.status();
  }
  Host& h = **entered;
  VmInfo* info = FindVm(h, vm);
  if (info == nullptr) {
    return Status::NotFound("no VM " + std::string(vm) + " on host " + host.name);
  }
  switch (info->state) {
    case VmState::kRunning:
      return Status::Ok();
    case VmState::kTransitional:
      return Status::Unavailable("VM " + info->name + " is " + info->raw_state);
    case VmState::kInvalid:
    case VmState::kUnknown:
      return Status::FailedPrecondition("VM " + info->name + " is " + info->raw_state);
    default:
      break;
  }
  if (info->IsMacos() && Facts(h).running_macos_vms >= 2) {
    return Status::FailedPrecondition("host " + host.name +
                                      " already runs 2 macOS VMs, the most Apple allows");
  }
  info->state = VmState::kRunning;
  info->raw_state = "running";
  return Status::Ok();
}

Status FakeProvider::Stop(const HostRef& host, std::string_view vm, const StopOptions& /*opts*/,
                          Deadline /*deadline*/) {
  std::lock_guard lock(mu_);
  Result<Host*> entered = Enter("stop", host);
  if (!entered.ok()) {
    return entered.status();
  }
  VmInfo* info = FindVm(**entered, vm);
  if (info == nullptr) {
    return Status::NotFound("no VM " + std::string(vm) + " on host " + host.name);
  }
  if (info->state == VmState::kTransitional) {
    return Status::Unavailable("VM " + info->name + " is " + info->raw_state);
  }
  info->state = VmState::kStopped;
  info->raw_state = "stopped";
  return Status::Ok();
}

Status FakeProvider::Delete(const HostRef& host, std::string_view vm, Deadline /*deadline*/) {
  std::lock_guard lock(mu_);
  Result<Host*> entered = Enter("delete", host);
  if (!entered.ok()) {
    return entered.status();
  }
  if (VmInfo* info = FindVm(**entered, vm)) {
    (*entered)->vms.erase(info->name);
  }
  return Status::Ok();
}

Status FakeProvider::Prepull(const HostRef& host, const PrepullRequest& request,
                             Deadline /*deadline*/) {
  std::lock_guard lock(mu_);
  Result<Host*> entered = Enter("prepull", host);
  if (!entered.ok()) {
    return entered.status();
  }
  if (request.templ.image.starts_with("catalog://")) {
    auto& cached = (*entered)->spec.cached_images;
    const std::string& key = request.templ.image;  // the fake keys catalog images as written
    if (!std::binary_search(cached.begin(), cached.end(), key)) {
      cached.insert(std::upper_bound(cached.begin(), cached.end(), key), key);
    }
  }
  return Status::Ok();
}

Result<ExecResult> FakeProvider::Exec(const HostRef& host, std::string_view vm,
                                      std::string_view script,
                                      const std::map<std::string, std::string>& /*env*/,
                                      Deadline /*deadline*/) {
  std::lock_guard lock(mu_);
  Result<Host*> entered = Enter("exec", host);
  if (!entered.ok()) {
    return entered.status();
  }
  VmInfo* info = FindVm(**entered, vm);
  if (info == nullptr) {
    return Status::NotFound("no VM " + std::string(vm) + " on host " + host.name);
  }
  if (info->state != VmState::kRunning) {
    return Status::FailedPrecondition("VM " + info->name + " is not running");
  }
  (*entered)->executions[info->name].emplace_back(script);
  return ExecResult{};
}

}  // namespace flotilla::providers
