#include "providers/hostsim/sim_host.h"
#include "providers/hostsim/sim_proxy.h"

#include <algorithm>

#include "providers/hostsim/sim_wire.h"
#include "reconciler/model/text.h"

namespace flotilla::hostsim {

using nlohmann::json;
using SystemClock = std::chrono::system_clock;

// ---------------------------------------------------------------------------------------------
// Faults and counters

std::optional<ApiError> SimHost::TakeFault(const std::string& endpoint) {
  {
    std::lock_guard lock(mu_);
    for (auto it = faults_.begin(); it != faults_.end(); ++it) {
      if (it->endpoint == endpoint && it->remaining > 0) {
        ApiError error = ApiError::Coded(it->status, it->message);
        if (--it->remaining == 0) {
          faults_.erase(it);
        }
        return error;
      }
    }
  }
  std::optional<double> chaos_rate;
  {
    std::lock_guard lock(mu_);
    chaos_rate = chaos_.fault_rate;
  }
  auto rate = options_.fault_rates.find(endpoint);
  const double p = chaos_rate                           ? *chaos_rate
                   : rate != options_.fault_rates.end() ? rate->second
                                                        : options_.fault_rate;
  if (env_.Chance(p)) {
    return ApiError::Coded(500, "injected fault");
  }
  return std::nullopt;
}

void SimHost::AddFault(const std::string& endpoint, int count, int status,
                       const std::string& message) {
  std::lock_guard lock(mu_);
  faults_.push_back({endpoint, count, status, message});
}

void SimHost::SetChaos(const Chaos& chaos) {
  std::lock_guard lock(mu_);
  chaos_ = chaos;
}

LostAnswer SimHost::TakeLostAnswer(Duration* slow_for) {
  Chaos chaos;
  {
    std::lock_guard lock(mu_);
    chaos = chaos_;
  }
  if (env_.Chance(chaos.drop_rate)) {
    return LostAnswer::kDrop;
  }
  if (env_.Chance(chaos.slow_rate)) {
    *slow_for = chaos.slow_for;
    return LostAnswer::kSlow;
  }
  return LostAnswer::kNone;
}

void SimHost::RecordCall(const std::string& endpoint, int status) {
  std::lock_guard lock(mu_);
  auto& counts = counters_[endpoint];
  ++counts["calls"];
  ++counts[std::to_string(status)];
}

json SimHost::Counters() const {
  std::lock_guard lock(mu_);
  json out = json::object();
  for (const auto& [endpoint, counts] : counters_) {
    out[endpoint] = counts;
  }
  return out;
}

void SimHost::ResetCounters() {
  std::lock_guard lock(mu_);
  counters_.clear();
}

// ---------------------------------------------------------------------------------------------
// Control API

Reply SimHost::ControlCreateVm(std::string_view body) {
  const json j = ParseBody(body);
  if (j.is_discarded() || !j.is_object()) {
    return Reply::Error(ApiError::Raw(400, "body must be a JSON object"));
  }
  SimVm vm;
  vm.name = StringField(j, "name");
  if (vm.name.empty()) {
    return Reply::Error(ApiError::Raw(400, "name is required"));
  }
  if (const std::string os = StringField(j, "os"); !os.empty()) {
    Result<GuestOs> parsed = ParseGuestOs(os);
    if (!parsed.ok()) {
      return Reply::Error(ApiError::Raw(400, parsed.status().message()));
    }
    vm.os = *parsed;
  }
  const std::pair<const char*, uint64_t*> sizes[] = {{"memory_mb", &vm.memory_mb},
                                                     {"disk_mb", &vm.disk_mb}};
  for (const auto& [key, target] : sizes) {
    if (j.contains(key)) {
      std::optional<uint64_t> v = PositiveInt(j[key]);
      if (!v) {
        return Reply::Error(ApiError::Raw(400, std::string(key) + " must be a positive integer"));
      }
      *target = *v;
    }
  }
  if (j.contains("cpu")) {
    std::optional<uint64_t> v = PositiveInt(j["cpu"]);
    if (!v || *v > 1024) {
      return Reply::Error(ApiError::Raw(400, "cpu must be a positive integer"));
    }
    vm.cpus = static_cast<int>(*v);
  }
  if (const std::string state = StringField(j, "state"); !state.empty()) {
    vm.state = state;
  }
  vm.owner = StringField(j, "owner").empty() ? "root" : StringField(j, "owner");
  vm.uuid = env_.NewUuid();
  json result;
  {
    std::lock_guard lock(mu_);
    if (ExactNameTakenLocked(vm.name, "")) {
      return Reply::Error(ApiError::Raw(409, "vm " + vm.name + " already exists"));
    }
    vm.ip_octet = NextIpOctetLocked();
    vms_.push_back(vm);
    result = VmJsonLocked(vm);
  }
  Mutated();
  return Reply::Json(201, std::move(result));
}

Reply SimHost::ControlPatchVm(const std::string& name, std::string_view body) {
  const json j = ParseBody(body);
  if (j.is_discarded() || !j.is_object()) {
    return Reply::Error(ApiError::Raw(400, "body must be a JSON object"));
  }
  json result;
  {
    std::lock_guard lock(mu_);
    SimVm* vm = FindLocked(name);
    if (vm == nullptr) {
      return Reply::Error(ApiError::Raw(404, "vm " + name + " not found"));
    }
    if (j.contains("state")) {
      if (!j["state"].is_string() || j["state"].get<std::string>().empty()) {
        return Reply::Error(ApiError::Raw(400, "state must be a non-empty string"));
      }
      vm->state = j["state"].get<std::string>();
      vm->pending_state.clear();
      ++vm->op_seq;  // an operation in flight no longer applies
    }
    if (j.contains("ignore_graceful_stop")) {
      if (!j["ignore_graceful_stop"].is_boolean()) {
        return Reply::Error(ApiError::Raw(400, "ignore_graceful_stop must be a boolean"));
      }
      vm->ignore_graceful_stop = j["ignore_graceful_stop"].get<bool>();
    }
    result = VmJsonLocked(*vm);
    result["ignore_graceful_stop"] = vm->ignore_graceful_stop;
  }
  Mutated();
  return Reply::Json(200, std::move(result));
}

Reply SimHost::ControlDeleteVm(const std::string& name) {
  {
    std::lock_guard lock(mu_);
    const SimVm* vm = FindLocked(name);
    if (vm == nullptr) {
      return Reply::Error(ApiError::Raw(404, "vm " + name + " not found"));
    }
    const std::string uuid = vm->uuid;
    std::erase_if(vms_, [&](const SimVm& v) { return v.uuid == uuid; });
  }
  Mutated();
  return Reply::Json(200, {{"deleted", name}});
}

Reply SimHost::ControlExecutions(const std::string& name) const {
  std::lock_guard lock(mu_);
  const SimVm* vm = FindLocked(name);
  if (vm == nullptr) {
    return Reply::Error(ApiError::Raw(404, "vm " + name + " not found"));
  }
  json list = json::array();
  for (const Execution& e : vm->executions) {
    list.push_back({{"command", e.command}, {"environment_variables", e.environment_variables}});
  }
  return Reply::Json(200, std::move(list));
}

size_t SimHost::VmCount() const {
  std::lock_guard lock(mu_);
  return vms_.size();
}

size_t SimHost::InFlight() const {
  std::lock_guard lock(mu_);
  size_t n = pending_.size();  // creates past their checks, and clones
  for (const Job& job : jobs_) {
    const bool reserved = std::any_of(pending_.begin(), pending_.end(),
                                      [&](const Pending& p) { return p.key == job.id; });
    if ((job.state == "pending" || job.state == "running") && !reserved) {
      ++n;
    }
  }
  for (const SimVm& vm : vms_) {
    n += vm.pending_state.empty() ? 0 : 1;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Persistence

json SimHost::Snapshot() const {
  std::lock_guard lock(mu_);
  json vms = json::array();
  for (const SimVm& vm : vms_) {
    vms.push_back({{"uuid", vm.uuid},
                   {"name", vm.name},
                   {"description", vm.description},
                   {"owner", vm.owner},
                   {"os", GuestOsName(vm.os)},
                   {"cpus", vm.cpus},
                   {"memory_mb", vm.memory_mb},
                   {"disk_mb", vm.disk_mb},
                   {"state", vm.pending_state.empty() ? vm.state : vm.pending_state},
                   {"ip_octet", vm.ip_octet},
                   {"ignore_graceful_stop", vm.ignore_graceful_stop},
                   {"folder", vm.folder}});
  }
  json cache = json::array();
  for (const CacheEntry& e : cache_) {
    cache.push_back({{"catalog_id", e.catalog_id},
                     {"version", e.version},
                     {"architecture", e.architecture},
                     {"size_mb", e.size_mb},
                     {"os", GuestOsName(e.os)},
                     {"date", e.date}});
  }
  json out = {
      {"name", name_}, {"online", online_}, {"next_ip", next_ip_}, {"vms", vms}, {"cache", cache}};
  if (proxy_ != nullptr) {
    out["reverse_proxy_hosts"] = proxy_->Snapshot();  // the service's database keeps them
  }
  return out;
}

Status SimHost::Restore(const json& snapshot) {
  try {
    std::vector<SimVm> vms;
    for (const json& v : snapshot.at("vms")) {
      SimVm vm;
      vm.uuid = v.at("uuid").get<std::string>();
      vm.name = v.at("name").get<std::string>();
      vm.description = v.value("description", "");
      vm.owner = v.value("owner", "root");
      Result<GuestOs> os = ParseGuestOs(v.at("os").get<std::string>());
      if (!os.ok()) {
        return os.status();
      }
      vm.os = *os;
      vm.cpus = v.at("cpus").get<int>();
      vm.memory_mb = v.at("memory_mb").get<uint64_t>();
      vm.disk_mb = v.at("disk_mb").get<uint64_t>();
      vm.state = v.at("state").get<std::string>();
      vm.ip_octet = v.value("ip_octet", 2);
      vm.ignore_graceful_stop = v.value("ignore_graceful_stop", false);
      vm.folder = v.value("folder", "");
      vms.push_back(std::move(vm));
    }
    std::vector<CacheEntry> cache;
    for (const json& c : snapshot.at("cache")) {
      CacheEntry e;
      e.catalog_id = c.at("catalog_id").get<std::string>();
      e.version = c.at("version").get<std::string>();
      e.architecture = c.at("architecture").get<std::string>();
      e.size_mb = c.at("size_mb").get<uint64_t>();
      Result<GuestOs> os = ParseGuestOs(c.at("os").get<std::string>());
      if (!os.ok()) {
        return os.status();
      }
      e.os = *os;
      e.date = c.value("date", "");
      cache.push_back(std::move(e));
    }
    std::lock_guard lock(mu_);
    vms_ = std::move(vms);
    cache_ = std::move(cache);
    online_ = snapshot.value("online", true);
    next_ip_ = snapshot.value("next_ip", 0);
    if (proxy_ != nullptr && snapshot.contains("reverse_proxy_hosts")) {
      proxy_->Restore(snapshot.at("reverse_proxy_hosts"));
    }
  } catch (const json::exception& e) {
    return Status::InvalidArgument("host " + name_ + ": malformed state: " + e.what());
  }
  return Status::Ok();
}

}  // namespace flotilla::hostsim
