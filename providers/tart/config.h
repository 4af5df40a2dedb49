#pragma once

// Typed configuration of provider tart for one HostPool, built once from the pool's settings
// and its secrets (ParseTartConfig) and trusted afterwards.

#include <chrono>
#include <string>
#include <vector>

#include "providers/registry.h"
#include "providers/tart/settings.h"
#include "reconciler/model/result.h"

namespace flotilla::providers::tart {

// Process-wide knobs; the defaults suit real hosts, tests shorten the waits.
struct TartTuning {
  // A started VM counts as started once `tart run` has lived this long with the VM running:
  // Tart takes the VM's lock (and `tart list` says running) before Virtualization has checked
  // the macOS VM limit, about a second later (tart-provider-design.md §2.4).
  std::chrono::milliseconds settle{std::chrono::seconds{5}};
  // How often a VM is looked at while a start or a stop settles, or a create is followed.
  std::chrono::milliseconds poll{std::chrono::milliseconds{500}};
  // `tart stop --timeout`: how long Tart waits after SIGINT before SIGKILL.
  int stop_timeout_seconds = 5;
  // After a host refuses a start for Apple's limit with fewer macOS VMs running than the limit
  // (its counter is stuck, tart#1217), no macOS VM is placed there for this long.
  std::chrono::milliseconds limit_cooldown{std::chrono::minutes{30}};
  std::string ssh_binary = "/usr/bin/ssh";
  // OpenTunnel: the longest `tart ip --wait` for a running VM's address (the call's deadline,
  // less a second for the tunnel itself, caps it).
  std::chrono::seconds tunnel_ip_wait{10};
};

struct TartConfig {
  std::string pool;  // for messages
  TartPoolSettings settings;
  std::string ssh_key;         // the private key (a secret)
  std::string ssh_passphrase;  // its passphrase, or empty (a secret)
  std::string known_hosts;     // known_hosts lines from the secret, when no file is named
  // TART_REGISTRY_USERNAME / _PASSWORD for pulls, or empty (secrets).
  std::string registry_username;
  std::string registry_password;
  TartTuning tuning;
  RequestObserver* requests = nullptr;  // told of every command (metrics); may be null
};

// Reads `<ref>/sshKey`, `<ref>/sshPassphrase`, `<ref>/knownHosts`, `<ref>/registryUsername`
// and `<ref>/registryPassword` for the pool's credentialsRef. Errors: no credentialsRef or no
// sshKey; no known_hosts (neither ssh.knownHostsFile nor `<ref>/knownHosts`) unless
// ssh.insecureIgnoreHostKey; a known_hosts file that cannot be read; a registry username
// without a password.
Result<TartConfig> ParseTartConfig(const ProviderContext& context, const TartTuning& tuning);

// Every secret value in `config`.
std::vector<std::string> SecretValues(const TartConfig& config);

}  // namespace flotilla::providers::tart
