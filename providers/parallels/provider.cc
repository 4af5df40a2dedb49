#include "providers/parallels/provider.h"

#include <algorithm>
#include <thread>

#include "providers/parallels/wire.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::parallels {
namespace {

using nlohmann::json;
using std::chrono::steady_clock;

// How often a waiting create looks at CreateRequest::cancelled.
constexpr std::chrono::milliseconds kCancelSlice{200};

// Sleeps for `wait`, or until the deadline if that is sooner. False if the deadline has passed.
bool SleepWithin(std::chrono::milliseconds wait, Deadline deadline) {
  const auto now = steady_clock::now();
  if (now >= deadline) {
    return false;
  }
  std::this_thread::sleep_for(std::min<steady_clock::duration>(wait, deadline - now));
  return steady_clock::now() < deadline;
}

json ParseBody(const Response& response) { return json::parse(response.body, nullptr, false); }

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
    observation.reachable = hardware.status().code() == Status::Code::kPermissionDenied;
    return observation;
  }
  observation.reachable = true;
  if (hardware->status != 200) {
    observation.status = c.ErrorFor(*hardware, "read hardware");
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

  Result<std::vector<VmInfo>> vms = ListVms(c, deadline);
  if (!vms.ok()) {
    observation.status = vms.status();
    return observation;
  }
  // The catalog cache is optional (the module can be off): without it there is just no
  // locality preference.
  Result<Response> cache = c.Call(Method::kGet, "/v1/cache", nullptr, deadline);
  if (cache.ok() && cache->status == 200) {
    facts->cached_images = ParseCachedImages(ParseBody(*cache));
  } else if (cache.ok()) {
    logger_->debug("host {}: no catalog cache listing (HTTP {})", host.name, cache->status);
  }
  if (facts->running_macos_vms == 0) {
    for (const VmInfo& vm : *vms) {
      if (vm.state == VmState::kRunning && vm.IsMacos()) {
        ++facts->running_macos_vms;
      }
    }
  }
  observation.facts = std::move(*facts);
  observation.vms = std::move(*vms);
  return observation;
}

