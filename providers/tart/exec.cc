// TartProvider::Exec: a script in the guest through the Tart guest agent (`tart exec`).

#include <cctype>

#include "providers/tart/provider.h"

namespace flotilla::providers::tart {
namespace {

bool IsVariableName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) != 0) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

}  // namespace

// The script and its environment go to `tart exec -i VM /bin/sh -s` on stdin, never on a
// command line (of the host or the guest). `tart exec` passes the guest's exit status through,
// which can be 1 or 2 like Tart's own failures; the trailer the guest shell prints after the
// script (Scripts::ExecInput) tells them apart: no trailer, no script result.
Result<ExecResult> TartProvider::Exec(const HostRef& host, std::string_view vm,
                                      std::string_view script,
                                      const std::map<std::string, std::string>& env,
                                      Deadline deadline) {
  Redactor redactor;
  for (const std::string& secret : SecretValues(config_)) {
    redactor.Add(secret);
  }
  for (const auto& [key, value] : env) {
    if (!IsVariableName(key)) {
      return Status::InvalidArgument("environment variable name " + key + " is not valid");
    }
    redactor.Add(value);
  }
  Result<RemoteShell*> shell = ShellFor(host);
  if (!shell.ok()) {
    return shell.status();
  }
  Result<RemoteResult> ran =
      (*shell)->Run(scripts_.ExecCommand(vm), Scripts::ExecInput(script, env), deadline);
  if (config_.requests != nullptr) {
    config_.requests->ProviderRequest("tart", "tart exec", ran.ok() ? 1000 + ran->exit_code : 0);
  }
  if (!ran.ok()) {
    return ran.status().WithContext("host " + host.name);
  }
  std::string out = std::move(ran->out);
  const std::optional<int> code = Scripts::ParseExecTrailer(out);
  if (!code) {
    const std::string line = redactor.Apply(FirstLine(ran->err, out));
    const std::string where = "host " + host.name + ": VM " + std::string(vm) + ": ";
    switch (Classify(ran->exit_code, ran->err)) {
      case Failure::kNotRunning:
        return Status::FailedPrecondition(where + "not running, so nothing can run in it");
      case Failure::kDoesNotExist:
        return Status::NotFound(where + "does not exist");
      case Failure::kNoAgent:
        return Status::Unavailable(where + "the guest agent does not answer (yet): " + line);
      default:
        return Status::Unavailable(where + "the script's result was lost" +
                                   (line.empty() ? "" : ": " + line));
    }
  }
  return ExecResult{.exit_code = *code,
                    .stdout_text = redactor.Apply(out),
                    .stderr_text = redactor.Apply(ran->err)};
}

}  // namespace flotilla::providers::tart
