#include "providers/hostsim/sim_host.h"

#include <algorithm>
#include <utility>

#include "providers/hostsim/sim_proxy.h"
#include "providers/hostsim/sim_wire.h"
#include "reconciler/model/text.h"

namespace flotilla::hostsim {

using nlohmann::json;
using SystemClock = std::chrono::system_clock;

// ---------------------------------------------------------------------------------------------
// ApiError, StateOp

ApiError ApiError::Coded(int code, std::string_view msg) {
  return {code, "error " + std::to_string(code) + ": " + std::string(msg)};
}
ApiError ApiError::Uncoded(std::string_view msg) { return {400, "error: " + std::string(msg)}; }
ApiError ApiError::Prlctl(std::string msg) { return {404, std::move(msg)}; }
ApiError ApiError::Raw(int status, std::string msg) { return {status, std::move(msg)}; }
nlohmann::json ApiError::Body() const { return {{"message", message}, {"code", status}}; }

std::string_view StateOpName(StateOp op) {
  switch (op) {
    case StateOp::kStart:
      return "start";
    case StateOp::kStop:
      return "stop";
    case StateOp::kRestart:
      return "restart";
    case StateOp::kSuspend:
      return "suspend";
    case StateOp::kResume:
      return "resume";
    case StateOp::kPause:
      return "pause";
    case StateOp::kReset:
      return "reset";
  }
  return "start";
}

std::optional<StateOp> ParseStateOp(std::string_view name) {
  for (StateOp op : {StateOp::kStart, StateOp::kStop, StateOp::kRestart, StateOp::kSuspend,
                     StateOp::kResume, StateOp::kPause, StateOp::kReset}) {
    if (StateOpName(op) == name) {
      return op;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Construction, availability

SimHost::SimHost(std::string name, int index, const SimOptions& options, SimEnv& env)
    : name_(std::move(name)),
      index_(index),
      options_(options),
      features_(*FeaturesOf(options.version)),  // Validate() accepted the version
      env_(env) {
  for (const std::string& item : options_.cached) {
    const size_t slash = item.find('/');
    CacheEntry entry;
    // The cache keeps the manifest as the catalog stored it: id and version normalised
    // (catalog/main.go:142-144, helpers/strings.go NormalizeString).
    entry.catalog_id = NormalizeCatalogName(item.substr(0, slash));
    entry.version = NormalizeCatalogName(item.substr(slash + 1));
    entry.architecture = options_.arch;
    entry.size_mb = options_.default_image_size_mb;
    entry.date = Now();
    std::optional<GuestOs> os;
    for (const CatalogImage& image : options_.catalog) {
      if (NormalizeCatalogName(image.id) == entry.catalog_id &&
          NormalizeCatalogName(image.version) == entry.version) {
        entry.size_mb = image.size_mb;
        os = image.os;
      }
    }
    entry.os = os.value_or(GuessImageOs(entry.catalog_id, options_.arch));
    cache_.push_back(entry);
  }
  if (features_.reverse_proxy && options_.reverse_proxy) {
    proxy_ = std::make_unique<SimReverseProxy>(options_, options_.listen_host, *this,
                                               [this] { return env_.NewUuid(); });
  }
}

SimHost::~SimHost() = default;

bool SimHost::online() const {
  std::lock_guard lock(mu_);
  return online_;
}

void SimHost::SetOnline(bool online) {
  {
    std::lock_guard lock(mu_);
    online_ = online;
  }
  cv_.notify_all();
  Mutated();
}

bool SimHost::WaitOnline(Duration max) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, max, [this] { return online_ || shutting_down_; });
  return online_;
}

void SimHost::Shutdown() {
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
  }
  cv_.notify_all();
  if (proxy_ != nullptr) {
    proxy_->Stop();
  }
}

std::optional<std::string> SimHost::RunningAddress(const std::string& vm_id) {
  std::lock_guard lock(mu_);
  const SimVm* vm = FindLocked(vm_id);
  if (vm == nullptr || vm->state != "running") {
    return std::nullopt;
  }
  return "10.211.55." + std::to_string(vm->ip_octet);
}

std::optional<json> SimHost::Details(const std::string& vm_id) {
  std::lock_guard lock(mu_);
  const SimVm* vm = FindLocked(vm_id);
  if (vm == nullptr) {
    return std::nullopt;
  }
  // ReverseProxyRouteVmDetails (models/reverse_proxy_hosts.go), every field omitempty, filled
  // from GetVm by enrichHostWithVmDetails (controllers/reverse_proxy.go:106-143).
  const json full = VmJsonLocked(*vm);
  json details = json::object();
  const auto put = [&details](const char* key, const json& value) {
    if (value.is_string() && !value.get<std::string>().empty()) {
      details[key] = value;
    }
  };
  put("name", full.value("Name", json()));
  put("state", full.value("State", json()));
  put("os", full.value("OS", json()));
  put("uptime", full.value("Uptime", json()));
  const json tools = full.value("GuestTools", json::object());
  put("guest_tools_state", tools.value("state", json()));
  put("guest_tools_version", tools.value("version", json()));
  put("internal_ip_address", full.value("internal_ip_address", json()));
  put("host_external_ip_address", full.value("host_external_ip_address", json()));
  return details;
}

bool SimHost::GuestAt(const std::string& ip) {
  std::lock_guard lock(mu_);
  return std::any_of(vms_.begin(), vms_.end(), [&](const SimVm& vm) {
    return vm.state == "running" && "10.211.55." + std::to_string(vm.ip_octet) == ip;
  });
}

std::string SimHost::Now() const { return Rfc3339(SystemClock::now()); }

// ---------------------------------------------------------------------------------------------
// Lookups and derived values

SimVm* SimHost::FindLocked(const std::string& id) {
  return const_cast<SimVm*>(std::as_const(*this).FindLocked(id));
}

const SimVm* SimHost::FindLocked(const std::string& id) const {
  std::string_view key = id;
  if (key.size() > 2 && key.front() == '{' && key.back() == '}') {
    key = key.substr(1, key.size() - 2);
  }
  for (const SimVm& vm : vms_) {
    if (EqualsIgnoreCase(vm.uuid, key)) {
      return &vm;
    }
  }
  for (const SimVm& vm : vms_) {
    if (EqualsIgnoreCase(vm.name, id)) {
      return &vm;
    }
  }
  return nullptr;
}

SimVm* SimHost::FindByUuidLocked(const std::string& uuid) {
  for (SimVm& vm : vms_) {
    if (vm.uuid == uuid) {
      return &vm;
    }
  }
  return nullptr;
}

SimHost::Job* SimHost::FindJobLocked(const std::string& id) {
  return const_cast<Job*>(std::as_const(*this).FindJobLocked(id));
}

const SimHost::Job* SimHost::FindJobLocked(const std::string& id) const {
  for (const Job& job : jobs_) {
    if (EqualsIgnoreCase(job.id, id)) {
      return &job;
    }
  }
  return nullptr;
}

SimVm* SimHost::FindOrWait(std::unique_lock<std::mutex>& lock, const std::string& id) {
  if (SimVm* vm = FindLocked(id)) {
    return vm;
  }
  if (options_.lookup_delay.count() <= 0) {
    return nullptr;
  }
  // The real service retries its cache for about 5 s before giving up.
  lock.unlock();
  env_.Sleep(options_.lookup_delay);
  lock.lock();
  return FindLocked(id);
}

uint64_t SimHost::UsedDiskLocked() const {
  uint64_t used = options_.disk_used_mb;
  for (const SimVm& vm : vms_) {
    used += vm.disk_mb;
  }
  for (const CacheEntry& entry : cache_) {
    used += entry.size_mb;
  }
  return used;
}

uint64_t SimHost::ReservedDiskLocked() const {
  uint64_t reserved = 0;
  for (const Pending& p : pending_) {
    reserved += p.disk_mb;
  }
  return reserved;
}

std::optional<ApiError> SimHost::CheckCanRunLocked(const SimVm& vm) const {
  int apple_alive = 0;
  int64_t cpus = 0;
  int64_t memory = 0;
  for (const SimVm& other : vms_) {
    if (other.uuid == vm.uuid || !IsAlive(other.state)) {
      continue;
    }
    apple_alive += other.os == GuestOs::kMacos ? 1 : 0;
    cpus += other.cpus;
    memory += static_cast<int64_t>(other.memory_mb);
  }
  if (vm.os == GuestOs::kMacos && apple_alive >= kAppleVmLimit) {
    return ApiError::Prlctl(
        "Failed to start the VM: the maximum number of running macOS virtual machines (2) has "
        "been reached.");
  }
  if (!options_.allow_overcommit) {
    const int64_t free_cpus = options_.cpu - options_.reserved_cpu - cpus;
    const int64_t free_memory = static_cast<int64_t>(options_.memory_mb) -
                                static_cast<int64_t>(options_.reserved_memory_mb) - memory;
    if (vm.cpus > free_cpus) {
      return ApiError::Prlctl("Failed to start the VM: not enough CPUs available on the host (" +
                              std::to_string(vm.cpus) + " requested, " +
                              std::to_string(std::max<int64_t>(free_cpus, 0)) + " available).");
    }
    if (static_cast<int64_t>(vm.memory_mb) > free_memory) {
      return ApiError::Prlctl("Failed to start the VM: not enough memory available on the host (" +
                              std::to_string(vm.memory_mb) + " MB requested, " +
                              std::to_string(std::max<int64_t>(free_memory, 0)) +
                              " MB available).");
    }
  }
  return std::nullopt;
}

bool SimHost::NameTrapLocked(const std::string& name) const {
  // The pull asks prlctl for VMs filtered by `name=<machine_name>`: an unanchored regex.
  std::optional<std::regex> re;
  try {
    re.emplace(name, std::regex::ECMAScript);
  } catch (const std::regex_error&) {
    re.reset();
  }
  auto matches = [&](const std::string& existing) {
    return re ? std::regex_search(existing, *re) : existing.find(name) != std::string::npos;
  };
  for (const SimVm& vm : vms_) {
    if (matches(vm.name)) {
      return true;
    }
  }
  for (const Pending& p : pending_) {
    if (matches(p.name)) {
      return true;
    }
  }
  return false;
}

bool SimHost::ExactNameTakenLocked(const std::string& name, const std::string& except_uuid) const {
  for (const SimVm& vm : vms_) {
    if (vm.uuid != except_uuid && EqualsIgnoreCase(vm.name, name)) {
      return true;
    }
  }
  for (const Pending& p : pending_) {
    if (EqualsIgnoreCase(p.name, name)) {
      return true;
    }
  }
  return false;
}

int SimHost::NextIpOctetLocked() { return 2 + (next_ip_++ % 253); }

json SimHost::VmJsonLocked(const SimVm& vm) const {
  const bool macos = vm.os == GuestOs::kMacos;
  const std::string parent = vm.folder.empty() ? "/Users/" + vm.owner + "/Parallels" : vm.folder;
  const std::string home = parent + "/" + vm.name + (macos ? ".macvm" : ".pvm") + "/";
  const bool running = vm.state == "running";
  const std::string ip = "10.211.55." + std::to_string(vm.ip_octet);
  json addresses = json::array();
  if (running) {
    addresses.push_back({{"type", "ipv4"}, {"ip", ip}});
  }
  const std::string external_ip = "192.0.2." + std::to_string(10 + index_ % 240);
  json hardware = {
      {"cpu",
       {{"cpus", vm.cpus},
        {"auto", "off"},
        {"VT-x", true},
        {"hotplug", false},
        {"accl", "high"},
        {"mode", "64"},
        {"type", options_.arch == "arm64" ? "arm" : "x86"}}},
      {"memory",
       {{"size", std::to_string(vm.memory_mb) + "Mb"}, {"auto", "off"}, {"hotplug", false}}},
      {"hdd0",
       {{"enabled", true},
        {"port", "sata:0"},
        {"image", home + "harddisk.hdd"},
        {"type", "expanded"},
        {"size", std::to_string(vm.disk_mb) + "Mb"},
        {"online-compact", "off"}}},
  };
  return {
      {"ID", vm.uuid},
      {"Name", vm.name},
      {"Description", vm.description},
      {"Type", macos ? "APPLE_VZ_VM" : "VM"},
      {"OS", macos ? "macosx" : "ubuntu"},
      {"Template", "no"},
      {"Uptime", "0"},
      {"State", vm.state},
      {"user", vm.owner},
      {"Home", home},
      {"Home path", home + "config.pvs"},
      {"host_external_ip_address", external_ip},
      {"internal_ip_address", running ? ip : ""},
      {"Hardware", hardware},
      {"GuestTools", {{"state", "installed"}}},
      {"Network", {{"Conditioned", "off"}, {"ipAddresses", addresses}}},
  };
}

json SimHost::JobJsonLocked(const Job& job) const {
  // models/job.go JobStepResponse.
  json steps = json::array();
  for (const JobStep& step : job.steps) {
    const bool done = step.state == "completed" || step.state == "skipped";
    const double percentage =
        done             ? 100.0
        : step.total > 0 ? 100.0 * static_cast<double>(step.value) / static_cast<double>(step.total)
                         : 0.0;
    steps.push_back({{"name", step.name},
                     {"display_name", step.name},
                     {"weight", 1},
                     {"parallel", false},
                     {"has_percentage", step.has_percentage},
                     {"state", step.state},
                     {"current_percentage", percentage},
                     {"value", step.value},
                     {"total", step.total},
                     {"eta", step.eta},
                     {"message", ""},
                     {"error", ""},
                     {"filename", ""},
                     {"unit", step.unit}});
  }
  // models/job.go JobResponse: the omitempty fields are left out while empty; the record
  // fields are set only when the job completes (jobs/main.go MarkJobCompleteWithRecord).
  json out = {{"id", job.id},
              {"owner", job.owner},
              {"state", job.state},
              {"progress", job.progress},
              {"job_type", "machines"},  // controllers/machines.go CreateNewJob(.., "machines", ..)
              {"job_operation", job.operation},
              {"created_at", job.created_at},
              {"updated_at", job.updated_at}};
  const auto optional = [&out](const char* key, const std::string& value) {
    if (!value.empty()) {
      out[key] = value;
    }
  };
  optional("message", job.message);
  if (!steps.empty()) {
    out["steps"] = steps;
  }
  optional("result", job.result);
  optional("result_record_id", job.result_record_id);
  optional("result_record_name", job.result_record_name);
  optional("result_record_type", job.result_record_id.empty() ? "" : "virtual_machine");
  optional("error", job.error);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Read endpoints

Reply SimHost::Hardware() const {
  json body = [this] {
    std::lock_guard lock(mu_);
    int64_t in_use_cpu = 0, in_use_mem = 0, in_use_disk = 0;
    int64_t idle_cpu = 0, idle_mem = 0, idle_disk = 0;
    json mac_running = json::array();
    for (const SimVm& vm : vms_) {
      if (vm.state == "running") {
        in_use_cpu += vm.cpus;
        in_use_mem += static_cast<int64_t>(vm.memory_mb);
        in_use_disk += static_cast<int64_t>(vm.disk_mb);
        // Any running VM whose OS is macosx or whose name contains "mac", in any case
        // (parallelsdesktop/main.go syncMacVmRunningStatus): an "emacs-dev" Linux VM counts.
        if (vm.os == GuestOs::kMacos || AsciiLower(vm.name).find("mac") != std::string::npos) {
          mac_running.push_back(vm.uuid);
        }
      } else {
        idle_cpu += vm.cpus;
        idle_mem += static_cast<int64_t>(vm.memory_mb);
        idle_disk += static_cast<int64_t>(vm.disk_mb);
      }
    }
    const int64_t size = static_cast<int64_t>(options_.disk_mb);
    const int64_t free_disk = std::max<int64_t>(size - static_cast<int64_t>(UsedDiskLocked()), 0);
    // `df -h /` on macOS 11+: Size is the APFS container, Used the sealed system volume alone,
    // Avail what is really free. parseDfCommand (serviceprovider/system/main.go:715-732) reads
    // fields[1] as the total and fields[2], Used, as "free"; GetHardwareInfo then reports
    // total.disk_count = Size - Used and total_available.disk_count = Used
    // (parallelsdesktop/main.go:2899-2902). Every version has this.
    const int64_t df_used = static_cast<int64_t>(options_.system_volume_used_mb);
    // Available cpu and memory are total - reserved - in use, negative when overcommitted
    // (SystemUsageItem.LogicalCpuCount is an int64, never clamped).
    const int64_t avail_cpu = options_.cpu - options_.reserved_cpu - in_use_cpu;
    const int64_t avail_mem = static_cast<int64_t>(options_.memory_mb) -
                              static_cast<int64_t>(options_.reserved_memory_mb) - in_use_mem;
    json available = {
        {"logical_cpu_count", avail_cpu}, {"memory_size", avail_mem}, {"disk_count", df_used}};
    if (features_.prl_home_disk) {
      // statfs of the Parallels VM home (helpers/disk_space_unix.go): Bavail and Blocks, in MB.
      // Both omitempty.
      if (free_disk > 0) {
        available["prl_home_free_size"] = free_disk;
      }
      available["prl_home_total_size"] = size;
    }
    json in_use = {{"logical_cpu_count", in_use_cpu},
                   {"memory_size", in_use_mem},
                   {"disk_count", in_use_disk}};
    if (features_.mac_vms_running && !mac_running.empty()) {
      in_use["mac_vms_running"] = std::move(mac_running);  // omitempty
    }
    const bool arm = options_.arch == "arm64";
    json modules = {"api", "cors", "host"};
    if (proxy_ != nullptr) {
      modules.push_back("reverse_proxy");
    }
    if (features_.async_create) {
      modules.push_back("cache");
      modules.push_back("catalog_manager");
    }
    json out = {
        {"cpu_type", options_.arch},
        {"cpu_brand", arm ? "Apple M2 Pro" : "Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz"},
        {"devops_version", options_.version},
        {"os_name", "macOS"},
        {"os_version", "15.5"},
        {"parallels_desktop_version", "26.0.0"},
        {"parallels_desktop_licensed", true},
        {"external_ip_address", "192.0.2." + std::to_string(10 + index_ % 240)},
        // controllers/config.go:310-331: the flag and, when on, the proxy's config and records.
        {"is_reverse_proxy_enabled", proxy_ != nullptr},
        {"is_log_streaming_enabled", false},
        {"enabled_modules", modules},
        {"cache_config",
         {{"enabled", true},
          {"folder", "/Users/root/.parallels-api-service/catalog_cache"},
          {"keep_free_disk_space", 5000},
          {"max_size", 0},
          {"allow_above_free_disk_space", false}}},
        {"system_reserved",
         {{"logical_cpu_count", options_.reserved_cpu},
          {"memory_size", options_.reserved_memory_mb},
          {"disk_count", options_.reserved_disk_mb}}},
        {"total",
         {{"physical_cpu_count", options_.cpu},
          {"logical_cpu_count", options_.cpu},
          {"memory_size", options_.memory_mb},
          {"disk_count", size - df_used}}},
        {"total_available", std::move(available)},
        {"total_in_use", std::move(in_use)},
        {"total_reserved",
         {{"logical_cpu_count", idle_cpu}, {"memory_size", idle_mem}, {"disk_count", idle_disk}}},
    };
    return out;
  }();
  if (proxy_ != nullptr) {
    body["reverse_proxy"] = proxy_->HardwareSection();  // omitempty: absent when off
  }
  return Reply::Json(200, std::move(body));
}

Reply SimHost::ListVms(const std::string* filter) {
  std::optional<VmFilter> parsed;
  if (filter != nullptr && !filter->empty()) {
    std::string error;
    parsed = ParseFilter(*filter, &error);
    if (!parsed) {
      return Reply::Error(ApiError::Prlctl(error));  // a raw Go error: 404
    }
  }
  json list = json::array();
  {
    std::lock_guard lock(mu_);
    // The list is the service's VM cache, which follows prlctl's events
    // (parallelsdesktop/main.go GetCachedVms): with --list-lag it shows the state of that long
    // ago.
    json lagging;
    const json* shown = nullptr;
    if (options_.list_lag.count() > 0) {
      const auto cutoff = std::chrono::steady_clock::now() - options_.list_lag;
      for (const auto& [when, listing] : listings_) {
        if (when <= cutoff || shown == nullptr) {
          shown = &listing;
        }
      }
    }
    if (shown == nullptr) {
      lagging = json::array();
      for (const SimVm& vm : vms_) {
        lagging.push_back(VmJsonLocked(vm));
      }
      shown = &lagging;
    }
    for (const json& j : *shown) {
      if (!parsed || FilterMatches(*parsed, j)) {
        list.push_back(j);
      }
    }
  }
  env_.Sleep(env_.Latency("list"));
  return Reply::Json(200, std::move(list));
}

void SimHost::Mutated() {
  if (options_.list_lag.count() > 0) {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    json listing = json::array();
    for (const SimVm& vm : vms_) {
      listing.push_back(VmJsonLocked(vm));
    }
    // Keep the newest listing older than the lag, and everything after it.
    const auto cutoff = now - options_.list_lag;
    while (listings_.size() >= 2 && listings_[1].first <= cutoff) {
      listings_.erase(listings_.begin());
    }
    listings_.emplace_back(now, std::move(listing));
  }
  if (proxy_ != nullptr && features_.proxy_follows_vm_address && proxy_->HasVmRoutes()) {
    // 1.0.0+: a VM that started is looked at again 2 s later (reverse_proxy/main.go:661-690).
    env_.Schedule(std::chrono::seconds(2), [this] { proxy_->Follow(); });
  }
  env_.OnMutation();
}

Reply SimHost::GetVm(const std::string& id) {
  std::unique_lock lock(mu_);
  const SimVm* vm = FindOrWait(lock, id);
  return vm == nullptr ? VmNotFound() : Reply::Json(200, VmJsonLocked(*vm));
}

Reply SimHost::VmStatus(const std::string& id) {
  std::unique_lock lock(mu_);
  const SimVm* vm = FindOrWait(lock, id);
  if (vm == nullptr) {
    return VmNotFound();
  }
  // Live `prlctl list -f --json` (parallelsdesktop/main.go VmStatus): the guest reports an
  // address once it has booted.
  const bool up = vm->state == "running" && std::chrono::steady_clock::now() >= vm->booted_at;
  const std::string ip = up ? "10.211.55." + std::to_string(vm->ip_octet) : "-";
  return Reply::Json(200,
                     {{"id", "{" + vm->uuid + "}"}, {"status", vm->state}, {"ip_configured", ip}});
}

Reply SimHost::Cache() {
  std::lock_guard lock(mu_);
  if (options_.cache_listing_race) {
    // GetAllCacheItems rewrites every item's metadata file without a lock while it lists
    // (controllers/cache.go:102-123, catalog/cacheservice/main.go:557-595); a pull that has
    // just marked its item complete then reads it back as incomplete and fails its integrity
    // check (main.go:891-906, integrity_check.go:22-24). Read from the source, not run.
    for (const auto& [job, key] : caching_) {
      cache_disturbed_.push_back(job);
    }
  }
  uint64_t total = 0;
  json manifests = json::array();
  for (const CacheEntry& e : cache_) {
    total += e.size_mb;
    manifests.push_back({{"catalog_id", e.catalog_id},
                         {"version", e.version},
                         {"architecture", e.architecture},
                         {"cache_size", e.size_mb},
                         {"cache_type", e.os == GuestOs::kMacos ? "macvm" : "pvm"},
                         {"cache_date", e.date}});
  }
  return Reply::Json(200, {{"total_size", total}, {"manifests", manifests}});
}

Reply SimHost::ListJobs(bool user) const {
  if (!user && !options_.no_auth) {
    return Reply::Error(ApiError::Raw(401, "User not found"));  // controllers/jobs.go:89-92
  }
  std::lock_guard lock(mu_);
  json list = json::array();
  for (const Job& job : jobs_) {
    list.push_back(JobJsonLocked(job));
  }
  return Reply::Json(200, std::move(list));
}

Reply SimHost::GetJob(const std::string& id, bool user) const {
  // Only a login token sets a user: API-key callers get 401 "User not found" on every version
  // that has jobs (controllers/jobs.go:140-143; the API-key middleware sets no user,
  // restapi/apikey_authorization_middleware.go:61-65). hostsim's users may read every job (the
  // job_manager_list claim), so the owner check of jobs.go:155-160 never refuses here.
  if (!user && !options_.no_auth) {
    return Reply::Error(ApiError::Raw(401, "User not found"));
  }
  std::lock_guard lock(mu_);
  const Job* job = FindJobLocked(id);
  if (job == nullptr) {
    return Reply::Error(ApiError::Coded(404, "Job not found"));
  }
  return Reply::Json(200, JobJsonLocked(*job));
}

}  // namespace flotilla::hostsim
