#include "providers/tart/provider.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "providers/tart/rules.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::tart {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr uint32_t kMacosVmLimit = 2;  // Apple's licence, enforced by Virtualization

// What the host keeps for itself: macOS needs a core and some memory to stay responsive.
constexpr Resources kSystemReserved{.cpu = 1, .memory_bytes = uint64_t{4} << 30, .disk_bytes = 0};

Status WriteSecretFile(const std::filesystem::path& path, std::string_view content, mode_t mode) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return Status::Internal("cannot create " + path.string() + ": " + std::strerror(errno));
  }
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = write(fd, content.data() + written, content.size() - written);
    if (n <= 0) {
      close(fd);
      return Status::Internal("cannot write " + path.string() + ": " + std::strerror(errno));
    }
    written += size_t(n);
  }
  close(fd);
  return Status::Ok();
}

Result<std::filesystem::path> MakePrivateDir() {
  std::error_code ec;
  std::filesystem::path base = "/dev/shm";  // memory, not disk, for the key
  if (!std::filesystem::is_directory(base, ec) || access(base.c_str(), W_OK) != 0) {
    base = std::filesystem::temp_directory_path(ec);
  }
  std::string templ = (base / "flotilla-tart-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) {
    return Status::Internal("cannot create a private folder under " + base.string() + ": " +
                            std::strerror(errno));
  }
  return std::filesystem::path(templ);
}

std::optional<Arch> ArchFrom(std::string_view machine) {
  if (machine == "arm64") {
    return Arch::kArm64;
  }
  if (machine == "x86_64") {
    return Arch::kX86_64;
  }
  return std::nullopt;
}

// The log's last line that is not Flotilla's own marker.
std::string LastLogLine(std::string_view tail) {
  std::string last;
  std::stringstream lines{std::string(tail)};
  for (std::string line; std::getline(lines, line);) {
    if (!TrimAscii(line).empty() && !line.starts_with("--- ")) {
      last = std::string(TrimAscii(line));
    }
  }
  return last.size() > 300 ? last.substr(0, 300) + "..." : last;
}

}  // namespace

Result<std::unique_ptr<TartProvider>> TartProvider::Create(TartConfig config,
                                                           std::shared_ptr<spdlog::logger> logger,
                                                           const Clock& clock) {
  Result<std::filesystem::path> dir = MakePrivateDir();
  if (!dir.ok()) {
    return dir.status();
  }
  std::unique_ptr<TartProvider> provider(
      new TartProvider(std::move(config), std::move(logger), clock, *dir));
  const TartConfig& c = provider->config_;
  if (Status s = WriteSecretFile(*dir / "key", c.ssh_key, 0600); !s.ok()) {
    return s;
  }
  if (!c.ssh_passphrase.empty()) {
    if (Status s = WriteSecretFile(*dir / "passphrase", c.ssh_passphrase + "\n", 0600); !s.ok()) {
      return s;
    }
    const std::string askpass =
        "#!/bin/sh\nexec /bin/cat " + ShellQuote((*dir / "passphrase").string()) + "\n";
    if (Status s = WriteSecretFile(*dir / "askpass", askpass, 0700); !s.ok()) {
      return s;
    }
  }
  if (c.settings.known_hosts_file.empty() && !c.known_hosts.empty()) {
    if (Status s = WriteSecretFile(*dir / "known_hosts", c.known_hosts + "\n", 0600); !s.ok()) {
      return s;
    }
  }
  return provider;
}

TartProvider::TartProvider(TartConfig config, std::shared_ptr<spdlog::logger> logger,
                           const Clock& clock, std::filesystem::path state_dir)
    : config_(std::move(config)),
      logger_(std::move(logger)),
      clock_(clock),
      state_dir_(std::move(state_dir)),
      scripts_(config_.settings),
      random_(std::random_device{}()) {
  for (const std::string& secret : SecretValues(config_)) {
    redactor_.Add(secret);
  }
}

