#include "providers/hostsim/sim_host.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>
#include <regex>
#include <utility>

#include "reconciler/model/text.h"

namespace flotilla::hostsim {
namespace {

using nlohmann::json;
using SystemClock = std::chrono::system_clock;

constexpr int kAppleVmLimit = 2;
constexpr uint64_t kDefaultCpus = 2;
constexpr uint64_t kDefaultMemoryMb = 2048;

std::string Rfc3339(SystemClock::time_point tp) {
  const std::time_t t = SystemClock::to_time_t(tp);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}

// A JSON body parsed leniently: discarded (is_discarded()) when it is not valid JSON.
json ParseBody(std::string_view body) {
  if (body.empty()) {
    return json::object();
  }
  return json::parse(body, nullptr, /*allow_exceptions=*/false);
}

std::string StringField(const json& j, const char* key) {
  if (!j.is_object()) {
    return "";
  }
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return "";
  }
  return it->get<std::string>();
}

// A positive integer given as a JSON number or a decimal string ("4", "8192").
std::optional<uint64_t> PositiveInt(const json& j) {
  if (j.is_number_unsigned() || j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    return v > 0 ? std::optional<uint64_t>(static_cast<uint64_t>(v)) : std::nullopt;
  }
  if (!j.is_string()) {
    return std::nullopt;
  }
  const std::string s = j.get<std::string>();
  if (s.empty() || s.size() > 12 ||
      !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::nullopt;
  }
  const uint64_t v = std::stoull(s);
  return v > 0 ? std::optional<uint64_t>(v) : std::nullopt;
}

// "amd64" -> "x86_64", "arm"/"aarch64" -> "arm64"; "" when unknown.
std::string NormalizeArch(std::string_view arch) {
  const std::string a = AsciiLower(arch);
  if (a == "x86_64" || a == "amd64") {
    return "x86_64";
  }
  if (a == "arm64" || a == "arm" || a == "aarch64") {
    return "arm64";
  }
  return "";
}

bool IsAlive(std::string_view state) {
  static constexpr std::array<std::string_view, 9> kAlive = {"running",   "starting", "restarting",
                                                             "resetting", "resuming", "pausing",
                                                             "paused",    "stopping", "suspending"};
  return std::find(kAlive.begin(), kAlive.end(), state) != kAlive.end();
}

std::string OperationTitle(StateOp op) {
  std::string name(StateOpName(op));
  name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
  return name;
}

json OAuthError(std::string_view description) {
  return {{"error", "unauthorized_client"}, {"error_description", description}};
}

// The diagnostics error of auth/token and auth/token/validate (§1.1 shape 3).
Reply Diagnostics(int code, std::string_view message, std::string_view operation) {
  const std::string now = Rfc3339(SystemClock::now());
  json error = {{"code", std::to_string(code)},
                {"message", message},
                {"timestamp", now},
                {"component", "auth"}};
  json diagnostics = {{"operation", operation},
                      {"start_time", now},
                      {"end_time", now},
                      {"path", json::array({"auth", operation})},
                      {"errors", json::array({error})},
                      {"warnings", json::array()}};
  return Reply::Json(code, {{"message", message}, {"diagnostics", diagnostics}, {"code", code}});
}

Reply VmNotFound() { return Reply::Error(ApiError::Coded(404, "Virtual machine not found")); }

Reply InvalidBody(std::string_view what) {
  return Reply::Error(ApiError::Raw(400, "Invalid request body: " + std::string(what)));
}

std::string PullError(std::string_view what) {
  return "error 400: Error pulling manifest: \n\n" + std::string(what);
}

// Finds `key` in `object` ignoring case.
const json* FindKeyIgnoreCase(const json& object, std::string_view key) {
  if (!object.is_object()) {
    return nullptr;
  }
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (EqualsIgnoreCase(it.key(), key)) {
      return &it.value();
    }
  }
  return nullptr;
}

// An X-Filter "<prop>=<regex>[,i]" (§1): property path and compiled regex.
struct VmFilter {
  std::vector<std::string> path;
  std::regex regex;
};

std::optional<VmFilter> ParseFilter(const std::string& text, std::string* error) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    *error = "invalid filter \"" + text + "\": expected <property>=<regex>[,i]";
    return std::nullopt;
  }
  VmFilter filter;
  std::string prop = text.substr(0, eq);
  size_t start = 0;
  while (true) {
    const size_t dot = prop.find('.', start);
    filter.path.push_back(prop.substr(start, dot == std::string::npos ? dot : dot - start));
    if (dot == std::string::npos) {
      break;
    }
    start = dot + 1;
  }
  std::string value = text.substr(eq + 1);
  auto flags = std::regex::ECMAScript;
  if (value.size() >= 2 && value.compare(value.size() - 2, 2, ",i") == 0) {
    value.resize(value.size() - 2);
    flags |= std::regex::icase;
  }
  try {
    filter.regex = std::regex(value, flags);
  } catch (const std::regex_error& e) {
    *error = "error parsing regexp: invalid filter value \"" + value + "\"";
    return std::nullopt;
  }
  return filter;
}

