#include "providers/parallels/provider.h"

#include <algorithm>

#include "providers/parallels/rules.h"
#include "providers/parallels/wire.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::parallels {
namespace {

using nlohmann::json;

// The first release with asynchronous creates, jobs and the cache (controllers/jobs.go and
// controllers/cache.go arrive in v1.0.0; v0.9.21 has neither).
constexpr std::string_view kFirstCatalogVersion = "1.0.0";

}  // namespace

ParallelsProvider::ParallelsProvider(ParallelsConfig config, std::shared_ptr<spdlog::logger> logger,
                                     const Clock& clock)
    : config_(std::move(config)),
      logger_(std::move(logger)),
      clock_(clock),
      redactor_(std::make_shared<Redactor>()),
      random_(std::random_device{}()) {
  for (const std::string& secret : SecretValues(config_)) {
    redactor_->Add(secret);
  }
}

Result<HostClient*> ParallelsProvider::ClientFor(const HostRef& host) {
  std::lock_guard lock(mu_);
  auto it = clients_.find(host.address);
  if (it != clients_.end()) {
    return it->second.get();
  }
  Result<Endpoint> endpoint = ParseEndpoint(host.address);
  if (!endpoint.ok()) {
    return endpoint.status().WithContext("host " + host.name);
  }
  auto client = std::make_unique<HostClient>(host, *endpoint, config_, redactor_, logger_, clock_);
  HostClient* raw = client.get();
  clients_.emplace(host.address, std::move(client));
  return raw;
}

std::string ParallelsProvider::NewNonce() {
  std::lock_guard lock(mu_);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string nonce;
  uint64_t bits = random_();
  for (int i = 0; i < 10; ++i) {
    nonce += kHex[bits & 0xF];
    bits >>= 4;
  }
  return nonce;
}

Result<std::vector<VmInfo>> ParallelsProvider::ListVms(HostClient& client, Deadline deadline) {
  Result<Response> response = client.Call(Method::kGet, "/v1/machines", nullptr, deadline);
  if (!response.ok()) {
    return response.status();
  }
  if (response->status != 200) {
    return client.ErrorFor(*response, "list VMs");
  }
  const json parsed = ParseBody(*response);
  if (parsed.is_discarded()) {
    return Status::Unavailable("host " + client.host().name + ": the VM list is not JSON");
  }
  Result<std::vector<VmInfo>> vms = ParseVmList(parsed);
  if (!vms.ok()) {
    // Planning on a partial list could create VMs twice; the whole observation fails instead.
    return Status::Unavailable(client.Redact(vms.status().message()))
        .WithContext("host " + client.host().name + " sent a malformed VM list");
  }
  return vms;
}

Result<VmInfo> ParallelsProvider::GetVm(HostClient& client, std::string_view vm,
                                        Deadline deadline) {
  Result<Response> response =
      client.Call(Method::kGet, "/v1/machines/" + EncodePathSegment(vm), nullptr, deadline);
  if (!response.ok()) {
    return response.status();
  }
  if (response->status != 200) {
    return client.ErrorFor(*response, "read VM " + std::string(vm));
  }
  Result<VmInfo> info = ParseVm(ParseBody(*response));
  if (!info.ok()) {
    return Status::Unavailable(client.Redact(info.status().message()))
        .WithContext("host " + client.host().name + " sent a malformed VM");
  }
  return info;
}

Result<VmInfo> ParallelsProvider::WaitFor(HostClient& client, std::string_view vm,
                                          const std::function<bool(VmState)>& done,
                                          Deadline deadline) {
  for (;;) {
    Result<VmInfo> info = GetVm(client, vm, deadline);
    if (!info.ok() || done(info->state)) {
      return info;
    }
    if (!SleepWithin(config_.tuning.state_poll, deadline)) {
      return Status::DeadlineExceeded("host " + client.host().name + ": VM " + std::string(vm) +
                                      " is still " + info->raw_state);
    }
  }
}