TartProvider::~TartProvider() {
  {
    std::lock_guard lock(mu_);
    hosts_.clear();  // ends the connections first
  }
  std::error_code ec;
  std::filesystem::remove_all(state_dir_, ec);
}

int TartProvider::ConnectionsTo(const std::string& address) {
  std::lock_guard lock(mu_);
  const auto it = hosts_.find(address);
  return it == hosts_.end() ? 0 : it->second->connections();
}

int TartProvider::TunnelsTo(const std::string& address) {
  std::lock_guard lock(mu_);
  const auto it = hosts_.find(address);
  return it == hosts_.end() ? 0 : it->second->tunnels();
}

Result<RemoteShell*> TartProvider::ShellFor(const HostRef& host) {
  std::lock_guard lock(mu_);
  if (auto it = hosts_.find(host.address); it != hosts_.end()) {
    return it->second.get();
  }
  Result<SshAddress> address = ParseSshAddress(host.address);
  if (!address.ok()) {
    return Status::InvalidArgument("host " + host.name + ": " + address.status().message());
  }
  SshOptions options{
      .ssh_binary = config_.tuning.ssh_binary,
      .identity_file = state_dir_ / "key",
      .known_hosts_file = config_.settings.known_hosts_file.empty()
                              ? state_dir_ / "known_hosts"
                              : std::filesystem::path(config_.settings.known_hosts_file),
      .insecure_ignore_host_key = config_.settings.insecure_ignore_host_key,
      .askpass = config_.ssh_passphrase.empty() ? std::filesystem::path() : state_dir_ / "askpass",
      .connect_timeout = config_.settings.connect_timeout,
      .max_sessions = config_.settings.max_sessions,
      .max_tunnels = config_.settings.max_tunnels,
  };
  auto shell = std::make_unique<SshHost>(
      SshTarget{.user = address->user, .host = address->host, .port = address->port},
      std::move(options), state_dir_, "h" + std::to_string(hosts_.size()));
  RemoteShell* raw = shell.get();
  hosts_.emplace(host.address, std::move(shell));
  return raw;
}

Result<RemoteResult> TartProvider::Run(const HostRef& host, std::string_view what,
                                       const std::string& script, Deadline deadline,
                                       const std::function<bool()>& cancelled) {
  Result<RemoteShell*> shell = ShellFor(host);
  if (!shell.ok()) {
    return shell.status();
  }
  Result<RemoteResult> ran = (*shell)->Run(RemoteCommand(), script, deadline, cancelled);
  if (config_.requests != nullptr) {
    // The remote command's exit status, or 0 when no answer came (as for HTTP).
    config_.requests->ProviderRequest("tart", what, ran.ok() ? 1000 + ran->exit_code : 0);
  }
  if (!ran.ok()) {
    return ran.status().WithContext("host " + host.name);
  }
  return ran;
}

Status TartProvider::TartError(const HostRef& host, std::string_view what,
                               const RemoteResult& result) const {
  const std::string line = redactor_.Apply(FirstLine(result.err, result.out));
  const std::string message =
      "host " + host.name + ": " + std::string(what) + ": " +
      (line.empty() ? "tart exited " + std::to_string(result.exit_code) : line);
  switch (Classify(result.exit_code, result.err + result.out)) {
    case Failure::kDoesNotExist:
      return Status::NotFound(message);
    case Failure::kNoAgent:
      return Status::Unavailable(message);  // also while the guest still boots
    case Failure::kTornRead:
      return Status::Unavailable(message +
                                 " (a VM's config.json was being rewritten by another "
                                 "tart command; another try reads it whole)");
    case Failure::kLockRace:
      return Status::Unavailable(message +
                                 " (another tart command on the host removed the folder this one "
                                 "was about to lock; another try makes a new one)");
    case Failure::kTargetExists:
      return Status::Conflict(message);
    case Failure::kUsage:
      return Status::InvalidArgument(message);
    case Failure::kKeychainLocked:
      return Status::FailedPrecondition(
          message +
          " (the login keychain of the host's user is locked: enable auto-login, or run "
          "`security unlock-keychain` after each boot)");
    case Failure::kNotRunning:
    case Failure::kAlreadyRunning:
    case Failure::kIsRunning:
    case Failure::kVmLimit:
    case Failure::kNoIp:
    case Failure::kOther:
      break;
  }
  return Status::FailedPrecondition(message);
}