bool FilterMatches(const VmFilter& filter, const json& vm) {
  const json* node = &vm;
  for (const std::string& key : filter.path) {
    node = FindKeyIgnoreCase(*node, key);
    if (node == nullptr) {
      return false;
    }
  }
  const std::string text = node->is_string() ? node->get<std::string>() : node->dump();
  return std::regex_search(text, filter.regex);
}

}  // namespace

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
    : name_(std::move(name)), index_(index), options_(options), env_(env) {
  for (const std::string& item : options_.cached) {
    const size_t slash = item.find('/');
    CacheEntry entry;
    entry.catalog_id = AsciiUpper(item.substr(0, slash));
    entry.version = item.substr(slash + 1);
    entry.architecture = options_.arch;
    entry.size_mb = options_.default_image_size_mb;
    entry.date = Now();
    bool macos = options_.arch == "arm64" && (entry.catalog_id.find("MACOS") != std::string::npos ||
                                              entry.catalog_id.find("IOS") != std::string::npos ||
                                              entry.catalog_id.find("XCODE") != std::string::npos);
    for (const CatalogImage& image : options_.catalog) {
      if (image.id == entry.catalog_id && image.version == entry.version) {
        entry.size_mb = image.size_mb;
        if (image.os) {
          macos = *image.os == GuestOs::kMacos;
        }
      }
    }
    entry.os = macos ? GuestOs::kMacos : GuestOs::kLinux;
    cache_.push_back(entry);
  }
}

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
  env_.OnMutation();
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
}

std::string SimHost::Now() const { return Rfc3339(SystemClock::now()); }

// ---------------------------------------------------------------------------------------------
// Authentication

Reply SimHost::Login(std::string_view body) {
  const json j = ParseBody(body);
  if (j.is_discarded() || !j.is_object()) {
    return Diagnostics(400, "Invalid request body", "token");
  }
  std::string email;
  const std::string api_key = StringField(j, "api_key");
  if (!api_key.empty()) {
    const std::optional<std::string> decoded = DecodeBase64(api_key);
    if (!decoded) {
      return Diagnostics(400, "Invalid API key format", "token");
    }
    const size_t colon = decoded->find(':');
    if (colon == std::string::npos) {
      return Diagnostics(400, "API key must be in format base64(key:secret)", "token");
    }
    if (!options_.no_auth) {
      const std::string key = AsciiUpper(decoded->substr(0, colon));
      const std::string secret = decoded->substr(colon + 1);
      auto it = std::find_if(options_.api_keys.begin(), options_.api_keys.end(),
                             [&](const ApiKeyCredential& c) { return c.key == key; });
      if (it == options_.api_keys.end()) {
        return Diagnostics(401, "Invalid API key", "token");
      }
      if (it->secret != secret) {
        return Diagnostics(401, "Invalid API key secret", "token");
      }
    }
    email = "root@localhost";
  } else {
    std::string user = StringField(j, "username");
    if (user.empty()) {
      user = StringField(j, "email");
    }
    const std::string password = StringField(j, "password");
    if (user.empty() || password.empty()) {
      return Diagnostics(400, "Invalid request body: username or email and password are required",
                         "token");
    }
    const std::string& known = options_.username;
    const std::string known_email =
        known.find('@') == std::string::npos ? known + "@localhost" : known;
    if (!options_.no_auth) {
      const bool user_ok =
          !known.empty() && (EqualsIgnoreCase(user, known) || EqualsIgnoreCase(user, known_email));
      if (!user_ok || password != options_.password) {
        return Diagnostics(404, "Invalid user or Password", "token");
      }
    }
    email = known.empty() ? "root@localhost" : known_email;
  }
  env_.Sleep(env_.Latency("login"));
  const std::string token = env_.NewToken();
  const auto expires = SystemClock::now() + options_.token_ttl;
  {
    std::lock_guard lock(mu_);
    tokens_[token] = expires;
  }
  const int64_t expires_at =
      std::chrono::duration_cast<std::chrono::seconds>(expires.time_since_epoch()).count();
  return Reply::Json(200, {{"email", email}, {"token", token}, {"expires_at", expires_at}});
}

Reply SimHost::ValidateToken(std::string_view body) {
  const json j = ParseBody(body);
  const std::string token = j.is_discarded() ? "" : StringField(j, "token");
  if (token.empty()) {
    return Diagnostics(400, "Invalid request body: token is required", "validate");
  }
  std::lock_guard lock(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) {
    return Diagnostics(401, "Invalid token", "validate");
  }
  if (SystemClock::now() >= it->second) {
    return Diagnostics(401, "Token is expired", "validate");
  }
  return Reply::Json(200, {{"valid", true}});
}

