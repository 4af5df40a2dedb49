#include "providers/hostsim/sim_version.h"

#include <algorithm>

namespace flotilla::hostsim {

const std::vector<std::string>& KnownVersions() {
  static const std::vector<std::string> kVersions = {"0.9.21", "1.0.0", "1.0.1", "1.0.2",
                                                     "1.0.3",  "1.0.4", "1.0.5", "1.0.6"};
  return kVersions;
}

Result<ServiceFeatures> FeaturesOf(std::string_view version) {
  const std::vector<std::string>& known = KnownVersions();
  auto it = std::find(known.begin(), known.end(), version);
  if (it == known.end()) {
    std::string list;
    for (const std::string& v : known) {
      list += (list.empty() ? "" : ", ") + v;
    }
    return Status::InvalidArgument("--version \"" + std::string(version) +
                                   "\" is not one hostsim reproduces (" + list + ")");
  }
  // The list is in release order: a feature is on from its first version.
  const auto at_least = [&](std::string_view first) {
    return it >= std::find(known.begin(), known.end(), first);
  };
  return ServiceFeatures{.async_create = at_least("1.0.0"),
                         .prl_home_disk = at_least("1.0.0"),
                         .mac_vms_running = at_least("1.0.0"),
                         .login_username_and_api_key = at_least("1.0.1"),
                         .ghost_job_reaper = at_least("1.0.1"),
                         .reverse_proxy = at_least("0.9.21"),
                         .proxy_follows_vm_address = at_least("1.0.0"),
                         .state_verbs_put = at_least("1.0.5")};
}

}  // namespace flotilla::hostsim