std::string ParallelsProvider::CatalogUnsupported(std::string_view agent_version) {
  // Source builds report 0.0.0 (version/version.go: only release builds set it): unknown.
  if (TrimAscii(agent_version) == "0.0.0") {
    return "";
  }
  std::optional<bool> recent = VersionAtLeast(agent_version, kFirstCatalogVersion);
  if (!recent || *recent) {
    return "";
  }
  return "prl-devops-service " + std::string(TrimAscii(agent_version)) +
         " has no asynchronous create and no jobs (Flotilla creates from a catalog on 1.0.0 and "
         "later; vm:// clones work)";
}

Status ParallelsProvider::MissingRoutes(HostClient& client, Deadline deadline) {
  // The health probe is registered outside the API's controllers (http_listener.go): if it
  // answers, the prefix is right and the service registered no API routes, which
  // prl-devops-service 1.0.6 does in HTTPS-only mode (TLS_ENABLED with DISABLE_HTTP_WHEN_TLS;
  // restapi/http_listener.go:481-513).
  const std::string& name = client.host().name;
  Result<Response> probe = client.GetWithoutCredentials("/health/probe", deadline);
  if (probe.ok() && probe->status == 200) {
    return Status::FailedPrecondition(
        "host " + name +
        " answers its health probe but has no API endpoints: the service registered no API "
        "routes (prl-devops-service 1.0.6 does so in HTTPS-only mode, TLS_ENABLED with "
        "DISABLE_HTTP_WHEN_TLS; see docs/operations.md)");
  }
  return Status::FailedPrecondition("host " + name +
                                    " serves neither its API nor /health/probe under this "
                                    "address: check its path prefix (the service's default is "
                                    "/api)");
}

std::vector<std::string> ParallelsProvider::CachedImages(HostClient& client, const HostFacts& facts,
                                                         Deadline deadline, bool refresh) {
  HostClient::CacheListing listing = client.cache_listing();
  const bool fresh = !refresh && listing.listed_at &&
                     clock_.Now() - *listing.listed_at < config_.tuning.cache_refresh;
  if (fresh || client.creates_in_flight() > 0 || !CatalogUnsupported(facts.agent_version).empty()) {
    return listing.images;
  }
  // Nor while any pull runs on the host, ours from before a restart or anyone else's: only a
  // host whose job list shows none is listed (one that lets us read no jobs, never).
  Result<Response> jobs = client.Call(Method::kGet, "/v1/jobs", nullptr, deadline);
  if (!jobs.ok() || jobs->status != 200) {
    return listing.images;
  }
  const json list = ParseBody(*jobs);
  const bool pulling = !list.is_array() || std::any_of(list.begin(), list.end(), [](const json& j) {
    Result<Job> job = ParseJob(j);
    return !job.ok() || job->state == "pending" || job->state == "running" || job->state == "init";
  });
  if (pulling) {
    return listing.images;
  }
  // The catalog cache is optional (the module can be off): without it there is just no
  // locality preference.
  Result<Response> cache = client.Call(Method::kGet, "/v1/cache", nullptr, deadline);
  if (cache.ok() && cache->status == 200) {
    listing.images = ParseCachedImages(ParseBody(*cache), facts.arch);
  } else if (cache.ok()) {
    logger_->debug("host {}: no catalog cache listing (HTTP {})", client.host().name,
                   cache->status);
  }
  listing.listed_at = clock_.Now();
  client.SetCacheListing(listing);
  return listing.images;
}