// How Create stays idempotent on a host whose name check is an unanchored regex.
//
// The host refuses to create `ios-1` while `ios-10` exists (its duplicate check matches the new
// name as a substring of existing names), and a retried create after a lost response fails
// with "already exists" even though the first one worked. So a VM is never created under its
// final name. It is built under a temporary name, "<name>.flotilla-<nonce>" (a '.' never occurs
// in a manifest's VM name, and a fresh random nonce is a substring of no existing name), and
// renamed to its final name once complete; a rename only clashes with an exact name.
//
//   1. If a VM with the final name exists, it is returned as adopted: a previous attempt got
//      as far as the rename, or someone else made it (the ledger decides which).
//   2. Temporary VMs for this name left by earlier attempts are finished (the one the caller
//      journalled, if it is complete) or deleted (anything else: half-pulled, or from an
//      attempt nobody remembers).
//   3. Otherwise: report the temporary name (and then the host's job id) through on_progress,
//      so a crash at any point leaves the caller enough to resume or clean up; pull or clone;
//      configure; rename.
Result<CreateResult> ParallelsProvider::Create(const HostRef& host, const CreateRequest& request,
                                               Deadline deadline) {
  Result<HostClient*> client = ClientFor(host);
  if (!client.ok()) {
    return client.status();
  }
  HostClient& c = **client;
  Result<ImageRef> image = ParseImage(request.templ.image);
  if (!image.ok()) {
    return image.status();
  }
  Result<std::vector<VmInfo>> vms = ListVms(c, deadline);
  if (!vms.ok()) {
    return vms.status();
  }
  const VmInfo* existing = nullptr;
  for (const VmInfo& vm : *vms) {
    if (EqualsIgnoreCase(vm.name, request.name)) {
      existing = &vm;
    }
  }
  // A journalled job that the host is still running is followed, not repeated (its VM may
  // already be listed under the temporary name while the host finishes configuring it).
  std::string resume_job;
  std::string resume_temp;
  bool resume_failed = false;  // the journalled job failed: what it left is not finished
  if (request.resume && !request.resume->job_id.empty()) {
    Result<Response> job = c.Call(
        Method::kGet, "/v1/jobs/" + EncodePathSegment(request.resume->job_id), nullptr, deadline);
    if (!job.ok()) {
      return job.status();
    }
    if (job->status != 200) {
      // Only a job the host no longer knows means "start again"; anything else (a 5xx, a
      // refused token) must not lead to a second pull or to deleting the one under way.
      Status error = c.ErrorFor(*job, "follow job " + request.resume->job_id);
      if (!error.IsNotFound()) {
        return error;
      }
    } else {
      Result<Job> parsed = ParseJob(ParseBody(*job));
      if (parsed.ok() &&
          (parsed->state == "pending" || parsed->state == "running" || parsed->state == "init")) {
        resume_job = request.resume->job_id;
        resume_temp = request.resume->temp_name;
      }
      resume_failed = parsed.ok() && (parsed->state == "failed" || parsed->state == "skipped");
    }
  }
  std::string finish_temp;  // a complete temporary VM to rename
  for (const VmInfo& vm : *vms) {
    if (vm.pending_create_for != request.name || vm.name == resume_temp) {
      continue;
    }
    if (existing == nullptr && request.resume && resume_job.empty() && !resume_failed &&
        vm.name == request.resume->temp_name && vm.state == VmState::kStopped) {
      finish_temp = vm.name;
      continue;
    }
    logger_->info("host {}: deleting {}, left by an earlier create of {}", host.name, vm.name,
                  request.name);
    if (Status s = ForceDelete(c, vm.id, deadline); !s.ok()) {
      return s;
    }
  }
  if (existing != nullptr) {
    logger_->info("host {}: VM {} already exists; adopting it", host.name, request.name);
    return CreateResult{.vm = *existing, .adopted = true};
  }

  std::string vm_id;
  std::string temp = finish_temp;
  if (temp.empty()) {
    temp = resume_temp.empty() ? PendingCreateName(request.name, NewNonce()) : resume_temp;
    // Reported before the host is asked (or, when following a job, again), so that the
    // journal of this attempt can resume it too if this process dies.
    if (request.on_progress) {
      request.on_progress(PendingCreate{.temp_name = temp, .job_id = resume_job});
    }
    Result<std::string> created = image->kind == ImageRef::Kind::kCatalog
                                      ? CreateFromCatalog(c, request, temp, resume_job, deadline)
                                      : CloneTemplate(c, request, temp, deadline);
    if (!created.ok()) {
      return created.status();
    }
    vm_id = *created;
  } else {
    if (request.on_progress) {
      request.on_progress(PendingCreate{.temp_name = temp});
    }
    Result<VmInfo> vm = GetVm(c, temp, deadline);
    if (!vm.ok()) {
      return vm.status();
    }
    vm_id = vm->id;
    logger_->info("host {}: finishing the create of {} from {}", host.name, request.name, temp);
  }
  if (image->kind == ImageRef::Kind::kTemplateVm) {
    // A clone has its template's hardware until told otherwise.
    if (Status s = Configure(host, vm_id, request.templ.cpu, request.templ.memory, deadline);
        !s.ok()) {
      return s.WithContext("configuring the clone " + temp);
    }
  }
  const json rename = {{"new_name", request.name}};
  Result<Response> renamed = c.Call(
      Method::kPut, "/v1/machines/" + EncodePathSegment(vm_id) + "/rename", &rename, deadline);
  if (!renamed.ok()) {
    return renamed.status();
  }
  if (renamed->status != 200) {
    Status error = c.ErrorFor(*renamed, "rename " + temp + " to " + request.name);
    // Someone created the final name meanwhile: theirs stays, ours goes.
    Result<VmInfo> other = GetVm(c, request.name, deadline);
    if (other.ok() && other->id != vm_id) {
      (void)ForceDelete(c, vm_id, deadline);
      return Status::Conflict("host " + host.name + ": VM " + request.name +
                              " appeared while it was being created");
    }
    return error;
  }
  Result<VmInfo> vm = ParseVm(ParseBody(*renamed));
  if (!vm.ok() || vm->name != request.name) {
    vm = GetVm(c, request.name, deadline);
  }
  if (!vm.ok()) {
    return vm.status();
  }
  logger_->info("host {}: created VM {} ({})", host.name, request.name, vm->id);
  return CreateResult{.vm = std::move(*vm), .adopted = false};
}

