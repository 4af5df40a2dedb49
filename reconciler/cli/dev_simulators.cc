#include "reconciler/cli/dev_simulators.h"

#include <sstream>

namespace flotilla::cli {

Result<std::string> FindHostSim(const std::string& self_dir, std::string_view path_env) {
  return FindCompanion(kHostSimBinary, "runs the simulated hosts of 'flotilla dev'", self_dir,
                       path_env);
}

std::vector<std::string> SimulatorArguments(const SimulatorSpec& spec) {
  std::ostringstream jitter;
  jitter << spec.jitter;
  std::vector<std::string> args = {
      "--listen",       "127.0.0.1:" + std::to_string(spec.port),
      "--port-file",    spec.port_file,
      "--hosts",        std::to_string(spec.hosts),
      "--arch",         spec.arch,
      "--cpu",          std::to_string(spec.cpu),
      "--memory",       std::to_string(spec.memory_mib) + "Mi",
      "--disk",         std::to_string(spec.disk_mib) + "Mi",
      "--jitter",       jitter.str(),
      "--lookup-delay", spec.lookup_delay,
      "--api-key-file", spec.api_key_file,
      "--state-file",   spec.state_file,
      "--guest-boot",   spec.guest_boot,
      "--guest-exec",   spec.guest_exec,
  };
  if (!spec.latency.empty()) {
    args.insert(args.end(), {"--latency", spec.latency});
  }
  for (const std::string& guest_port : spec.guest_ports) {
    args.insert(args.end(), {"--guest-port", guest_port});
  }
  return args;
}

ChildSpec SimulatorChild(const std::string& binary, const SimulatorSpec& spec) {
  return ChildSpec{.name = std::string(kHostSimBinary),
                   .binary = binary,
                   .args = SimulatorArguments(spec),
                   .ready_file = spec.port_file,
                   .log_file = spec.log_file,
                   .message_prefix = std::string(kHostSimBinary) + ": ",
                   // ParseCommandLine's exit code: its flags were rejected, as `flotilla dev`
                   // passed them.
                   .usage_exit_code = 2};
}

std::string SimulatorUrl(int64_t port) { return "http://127.0.0.1:" + std::to_string(port); }

}  // namespace flotilla::cli