std::optional<Reply> SimHost::Authenticate(const std::string* authorization,
                                           const std::string* api_key) const {
  if (options_.no_auth) {
    return std::nullopt;
  }
  if (authorization != nullptr && api_key != nullptr) {
    // Each middleware skips when the other header is present: nobody authenticates.
    return Reply::Json(401, nullptr);
  }
  if (authorization != nullptr) {
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization->size() <= kBearer.size() ||
        !EqualsIgnoreCase(authorization->substr(0, kBearer.size()), kBearer)) {
      return Reply::Json(401, OAuthError("Invalid token"));
    }
    const std::string token = authorization->substr(kBearer.size());
    std::lock_guard lock(mu_);
    auto it = tokens_.find(token);
    if (it == tokens_.end()) {
      return Reply::Json(401, OAuthError("Invalid token"));
    }
    if (SystemClock::now() >= it->second) {
      return Reply::Json(401, OAuthError("Token is expired"));
    }
    return std::nullopt;
  }
  // The API-key middleware runs on the header even when it is absent.
  const std::string text = api_key != nullptr ? *api_key : "";
  const std::optional<std::string> decoded = DecodeBase64(text);
  if (!decoded) {
    return Reply::Json(401, OAuthError("Invalid API key format"));
  }
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) {
    return Reply::Json(401, OAuthError("API key must be in format base64(key:secret)"));
  }
  const std::string key = AsciiUpper(decoded->substr(0, colon));
  auto it = std::find_if(options_.api_keys.begin(), options_.api_keys.end(),
                         [&](const ApiKeyCredential& c) { return c.key == key; });
  if (it == options_.api_keys.end()) {
    return Reply::Json(401, OAuthError("Invalid API key"));
  }
  if (it->secret != decoded->substr(colon + 1)) {
    return Reply::Json(401, OAuthError("Invalid API key secret"));
  }
  return std::nullopt;
}

void SimHost::ExpireTokens() {
  std::lock_guard lock(mu_);
  const auto past = SystemClock::now() - std::chrono::seconds(1);
  for (auto& [token, expiry] : tokens_) {
    expiry = std::min(expiry, past);
  }
}

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
  json steps = json::array();
  for (const JobStep& step : job.steps) {
    const bool done = step.state == "completed" || step.state == "skipped";
    steps.push_back({{"name", step.name},
                     {"display_name", step.name},
                     {"weight", 1},
                     {"parallel", false},
                     {"has_percentage", false},
                     {"state", step.state},
                     {"current_percentage", done ? 100 : 0},
                     {"message", ""},
                     {"error", ""}});
  }
  return {{"id", job.id},
          {"owner", job.owner},
          {"state", job.state},
          {"message", job.message},
          {"progress", job.progress},
          {"job_type", "virtual_machine"},
          {"job_operation", job.operation},
          {"steps", steps},
          {"result_record_id", job.result_record_id},
          {"result_record_name", job.result_record_name},
          {"result_record_type", "virtual_machine"},
          {"error", job.error},
          {"created_at", job.created_at},
          {"updated_at", job.updated_at}};
}

// ---------------------------------------------------------------------------------------------
// Read endpoints

Reply SimHost::Hardware() const {
  std::lock_guard lock(mu_);
  int64_t in_use_cpu = 0, in_use_mem = 0, in_use_disk = 0;
  int64_t idle_cpu = 0, idle_mem = 0, idle_disk = 0;
  json mac_running = json::array();
  for (const SimVm& vm : vms_) {
    if (vm.state == "running") {
      in_use_cpu += vm.cpus;
      in_use_mem += static_cast<int64_t>(vm.memory_mb);
      in_use_disk += static_cast<int64_t>(vm.disk_mb);
      if (vm.os == GuestOs::kMacos) {
        mac_running.push_back(vm.uuid);
      }
    } else {
      idle_cpu += vm.cpus;
      idle_mem += static_cast<int64_t>(vm.memory_mb);
      idle_disk += static_cast<int64_t>(vm.disk_mb);
    }
  }
  const int64_t used = static_cast<int64_t>(UsedDiskLocked());
  const int64_t free_disk = std::max<int64_t>(static_cast<int64_t>(options_.disk_mb) - used, 0);
  const int64_t avail_cpu = std::max<int64_t>(options_.cpu - options_.reserved_cpu - in_use_cpu, 0);
  const int64_t avail_mem =
      std::max<int64_t>(static_cast<int64_t>(options_.memory_mb) -
                            static_cast<int64_t>(options_.reserved_memory_mb) - in_use_mem,
                        0);
  const bool arm = options_.arch == "arm64";
  json body = {
      {"cpu_type", options_.arch},
      {"cpu_brand", arm ? "Apple M2 Pro" : "Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz"},
      {"devops_version", options_.version},
      {"os_name", "macOS"},
      {"os_version", "15.5"},
      {"parallels_desktop_version", "26.0.0"},
      {"parallels_desktop_licensed", true},
      {"external_ip_address", "192.0.2." + std::to_string(10 + index_ % 240)},
      {"is_reverse_proxy_enabled", false},
      {"is_log_streaming_enabled", false},
      {"enabled_modules", {"api", "cors", "host", "cache", "reverse_proxy", "catalog_manager"}},
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
        {"disk_count", used}}},
      {"total_available",
       {{"logical_cpu_count", avail_cpu}, {"memory_size", avail_mem}, {"disk_count", free_disk}}},
      {"total_in_use",
       {{"logical_cpu_count", in_use_cpu},
        {"memory_size", in_use_mem},
        {"disk_count", in_use_disk},
        {"mac_vms_running", mac_running}}},
      {"total_reserved",
       {{"logical_cpu_count", idle_cpu}, {"memory_size", idle_mem}, {"disk_count", idle_disk}}},
  };
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
    for (const SimVm& vm : vms_) {
      json j = VmJsonLocked(vm);
      if (!parsed || FilterMatches(*parsed, j)) {
        list.push_back(std::move(j));
      }
    }
  }
  env_.Sleep(env_.Latency("list"));
  return Reply::Json(200, std::move(list));
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
  const std::string ip = vm->state == "running" ? "10.211.55." + std::to_string(vm->ip_octet) : "-";
  return Reply::Json(200,
                     {{"id", "{" + vm->uuid + "}"}, {"status", vm->state}, {"ip_configured", ip}});
}

