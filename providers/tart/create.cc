// TartProvider::Create and Prepull: idempotent, resumable creates from an OCI image or a local
// VM.

#include <algorithm>
#include <set>

#include "providers/tart/provider.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::tart {
namespace {

// The output's `@@failed STEP STATUS` line, and the last line a tool printed before it.
struct StepFailure {
  std::string step;
  int status = 1;
  std::string line;
  std::string text;
};

// The output's `@@failed STEP STATUS` line, with the failing step's output (after its
// `@@step STEP` line): `line` its last line (Tart prints its error last, after any progress
// such as "pulling manifest..."), `text` all of it.
std::optional<StepFailure> FailedStep(std::string_view out) {
  std::optional<StepFailure> failure;
  std::string text;
  std::stringstream lines{std::string(out)};
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("@@step ")) {
      text.clear();
    } else if (line.starts_with("@@failed ")) {
      std::stringstream words(line.substr(9));
      StepFailure f{.line = LastLine(text), .text = text};
      words >> f.step >> f.status;
      failure = f;
    } else {
      text += line + "\n";
    }
  }
  return failure;
}

bool Has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

Result<std::optional<CreateResult>> TartProvider::FollowCreate(const HostRef& host,
                                                               const CreateRequest& request,
                                                               const std::string& temp,
                                                               Deadline deadline) {
  logger_->info("host {}: waiting for the earlier create of {} ({}) to finish", host.name,
                request.name, temp);
  if (request.on_status) {
    request.on_status("waiting for an earlier attempt's pull or clone to finish");
  }
  for (;;) {
    Result<RemoteResult> alive = Run(host, "create status", scripts_.CreateAlive(temp), deadline);
    if (!alive.ok()) {
      return alive.status();
    }
    if (alive->out.find("alive") == std::string::npos) {
      break;
    }
    if (request.cancelled && request.cancelled()) {
      return Status::Cancelled("create of " + request.name + " on " + host.name + " cancelled");
    }
    if (!SleepWithin(config_.tuning.poll, deadline)) {
      return Status::DeadlineExceeded("host " + host.name + ": the earlier create of " +
                                      request.name + " is still running");
    }
  }
  // Its steps may have got as far as the rename.
  Result<VmNow> made = Look(host, request.name, deadline);
  if (!made.ok()) {
    return made.status();
  }
  if (!made->details) {
    return std::optional<CreateResult>();
  }
  (void)Run(host, "create output", scripts_.CreateOutput(temp), deadline);
  logger_->info("host {}: the earlier create of {} finished it", host.name, request.name);
  return std::optional<CreateResult>(
      CreateResult{.vm = ToVmInfo(request.name, *made->details, made->job, made->ip, made->now),
                   .adopted = false});
}

