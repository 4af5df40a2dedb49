#include "providers/hostsim/sim_host.h"
#include "providers/hostsim/sim_proxy.h"

#include <algorithm>

#include "providers/hostsim/sim_wire.h"
#include "reconciler/model/text.h"

namespace flotilla::hostsim {

using nlohmann::json;
using SystemClock = std::chrono::system_clock;

// ---------------------------------------------------------------------------------------------
// Create (§3.3, §8.2)

std::optional<ApiError> SimHost::ParseCreate(std::string_view body, bool user,
                                             CreateRequest* out) const {
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
  r.catalog_id = StringField(m, "catalog_id");
  if (r.catalog_id.empty()) {
    return ApiError::Raw(400, "Invalid request body: catalog_id cannot be empty");
  }
  if (const std::string v = StringField(m, "version"); !v.empty()) {
    r.version = v;
  }
  // controllers/machines.go resolveCatalogMachineConnection: a connection or a catalog
  // manager (1.0.0+), never both; a manager is looked up for the calling user
  // (getAuthorizedCatalogManagerForUse needs one: API-key callers get 401).
  const std::string connection(TrimAscii(StringField(m, "connection")));
  const std::string manager =
      features_.async_create ? std::string(TrimAscii(StringField(m, "catalog_manager_id"))) : "";
  if (!connection.empty() && !manager.empty()) {
    return ApiError::Raw(400, "connection and catalog_manager_id cannot both be provided");
  }
  if (!manager.empty()) {
    if (!user && !options_.no_auth) {
      return ApiError::Raw(401, "User not contextually found");
    }
    const auto& known = options_.catalog_managers;
    if (std::find(known.begin(), known.end(), manager) == known.end()) {
      return ApiError::Raw(404, "catalog manager not found");
    }
  } else if (connection.empty()) {
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
    // Only cpu and memory are applied to the new VM (controllers/machines.go
    // createCatalogMachine, :1985-2016); `disk` and `type` are read by the orchestrator's
    // placement alone, so the VM keeps its image's disk and OS.
    if (!spec("cpu", &r.cpu) || !spec("memory", &r.memory_mb)) {
      return ApiError::Raw(400,
                           "Invalid request body: specs cpu and memory must be positive "
                           "integers (memory in MB)");
    }
  }
  return std::nullopt;
}

Reply SimHost::Create(std::string_view body, bool async, bool user) {
  CreateRequest request;
  if (std::optional<ApiError> error = ParseCreate(body, user, &request)) {
    return Reply::Error(*error);
  }
  const std::string job_id = env_.NewUuid();
  json accepted;
  {
    std::lock_guard lock(mu_);
    Job job;
    job.id = job_id;
    job.owner = request.owner;
    // jobs/main.go CreateNewJob(caller, "machines", "create", ...) sets no message and no
    // result record: nothing in a running job names the VM it makes.
    job.vm_name = request.name;
    job.created_at = job.updated_at = Now();
    job.touched = std::chrono::steady_clock::now();
    // catalog/pull.go getPullWorkflowSteps, with the host cache enabled.
    for (const char* step :
         {"Validating request", "Checking local catalog", "Checking Remote Providers",
          "Downloading manifest", "Downloading pack file", "Caching pack file",
          "Copying from cache", "Cleaning and flattening pulled structure", "Registering machine",
          "Renaming machine"}) {
      job.steps.push_back({step});
    }
    if (request.start_on_create) {
      job.steps.push_back({"Starting machine"});
    }
    jobs_.push_back(job);
    accepted = JobJsonLocked(job);
    // Counted when the work starts, whether or not the caller ever hears the answer (endpoint
    // counters count answered requests).
    ++counters_["create_jobs"]["calls"];
  }
  env_.Schedule(Duration(0), [this, job_id, request] { RunCreate(job_id, request); });
  if (async) {
    // The job has started; the answer may still be slow to arrive (a slow network): a client
    // that dies meanwhile has a job running that it never heard of.
    env_.Sleep(env_.Latency("accept"));
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

void SimHost::TouchJobLocked(Job& job) {
  job.updated_at = Now();
  job.touched = std::chrono::steady_clock::now();
}

void SimHost::FailJobLocked(Job& job, const std::string& error) {
  job.state = "failed";
  job.error = error;
  job.message = "Failed to create virtual machine " + job.vm_name;
  TouchJobLocked(job);
  for (JobStep& step : job.steps) {
    if (step.state == "running") {
      step.state = "failed";
    }
  }
  cv_.notify_all();
}

void SimHost::ReapStaleJobs() {
  {
    std::lock_guard lock(mu_);
    if (shutting_down_) {
      return;
    }
    // data/jobs.go DetectStaleJobs: pending or running jobs without an update for the timeout
    // fail with "Canceled Job". Whatever the job was doing goes on.
    const auto cutoff = std::chrono::steady_clock::now() - options_.ghost_job_timeout;
    for (Job& job : jobs_) {
      if ((job.state == "pending" || job.state == "running") && job.touched < cutoff) {
        job.state = "failed";
        job.error = "Canceled Job";
        TouchJobLocked(job);
      }
    }
  }
  cv_.notify_all();
  // The checker runs every GhostJobCheckIntervalSeconds = 5 (constants/jobs.go).
  env_.Schedule(std::chrono::seconds(5), [this] { ReapStaleJobs(); });
}

void SimHost::StartBackgroundWork() {
  if (proxy_ != nullptr) {
    proxy_->Start();  // the service starts its proxy with the records it kept
  }
  if (features_.ghost_job_reaper) {
    env_.Schedule(std::chrono::seconds(5), [this] { ReapStaleJobs(); });
  }
}

void SimHost::RunCreate(const std::string& job_id, const CreateRequest& request) {
  const Duration pull_latency = env_.Latency("pull");
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
  // Resolve the image. The pull asks the catalog for NormalizeStringUpper(id) and
  // NormalizeString(version) (catalog/pull.go:192): lookups ignore case and separators.
  const std::string id_key = NormalizeCatalogName(request.catalog_id);
  std::optional<GuestOs> image_os;
  plan.version = request.version;
  plan.image_mb = options_.default_image_size_mb;
  if (!options_.catalog.empty()) {
    const CatalogImage* found = nullptr;
    for (const CatalogImage& image : options_.catalog) {
      if (NormalizeCatalogName(image.id) != id_key) {
        continue;
      }
      if (NormalizeCatalogName(image.version) == NormalizeCatalogName(request.version) ||
          (request.version == "latest" && (found == nullptr || found->version != "latest"))) {
        found = &image;
      }
    }
    if (found == nullptr) {
      return fail("error 404: catalog manifest " + AsciiUpper(id_key) + " version " +
                  request.version + " for architecture " + arch + " not found");
    }
    plan.version = found->version;
    plan.image_mb = found->size_mb;
    image_os = found->os;
  }
  plan.os = image_os.value_or(GuessImageOs(id_key, arch));
  plan.cache_key = id_key + "/" + NormalizeCatalogName(plan.version);
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
  plan.cached = CachedLocked(plan.cache_key, arch);
  plan.disk_mb = plan.image_mb;  // the image's own disk: specs.disk is not applied
  const uint64_t need = plan.disk_mb + (plan.cached ? 0 : plan.image_mb);
  const uint64_t taken = UsedDiskLocked() + ReservedDiskLocked();
  const uint64_t free_mb = options_.disk_mb > taken ? options_.disk_mb - taken : 0;
  if (need > free_mb) {
    return fail("not enough disk space to pull the image: " + std::to_string(need) +
                " MB needed, " + std::to_string(free_mb) + " MB free");
  }
  pending_.push_back({job_id, request.name, need});
  job->state = "running";
  job->progress = 20;
  TouchJobLocked(*job);
  for (size_t i = 0; i < 4; ++i) {
    job->steps[i].state = "completed";
  }
  const auto now = std::chrono::steady_clock::now();
  if (plan.cached) {
    job->steps[4].state = "skipped";
    job->steps[5].state = "skipped";
    lock.unlock();
    Download(job_id, plan, now, Duration(0));
    return;
  }
  JobStep& download = job->steps[4];
  download.state = "running";
  download.has_percentage = true;
  download.total = plan.image_mb;
  download.unit = "MB";
  caching_[job_id] = plan.cache_key;
  lock.unlock();
  Download(job_id, plan, now, pull_latency);
}

void SimHost::Download(const std::string& job_id, const CreatePlan& plan,
                       std::chrono::steady_clock::time_point started, Duration length) {
  const auto now = std::chrono::steady_clock::now();
  const auto elapsed = std::chrono::duration_cast<Duration>(now - started);
  const bool done = elapsed >= length;
  {
    std::lock_guard lock(mu_);
    Job* job = FindJobLocked(job_id);
    if (job == nullptr || shutting_down_) {
      return;
    }
    JobStep& download = job->steps[4];
    if (download.state == "running") {
      // The download reports progress as it goes (catalog/pull.go, the job's tracker): bytes,
      // percentage and an estimate of the time left; each report updates the job.
      const double fraction =
          done ? 1.0 : static_cast<double>(elapsed.count()) / static_cast<double>(length.count());
      download.value = static_cast<uint64_t>(fraction * static_cast<double>(download.total));
      const auto left = std::chrono::duration_cast<std::chrono::seconds>(length - elapsed);
      download.eta = done ? "" : std::to_string(left.count()) + "s";
      if (job->state == "running") {
        job->progress = 20 + static_cast<int>(fraction * 50.0);
        TouchJobLocked(*job);
      }
      if (done) {
        download.state = "completed";
        job->steps[5].state = "completed";
      }
    }
    if (done) {
      // Copying from the cache, registering and renaming: one stretch of `create` latency
      // (and `start` with start_on_create) in which the job is not updated.
      job->steps[6].state = "running";
    }
  }
  if (!done) {
    env_.Schedule(
        std::min<Duration>(length - elapsed, std::chrono::seconds(1)),
        [this, job_id, plan, started, length] { Download(job_id, plan, started, length); });
    return;
  }
  const Duration rest =
      env_.Latency("create") + (plan.request.start_on_create ? env_.Latency("start") : Duration(0));
  env_.Schedule(rest, [this, job_id, plan] { FinishCreate(job_id, plan); });
}

bool SimHost::CachedLocked(const std::string& cache_key, const std::string& arch) const {
  return std::any_of(cache_.begin(), cache_.end(), [&](const CacheEntry& e) {
    return e.catalog_id + "/" + e.version == cache_key && e.architecture == arch;
  });
}

void SimHost::FinishCreate(const std::string& job_id, const CreatePlan& plan) {
  const std::string uuid = env_.NewUuid();
  {
    std::lock_guard lock(mu_);
    std::erase_if(pending_, [&](const Pending& p) { return p.key == job_id; });
    const bool disturbed = std::erase(cache_disturbed_, job_id) > 0;
    caching_.erase(job_id);
    Job* job = FindJobLocked(job_id);
    const CreateRequest& request = plan.request;
    if (disturbed) {
      // The integrity check read back an item a listing had rewritten: the pull fails after
      // its download, and no VM is registered.
      if (job != nullptr && job->state == "running") {
        FailJobLocked(*job, PullError("Cache is not completed"));
      }
      return;
    }
    if (!plan.cached && !CachedLocked(plan.cache_key, options_.arch)) {
      const size_t slash = plan.cache_key.find('/');
      cache_.push_back({plan.cache_key.substr(0, slash), plan.cache_key.substr(slash + 1),
                        options_.arch, plan.image_mb, plan.os, Now()});
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
        vm.booted_at = std::chrono::steady_clock::now() + options_.guest_boot;
      }
    }
    vms_.push_back(vm);
    // A job the reaper cancelled stays failed: the pull finished all the same.
    if (job != nullptr && job->state == "running") {
      job->result_record_id = uuid;
      job->result_record_name = request.name;
      for (JobStep& step : job->steps) {
        step.state = step.state == "skipped" ? "skipped" : "completed";
      }
      if (start_error) {
        job->steps.back().state = "running";
        FailJobLocked(*job, PullError(start_error->message));
      } else {
        job->state = "completed";
        job->progress = 100;
        job->result = "Virtual machine " + uuid + " created";  // controllers/machines.go
        TouchJobLocked(*job);
      }
    }
  }
  cv_.notify_all();
  Mutated();
}

}  // namespace flotilla::hostsim