HostObservation ParallelsProvider::Observe(const HostRef& host, Deadline deadline) {
  HostObservation observation;
  Result<HostClient*> client = ClientFor(host);
  if (!client.ok()) {
    observation.status = client.status();
    return observation;
  }
  HostClient& c = **client;
  Result<Response> hardware = c.Call(Method::kGet, "/v1/config/hardware", nullptr, deadline);
  if (!hardware.ok()) {
    observation.status = hardware.status();
    // A refused login is an answer; a connection that never completed is not.
    observation.reachable = hardware.status().code() == Status::Code::kPermissionDenied ||
                            IsMissingEndpoint(hardware.status());
    if (IsMissingEndpoint(hardware.status())) {
      observation.status = MissingRoutes(c, deadline);  // the login's route is missing
    }
    return observation;
  }
  observation.reachable = true;
  if (hardware->status != 200) {
    observation.status = c.ErrorFor(*hardware, "read hardware");
    if (IsMissingEndpoint(observation.status)) {
      observation.status = MissingRoutes(c, deadline);
    }
    return observation;
  }
  Result<HostFacts> facts = ParseHardware(ParseBody(*hardware));
  if (!facts.ok()) {
    observation.status =
        Status::Unavailable(c.Redact(facts.status().message()))
            .WithContext("host " + host.name + " sent a malformed hardware report");
    return observation;
  }
  c.NoteAgentVersion(facts->agent_version);
  if (std::string why = CatalogUnsupported(facts->agent_version); !why.empty()) {
    facts->unsupported_images["catalog://"] = std::move(why);
  }

  Result<std::vector<VmInfo>> vms = ListVms(c, deadline);
  if (!vms.ok()) {
    observation.status = vms.status();
    return observation;
  }
  facts->cached_images = CachedImages(c, *facts, deadline);
  // Counted from the list: the service's mac_vms_running also holds any running VM with "mac"
  // in its name (audit #14).
  facts->running_macos_vms =
      static_cast<uint32_t>(std::count_if(vms->begin(), vms->end(), [](const VmInfo& vm) {
        return vm.state == VmState::kRunning && vm.IsMacos();
      }));
  observation.facts = std::move(*facts);
  observation.vms = std::move(*vms);
  return observation;
}

Status ParallelsProvider::Configure(const HostRef& host, std::string_view vm, uint32_t cpu,
                                    Quantity memory, Deadline deadline) {
  Result<HostClient*> client = ClientFor(host);
  if (!client.ok()) {
    return client.status();
  }
  const json body = {
      {"operations",
       {{{"group", "cpu"}, {"operation", "set"}, {"value", std::to_string(cpu)}},
        {{"group", "memory"}, {"operation", "set"}, {"value", std::to_string(memory.mib())}}}}};
  Result<Response> response = (*client)->Call(
      Method::kPut, "/v1/machines/" + EncodePathSegment(vm) + "/set", &body, deadline);
  if (!response.ok()) {
    return response.status();
  }
  if (response->status != 200) {
    return (*client)->ErrorFor(*response, "configure VM " + std::string(vm));
  }
  return Status::Ok();
}

Status ParallelsProvider::Start(const HostRef& host, std::string_view vm, Deadline deadline) {
  Result<HostClient*> client = ClientFor(host);
  if (!client.ok()) {
    return client.status();
  }
  HostClient& c = **client;
  Result<Response> response = c.StateChange(vm, "start", "", deadline);
  if (!response.ok()) {
    return response.status();
  }
  if (response->status == 200) {
    return Status::Ok();
  }
  Status error = c.ErrorFor(*response, "start VM " + std::string(vm));
  if (error.code() != Status::Code::kFailedPrecondition ||
      !ContainsIgnoreCase(response->body, "not stopped")) {
    return error;
  }
  // Not stopped: suspended or paused VMs resume; anything in between is retried later.
  Result<VmInfo> info = GetVm(c, vm, deadline);
  if (!info.ok()) {
    return info.status();
  }
  switch (info->state) {
    case VmState::kRunning:
      return Status::Ok();
    case VmState::kSuspended:
    case VmState::kPaused: {
      Result<Response> resumed = c.StateChange(vm, "resume", "", deadline);
      if (!resumed.ok()) {
        return resumed.status();
      }
      return resumed->status == 200 ? Status::Ok()
                                    : c.ErrorFor(*resumed, "resume VM " + std::string(vm));
    }
    case VmState::kTransitional:
      return Status::Unavailable("host " + host.name + ": VM " + std::string(vm) + " is " +
                                 info->raw_state + "; start it once that settles");
    default:
      return error;
  }
}

