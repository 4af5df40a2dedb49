// ParallelsProvider::Create: idempotent creates from a catalog or a template VM.

#include <algorithm>

#include "providers/parallels/provider.h"
#include "providers/parallels/wire.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::parallels {
namespace {

using nlohmann::json;
using std::chrono::steady_clock;

// How often a waiting create looks at CreateRequest::cancelled.
constexpr std::chrono::milliseconds kCancelSlice{200};

// Sleeps `wait` in short slices; Cancelled as soon as `cancelled` says so, DeadlineExceeded
// when the deadline comes first (with `what` in the message).
Status SleepUnlessCancelled(std::chrono::milliseconds wait, const std::function<bool()>& cancelled,
                            Deadline deadline, const std::string& what) {
  for (auto slept = std::chrono::milliseconds{0}; slept < wait; slept += kCancelSlice) {
    if (cancelled && cancelled()) {
      return Status::Cancelled(what + " was cancelled");
    }
    if (!SleepWithin(std::min(kCancelSlice, wait - slept), deadline)) {
      return Status::DeadlineExceeded(what);
    }
  }
  return Status::Ok();
}

// Counts a create as running on its host for as long as it lives (the cache is not listed
// meanwhile).
class CreateInFlight {
 public:
  explicit CreateInFlight(HostClient& client) : client_(client) { client_.BeginCreate(); }
  ~CreateInFlight() { client_.EndCreate(); }
  CreateInFlight(const CreateInFlight&) = delete;
  CreateInFlight& operator=(const CreateInFlight&) = delete;

 private:
  HostClient& client_;
};

bool Pending(const Job& job) {
  return job.state == "pending" || job.state == "running" || job.state == "init";
}

// The stale-job reaper's mark (data/jobs.go DetectStaleJobs, constants/jobs.go
// GhostJobCanceledReason): the job failed, its pull did not stop (audit #11).
bool Reaped(const Job& job) {
  return job.state == "failed" && ContainsIgnoreCase(job.error, "Canceled Job");
}

}  // namespace