Reply SimHost::Cache() const {
  std::lock_guard lock(mu_);
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

Reply SimHost::ListJobs() const {
  std::lock_guard lock(mu_);
  json list = json::array();
  for (const Job& job : jobs_) {
    list.push_back(JobJsonLocked(job));
  }
  return Reply::Json(200, std::move(list));
}

Reply SimHost::GetJob(const std::string& id) const {
  std::lock_guard lock(mu_);
  const Job* job = FindJobLocked(id);
  if (job == nullptr) {
    return Reply::Error(ApiError::Coded(404, "Job not found"));
  }
  return Reply::Json(200, JobJsonLocked(*job));
}

// ---------------------------------------------------------------------------------------------
// Create (§3.3, §8.2)

std::optional<ApiError> SimHost::ParseCreate(std::string_view body, CreateRequest* out) {
  const json j = ParseBody(body);
  if (j.is_discarded() || !j.is_object()) {
    return ApiError::Raw(400, "Invalid request body: malformed JSON");
  }
  CreateRequest& r = *out;
  r.name = StringField(j, "name");
  if (r.name.empty()) {
    return ApiError::Raw(400, "Invalid request body: name cannot be empty");
  }
  auto present = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  const int templates = (present("catalog_manifest") ? 1 : 0) +
                        (present("packer_template") ? 1 : 0) + (present("vagrant_box") ? 1 : 0);
  if (templates == 0) {
    return ApiError::Raw(400, "Invalid request body: no template was specified");
  }
  if (templates > 1) {
    return ApiError::Raw(400, "Invalid request body: only one template can be specified");
  }
  if (!present("catalog_manifest")) {
    // ENABLE_VAGRANT_PLUGIN is off (it gates packer too).
    return ApiError::Raw(400, "Invalid request body: vagrant plugin is not enabled");
  }
  const json& m = j["catalog_manifest"];
  if (!m.is_object()) {
    return ApiError::Raw(400, "Invalid request body: catalog_manifest must be an object");
  }
  r.catalog_id = AsciiUpper(StringField(m, "catalog_id"));
  if (r.catalog_id.empty()) {
    return ApiError::Raw(400, "Invalid request body: catalog_id cannot be empty");
  }
  if (const std::string v = StringField(m, "version"); !v.empty()) {
    r.version = v;
  }
  if (StringField(m, "connection").empty() && StringField(m, "catalog_manager_id").empty()) {
    return ApiError::Raw(400,
                         "missing connection or catalog_manager_id; local catalog is not "
                         "enabled");
  }
  r.architecture = StringField(j, "architecture");
  if (r.architecture.empty()) {
    r.architecture = StringField(m, "architecture");
  }
  if (const std::string owner = StringField(j, "owner"); !owner.empty()) {
    r.owner = owner;
  }
  if (j.contains("start_on_create") && j["start_on_create"].is_boolean()) {
    r.start_on_create = j["start_on_create"].get<bool>();
  }
  if (m.contains("specs") && m["specs"].is_object()) {
    const json& specs = m["specs"];
    auto spec = [&](const char* key, auto* target) -> bool {
      if (!specs.contains(key) || specs[key].is_null() ||
          (specs[key].is_string() && (specs[key] == "" || specs[key] == "0"))) {
        return true;
      }
      std::optional<uint64_t> v = PositiveInt(specs[key]);
      if (!v) {
        return false;
      }
      *target = static_cast<typename std::remove_pointer_t<decltype(target)>::value_type>(*v);
      return true;
    };
    if (!spec("cpu", &r.cpu) || !spec("memory", &r.memory_mb) || !spec("disk", &r.disk_mb)) {
      return ApiError::Raw(400,
                           "Invalid request body: specs cpu, memory and disk must be "
                           "positive integers (memory and disk in MB)");
    }
    const std::string type = AsciiLower(StringField(specs, "type"));
    if (type == "macvm") {
      r.type = GuestOs::kMacos;
    } else if (type == "pvm") {
      r.type = GuestOs::kLinux;
    }
  }
  return std::nullopt;
}

Reply SimHost::Create(std::string_view body, bool async) {
  CreateRequest request;
  if (std::optional<ApiError> error = ParseCreate(body, &request)) {
    return Reply::Error(*error);
  }
  const std::string job_id = env_.NewUuid();
  json accepted;
  {
    std::lock_guard lock(mu_);
    Job job;
    job.id = job_id;
    job.owner = request.owner;
    job.message = "Creating virtual machine " + request.name;
    job.result_record_name = request.name;
    job.created_at = job.updated_at = Now();
    for (const char* step : {"Validating Requirements", "Checking Cache", "Downloading Pack File",
                             "Registering Machine", "Renaming Machine"}) {
      job.steps.push_back({step});
    }
    if (request.start_on_create) {
      job.steps.push_back({"Starting Machine"});
    }
    jobs_.push_back(job);
    accepted = JobJsonLocked(job);
  }
  env_.Schedule(Duration(0), [this, job_id, request] { RunCreate(job_id, request); });
  if (async) {
    return Reply::Json(202, std::move(accepted));
  }
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] {
    const Job* job = FindJobLocked(job_id);
    return shutting_down_ || job == nullptr || job->state == "completed" || job->state == "failed";
  });
  const Job* job = FindJobLocked(job_id);
  if (job == nullptr || (job->state != "completed" && job->state != "failed")) {
    return Reply::Error(ApiError::Coded(503, "service is shutting down"));
  }
  if (job->state == "failed") {
    return Reply::Error(ApiError::Raw(400, job->error));
  }
  const SimVm* vm = FindByUuidLocked(job->result_record_id);
  return Reply::Json(200, {{"id", job->result_record_id},
                           {"name", request.name},
                           {"owner", request.owner},
                           {"current_state", vm != nullptr ? vm->state : "stopped"}});
}