// How Create stays idempotent and resumable.
//
// `tart clone` replaces an existing VM of the target name without a word, so nothing is ever
// cloned onto a final name: a VM is built under "<name>.flotilla-<nonce>" (reported through
// on_progress before the host is asked) and renamed at the end; `tart rename` refuses an
// existing target. The steps (pull, clone, set) run on the host detached from the connection
// (Scripts::Create), so a dropped connection or a killed Flotilla leaves them running:
//   1. A VM with the final name exists: it is returned as adopted.
//   2. Creates of this name left by earlier attempts: the journalled one (request.resume) is
//      followed until its steps end and, once its clone exists, finished (set, rename); any
//      other is interrupted and its VM deleted.
//   3. Otherwise: clone (pulling first with pullPolicy Always), set, rename. Cancelled or out of
//      time, the host's steps are interrupted (tart removes a half-made clone itself).
// An attempt killed while launching its steps may still have them reach the host, after the
// next attempt looked and launched its own for the same temporary name: the steps take a
// per-create marker only if none is held (Scripts::Create), so the late ones do nothing, and an
// attempt whose steps found them running follows those to their end as in 2.
Result<CreateResult> TartProvider::Create(const HostRef& host, const CreateRequest& request,
                                          Deadline deadline) {
  Result<ImageRef> image = ParseImage(request.templ.image);
  if (!image.ok()) {
    return Status::InvalidArgument("VM " + request.name + ": " + image.status().message());
  }
  Result<RemoteResult> listed = Run(host, "inventory", scripts_.Inventory(), deadline);
  if (!listed.ok()) {
    return listed.status();
  }
  Result<HostReport> inventory = ParseHostReport(listed->out);
  if (!inventory.ok()) {
    return inventory.status().WithContext("host " + host.name);
  }
  auto describe = [&](const std::string& name, bool adopted) -> Result<CreateResult> {
    Result<VmNow> now = Look(host, name, deadline);
    if (!now.ok()) {
      return now.status();
    }
    if (!now->details) {
      return Status::Unavailable("host " + host.name + ": VM " + name + " vanished");
    }
    return CreateResult{.vm = ToVmInfo(name, *now->details, now->job, now->ip, now->now),
                        .adopted = adopted};
  };
  if (Has(inventory->names, request.name)) {
    logger_->info("host {}: VM {} already exists; adopting it", host.name, request.name);
    return describe(request.name, true);
  }
  const std::string resume_temp =
      request.resume && ParsePendingCreateName(request.resume->temp_name) == request.name
          ? request.resume->temp_name
          : "";
  std::set<std::string> temps;
  for (const std::string& name : inventory->names) {
    if (ParsePendingCreateName(name) == request.name) {
      temps.insert(name);
    }
  }
  for (const auto& [temp, job] : inventory->creates) {
    if (ParsePendingCreateName(temp) == request.name) {
      temps.insert(temp);
    }
  }
  std::string finish_temp;
  for (const std::string& temp : temps) {
    const auto create = inventory->creates.find(temp);
    const bool running = create != inventory->creates.end() && create->second.alive;
    if (temp == resume_temp) {
      if (running) {
        Result<std::optional<CreateResult>> followed = FollowCreate(host, request, temp, deadline);
        if (!followed.ok()) {
          return followed.status();
        }
        if (followed->has_value()) {
          return std::move(**followed);
        }
      }
      Result<VmNow> now = Look(host, temp, deadline);
      if (!now.ok()) {
        return now.status();
      }
      if (now->details) {
        finish_temp = temp;  // the clone is complete (tart moves it into place whole)
      }
      continue;
    }
    logger_->info("host {}: removing {}, left by an earlier create of {}", host.name, temp,
                  request.name);
    if (create != inventory->creates.end()) {
      Result<RemoteResult> cancelled =
          Run(host, "create cancel", scripts_.CancelCreate(temp), deadline);
      if (!cancelled.ok()) {
        return cancelled.status();
      }
    }
    // An interrupted create's clone may have been moved into place after the listing.
    if (create != inventory->creates.end() || Has(inventory->names, temp)) {
      if (Status s = Delete(host, temp, deadline); !s.ok()) {
        return s;
      }
    }
  }

  const std::string temp = !finish_temp.empty()   ? finish_temp
                           : !resume_temp.empty() ? resume_temp
                                                  : PendingCreateName(request.name, NewNonce());
  if (request.on_progress) {
    request.on_progress(PendingCreate{.temp_name = temp});
  }
  if (request.cancelled && request.cancelled()) {
    return Status::Cancelled("create of " + request.name + " cancelled before the host was asked");
  }
  const uint32_t cpu = request.templ.cpu;
  const Quantity memory = request.templ.memory;
  const std::optional<Quantity> disk = request.templ.disk;
  if (finish_temp.empty()) {
    const bool oci = image->kind == ImageRef::Kind::kOci;
    const bool pull = oci && config_.settings.pull_policy == PullPolicy::kAlways;
    const bool cached = !oci || Has(inventory->cached, image->name);
    if (request.on_status) {
      request.on_status(pull || !cached ? "pulling " + image->name : "cloning " + image->name);
    }
    Result<RemoteResult> made = Run(
        host, "create",
        scripts_.Create(image->name, temp, request.name, pull, cpu, memory, disk, RegistryEnv()),
        deadline, request.cancelled);
    if (!made.ok()) {
      if (made.status().IsCancelled() || made.status().code() == Status::Code::kDeadlineExceeded) {
        // The host's steps would go on without us: interrupted (tart clone removes its
        // half-made copy on SIGINT), and whatever they left is deleted.
        (void)Run(host, "create cancel", scripts_.CancelCreate(temp),
                  DeadlineIn(std::chrono::seconds{30}));
        (void)Delete(host, temp, DeadlineIn(std::chrono::seconds{30}));
      }
      return made.status();
    }
    if (made->out.starts_with("@@busy")) {
      // An earlier attempt's script of this create reached the host after this attempt looked
      // (a killed apply's, launched as it died) and holds it: followed to its end.
      Result<std::optional<CreateResult>> followed = FollowCreate(host, request, temp, deadline);
      if (!followed.ok()) {
        return followed.status();
      }
      if (followed->has_value()) {
        return std::move(**followed);
      }
      return Status::Unavailable("host " + host.name + ": an earlier attempt's create of " +
                                 request.name +
                                 " ended without making it; it is resumed on the "
                                 "next attempt");
    }
    if (std::optional<StepFailure> failed = FailedStep(made->out)) {
      if (failed->step == "set" || failed->step == "rename") {
        (void)Delete(host, temp, deadline);
      }
      if (failed->step == "rename" &&
          Classify(failed->status, failed->text) == Failure::kTargetExists) {
        // Someone created the final name meanwhile: theirs stays, ours went.
        return Status::Conflict("host " + host.name + ": VM " + request.name +
                                " appeared while it was being created");
      }
      if (failed->step == "clone" && oci &&
          Classify(failed->status, failed->text) == Failure::kDoesNotExist) {
        // The image was there (a missing one fails its pull with a registry error): another
        // clone or pull of it re-linked its tag between this clone's check and its open
        // (VMStorageOCI.swift link() removes the tag's symlink, then makes it anew).
        return Status::Unavailable("host " + host.name + ": creating " + request.name +
                                   " (tart clone): " + redactor_.Apply(failed->line) +
                                   " (another clone or pull of the image re-linked its tag at "
                                   "that moment; another try finds it)");
      }
      return TartError(
          host, "creating " + request.name + " (tart " + failed->step + ")",
          RemoteResult{.exit_code = failed->status, .out = failed->text, .err = failed->line});
    }
    const size_t done = made->out.find("@@done\n");
    if (done == std::string::npos) {
      return Status::Unavailable("host " + host.name + ": the create of " + request.name +
                                 " ended early; it is resumed on the next attempt");
    }
    // The script renamed the VM and described it, after its steps' output.
    Result<HostReport> report = ParseHostReport(std::string_view(made->out).substr(done + 7));
    const auto details = report.ok() ? report->details.find(request.name)
                                     : std::map<std::string, VmDetails>::const_iterator();
    if (report.ok() && details != report->details.end()) {
      logger_->info("host {}: created VM {} from {}", host.name, request.name, image->name);
      std::optional<HostReport::Job> job;
      return CreateResult{.vm = ToVmInfo(request.name, details->second, job, "", report->now),
                          .adopted = false};
    }
    return describe(request.name, false);
  } else {
    logger_->info("host {}: finishing the create of {} from {}", host.name, request.name, temp);
    Result<RemoteResult> set =
        Run(host, "tart set", scripts_.Set(temp, cpu, memory, disk, true), deadline);
    if (!set.ok()) {
      return set.status();
    }
    if (set->exit_code != 0) {
      return TartError(host, "configuring " + temp, *set);
    }
    (void)Run(host, "create output", scripts_.CreateOutput(temp), deadline);
  }
  Result<RemoteResult> renamed =
      Run(host, "tart rename", scripts_.Rename(temp, request.name), deadline);
  if (!renamed.ok()) {
    return renamed.status();
  }
  if (renamed->exit_code != 0) {
    if (Classify(renamed->exit_code, renamed->err) == Failure::kTargetExists) {
      // Someone created the final name meanwhile: theirs stays, ours goes.
      (void)Delete(host, temp, deadline);
      return Status::Conflict("host " + host.name + ": VM " + request.name +
                              " appeared while it was being created");
    }
    return TartError(host, "renaming " + temp + " to " + request.name, *renamed);
  }
  logger_->info("host {}: created VM {} from {}", host.name, request.name, image->name);
  return describe(request.name, false);
}

Status TartProvider::Prepull(const HostRef& host, const PrepullRequest& request,
                             Deadline deadline) {
  Result<ImageRef> image = ParseImage(request.templ.image);
  if (!image.ok()) {
    return Status::InvalidArgument(image.status().message());
  }
  if (image->kind != ImageRef::Kind::kOci) {
    return Status::Ok();  // a local VM is on the host already
  }
  Result<RemoteResult> listed = Run(host, "inventory", scripts_.Inventory(), deadline);
  if (!listed.ok()) {
    return listed.status();
  }
  Result<HostReport> inventory = ParseHostReport(listed->out);
  if (inventory.ok() && Has(inventory->cached, image->name)) {
    return Status::Ok();
  }
  if (request.on_status) {
    request.on_status("pulling " + image->name);
  }
  Result<RemoteResult> pulled = Run(host, "tart pull", scripts_.Pull(image->name, RegistryEnv()),
                                    deadline, request.cancelled);
  if (!pulled.ok()) {
    return pulled.status();
  }
  return pulled->exit_code == 0 ? Status::Ok() : TartError(host, "pulling " + image->name, *pulled);
}

}  // namespace flotilla::providers::tart
