// TartProvider::OpenTunnel: a byte stream to a guest's port, through the host.
//
// The guest's address is on the Mac's own VM network (bootpd's 192.168.64.0/24 for Tart's
// default NAT), which only the Mac reaches; so the stream is a direct-tcpip channel of the SSH
// connection the provider already has to the Mac (`ssh -W IP:PORT`): the Mac's sshd dials the
// guest. The address is resolved again at every open (`tart ip --wait`): leases change, and the
// last observation may be old.

#include <arpa/inet.h>

#include "providers/tart/provider.h"

namespace flotilla::providers::tart {

Result<std::string> TartProvider::TartVersion(const HostRef& host, Deadline deadline) {
  {
    std::lock_guard lock(mu_);
    if (auto it = tart_versions_.find(host.address); it != tart_versions_.end()) {
      return it->second;
    }
  }
  Result<RemoteResult> ran = Run(host, "tart version", scripts_.Version(), deadline);
  if (!ran.ok()) {
    return ran.status();
  }
  Result<HostReport> report = ParseHostReport(ran->out);
  if (!report.ok()) {
    return report.status().WithContext("host " + host.name);
  }
  std::lock_guard lock(mu_);
  tart_versions_[host.address] = report->tart_version;
  return report->tart_version;
}

Result<Fd> TartProvider::OpenTunnel(const HostRef& host, const VmInfo& vm, uint16_t port,
                                    Deadline deadline) {
  const std::string name = vm.name;
  const std::string what = "host " + host.name + ": VM " + name + " port " + std::to_string(port);
  if (port == 0) {
    return Status::InvalidArgument(what + ": not a port");
  }
  Result<RemoteShell*> shell = ShellFor(host);
  if (!shell.ok()) {
    return shell.status();
  }
  Result<std::string> version = TartVersion(host, deadline);
  if (!version.ok()) {
    return version.status();
  }
  // `tart ip --wait` for as long as the deadline allows, keeping a second for the tunnel.
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(
      deadline - std::chrono::steady_clock::now() - std::chrono::seconds{1});
  const int wait =
      static_cast<int>(std::clamp<int64_t>(left.count(), 0, config_.tuning.tunnel_ip_wait.count()));
  Result<RemoteResult> ran =
      Run(host, "tart ip", scripts_.TunnelAddress(name, *version, wait), deadline);
  if (!ran.ok()) {
    return ran.status();
  }
  Result<HostReport> report = ParseHostReport(ran->out);
  if (!report.ok()) {
    return report.status().WithContext(what);
  }
  const auto details = report->details.find(name);
  if (details == report->details.end()) {
    return Status::NotFound(what + ": the VM does not exist");
  }
  if (details->second.state != "running") {
    return Status::FailedPrecondition(what + ": the VM is not running (it is " +
                                      details->second.state + ")");
  }
  if (auto failed = report->ip_failures.find(name); failed != report->ip_failures.end()) {
    const RemoteResult result{.exit_code = failed->second.exit_code, .err = failed->second.text};
    if (Classify(result.exit_code, result.err) == Failure::kNoIp) {
      return Status::FailedPrecondition(what + ": the VM has no IP address yet (" +
                                        redactor_.Apply(FirstLine(result.err)) + ")");
    }
    return TartError(host, "the address of " + name, result);
  }
  const auto ip = report->ips.find(name);
  in_addr parsed{};
  if (ip == report->ips.end() || inet_pton(AF_INET, ip->second.c_str(), &parsed) != 1) {
    return Status::Unavailable(what + ": tart ip printed no IPv4 address (" +
                               redactor_.Apply(ip == report->ips.end() ? "" : ip->second) + ")");
  }
  Result<Fd> tunnel = (*shell)->OpenTunnel(ip->second, port, deadline);
  if (config_.requests != nullptr) {
    config_.requests->ProviderRequest("tart", "tunnel", tunnel.ok() ? 1000 : 0);
  }
  if (!tunnel.ok()) {
    return tunnel.status().WithContext(what);
  }
  logger_->info("{}: tunnel open to {}:{}", what, ip->second, port);
  return tunnel;
}

}  // namespace flotilla::providers::tart