void SimHost::FailJobLocked(Job& job, const std::string& error) {
  job.state = "failed";
  job.error = error;
  job.message = "Failed to create virtual machine " + job.result_record_name;
  job.updated_at = Now();
  for (JobStep& step : job.steps) {
    if (step.state == "running") {
      step.state = "failed";
    }
  }
  cv_.notify_all();
}

void SimHost::RunCreate(const std::string& job_id, const CreateRequest& request) {
  const Duration create_latency = env_.Latency("create");
  const Duration pull_latency = env_.Latency("pull");
  const Duration start_latency = request.start_on_create ? env_.Latency("start") : Duration(0);
  std::unique_lock lock(mu_);
  Job* job = FindJobLocked(job_id);
  if (job == nullptr) {
    return;
  }
  auto fail = [&](const std::string& what) { FailJobLocked(*job, PullError(what)); };
  CreatePlan plan;
  plan.request = request;

  const std::string arch =
      NormalizeArch(request.architecture.empty() ? options_.arch : request.architecture);
  if (arch.empty()) {
    return fail("invalid architecture");
  }
  if (arch != options_.arch) {
    return fail("architecture " + arch + " does not match the host architecture " + options_.arch);
  }
  // Resolve the image.
  std::optional<GuestOs> image_os;
  plan.version = request.version;
  plan.image_mb = options_.default_image_size_mb;
  if (!options_.catalog.empty()) {
    const CatalogImage* found = nullptr;
    for (const CatalogImage& image : options_.catalog) {
      if (image.id != request.catalog_id) {
        continue;
      }
      if (image.version == request.version ||
          (request.version == "latest" && (found == nullptr || found->version != "latest"))) {
        found = &image;
      }
    }
    if (found == nullptr) {
      return fail("error 404: catalog manifest " + request.catalog_id + " version " +
                  request.version + " for architecture " + arch + " not found");
    }
    plan.version = found->version;
    plan.image_mb = found->size_mb;
    image_os = found->os;
  }
  if (request.type) {
    plan.os = *request.type;
  } else if (image_os) {
    plan.os = *image_os;
  } else {
    const std::string& id = request.catalog_id;
    const bool apple = id.find("MACOS") != std::string::npos ||
                       id.find("IOS") != std::string::npos || id.find("XCODE") != std::string::npos;
    plan.os = arch == "arm64" && apple ? GuestOs::kMacos : GuestOs::kLinux;
  }
  if (NameTrapLocked(request.name)) {
    return fail("machine " + request.name + " already exists");
  }
  const uint64_t cpus = request.cpu.value_or(kDefaultCpus);
  const uint64_t memory = request.memory_mb.value_or(kDefaultMemoryMb);
  if (cpus > static_cast<uint64_t>(options_.cpu - options_.reserved_cpu)) {
    return fail("not enough CPUs on the host: " + std::to_string(cpus) + " requested, " +
                std::to_string(options_.cpu - options_.reserved_cpu) + " usable");
  }
  if (memory > options_.memory_mb - options_.reserved_memory_mb) {
    return fail("not enough memory on the host: " + std::to_string(memory) + " MB requested, " +
                std::to_string(options_.memory_mb - options_.reserved_memory_mb) + " MB usable");
  }
  plan.cached = std::any_of(cache_.begin(), cache_.end(), [&](const CacheEntry& e) {
    return e.catalog_id == request.catalog_id && e.version == plan.version &&
           e.architecture == arch;
  });
  plan.disk_mb = request.disk_mb.value_or(plan.image_mb);
  const uint64_t need = plan.disk_mb + (plan.cached ? 0 : plan.image_mb);
  const uint64_t taken = UsedDiskLocked() + ReservedDiskLocked();
  const uint64_t free_mb = options_.disk_mb > taken ? options_.disk_mb - taken : 0;
  if (need > free_mb) {
    return fail("not enough disk space to pull the image: " + std::to_string(need) +
                " MB needed, " + std::to_string(free_mb) + " MB free");
  }
  pending_.push_back({job_id, request.name, need});
  job->state = "running";
  job->progress = 10;
  job->updated_at = Now();
  job->steps[0].state = "completed";
  job->steps[1].state = "completed";
  job->steps[2].state = plan.cached ? "skipped" : "running";
  const Duration delay =
      create_latency + (plan.cached ? Duration(0) : pull_latency) + start_latency;
  lock.unlock();
  env_.Schedule(delay, [this, job_id, plan] { FinishCreate(job_id, plan); });
}

