#pragma once

// What changes between prl-devops-service releases, as far as flotilla-hostsim reproduces it.
// Every flag names the first release that has the behaviour, read from the service's tags
// (github.com/Parallels/prl-devops-service; ../shared/reference/parallels-real-service-audit.md,
// "Differences between versions").

#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/result.h"

namespace flotilla::hostsim {

struct ServiceFeatures {
  // POST machines/async, GET jobs[/{id}], GET cache and catalog managers
  // (catalog_manifest.catalog_manager_id) arrive in 1.0.0: v0.9.21 has no controllers/jobs.go,
  // controllers/cache.go or controllers/catalog_managers.go, and no "/machines/async" route.
  bool async_create = false;
  // total_available.prl_home_free_size / prl_home_total_size and total_in_use.mac_vms_running:
  // 1.0.0 (parallelsdesktop/main.go:2875-2909 at v1.0.0; absent at v0.9.21).
  bool prl_home_disk = false;
  bool mac_vms_running = false;
  // Login by `username` or `api_key`: 1.0.1 (PR #477, commit 5bb90c4). Before, LoginRequest
  // has only `email` and `password`, and Validate() answers 400 "Email is required".
  bool login_username_and_api_key = false;
  // The stale-job reaper (data/jobs.go DetectStaleJobs, "Canceled Job"): 1.0.1.
  bool ghost_job_reaper = false;
  // The reverse proxy module (/reverse-proxy/* routes, TCP routes to VMs): 0.9.10 (PR #228,
  // commit cfae1ec, first in release-v0.9.10), so every version hostsim reproduces has it.
  bool reverse_proxy = false;
  // On a VM's start the proxy looks again at the routes to that VM 2 s later and restarts the
  // listeners whose target address changed (reverse_proxy/main.go Handle and checkVmIpChanged):
  // 1.0.0 (absent at v0.9.21).
  bool proxy_follows_vm_address = false;
  // State changes (start, stop, ...) are PUT from 1.0.5 (PR #527, commit 4dfbcc3); GET before.
  bool state_verbs_put = false;
};

// The versions hostsim can be: "0.9.21", "1.0.0" ... "1.0.6" (1.0.6 is the main branch after
// 1.0.5; nothing on Flotilla's paths changed). InvalidArgument for anything else.
Result<ServiceFeatures> FeaturesOf(std::string_view version);
const std::vector<std::string>& KnownVersions();

}  // namespace flotilla::hostsim