VmInfo TartProvider::ToVmInfo(const std::string& name, const VmDetails& details,
                              const std::optional<HostReport::Job>& job, const std::string& ip,
                              int64_t now) const {
  VmInfo vm{.id = name,
            .name = name,
            .state = StateFromTart(details.state),
            .raw_state = details.state,
            .os_raw = details.os,
            .type = "tart",
            .cpu = details.cpu,
            .memory_bytes = details.memory_mib << 20,
            .disk_bytes = details.disk_gb * 1000 * 1000 * 1000,
            .ip = StateFromTart(details.state) == VmState::kRunning ? ip : "",
            .pending_create_for = ParsePendingCreateName(name)};
  if (details.os == "darwin") {
    vm.os = GuestOs::kMacos;
  } else if (details.os == "linux") {
    vm.os = GuestOs::kLinux;
  }
  if (job) {
    const auto settle_s = std::chrono::duration_cast<std::chrono::seconds>(config_.tuning.settle);
    const bool young = now - job->started < settle_s.count();
    if (job->alive && (vm.state == VmState::kStopped || (vm.state == VmState::kRunning && young))) {
      vm.state = VmState::kTransitional;
      vm.raw_state = "starting";
    } else if (!job->alive && vm.state == VmState::kStopped) {
      const std::string line = LastLogLine(job->log_tail);
      vm.raw_state = "stopped (tart run exited" + (line.empty() ? "" : ": " + line) + ")";
    }
  }
  return vm;
}