Result<std::string> ParallelsProvider::CreateFromCatalog(HostClient& client,
                                                         const CreateRequest& request,
                                                         const std::string& temp_name,
                                                         const std::string& resume_job,
                                                         Deadline deadline) {
  std::string job_id = resume_job;
  if (job_id.empty()) {
    const ImageRef image = *ParseImage(request.templ.image);
    json specs = {{"cpu", std::to_string(request.templ.cpu)},
                  {"memory", std::to_string(request.templ.memory.mib())},
                  {"type", request.templ.os == GuestOs::kMacos ? "macvm" : "pvm"}};
    if (request.templ.disk) {
      specs["disk"] = std::to_string(request.templ.disk->mib());
    }
    const json body = {{"name", temp_name},
                       {"architecture", std::string(ToString(request.templ.arch))},
                       {"start_on_create", false},
                       {"catalog_manifest",
                        {{"catalog_id", image.catalog_id},
                         {"version", image.version},
                         {"connection", config_.catalog_connection},
                         {"specs", specs}}}};
    // The asynchronous endpoint answers at once with a job: a pull of tens of GiB never holds a
    // connection open, and a crash leaves a job id to come back to.
    Result<Response> response = client.Call(Method::kPost, "/v1/machines/async", &body, deadline);
    if (!response.ok()) {
      return response.status();
    }
    if (response->status != 202 && response->status != 200) {
      return client.ErrorFor(*response,
                             "create VM " + request.name + " from " + request.templ.image);
    }
    Result<Job> job = ParseJob(ParseBody(*response));
    if (!job.ok()) {
      return Status::Unavailable(
          "host " + client.host().name +
          " answered the create without a job: " + client.Redact(job.status().message()));
    }
    job_id = job->id;
    if (request.on_progress) {
      request.on_progress(PendingCreate{.temp_name = temp_name, .job_id = job_id});
    }
  }
  Result<std::string> vm_id =
      PollJob(client, job_id, "create VM " + request.name + " from " + request.templ.image,
              request.cancelled, deadline);
  if (!vm_id.ok()) {
    return vm_id.status();
  }
  if (!vm_id->empty()) {
    return vm_id;
  }
  Result<VmInfo> vm = GetVm(client, temp_name, deadline);
  if (!vm.ok()) {
    return vm.status();
  }
  return vm->id;
}

Result<std::string> ParallelsProvider::PollJob(HostClient& client, const std::string& job_id,
                                               std::string_view what,
                                               const std::function<bool()>& cancelled,
                                               Deadline deadline) {
  const auto started = steady_clock::now();
  std::chrono::milliseconds wait = config_.tuning.job_poll_initial;
  int progress = 0;
  for (;;) {
    Result<Response> response =
        client.Call(Method::kGet, "/v1/jobs/" + EncodePathSegment(job_id), nullptr, deadline);
    if (!response.ok()) {
      return response.status();
    }
    if (response->status != 200) {
      return client.ErrorFor(*response, "follow job " + job_id);
    }
    Result<Job> job = ParseJob(ParseBody(*response));
    if (!job.ok()) {
      return Status::Unavailable("host " + client.host().name + ": " +
                                 client.Redact(job.status().message()));
    }
    if (job->state == "completed") {
      return job->result_record_id;
    }
    if (job->state == "failed" || job->state == "skipped") {
      const std::string message = client.Message(job->error);
      const std::string text = "host " + client.host().name + ": cannot " + std::string(what) +
                               ": " + (message.empty() ? "the host's job failed" : message);
      if (ContainsIgnoreCase(message, "timeout") || ContainsIgnoreCase(message, "timed out") ||
          ContainsIgnoreCase(message, "connection")) {
        return Status::Unavailable(text);
      }
      return Status::FailedPrecondition(text);
    }
    progress = job->progress;
    // The wait is cut into short slices so that a cancelled create lets go promptly.
    bool in_time = true;
    for (auto slept = std::chrono::milliseconds{0}; in_time && slept < wait;
         slept += kCancelSlice) {
      if (cancelled && cancelled()) {
        return Status::Cancelled("host " + client.host().name + ": " + std::string(what) +
                                 " was cancelled while the host's job " + job_id +
                                 " was running (" + std::to_string(progress) + "%)");
      }
      in_time = SleepWithin(std::min(kCancelSlice, wait - slept), deadline);
    }
    if (!in_time) {
      return Status::DeadlineExceeded("host " + client.host().name + ": " + std::string(what) +
                                      " is still running (job " + job_id + ", " +
                                      std::to_string(progress) + "%)");
    }
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - started);
    wait = std::clamp(elapsed / 4, config_.tuning.job_poll_initial, config_.tuning.job_poll_max);
  }
}