void SimHost::FinishCreate(const std::string& job_id, const CreatePlan& plan) {
  const std::string uuid = env_.NewUuid();
  {
    std::lock_guard lock(mu_);
    std::erase_if(pending_, [&](const Pending& p) { return p.key == job_id; });
    const CreateRequest& request = plan.request;
    const bool cached = std::any_of(cache_.begin(), cache_.end(), [&](const CacheEntry& e) {
      return e.catalog_id == request.catalog_id && e.version == plan.version &&
             e.architecture == options_.arch;
    });
    if (!cached) {
      cache_.push_back(
          {request.catalog_id, plan.version, options_.arch, plan.image_mb, plan.os, Now()});
    }
    SimVm vm;
    vm.uuid = uuid;
    vm.name = request.name;
    vm.owner = request.owner;
    vm.os = plan.os;
    vm.cpus = static_cast<int>(request.cpu.value_or(kDefaultCpus));
    vm.memory_mb = request.memory_mb.value_or(kDefaultMemoryMb);
    vm.disk_mb = plan.disk_mb;
    vm.ip_octet = NextIpOctetLocked();
    std::optional<ApiError> start_error;
    if (request.start_on_create) {
      start_error = CheckCanRunLocked(vm);
      if (!start_error) {
        vm.state = "running";
      }
    }
    vms_.push_back(vm);
    if (Job* job = FindJobLocked(job_id)) {
      job->result_record_id = uuid;
      for (JobStep& step : job->steps) {
        step.state = step.state == "skipped" ? "skipped" : "completed";
      }
      if (start_error) {
        job->steps.back().state = "running";
        FailJobLocked(*job, PullError(start_error->message));
      } else {
        job->state = "completed";
        job->progress = 100;
        job->message = "Virtual machine " + request.name + " created";
        job->updated_at = Now();
      }
    }
  }
  cv_.notify_all();
  env_.OnMutation();
}

// ---------------------------------------------------------------------------------------------
// Operations on one VM

Reply SimHost::Clone(const std::string& id, std::string_view body) {
  const json j = ParseBody(body);
  const std::string clone_name = j.is_discarded() ? "" : StringField(j, "clone_name");
  if (clone_name.empty()) {
    return InvalidBody("clone_name cannot be empty");
  }
  const std::string destination = StringField(j, "destination_path");
  const std::string uuid = env_.NewUuid();
  SimVm copy;
  {
    std::unique_lock lock(mu_);
    const SimVm* source = FindOrWait(lock, id);
    if (source == nullptr) {
      return VmNotFound();
    }
    if (ExactNameTakenLocked(clone_name, "")) {
      return Reply::Error(
          ApiError::Prlctl("Failed to clone the VM: a virtual machine with the "
                           "name \"" +
                           clone_name + "\" already exists."));
    }
    const uint64_t taken = UsedDiskLocked() + ReservedDiskLocked();
    const uint64_t free_mb = options_.disk_mb > taken ? options_.disk_mb - taken : 0;
    if (source->disk_mb > free_mb) {
      return Reply::Error(ApiError::Prlctl("Failed to clone the VM: not enough free disk space (" +
                                           std::to_string(source->disk_mb) + " MB needed, " +
                                           std::to_string(free_mb) + " MB free)."));
    }
    copy.uuid = uuid;
    copy.name = clone_name;
    copy.owner = source->owner;
    copy.os = source->os;
    copy.cpus = source->cpus;
    copy.memory_mb = source->memory_mb;
    copy.disk_mb = source->disk_mb;
    copy.folder = destination.empty() ? source->folder : destination;
    copy.ip_octet = NextIpOctetLocked();
    pending_.push_back({uuid, clone_name, copy.disk_mb});
  }
  env_.Sleep(env_.Latency("clone"));
  {
    std::lock_guard lock(mu_);
    std::erase_if(pending_, [&](const Pending& p) { return p.key == uuid; });
    vms_.push_back(copy);
  }
  env_.OnMutation();
  return Reply::Json(200, {{"id", uuid}, {"status", "Success"}});
}