HostObservation TartProvider::Observe(const HostRef& host, Deadline deadline) {
  HostObservation observation;
  Result<RemoteResult> ran = Run(host, "observe", scripts_.Observe(), deadline);
  if (!ran.ok()) {
    observation.status = ran.status();
    observation.reachable = ran.status().IsPermissionDenied();
    return observation;
  }
  observation.reachable = true;
  Result<HostReport> report = ParseHostReport(ran->out);
  if (!report.ok() || report->tart_version.empty()) {
    const std::string why =
        !report.ok() ? report.status().message() : "tart --version printed nothing";
    observation.status =
        Status::Unavailable("host " + host.name + ": " + redactor_.Apply(why) +
                            (ran->err.empty() ? "" : " (" + FirstLine(ran->err) + ")"));
    return observation;
  }
  HostFacts& facts = observation.facts;
  facts.arch = ArchFrom(report->machine);
  facts.os_name = "macOS";
  facts.os_version = report->os_version;
  facts.agent_version = report->tart_version;
  facts.hypervisor_version = "tart " + report->tart_version;
  {
    std::lock_guard lock(mu_);
    tart_versions_[host.address] = report->tart_version;
  }
  facts.total = Resources{.cpu = report->ncpu,
                          .memory_bytes = report->memsize,
                          .disk_bytes = report->disk_total_kb.value_or(0) * 1024};
  facts.system_reserved = kSystemReserved;
  facts.disk_known = report->disk_total_kb.has_value() && report->disk_avail_kb.has_value();
  Resources used;
  for (const ListEntry& entry : report->local) {
    const auto details = report->details.find(entry.name);
    if (details == report->details.end()) {
      continue;  // deleted between list and get
    }
    std::optional<HostReport::Job> job;
    if (auto j = report->jobs.find(entry.name); j != report->jobs.end()) {
      job = j->second;
    }
    const auto ip = report->ips.find(entry.name);
    VmInfo vm = ToVmInfo(entry.name, details->second, job,
                         ip == report->ips.end() ? "" : ip->second, report->now);
    // A VM whose `tart run` holds its lock counts, whether or not it has settled: the lock is
    // taken before Virtualization starts it (and counts it against Apple's limit).
    const bool holds_lock = details->second.state == "running";
    if (holds_lock) {
      used.cpu += vm.cpu;
      used.memory_bytes += vm.memory_bytes;
      if (vm.IsMacos()) {
        ++facts.running_macos_vms;
      }
    }
    observation.vms.push_back(std::move(vm));
  }
  std::sort(observation.vms.begin(), observation.vms.end(),
            [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
  auto minus = [](uint64_t a, uint64_t b) { return a > b ? a - b : 0; };
  facts.available = Resources{
      .cpu =
          static_cast<uint32_t>(minus(facts.total.cpu, uint64_t{kSystemReserved.cpu} + used.cpu)),
      .memory_bytes =
          minus(facts.total.memory_bytes, kSystemReserved.memory_bytes + used.memory_bytes),
      .disk_bytes = report->disk_avail_kb.value_or(0) * 1024};
  facts.cached_images = report->cached;
  std::sort(facts.cached_images.begin(), facts.cached_images.end());
  facts.cached_images.erase(std::unique(facts.cached_images.begin(), facts.cached_images.end()),
                            facts.cached_images.end());
  if (CoolingDown(host.address)) {
    // Apple's counter is stuck: the host is full for macOS VMs until the cool-down ends.
    facts.running_macos_vms = std::max(facts.running_macos_vms, kMacosVmLimit);
  }
  observation.status = Status::Ok();
  return observation;
}

Result<TartProvider::VmNow> TartProvider::Look(const HostRef& host, std::string_view vm,
                                               Deadline deadline) {
  Result<RemoteResult> ran = Run(host, "status", scripts_.Status(vm), deadline);
  if (!ran.ok()) {
    return ran.status();
  }
  Result<HostReport> report = ParseHostReport(ran->out);
  if (!report.ok()) {
    return report.status().WithContext("host " + host.name);
  }
  return NowFrom(*report, std::string(vm));
}

TartProvider::VmNow TartProvider::NowFrom(const HostReport& report, const std::string& name) {
  VmNow now{.now = report.now};
  if (auto d = report.details.find(name); d != report.details.end()) {
    now.details = d->second;
  }
  if (auto j = report.jobs.find(name); j != report.jobs.end()) {
    now.job = j->second;
  }
  if (auto i = report.ips.find(name); i != report.ips.end()) {
    now.ip = i->second;
  }
  return now;
}

Status TartProvider::Configure(const HostRef& host, std::string_view vm, uint32_t cpu,
                               Quantity memory, Deadline deadline) {
  Result<VmNow> now = Look(host, vm, deadline);
  if (!now.ok()) {
    return now.status();
  }
  if (!now->details) {
    return Status::NotFound("host " + host.name + ": VM " + std::string(vm) + " does not exist");
  }
  // Tart itself would accept the change and apply it at the next start.
  if (now->details->state != "stopped" || (now->job && now->job->alive)) {
    return Status::FailedPrecondition("host " + host.name + ": VM " + std::string(vm) +
                                      " must be stopped to change its cpu and memory (it is " +
                                      now->details->state + ")");
  }
  Result<RemoteResult> ran =
      Run(host, "tart set", scripts_.Set(vm, cpu, memory, std::nullopt, false), deadline);
  if (!ran.ok()) {
    return ran.status();
  }
  return ran->exit_code == 0 ? Status::Ok()
                             : TartError(host, "configuring " + std::string(vm), *ran);
}

bool TartProvider::CoolingDown(const std::string& address) {
  std::lock_guard lock(mu_);
  const auto it = cooldown_until_.find(address);
  if (it == cooldown_until_.end()) {
    return false;
  }
  if (clock_.Now() >= it->second) {
    cooldown_until_.erase(it);
    return false;
  }
  return true;
}

Status TartProvider::LimitRefused(const HostRef& host, std::string_view vm, std::string_view line,
                                  Deadline deadline) {
  std::string message = "host " + host.name + " refused to start " + std::string(vm) +
                        ": the macOS VM limit (" + std::string(line) + ")";
  const HostObservation observation = Observe(host, deadline);
  if (observation.status.ok() && observation.facts.running_macos_vms < kMacosVmLimit) {
    const auto minutes =
        std::chrono::duration_cast<std::chrono::minutes>(config_.tuning.limit_cooldown).count();
    message += "; only " + std::to_string(observation.facts.running_macos_vms) +
               " macOS VM(s) run there, so Apple's counter is stuck and the host needs a reboot; "
               "no macOS VM is placed there for " +
               std::to_string(minutes) + " min";
    std::lock_guard lock(mu_);
    cooldown_until_[host.address] = clock_.Now() + config_.tuning.limit_cooldown;
    logger_->warn("{}", message);
  }
  return Status::FailedPrecondition(message);
}

Status TartProvider::Start(const HostRef& host, std::string_view vm, Deadline deadline) {
  const std::string name(vm);
  Result<VmNow> now = Look(host, vm, deadline);
  if (!now.ok()) {
    return now.status();
  }
  if (!now->details) {
    return Status::NotFound("host " + host.name + ": VM " + name + " does not exist");
  }
  const auto settle_s =
      std::chrono::duration_cast<std::chrono::seconds>(config_.tuning.settle).count();
  const bool ours_alive = now->job && now->job->alive;
  if (now->details->state == "running" &&
      (!ours_alive || now->now - now->job->started >= settle_s)) {
    return Status::Ok();
  }
  if (ours_alive && now->details->state != "running") {
    return Status::Unavailable("host " + host.name + ": VM " + name +
                               " is starting (its tart run has not taken the VM yet)");
  }
  // Set once a settle window has passed with the process alive (the host waited it out after
  // launching it), so the first look after that decides.
  bool settled = false;
  std::optional<VmNow> launched_now;  // what the launch reported after its wait
  if (!ours_alive) {
    Result<RemoteResult> launched =
        Run(host, "tart run", scripts_.Launch(vm, config_.tuning.settle), deadline);
    if (!launched.ok()) {
      return launched.status();
    }
    if (launched->exit_code != 0) {
      return TartError(host, "starting " + name, *launched);
    }
    logger_->info("host {}: started tart run for {}", host.name, name);
    settled = true;
    if (Result<HostReport> report = ParseHostReport(launched->out); report.ok()) {
      launched_now = NowFrom(*report, name);
    }
  }
  // Settles: the process must live past the window with the VM running (the limit is checked
  // after the lock is taken).
  for (bool first = true;; first = false) {
    if (first && launched_now) {
      now = std::move(*launched_now);
    } else {
      if (!(first && settled) && !SleepWithin(config_.tuning.poll, deadline)) {
        return Status::DeadlineExceeded("host " + host.name + ": VM " + name +
                                        " did not settle as running in time");
      }
      now = Look(host, vm, deadline);
      if (!now.ok()) {
        return now.status();
      }
    }
    if (!now->details) {
      return Status::NotFound("host " + host.name + ": VM " + name + " vanished while starting");
    }
    if (now->job && !now->job->alive) {
      const std::string line = redactor_.Apply(LastLogLine(now->job->log_tail));
      switch (Classify(1, now->job->log_tail)) {
        case Failure::kVmLimit:
          return LimitRefused(host, vm, line, deadline);
        case Failure::kAlreadyRunning:
          if (now->details->state == "running") {
            return Status::Ok();  // someone else runs it
          }
          break;
        case Failure::kKeychainLocked:
          return TartError(host, "starting " + name, RemoteResult{.exit_code = 1, .err = line});
        default:
          break;
      }
      return Status::FailedPrecondition("host " + host.name + ": tart run " + name + " exited" +
                                        (line.empty() ? "" : ": " + line));
    }
    if (now->details->state == "running" && now->job &&
        (settled || now->now - now->job->started >= settle_s)) {
      return Status::Ok();
    }
  }
}

Status TartProvider::PowerOff(const HostRef& host, std::string_view vm, Deadline deadline) {
  Result<RemoteResult> ran =
      Run(host, "tart stop", scripts_.PowerOff(vm, config_.tuning.stop_timeout_seconds), deadline);
  if (!ran.ok()) {
    return ran.status();
  }
  if (ran->exit_code == 0 || Classify(ran->exit_code, ran->err) == Failure::kNotRunning) {
    return Status::Ok();
  }
  return TartError(host, "stopping " + std::string(vm), *ran);
}

Status TartProvider::Stop(const HostRef& host, std::string_view vm, const StopOptions& options,
                          Deadline deadline) {
  const std::string name(vm);
  Result<VmNow> now = Look(host, vm, deadline);
  if (!now.ok()) {
    return now.status();
  }
  if (!now->details) {
    return Status::NotFound("host " + host.name + ": VM " + name + " does not exist");
  }
  const bool alive = now->job && now->job->alive;
  if (now->details->state == "stopped" && !alive) {
    return Status::Ok();
  }
  if (now->details->state == "running" && options.graceful_timeout.count() > 0) {
    const bool macos = now->details->os == "darwin";
    const Deadline graceful = std::min(deadline, DeadlineIn(options.graceful_timeout));
    Result<RemoteResult> asked =
        Run(host, "shutdown", scripts_.RequestShutdown(vm, macos), graceful);
    if (asked.ok() && asked->exit_code == 0) {
      while (SleepWithin(config_.tuning.poll, graceful)) {
        now = Look(host, vm, deadline);
        if (!now.ok()) {
          return now.status();
        }
        if (!now->details || (now->details->state == "stopped" && !(now->job && now->job->alive))) {
          break;
        }
      }
    }
  }
  return PowerOff(host, vm, deadline);
}

Status TartProvider::Delete(const HostRef& host, std::string_view vm, Deadline deadline) {
  for (int attempt = 0;; ++attempt) {
    Result<VmNow> now = Look(host, vm, deadline);
    if (!now.ok()) {
      return now.status();
    }
    if (now->details && (now->details->state != "stopped" || (now->job && now->job->alive))) {
      if (Status s = PowerOff(host, vm, deadline); !s.ok()) {
        return s;
      }
    }
    Result<RemoteResult> ran = Run(host, "tart delete", scripts_.Delete(vm), deadline);
    if (!ran.ok()) {
      return ran.status();
    }
    const Failure failure = Classify(ran->exit_code, ran->err);
    if (ran->exit_code == 0 || failure == Failure::kDoesNotExist) {
      return Status::Ok();
    }
    if (failure != Failure::kIsRunning || attempt > 0) {
      return TartError(host, "deleting " + std::string(vm), *ran);
    }
  }
}

std::string TartProvider::NewNonce() {
  std::lock_guard lock(mu_);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string nonce;
  for (int i = 0; i < 8; ++i) {
    nonce += kHex[random_() % 16];
  }
  return nonce;
}

std::map<std::string, std::string> TartProvider::RegistryEnv() const {
  if (config_.registry_username.empty()) {
    return {};
  }
  return {{"TART_REGISTRY_USERNAME", config_.registry_username},
          {"TART_REGISTRY_PASSWORD", config_.registry_password}};
}

TartProviderFactory::TartProviderFactory(TartTuning tuning)
    : tuning_(std::move(tuning)), rules_(std::make_shared<TartRules>()) {}

Result<TartConfig> TartProviderFactory::ParseConfig(const ProviderContext& context) const {
  return ParseTartConfig(context, tuning_);
}

Result<std::unique_ptr<Provider>> TartProviderFactory::Create(
    TartConfig config, const ProviderContext& context) const {
  Result<std::unique_ptr<TartProvider>> provider =
      TartProvider::Create(std::move(config), context.logger, context.clock);
  if (!provider.ok()) {
    return provider.status();
  }
  return std::unique_ptr<Provider>(std::move(*provider));
}

}  // namespace flotilla::providers::tart
