#include "providers/hostsim/sim_host.h"

#include <algorithm>

#include "providers/hostsim/sim_wire.h"
#include "reconciler/model/text.h"

namespace flotilla::hostsim {

using nlohmann::json;
using SystemClock = std::chrono::system_clock;

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
  Mutated();
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
  if (final_state == "running" && op != StateOp::kResume) {
    // `prlctl start` returns once the VM is on, not once its OS is up
    // (parallelsdesktop/main.go:1282-1290); a resumed guest is up at once.
    vm->booted_at = std::chrono::steady_clock::now() + options_.guest_boot;
  }
  lock.unlock();
  Mutated();
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
  Mutated();
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
  std::optional<ApiError> first_error;
  {
    std::unique_lock lock(mu_);
    SimVm* vm = FindOrWait(lock, id);
    if (vm == nullptr) {
      return VmNotFound();
    }
    for (const json& op : j["operations"]) {
      if (StringField(op, "group").empty() || StringField(op, "operation").empty()) {
        return InvalidBody("every operation needs a group and an operation");
      }
    }
    // ConfigureVm (parallelsdesktop/main.go:1872-1950) runs every operation, then answers with
    // the first error: a change can be partly applied.
    for (const json& op : j["operations"]) {
      const std::string group = StringField(op, "group");
      const std::string operation = StringField(op, "operation");
      std::optional<ApiError> error;
      if ((group == "cpu" || group == "memory") && operation == "set") {
        const json value = op.contains("value") ? op["value"] : json();
        std::optional<uint64_t> v = PositiveInt(value);
        if (vm->state != "stopped") {
          error = ApiError::Uncoded("VM is not stopped");
        } else if (value.is_string() && value == "auto") {
          // nothing to change
        } else if (!v || (group == "cpu" && *v > 1024)) {
          const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
          error = ApiError::Prlctl("Failed to configure the VM: invalid " + group + " value \"" +
                                   text + "\".");
        } else {
          if (group == "cpu") {
            vm->cpus = static_cast<int>(*v);
          } else {
            vm->memory_mb = *v;
          }
          changed = true;
        }
      } else if (group == "device" && operation == "set" && StringField(op, "value") == "hdd0") {
        // `prlctl set <id> --device-set hdd0 --size <MB>` (SetVmDeviceOperation and
        // GetCmdArgs, models/virtual_machine_config.go). hostsim's rules, since prlctl's are not
        // in the service's source: the VM must be stopped, and a disk only grows.
        std::optional<uint64_t> size;
        if (op.contains("options") && op["options"].is_array()) {
          for (const json& option : op["options"]) {
            if (StringField(option, "flag") == "size") {
              size = PositiveInt(option.contains("value") ? option["value"] : json());
            }
          }
        }
        if (vm->state != "stopped") {
          error = ApiError::Prlctl("Failed to configure the VM: the VM is not stopped.");
        } else if (size && *size < vm->disk_mb) {
          error = ApiError::Prlctl("Failed to resize the disk: the new size (" +
                                   std::to_string(*size) + " MB) is smaller than the current " +
                                   std::to_string(vm->disk_mb) + " MB.");
        } else if (size) {
          vm->disk_mb = *size;
          changed = true;
        }
      }
      // Every other group/operation is accepted and does nothing here.
      json result = {{"group", group}, {"operation", operation}, {"status", "Success"}};
      if (error) {
        result["status"] = "Error";
        result["error"] = error->message;
        if (!first_error) {
          first_error = error;
        }
      }
      results.push_back(std::move(result));
    }
  }
  if (changed) {
    Mutated();
  }
  env_.Sleep(env_.Latency("set"));
  if (first_error) {
    return Reply::Error(*first_error);
  }
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
  // ExecuteCommandOnVm (parallelsdesktop/main.go:2640-2700): with environment variables the
  // command runs as `env K='V' ... bash -c '<command>'`, else as it is.
  std::string command = execution.command;
  if (!execution.environment_variables.empty()) {
    std::string vars;
    for (const auto& [key, value] : execution.environment_variables) {
      vars += (vars.empty() ? "" : " ") + key + "='" + value + "'";
    }
    command = "env " + vars + " bash -c '" + execution.command + "'";
  }
  SimVm vm;
  {
    std::unique_lock lock(mu_);
    SimVm* found = FindOrWait(lock, id);
    if (found == nullptr) {
      return VmNotFound();
    }
    if (found->state != "running") {
      return Reply::Error(ApiError::Uncoded("VM is not running"));
    }
    found->executions.push_back(std::move(execution));
    vm = *found;
  }
  const ExecOutcome outcome = RunInGuest(vm, command);
  // Any prlctl failure is still HTTP 200: the exit code and error are in the body, which
  // omits empty stdout, stderr and error (models/virtual_machine_execute.go).
  json reply = {{"exit_code", outcome.exit_code}};
  if (!outcome.stdout_text.empty()) {
    reply["stdout"] = outcome.stdout_text;
  }
  if (!outcome.stderr_text.empty()) {
    reply["stderr"] = outcome.stderr_text;
  }
  if (!outcome.error.empty()) {
    reply["error"] = outcome.error;
  }
  return Reply::Json(200, std::move(reply));
}

ExecOutcome SimHost::RunInGuest(const SimVm& vm, const std::string& command) {
  // At most exec_slots commands run in guests at once; the rest wait for a slot, however long
  // (the service's sshSem channel, parallelsdesktop/main.go:60 and :2688-2690).
  {
    std::unique_lock lock(mu_);
    // Requests holding or waiting for a slot, for the control API's counters.
    ++exec_requests_;
    int64_t& peak = counters_["execute"]["peak_requests"];
    peak = std::max<int64_t>(peak, exec_requests_);
    cv_.wait(lock, [&] { return exec_running_ < options_.exec_slots || shutting_down_; });
    ++exec_running_;
  }
  const Duration latency = env_.Latency("exec");
  ExecOutcome outcome;
  if (std::chrono::steady_clock::now() < vm.booted_at) {
    // The guest OS is still booting: prlctl cannot reach it and exits non-zero. The exit code
    // and text are not in the service's source (prlctl is not); these are hostsim's.
    env_.Sleep(std::min(latency, options_.prlctl_timeout));
    outcome =
        Shape("", "Failed to execute the command: the guest OS is not ready yet.\n", 255, false);
  } else if (const GuestShell* guests = env_.Guests(); guests != nullptr) {
    env_.Sleep(std::min(latency, options_.prlctl_timeout));
    outcome = guests->Run(vm.uuid, command,
                          options_.prlctl_timeout - std::min(latency, options_.prlctl_timeout));
  } else if (latency >= options_.prlctl_timeout) {
    env_.Sleep(options_.prlctl_timeout);
    outcome = Shape("", "", -1, /*killed=*/true);
  } else {
    env_.Sleep(latency);
    outcome = Shape("", "", 0, false);
  }
  {
    std::lock_guard lock(mu_);
    --exec_running_;
    --exec_requests_;
  }
  cv_.notify_all();
  return outcome;
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
  Mutated();
  env_.Sleep(env_.Latency("rename"));
  return Reply::Json(200, std::move(result));
}

}  // namespace flotilla::hostsim
