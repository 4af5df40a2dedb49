#include "providers/tart/config.h"

#include <fstream>

namespace flotilla::providers::tart {

Result<TartConfig> ParseTartConfig(const ProviderContext& context, const TartTuning& tuning) {
  const HostPool& pool = context.pool;
  Result<TartPoolSettings> settings = ParsePoolSettings(pool.settings);
  if (!settings.ok()) {
    return settings.status();
  }
  TartConfig config{.pool = pool.meta.name,
                    .settings = std::move(*settings),
                    .tuning = tuning,
                    .requests = context.requests};
  if (pool.credentials_ref.empty()) {
    return Status::InvalidArgument(
        "provider tart needs spec.credentialsRef: the secret with the hosts' SSH key (sshKey)");
  }
  const std::string& ref = pool.credentials_ref;
  for (auto [field, key] :
       {std::pair{&config.ssh_key, "sshKey"}, std::pair{&config.ssh_passphrase, "sshPassphrase"},
        std::pair{&config.known_hosts, "knownHosts"},
        std::pair{&config.registry_username, "registryUsername"},
        std::pair{&config.registry_password, "registryPassword"}}) {
    Result<std::string> value = ReadSecretOrEmpty(context.secrets, ref, key);
    if (!value.ok()) {
      return value.status();
    }
    *field = std::move(*value);
  }
  if (config.ssh_key.empty()) {
    return Status::InvalidArgument("credentialsRef " + ref +
                                   " has no sshKey (the private key Flotilla logs in with)");
  }
  if (!config.ssh_key.ends_with('\n')) {
    config.ssh_key += '\n';  // ssh refuses a key file without its final newline
  }
  if (!config.registry_username.empty() && config.registry_password.empty()) {
    return Status::InvalidArgument("credentialsRef " + ref +
                                   " has registryUsername but no registryPassword");
  }
  if (!config.settings.known_hosts_file.empty()) {
    std::ifstream file(config.settings.known_hosts_file);
    if (!file) {
      return Status::InvalidArgument("ssh.knownHostsFile " + config.settings.known_hosts_file +
                                     " cannot be read");
    }
  } else if (config.known_hosts.empty() && !config.settings.insecure_ignore_host_key) {
    return Status::InvalidArgument(
        "provider tart needs the hosts' SSH keys: set ssh.knownHostsFile, or knownHosts in "
        "credentialsRef " +
        ref + " (or, knowingly, ssh.insecureIgnoreHostKey: true)");
  }
  if (config.settings.insecure_ignore_host_key) {
    context.logger->warn(
        "pool {}: ssh.insecureIgnoreHostKey is set: the hosts' SSH keys are NOT checked, so "
        "anyone who can intercept the connection can pose as a host and receive commands",
        pool.meta.name);
  }
  return config;
}

std::vector<std::string> SecretValues(const TartConfig& config) {
  std::vector<std::string> values;
  for (const std::string* value : {&config.ssh_key, &config.ssh_passphrase,
                                   &config.registry_username, &config.registry_password}) {
    if (!value->empty()) {
      values.push_back(*value);
    }
  }
  return values;
}

}  // namespace flotilla::providers::tart
