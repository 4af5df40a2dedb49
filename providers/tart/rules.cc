#include "providers/tart/rules.h"

#include <algorithm>

#include "providers/tart/embedded.h"
#include "providers/tart/settings.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::tart {
namespace {

// Where in the pool a ParsePoolSettings error belongs: its message starts with the setting
// ("ssh.connectTimeout must be ...").
std::string SettingPointer(const std::string& message) {
  std::string setting = message.substr(0, message.find(' '));
  if (setting.find('.') == std::string::npos) {
    return "/spec";
  }
  std::replace(setting.begin(), setting.end(), '.', '/');
  return "/spec/" + setting;
}

}  // namespace

std::string_view TartRules::settings_schema() const {
  return embedded::Find("pool_settings.v1.json");
}

void TartRules::CheckPool(const HostPool& pool, std::vector<PoolProblem>& problems) const {
  if (pool.credentials_ref.empty()) {
    problems.push_back(PoolProblem{
        .pointer = "/spec",
        .at_key = true,
        .message = "pool \"" + pool.meta.name +
                   "\" uses provider tart, which needs spec.credentialsRef (the secret with the "
                   "SSH private key, sshKey; optionally sshPassphrase, knownHosts "
                   "and registryUsername with registryPassword)"});
  }
  Result<TartPoolSettings> settings = ParsePoolSettings(pool.settings);
  if (!settings.ok()) {
    problems.push_back(PoolProblem{.pointer = SettingPointer(settings.status().message()),
                                   .message = settings.status().message()});
  } else if (settings->insecure_ignore_host_key) {
    problems.push_back(PoolProblem{
        .severity = PoolProblem::Severity::kWarning,
        .pointer = "/spec/ssh/insecureIgnoreHostKey",
        .message = "pool \"" + pool.meta.name +
                   "\" sets ssh.insecureIgnoreHostKey: host keys are NOT checked, so whoever can "
                   "intercept the connection to a host can pose as it and receive Flotilla's "
                   "commands and the registry and guest credentials sent with them; pin the keys "
                   "with ssh.knownHostsFile or the secret's knownHosts instead"});
  }
  for (const HostSpec& host : pool.hosts) {
    Result<SshAddress> address = ParseSshAddress(host.address);
    if (!address.ok()) {
      problems.push_back(PoolProblem{.host = host.name,
                                     .pointer = "/address",
                                     .message = "address " + AddressForMessages(host.address) +
                                                " must be ssh://USER@HOST[:PORT] or USER@HOST "
                                                "for provider tart: " +
                                                address.status().message()});
    }
  }
}

std::string TartRules::CheckImage(std::string_view image) const {
  Result<ImageRef> ref = ParseImage(image);
  if (ref.ok()) {
    return "";
  }
  return "must be oci://REGISTRY/REPO[:TAG|@sha256:DIGEST] (an image in an OCI registry) or "
         "vm://NAME (a Tart VM on the host, cloned) for provider tart: " +
         ref.status().message();
}

std::string TartRules::ImageCacheKey(std::string_view image) const {
  return tart::ImageCacheKey(image);
}

}  // namespace flotilla::providers::tart