Reply SimHost::ChangeState(const std::string& id, StateOp op, bool force) {
  Reply success =
      Reply::Json(200, {{"id", id}, {"operation", OperationTitle(op)}, {"status", "Success"}});
  const Duration latency = env_.Latency(StateOpName(op));
  std::unique_lock lock(mu_);
  SimVm* vm = FindOrWait(lock, id);
  if (vm == nullptr) {
    return VmNotFound();
  }
  const std::string prior = vm->state;
  Reply not_running = Reply::Error(ApiError::Uncoded("VM is not running"));
  std::string transitional;
  std::string final_state;
  bool check_can_run = false;
  bool graceful_stop = false;
  switch (op) {
    case StateOp::kStart:
      if (prior == "running") {
        return success;
      }
      if (prior != "stopped") {
        return Reply::Error(ApiError::Uncoded("VM is not stopped"));
      }
      transitional = "starting";
      final_state = "running";
      check_can_run = true;
      break;
    case StateOp::kStop:
      if (prior == "stopped") {
        return success;
      }
      if (prior == "running" || (force && (prior == "paused" || prior == "suspended"))) {
        transitional = "stopping";
        final_state = "stopped";
        graceful_stop = !force;
        break;
      }
      return not_running;
    case StateOp::kRestart:
      if (prior == "stopped") {
        return success;
      }
      if (prior != "running") {
        return not_running;
      }
      transitional = "restarting";
      final_state = "running";
      break;
    case StateOp::kReset:
      if (prior == "stopped") {
        return success;
      }
      if (prior != "running" && prior != "paused" && prior != "suspended") {
        return not_running;
      }
      transitional = "resetting";
      final_state = "running";
      check_can_run = prior == "suspended";
      break;
    case StateOp::kPause:
      if (prior == "paused") {
        return success;
      }
      if (prior != "running") {
        return not_running;
      }
      transitional = "pausing";
      final_state = "paused";
      break;
    case StateOp::kSuspend:
      if (prior == "suspended") {
        return success;
      }
      if (prior != "running") {
        return not_running;
      }
      transitional = "suspending";
      final_state = "suspended";
      break;
    case StateOp::kResume:
      if (prior != "paused" && prior != "suspended") {
        return Reply::Error(ApiError::Uncoded("VM is not paused or suspended"));
      }
      transitional = "resuming";
      final_state = "running";
      check_can_run = prior == "suspended";
      break;
  }
  if (check_can_run) {
    if (std::optional<ApiError> error = CheckCanRunLocked(*vm)) {
      return Reply::Error(*error);
    }
  }
  const bool times_out = graceful_stop && vm->ignore_graceful_stop;
  const std::string uuid = vm->uuid;
  const uint64_t seq = ++vm->op_seq;
  if (latency.count() > 0) {
    vm->state = transitional;
    vm->pending_state = times_out ? prior : final_state;
    lock.unlock();
    env_.Sleep(latency);
    lock.lock();
    vm = FindByUuidLocked(uuid);
    if (vm == nullptr || vm->op_seq != seq) {
      // Deleted or changed out of band meanwhile: that change wins.
      return times_out
                 ? Reply::Error(ApiError::Prlctl("Failed to stop the VM: the operation timed out."))
                 : success;
    }
  }
  vm->pending_state.clear();
  if (times_out) {
    vm->state = prior;
    return Reply::Error(ApiError::Prlctl("Failed to stop the VM: the operation timed out."));
  }
  vm->state = final_state;
  lock.unlock();
  env_.OnMutation();
  return success;
}