Result<std::string> ParallelsProvider::CloneTemplate(HostClient& client,
                                                     const CreateRequest& request,
                                                     const std::string& temp_name,
                                                     Deadline deadline) {
  const ImageRef image = *ParseImage(request.templ.image);
  const json body = {{"clone_name", temp_name}};
  Result<Response> response = client.Call(
      Method::kPut, "/v1/machines/" + EncodePathSegment(image.vm_name) + "/clone", &body, deadline);
  if (!response.ok()) {
    return response.status();
  }
  if (response->status != 200) {
    Status error = client.ErrorFor(*response, "clone " + image.vm_name + " as " + request.name);
    if (error.IsNotFound()) {
      return Status::FailedPrecondition("host " + client.host().name + " has no template VM " +
                                        image.vm_name + " to clone " + request.name + " from");
    }
    return error;
  }
  const json parsed = ParseBody(*response);
  if (parsed.is_object() && parsed.contains("id") && parsed["id"].is_string() &&
      !parsed["id"].get<std::string>().empty()) {
    return parsed["id"].get<std::string>();
  }
  Result<VmInfo> vm = GetVm(client, temp_name, deadline);
  if (!vm.ok()) {
    return vm.status();
  }
  return vm->id;
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

Result<ExecResult> ParallelsProvider::Exec(const HostRef& host, std::string_view vm,
                                           std::string_view script,
                                           const std::map<std::string, std::string>& env,
                                           Deadline deadline) {
  Result<HostClient*> client = ClientFor(host);
  if (!client.ok()) {
    return client.status();
  }
  Result<std::string> command = ExecCommand(script, env);
  if (!command.ok()) {
    return command.status();
  }
  const json body = {{"command", *command},
                     {"environment_variables", {{kExecMarkerVariable, "1"}}}};
  Result<Response> response = (*client)->Call(
      Method::kPut, "/v1/machines/" + EncodePathSegment(vm) + "/execute", &body, deadline);
  if (!response.ok()) {
    return response.status();
  }
  // Environment values may be secrets: none of them leaves in an error or the output.
  Redactor env_redactor;
  for (const auto& [key, value] : env) {
    env_redactor.Add(value);
  }
  if (response->status != 200) {
    return (*client)->ErrorFor(*response, "run a script in VM " + std::string(vm), &env_redactor);
  }
  const json parsed = ParseBody(*response);
  const auto exit_code =
      parsed.is_object() && parsed.contains("exit_code") && parsed["exit_code"].is_number_integer()
          ? std::optional<int64_t>(parsed["exit_code"].get<int64_t>())
          : std::nullopt;
  if (!exit_code) {
    // The script may have run: not retryable, or it could run twice.
    return Status::FailedPrecondition("host " + host.name +
                                      ": the result of the script has no exit_code");
  }
  ExecResult result;
  result.exit_code = static_cast<int>(std::clamp<int64_t>(*exit_code, INT32_MIN, INT32_MAX));
  auto text = [&](const char* key) {
    return parsed.contains(key) && parsed[key].is_string()
               ? env_redactor.Apply((*client)->Redact(parsed[key].get<std::string>()))
               : std::string();
  };
  result.stdout_text = text("stdout");
  result.stderr_text = text("stderr");
  return result;
}

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