// How Create stays idempotent on a host whose name check is an unanchored regex.
//
// The host refuses to create `ios-1` while `ios-10` exists (its duplicate check matches the new
// name as a substring of existing names), and a retried create after a lost response fails
// with "already exists" even though the first one worked. So a VM is never created under its
// final name. It is built under a temporary name, "<name>.flotilla-<nonce>" (a '.' never occurs
// in a manifest's VM name, and a fresh random nonce is a substring of no existing name), and
// renamed to its final name once complete; a rename only clashes with an exact name.
//
//   0. A resumed create whose journal has a temporary name but no job id (the process died
//      while asking the host) first waits for the host's create jobs nobody here knows
//      (AwaitUnheardCreates): one of them may be making that temporary VM.
//   1. If a VM with the final name exists, it is returned as adopted: a previous attempt got
//      as far as the rename, or someone else made it (the ledger decides which).
//   2. Temporary VMs for this name left by earlier attempts are finished (the one the caller
//      journalled, if it is complete) or deleted (anything else: half-pulled, or from an
//      attempt nobody remembers).
//   3. Otherwise: report the temporary name (and then the host's job id) through on_progress,
//      so a crash at any point leaves the caller enough to resume or clean up; pull or clone;
//      configure; grow the disk; rename.
Result<CreateResult> ParallelsProvider::Create(const HostRef& host, const CreateRequest& request,
                                               Deadline deadline) {
  Result<HostClient*> client = ClientFor(host);
  if (!client.ok()) {
    return client.status();
  }
  HostClient& c = **client;
  CreateInFlight in_flight(c);
  Result<ImageRef> image = ParseImage(request.templ.image);
  if (!image.ok()) {
    return image.status();
  }
  if (image->kind == ImageRef::Kind::kCatalog) {
    // Refused before anything is asked of the host: never a half-created VM.
    Result<std::string> version = c.AgentVersion(deadline);
    if (!version.ok()) {
      return version.status();
    }
    if (std::string why = CatalogUnsupported(*version); !why.empty()) {
      return Status::FailedPrecondition("host " + host.name + " cannot create " + request.name +
                                        " from " + request.templ.image + ": " + why);
    }
  }
  // The journal has the temporary name but no job: the last process died while asking the
  // host, which may have started a job that nobody heard of. It is waited for before anything
  // of that name is finished or deleted (its VM may be listed while the job still works on it),
  // and its VM, once made, is finished here rather than pulled again under another name.
  bool unheard_made = false;
  if (request.resume && request.resume->job_id.empty() && !request.resume->temp_name.empty()) {
    Result<bool> made = AwaitUnheardCreates(c, request, request.resume->temp_name, deadline);
    if (!made.ok()) {
      return made.status();
    }
    unheard_made = *made;
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
  std::string resume_made;     // the VM id the journalled job completed with
  if (request.resume && !request.resume->job_id.empty()) {
    Result<Response> job = c.Call(
        Method::kGet, "/v1/jobs/" + EncodePathSegment(request.resume->job_id), nullptr, deadline);
    if (!job.ok()) {
      return job.status();
    }
    if (job->status == 401 || job->status == 403) {
      // The host lets these credentials read no job (an API key on 1.0.0): follow the job's
      // VM by name instead.
      resume_job = request.resume->job_id;
      resume_temp = request.resume->temp_name;
    } else if (job->status != 200) {
      // Only a job the host no longer knows means "start again"; anything else (a 5xx) must
      // not lead to a second pull or to deleting the one under way.
      Status error = c.ErrorFor(*job, "follow job " + request.resume->job_id);
      if (!error.IsNotFound()) {
        return error;
      }
    } else {
      Result<Job> parsed = ParseJob(ParseBody(*job));
      if (parsed.ok() && (Pending(*parsed) || Reaped(*parsed))) {
        resume_job = request.resume->job_id;
        resume_temp = request.resume->temp_name;
        c.NoteJob(resume_job);
      }
      resume_failed = parsed.ok() && !Reaped(*parsed) &&
                      (parsed->state == "failed" || parsed->state == "skipped");
      if (parsed.ok() && parsed->state == "completed") {
        resume_made = parsed->result_record_id;
      }
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
    // The list is the host's VM cache and may lag behind (audit #13): a VM listed under a
    // temporary name may have been renamed to its final name since. Looked up by id (current)
    // before anything is deleted.
    Result<VmInfo> now = GetVm(c, vm.id, deadline);
    if (!now.ok()) {
      if (now.status().IsNotFound()) {
        continue;
      }
      return now.status();
    }
    if (now->pending_create_for != request.name) {
      if (EqualsIgnoreCase(now->name, request.name) && existing == nullptr) {
        logger_->info("host {}: VM {} already exists; adopting it", host.name, request.name);
        return CreateResult{.vm = *now, .adopted = true};
      }
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
  // The journalled job completed, but its VM is not listed yet (the list is the host's cache
  // and lags, audit #13): it is found by the id the job names, and finished.
  if (finish_temp.empty() && !resume_made.empty()) {
    Result<VmInfo> made = GetVm(c, resume_made, deadline);
    if (!made.ok() && !made.status().IsNotFound()) {
      return made.status();
    }
    if (made.ok() && made->pending_create_for == request.name &&
        made->name == request.resume->temp_name && made->state == VmState::kStopped) {
      finish_temp = made->name;
    }
  }
  if (finish_temp.empty() && unheard_made) {
    finish_temp = request.resume->temp_name;  // made, but not listed yet (the list lags)
  }

  std::optional<VmInfo> finishing;  // the complete temporary VM, looked up now
  if (!finish_temp.empty()) {
    Result<VmInfo> vm = GetVm(c, finish_temp, deadline);
    if (!vm.ok() && !vm.status().IsNotFound()) {
      return vm.status();
    }
    if (vm.ok()) {
      finishing = std::move(*vm);
    }
  }
  std::string vm_id;
  std::string temp = finishing ? finish_temp : "";
  if (temp.empty()) {
    temp = resume_temp.empty() ? PendingCreateName(request.name, NewNonce()) : resume_temp;
    // Reported before the host is asked (or, when following a job, again), so that the
    // journal of this attempt can resume it too if this process dies.
    if (request.on_progress) {
      request.on_progress(PendingCreate{.temp_name = temp, .job_id = resume_job});
    }
    if (request.cancelled && request.cancelled()) {
      return Status::Cancelled("create of " + request.name +
                               " cancelled before the host was asked");
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
    vm_id = finishing->id;
    logger_->info("host {}: finishing the create of {} from {}", host.name, request.name, temp);
  }
  if (image->kind == ImageRef::Kind::kTemplateVm) {
    // A clone has its template's hardware until told otherwise.
    if (Status s = Configure(host, vm_id, request.templ.cpu, request.templ.memory, deadline);
        !s.ok()) {
      return s.WithContext("configuring the clone " + temp);
    }
  }
  if (Status s = FitDisk(c, request, vm_id, temp, deadline); !s.ok()) {
    return s;
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
  if (image->kind == ImageRef::Kind::kCatalog) {
    c.NoteCached(ImageCacheKey(request.templ.image));
  }
  return CreateResult{.vm = std::move(*vm), .adopted = false};
}

Status ParallelsProvider::Prepull(const HostRef& host, const PrepullRequest& request,
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
  if (image->kind != ImageRef::Kind::kCatalog) {
    return Status::Ok();  // a template VM is on the host already
  }
  const std::string key = ImageCacheKey(request.templ.image);
  Result<std::string> version = c.AgentVersion(deadline);
  if (!version.ok()) {
    return version.status();
  }
  HostFacts facts{.arch = request.templ.arch, .agent_version = *version};
  std::vector<std::string> cached = CachedImages(c, facts, deadline, /*refresh=*/true);
  if (std::binary_search(cached.begin(), cached.end(), key)) {
    return Status::Ok();
  }
  // The service's only way to fill its cache is a pull that registers a VM (a create, or
  // PUT /catalog/pull, which exists only with the catalog module): a VM is made and deleted.
  // Its name (PrepullVmName) never matches a VMSet's, and one name per image keeps two prepulls
  // of one image from racing; the loop sweeps what a killed prepull leaves.
  const std::string name = PrepullVmName(key);
  CreateRequest create{.name = name,
                       .templ = request.templ,
                       .cancelled = request.cancelled,
                       .on_status = request.on_status};
  create.templ.disk.reset();  // only the image matters
  Result<CreateResult> made = Create(host, create, deadline);
  if (!made.ok()) {
    return made.status().WithContext("pre-staging " + request.templ.image);
  }
  if (Status s = ForceDelete(c, made->vm.id, deadline); !s.ok()) {
    return s.WithContext("deleting " + name + " after pre-staging " + request.templ.image);
  }
  c.NoteCached(key);
  logger_->info("host {}: {} is in the host's cache", host.name, request.templ.image);
  return Status::Ok();
}

Result<std::string> ParallelsProvider::CreateFromCatalog(HostClient& client,
                                                         const CreateRequest& request,
                                                         const std::string& temp_name,
                                                         const std::string& resume_job,
                                                         Deadline deadline) {
  std::string job_id = resume_job;
  if (job_id.empty()) {
    const ImageRef image = *ParseImage(request.templ.image);
    // Only cpu and memory: the host applies nothing else of `specs` (controllers/machines.go
    // createCatalogMachine); the disk is grown afterwards (FitDisk).
    json manifest = {{"catalog_id", image.catalog_id},
                     {"version", image.version},
                     {"specs",
                      {{"cpu", std::to_string(request.templ.cpu)},
                       {"memory", std::to_string(request.templ.memory.mib())}}}};
    if (!config_.catalog_manager_id.empty()) {
      manifest["catalog_manager_id"] = config_.catalog_manager_id;
    } else {
      manifest["connection"] = config_.catalog_connection;
    }
    const json body = {{"name", temp_name},
                       {"architecture", std::string(ToString(request.templ.arch))},
                       {"start_on_create", false},
                       {"catalog_manifest", std::move(manifest)}};
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
    client.NoteJob(job_id);
    if (request.on_progress) {
      request.on_progress(PendingCreate{.temp_name = temp_name, .job_id = job_id});
    }
  }
  Result<std::string> vm_id = PollJob(client, job_id, request, temp_name, deadline);
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

Result<bool> ParallelsProvider::AwaitUnheardCreates(HostClient& client,
                                                    const CreateRequest& request,
                                                    const std::string& temp_name,
                                                    Deadline deadline) {
  // Nothing in a running job names the VM it makes (jobs/main.go CreateNewJob sets no record;
  // MarkJobCompleteWithRecord names it at the end), so every create job that no create of this
  // process started or follows is waited for, and its result record compared. GET /v1/jobs
  // lists the caller's own jobs (or all, with JOB_MANAGER_LIST; controllers/jobs.go).
  Result<Response> listed = client.Call(Method::kGet, "/v1/jobs", nullptr, deadline);
  if (!listed.ok()) {
    return listed.status();
  }
  if (listed->status == 401 || listed->status == 403 || listed->status == 404) {
    return false;  // no jobs to see: an API key on 1.0.0, or a host without jobs
  }
  if (listed->status != 200) {
    return client.ErrorFor(*listed, "list the host's jobs");
  }
  const json body = ParseBody(*listed);
  std::vector<Job> jobs;
  for (const json& item : body.is_array() ? body : json::array()) {
    Result<Job> job = ParseJob(item);
    if (job.ok() && job->type == "machines" && job->operation == "create" &&
        !client.KnowsJob(job->id)) {
      jobs.push_back(std::move(*job));
    }
  }
  std::chrono::milliseconds wait = config_.tuning.job_poll_initial;
  for (Job& job : jobs) {
    if (Pending(job)) {
      logger_->info("host {}: waiting for job {}, a create nobody has heard of, before creating {}",
                    client.host().name, job.id, request.name);
    }
    while (Pending(job)) {
      if (Status s = SleepUnlessCancelled(wait, request.cancelled, deadline,
                                          "host " + client.host().name + ": waiting for job " +
                                              job.id + " before creating " + request.name);
          !s.ok()) {
        return s;
      }
      wait = std::min(wait * 2, config_.tuning.job_poll_max);
      Result<Response> now =
          client.Call(Method::kGet, "/v1/jobs/" + EncodePathSegment(job.id), nullptr, deadline);
      if (!now.ok()) {
        return now.status();
      }
      if (now->status != 200) {
        break;  // gone (404), or not ours to read: nothing to wait for
      }
      Result<Job> parsed = ParseJob(ParseBody(*now));
      if (!parsed.ok()) {
        break;
      }
      parsed->type = job.type;
      parsed->operation = job.operation;
      job = std::move(*parsed);
    }
    bool made = job.state == "completed" && job.result_record_name == temp_name;
    if (job.state == "completed" && job.result_record_name.empty() &&
        !job.result_record_id.empty()) {
      // A host that names only the VM's id: its name says whether it is ours.
      Result<VmInfo> vm = GetVm(client, job.result_record_id, deadline);
      made = vm.ok() && vm->name == temp_name;
    }
    if (made) {
      logger_->info("host {}: job {} made {}; finishing it", client.host().name, job.id, temp_name);
      return true;
    }
  }
  return false;
}

Result<std::string> ParallelsProvider::PollJob(HostClient& client, const std::string& job_id,
                                               const CreateRequest& request,
                                               const std::string& temp_name, Deadline deadline) {
  const std::string what = "create VM " + request.name + " from " + request.templ.image;
  const auto started = steady_clock::now();
  std::chrono::milliseconds wait = config_.tuning.job_poll_initial;
  int progress = 0;
  std::string step;
  for (;;) {
    Result<Response> response =
        client.Call(Method::kGet, "/v1/jobs/" + EncodePathSegment(job_id), nullptr, deadline);
    if (!response.ok()) {
      return response.status();
    }
    if (response->status == 401 || response->status == 403) {
      // The jobs endpoints want a user (controllers/jobs.go:140-143): an API key on a host
      // that cannot exchange it for a token (1.0.0) never gets one.
      return FollowByName(
          client, request, temp_name,
          "the host lets these credentials read no job (" + client.Message(response->body) + ")",
          deadline);
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
    if (Reaped(*job)) {
      return FollowByName(client, request, temp_name,
                          "the host's stale-job reaper cancelled job " + job_id +
                              " (no update for 5 minutes) while its pull goes on",
                          deadline);
    }
    if (job->state == "failed" || job->state == "skipped") {
      const std::string message = client.Message(job->error);
      const std::string text = "host " + client.host().name + ": cannot " + what + ": " +
                               (message.empty() ? "the host's job failed" : message);
      if (ContainsIgnoreCase(message, "timeout") || ContainsIgnoreCase(message, "timed out") ||
          ContainsIgnoreCase(message, "connection")) {
        return Status::Unavailable(text);
      }
      return Status::FailedPrecondition(text);
    }
    progress = job->progress;
    if (job->step != step) {
      step = job->step;
      if (request.on_status && !step.empty()) {
        request.on_status(step);
      }
    }
    if (Status s = SleepUnlessCancelled(wait, request.cancelled, deadline,
                                        "host " + client.host().name + ": " + what + " (job " +
                                            job_id + ", " + std::to_string(progress) + "%)");
        !s.ok()) {
      return s.code() == Status::Code::kCancelled
                 ? s
                 : Status::DeadlineExceeded(s.message() + " is still running");
    }
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - started);
    wait = std::clamp(elapsed / 4, config_.tuning.job_poll_initial, config_.tuning.job_poll_max);
  }
}

Result<std::string> ParallelsProvider::FollowByName(HostClient& client,
                                                    const CreateRequest& request,
                                                    const std::string& temp_name,
                                                    std::string_view why, Deadline deadline) {
  logger_->info("host {}: following the create of {} by its temporary name {}: {}",
                client.host().name, request.name, temp_name, why);
  if (request.on_status) {
    request.on_status("waiting for " + temp_name + " to appear (" + std::string(why) + ")");
  }
  const uint64_t cpu = request.templ.cpu;
  const uint64_t memory = request.templ.memory.bytes();
  for (;;) {
    // A lookup, not the list: it is current (the list may lag), though each miss costs the
    // host's lookup retries (about 5 s).
    Result<VmInfo> vm = GetVm(client, temp_name, deadline);
    if (vm.ok() && vm->state == VmState::kStopped && vm->cpu == cpu && vm->memory_bytes == memory) {
      // Registered, stopped and configured: setting cpu and memory is the last thing a pull
      // with specs does (controllers/machines.go createCatalogMachine).
      return vm->id;
    }
    if (!vm.ok() && !vm.status().IsNotFound()) {
      return vm.status();
    }
    if (Status s = SleepUnlessCancelled(config_.tuning.follow_poll, request.cancelled, deadline,
                                        "host " + client.host().name + ": create VM " +
                                            request.name + " (" + temp_name + " not ready)");
        !s.ok()) {
      return s;
    }
  }
}

Status ParallelsProvider::FitDisk(HostClient& client, const CreateRequest& request,
                                  const std::string& vm_id, const std::string& temp_name,
                                  Deadline deadline) {
  if (!request.templ.disk) {
    return Status::Ok();
  }
  const uint64_t want = request.templ.disk->bytes();
  Result<VmInfo> vm = GetVm(client, vm_id, deadline);
  if (!vm.ok()) {
    return vm.status();
  }
  if (vm->disk_bytes >= want) {
    return Status::Ok();
  }
  const std::string want_text = request.templ.disk->ToString();
  const std::string have_text = Quantity::FromBytes(vm->disk_bytes).ToString();
  // `prlctl set <id> --device-set hdd0 --size <MB>` through the device group
  // (SetVmDeviceOperation, models/virtual_machine_config.go GetCmdArgs).
  const uint64_t mib = (want + (uint64_t{1} << 20) - 1) >> 20;
  const json body = {{"operations",
                      {{{"group", "device"},
                        {"operation", "set"},
                        {"value", "hdd0"},
                        {"options", {{{"flag", "size"}, {"value", std::to_string(mib)}}}}}}}};
  Result<Response> response = client.Call(
      Method::kPut, "/v1/machines/" + EncodePathSegment(vm_id) + "/set", &body, deadline);
  if (!response.ok()) {
    return response.status();
  }
  const std::string refused = "host " + client.host().name + ": VM " + request.name + " (" +
                              temp_name + ") has the image's " + have_text +
                              " disk and the template asks for " + want_text;
  if (response->status != 200) {
    return Status::FailedPrecondition(
        refused + "; growing it failed: " + client.ErrorFor(*response, "grow the disk").message());
  }
  Result<VmInfo> grown = GetVm(client, vm_id, deadline);
  if (!grown.ok()) {
    return grown.status();
  }
  if (grown->disk_bytes < want) {
    return Status::FailedPrecondition(refused + "; the host accepted the resize but the disk is " +
                                      Quantity::FromBytes(grown->disk_bytes).ToString());
  }
  logger_->info("host {}: grew the disk of {} from {} to {}", client.host().name, temp_name,
                have_text, want_text);
  return Status::Ok();
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

}  // namespace flotilla::providers::parallels
