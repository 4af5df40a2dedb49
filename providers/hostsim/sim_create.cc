#include "providers/hostsim/sim_host.h"

#include <algorithm>

#include "providers/hostsim/sim_wire.h"
#include "reconciler/model/text.h"

namespace flotilla::hostsim {

using nlohmann::json;
using SystemClock = std::chrono::system_clock;

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

}  // namespace flotilla::hostsim
