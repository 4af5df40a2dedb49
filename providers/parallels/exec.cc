// ParallelsProvider::Exec: startup scripts run detached in the guest (guest_script.h).

#include <algorithm>

#include "providers/parallels/guest_script.h"
#include "providers/parallels/provider.h"
#include "providers/parallels/wire.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::parallels {
namespace {

using nlohmann::json;

std::string FirstOf(const std::string& a, const std::string& b) { return a.empty() ? b : a; }

}  // namespace

Result<ParallelsProvider::GuestAnswer> ParallelsProvider::RunGuestCommand(
    HostClient& client, std::string_view vm, std::string_view script, const Redactor& env_redactor,
    Deadline deadline) {
  Result<std::string> command = ExecCommand(script, {});
  if (!command.ok()) {
    return command.status();
  }
  // The service runs at most two guest commands per host and holds the others' requests: they
  // wait here instead (audit #8).
  Result<HostClient::ExecSlot> slot = client.AcquireExecSlot(deadline);
  if (!slot.ok()) {
    return slot.status();
  }
  const json body = {{"command", *command},
                     {"environment_variables", {{kExecMarkerVariable, "1"}}}};
  Result<Response> response = client.Call(
      Method::kPut, "/v1/machines/" + EncodePathSegment(vm) + "/execute", &body, deadline);
  if (!response.ok()) {
    return response.status();
  }
  if (response->status != 200) {
    return client.ErrorFor(*response, "run a command in VM " + std::string(vm), &env_redactor);
  }
  const json parsed = ParseBody(*response);
  const auto exit_code =
      parsed.is_object() && parsed.contains("exit_code") && parsed["exit_code"].is_number_integer()
          ? std::optional<int64_t>(parsed["exit_code"].get<int64_t>())
          : std::nullopt;
  if (!exit_code) {
    return Status::FailedPrecondition("host " + client.host().name +
                                      ": the answer to a guest command has no exit_code");
  }
  // Environment values may be secrets: none of them leaves in an error or the output.
  auto text = [&](const char* key) {
    return parsed.contains(key) && parsed[key].is_string()
               ? env_redactor.Apply(client.Redact(parsed[key].get<std::string>()))
               : std::string();
  };
  return GuestAnswer{.exit_code = static_cast<int>(std::clamp<int64_t>(*exit_code, -1, 255)),
                     .stdout_text = text("stdout"),
                     .stderr_text = text("stderr"),
                     .error = text("error")};
}

Result<ExecResult> ParallelsProvider::Exec(const HostRef& host, std::string_view vm,
                                           std::string_view script,
                                           const std::map<std::string, std::string>& env,
                                           Deadline deadline) {
  Result<HostClient*> client = ClientFor(host);
  if (!client.ok()) {
    return client.status();
  }
  HostClient& c = **client;
  Redactor env_redactor;
  for (const auto& [key, value] : env) {
    env_redactor.Add(value);
  }
  Result<VmInfo> info = GetVm(c, vm, deadline);
  if (!info.ok()) {
    return info.status();
  }
  if (info->state != VmState::kRunning) {
    return Status::FailedPrecondition("host " + host.name + ": cannot run a script in VM " +
                                      std::string(vm) + ": it is " + info->raw_state);
  }
  // The run is named after the VM's id: a VM made again under the same name runs its script
  // afresh, a launch repeated after a lost answer follows the first.
  const std::string run = ScriptRunId(info->id, script, env);
  Result<std::string> launch = LaunchScript(run, script, env);
  if (!launch.ok()) {
    return launch.status();
  }
  const std::string where = "host " + host.name + ": VM " + std::string(vm);

  // 1. Start it. `prlctl start` returns before the guest has booted, and until then every
  //    command fails inside an HTTP 200 (audit #3): launching is retried until the guest runs
  //    it, which also makes the launch the readiness probe.
  bool silent = false;  // the guest answered without a word: it runs nothing we send
  for (;;) {
    Result<GuestAnswer> answer = RunGuestCommand(c, vm, *launch, env_redactor, deadline);
    if (!answer.ok()) {
      return answer.status();
    }
    if (answer->exit_code == 0) {
      silent = answer->stdout_text.find("launched") == std::string::npos &&
               answer->stdout_text.find("running") == std::string::npos;
      break;
    }
    const std::string failure = FirstOf(answer->error, answer->stderr_text);
    logger_->debug("{}: the guest did not run the script's launch (exit {}): {}", where,
                   answer->exit_code, failure);
    if (!SleepWithin(config_.tuning.guest_boot_poll, deadline)) {
      return Status::Unavailable(where + ": its guest runs no commands yet (still booting?): " +
                                 std::to_string(answer->exit_code) + ": " + failure);
    }
  }
  if (silent) {
    // A guest that prints nothing for commands that always print (hostsim's
    // --guest-exec succeed): there is no run to look at.
    logger_->warn(
        "{}: the guest printed nothing for the script's launch; counting the script as "
        "run and succeeded",
        where);
    return ExecResult{};
  }

  // 2. Look at it until it is done. A script may run for hours; each look is one short command.
  std::chrono::milliseconds wait =
      std::min<std::chrono::milliseconds>(std::chrono::seconds{1}, config_.tuning.script_poll);
  for (;;) {
    if (!SleepWithin(wait, deadline)) {
      return Status::DeadlineExceeded(where + ": the startup script is still running (run " + run +
                                      "); it goes on in the guest and is followed when "
                                      "asked again");
    }
    wait = config_.tuning.script_poll;
    Result<GuestAnswer> answer = RunGuestCommand(c, vm, PollScript(run), env_redactor, deadline);
    if (!answer.ok()) {
      return answer.status();
    }
    if (answer->exit_code != 0) {
      // prlctl could not reach the guest this time; the script is not affected.
      logger_->debug("{}: looking at the startup script failed (exit {}): {}", where,
                     answer->exit_code, FirstOf(answer->error, answer->stderr_text));
      continue;
    }
    Result<ScriptState> state = ParsePoll(answer->stdout_text);
    if (!state.ok()) {
      return Status::FailedPrecondition(where +
                                        ": the guest answered the script's status check "
                                        "with no status line: " +
                                        answer->stdout_text.substr(0, 200));
    }
    switch (state->kind) {
      case ScriptState::Kind::kRunning:
        continue;
      case ScriptState::Kind::kMissing:
        return Status::Unavailable(where + ": the startup script's run " + run +
                                   " is gone from the guest (was it rebooted?); it is started "
                                   "again on the next attempt");
      case ScriptState::Kind::kDone:
        break;
    }
    // Best effort: a folder left behind only costs a few bytes in the guest.
    if (Result<GuestAnswer> cleaned =
            RunGuestCommand(c, vm, CleanScript(run), env_redactor, deadline);
        !cleaned.ok() || cleaned->exit_code != 0) {
      logger_->debug("{}: could not remove the startup script's run {}", where, run);
    }
    return ExecResult{.exit_code = state->exit_code,
                      .stdout_text = env_redactor.Apply(c.Redact(state->stdout_text)),
                      .stderr_text = env_redactor.Apply(c.Redact(state->stderr_text))};
  }
}

}  // namespace flotilla::providers::parallels