Status ParallelsProvider::Stop(const HostRef& host, std::string_view vm, const StopOptions& options,
                               Deadline deadline) {
  Result<HostClient*> client = ClientFor(host);
  if (!client.ok()) {
    return client.status();
  }
  HostClient& c = **client;
  const Deadline graceful = std::min(deadline, DeadlineIn(options.graceful_timeout));
  Result<Response> response = c.StateChange(vm, "stop", "", graceful);
  if (response.ok() && response->status == 200) {
    return Status::Ok();
  }
  if (response.ok()) {
    // Power off only after a definite refusal of the graceful stop (a VM not simply running,
    // a failed shutdown command); a busy or failing host is asked again later instead.
    Status error = c.ErrorFor(*response, "stop VM " + std::string(vm));
    if (error.code() != Status::Code::kFailedPrecondition) {
      return error;
    }
  } else if (response.status().code() != Status::Code::kDeadlineExceeded) {
    return response.status();
  }
  // The graceful stop failed, timed out or met a VM that is not simply running: look, then
  // power off if it is still up.
  for (;;) {
    Result<VmInfo> info = GetVm(c, vm, deadline);
    if (!info.ok()) {
      return info.status();
    }
    if (info->state == VmState::kStopped) {
      return Status::Ok();
    }
    if (info->state == VmState::kTransitional) {
      // A graceful stop may still be under way; the host refuses a forced one meanwhile.
      Result<VmInfo> settled = WaitFor(
          c, vm, [](VmState s) { return s != VmState::kTransitional; }, deadline);
      if (!settled.ok()) {
        return settled.status();
      }
      continue;
    }
    logger_->info("host {}: VM {} did not stop gracefully; powering it off", host.name, vm);
    Result<Response> forced = c.StateChange(vm, "stop", "force=true", deadline);
    if (!forced.ok()) {
      return forced.status();
    }
    if (forced->status != 200) {
      return c.ErrorFor(*forced, "power off VM " + std::string(vm));
    }
    return Status::Ok();
  }
}

Status ParallelsProvider::ForceDelete(HostClient& client, std::string_view vm, Deadline deadline) {
  Result<Response> response = client.Call(
      Method::kDelete, "/v1/machines/" + EncodePathSegment(vm) + "?force=true", nullptr, deadline);
  if (!response.ok()) {
    return response.status();
  }
  if (response->status == 202 || response->status == 200) {
    return Status::Ok();
  }
  Status error = client.ErrorFor(*response, "delete VM " + std::string(vm));
  return error.IsNotFound() ? Status::Ok() : error;
}

Status ParallelsProvider::Delete(const HostRef& host, std::string_view vm, Deadline deadline) {
  Result<HostClient*> client = ClientFor(host);
  if (!client.ok()) {
    return client.status();
  }
  return ForceDelete(**client, vm, deadline);
}

ParallelsProviderFactory::ParallelsProviderFactory(ParallelsTuning tuning)
    : tuning_(tuning), rules_(std::make_shared<ParallelsRules>()) {}

Result<ParallelsConfig> ParallelsProviderFactory::ParseConfig(
    const ProviderContext& context) const {
  Result<ParallelsConfig> config = ParseParallelsConfig(context, tuning_);
  if (config.ok()) {
    config->requests = context.requests;
  }
  return config;
}

Result<std::unique_ptr<Provider>> ParallelsProviderFactory::Create(
    ParallelsConfig config, const ProviderContext& context) const {
  for (const HostSpec& host : context.pool.hosts) {
    if (Result<Endpoint> endpoint = ParseEndpoint(host.address); !endpoint.ok()) {
      return endpoint.status().WithContext("host " + host.name);
    }
  }
  return std::unique_ptr<Provider>(
      std::make_unique<ParallelsProvider>(std::move(config), context.logger, context.clock));
}

}  // namespace flotilla::providers::parallels