Reply SimHost::Delete(const std::string& id, bool force) {
  const Duration latency = env_.Latency("delete");
  std::unique_lock lock(mu_);
  SimVm* vm = FindOrWait(lock, id);
  if (vm == nullptr) {
    return VmNotFound();
  }
  if (vm->state != "stopped" && vm->state != "invalid" && !force) {
    return Reply::Error(ApiError::Uncoded("VM is not stopped"));
  }
  const std::string uuid = vm->uuid;
  if (latency.count() > 0) {
    ++vm->op_seq;
    vm->pending_state = vm->state;  // a crash mid-delete leaves the VM as it was
    vm->state = "deleting";
    lock.unlock();
    env_.Sleep(latency);
    lock.lock();
  }
  std::erase_if(vms_, [&](const SimVm& v) { return v.uuid == uuid; });
  lock.unlock();
  env_.OnMutation();
  return Reply::Empty(202);
}

Reply SimHost::Set(const std::string& id, std::string_view body) {
  const json j = ParseBody(body);
  if (j.is_discarded() || !j.is_object() || !j.contains("operations") ||
      !j["operations"].is_array()) {
    return InvalidBody("operations must be a list");
  }
  json results = json::array();
  bool changed = false;
  {
    std::unique_lock lock(mu_);
    SimVm* vm = FindOrWait(lock, id);
    if (vm == nullptr) {
      return VmNotFound();
    }
    for (const json& op : j["operations"]) {
      const std::string group = StringField(op, "group");
      const std::string operation = StringField(op, "operation");
      if (group.empty() || operation.empty()) {
        return InvalidBody("every operation needs a group and an operation");
      }
      if ((group == "cpu" || group == "memory") && operation == "set") {
        if (vm->state != "stopped") {
          return Reply::Error(ApiError::Uncoded("VM is not stopped"));
        }
        const json value = op.contains("value") ? op["value"] : json();
        if (!(value.is_string() && value == "auto")) {
          std::optional<uint64_t> v = PositiveInt(value);
          if (!v || (group == "cpu" && *v > 1024)) {
            const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
            return Reply::Error(ApiError::Prlctl("Failed to configure the VM: invalid " + group +
                                                 " value \"" + text + "\"."));
          }
          if (group == "cpu") {
            vm->cpus = static_cast<int>(*v);
          } else {
            vm->memory_mb = *v;
          }
          changed = true;
        }
      }
      // Every other group/operation is accepted and does nothing here.
      results.push_back({{"group", group}, {"operation", operation}, {"status", "Success"}});
    }
  }
  if (changed) {
    env_.OnMutation();
  }
  env_.Sleep(env_.Latency("set"));
  return Reply::Json(200, {{"operations", results}});
}

Reply SimHost::Execute(const std::string& id, std::string_view body) {
  const json j = ParseBody(body);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidBody("malformed JSON");
  }
  Execution execution;
  execution.command = StringField(j, "command");
  if (execution.command.empty()) {
    return InvalidBody("command cannot be empty");
  }
  if (j.contains("environment_variables") && j["environment_variables"].is_object()) {
    for (const auto& [key, value] : j["environment_variables"].items()) {
      execution.environment_variables[key] =
          value.is_string() ? value.get<std::string>() : value.dump();
    }
  }
  {
    std::unique_lock lock(mu_);
    SimVm* vm = FindOrWait(lock, id);
    if (vm == nullptr) {
      return VmNotFound();
    }
    if (vm->state != "running") {
      return Reply::Error(ApiError::Uncoded("VM is not running"));
    }
    vm->executions.push_back(std::move(execution));
  }
  env_.Sleep(env_.Latency("exec"));
  return Reply::Json(200, {{"stdout", ""}, {"stderr", ""}, {"exit_code", 0}});
}

Reply SimHost::Rename(const std::string& id, std::string_view body) {
  const json j = ParseBody(body);
  const std::string new_name = j.is_discarded() ? "" : StringField(j, "new_name");
  if (new_name.empty()) {
    return InvalidBody("new_name cannot be empty");
  }
  json result;
  {
    std::unique_lock lock(mu_);
    SimVm* vm = FindOrWait(lock, id);
    if (vm == nullptr) {
      return VmNotFound();
    }
    if (ExactNameTakenLocked(new_name, vm->uuid)) {
      return Reply::Error(
          ApiError::Prlctl("Failed to rename the VM: a virtual machine with the "
                           "name \"" +
                           new_name + "\" already exists."));
    }
    vm->name = new_name;
    if (j.contains("description") && j["description"].is_string()) {
      vm->description = j["description"].get<std::string>();
    }
    result = VmJsonLocked(*vm);
  }
  env_.OnMutation();
  env_.Sleep(env_.Latency("rename"));
  return Reply::Json(200, std::move(result));
}

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
  auto rate = options_.fault_rates.find(endpoint);
  const double p = rate != options_.fault_rates.end() ? rate->second : options_.fault_rate;
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
  env_.OnMutation();
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
  env_.OnMutation();
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
  env_.OnMutation();
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
  return {
      {"name", name_}, {"online", online_}, {"next_ip", next_ip_}, {"vms", vms}, {"cache", cache}};
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
  } catch (const json::exception& e) {
    return Status::InvalidArgument("host " + name_ + ": malformed state: " + e.what());
  }
  return Status::Ok();
}

}  // namespace flotilla::hostsim
