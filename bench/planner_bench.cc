// bench/planner: ComputePlan for 1,000 hosts and 10,000 desired VMs (or any multiple of 100
// hosts, in the same mix: 10,000 hosts are 100 such pools and 100,000 desired VMs).
//
// Pools of 100 hosts (10 for 1,000 hosts); each pool has 10 VMSets of 100 replicas (one macOS set,
// nine Linux). 70% of the desired VMs exist (30% to create); 10% of the desired VMs exist with an
// outdated template (Rolling, maxUnavailable 50, so each set may replace 20 while 30 are being
// created); 5 more managed VMs per set are beyond its replicas (prune on, 5% to delete, within a
// raised max_deletions: 100 per pool). Unmanaged VMs sit on every tenth host. Reports the median
// and p95 plan time over R runs, the peak RSS once the inputs are built and the process's peak RSS
// at the end (getrusage ru_maxrss), and a digest of the whole plan (the same inputs must give the
// same digest before and after a change to the planner). Usage: bench_planner [runs=30]
// [hosts=1000]

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "reconciler/model/digest.h"
#include "reconciler/model/normalize.h"
#include "reconciler/model/template_hash.h"
#include "reconciler/planner/planner.h"
#include "tests/support/fleet_values.h"
#include "tests/support/plan_text.h"

namespace {

using namespace flotilla;
using testing::kGi;

std::string Name(const char* prefix, int i) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%s-%03d", prefix, i);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 30;
  const int host_count = argc > 2 ? std::atoi(argv[2]) : 1000;
  if (runs < 1 || host_count < 100 || host_count % 100 != 0) {
    std::cerr << "usage: bench_planner [runs=30] [hosts=1000, a multiple of 100]\n";
    return 2;
  }
  const int pools = host_count / 100;
  const auto now = std::chrono::system_clock::now();
  Desired desired;
  Observed observed;
  Ledger ledger;
  size_t existing = 0;
  size_t outdated = 0;
  size_t extra = 0;
  for (int p = 0; p < pools; ++p) {
    HostPool pool;
    pool.meta.name = Name("pool", p);
    pool.defaults.max_vms = 20;
    std::vector<std::string> hosts;
    for (int h = 0; h < 100; ++h) {
      const std::string host = pool.meta.name + "-" + Name("h", h);
      hosts.push_back(host);
      pool.hosts.push_back(testing::Host(host));
      ObservedHost& o = observed.hosts[host];
      o = testing::Online(host, pool.meta.name,
                          {.cpu = 64, .memory_gi = 512, .disk_gi = 8000, .free_disk_gi = 7000},
                          now);
      if (h % 10 == 0) {
        o.vms.push_back(VmInfo{.id = "u",
                               .name = "unmanaged-" + host,
                               .state = VmState::kRunning,
                               .os = GuestOs::kLinux,
                               .cpu = 2,
                               .memory_bytes = 4 * kGi});
      }
    }
    desired.pools.push_back(pool);
    int next_host = 0;
    for (int s = 0; s < 10; ++s) {
      VMSet set;
      set.meta.name = pool.meta.name + "-" + Name("set", s);
      set.pool = pool.meta.name;
      set.replicas = 100;
      set.prune = true;
      set.update_strategy.max_unavailable = 50;
      set.templ = testing::Template("catalog://IMG/" + std::to_string(s),
                                    s == 0 ? GuestOs::kMacos : GuestOs::kLinux, 2, 4, 40);
      const std::string hash = TemplateHash(set.templ);
      // 70 of 100 exist, 7 of them outdated; 5 more beyond the replicas.
      for (uint32_t i = 0; i < 105; ++i) {
        if (i >= 70 && i < 100) {
          continue;
        }
        const std::string vm = set.VMName(i);
        const std::string& host = hosts[static_cast<size_t>(next_host++ % 100)];
        observed.hosts[host].vms.push_back(
            VmInfo{.id = "id-" + vm,
                   .name = vm,
                   .state = s == 0 && i >= 2 ? VmState::kStopped : VmState::kRunning,
                   .os = set.templ.os,
                   .cpu = 2,
                   .memory_bytes = 4 * kGi,
                   .disk_bytes = 40 * kGi});
        const bool old = i < 70 && i % 7 == 3;
        ledger.entries.push_back(LedgerEntry{.vm = vm,
                                             .vmset = set.meta.name,
                                             .pool = pool.meta.name,
                                             .host = host,
                                             .provider_id = "id-" + vm,
                                             .template_hash = old ? "v1-old" : hash});
        existing += i < 100 ? 1 : 0;
        outdated += old && i < 100 ? 1 : 0;
        extra += i >= 100 ? 1 : 0;
      }
      if (s == 0) {
        set.templ.state = PowerState::kStopped;  // 100 macOS VMs per pool cannot all run
      }
      desired.sets.push_back(set);
    }
  }
  Normalize(desired);
  for (auto& [name, host] : observed.hosts) {
    std::sort(host.vms.begin(), host.vms.end(),
              [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
  }
  planner::PlannerOptions options;
  options.max_deletions = static_cast<uint32_t>(100 * pools);
  rusage inputs_usage{};
  getrusage(RUSAGE_SELF, &inputs_usage);

  // The process's CPU time, in ms: on a loaded machine it is steadier than the wall clock.
  const auto cpu_ms = [] {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
  };
  std::vector<double> times;
  std::vector<double> cpu_times;
  Plan plan;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_ms();
    plan = planner::ComputePlan(desired, observed, ledger, options, now);
    cpu_times.push_back(cpu_ms() - cpu_start);
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(times.begin(), times.end());
  std::sort(cpu_times.begin(), cpu_times.end());
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::cout << "hosts " << observed.hosts.size() << ", desired VMs " << desired.DesiredVMCount()
            << ", existing " << existing << " (outdated " << outdated << "), extra " << extra
            << "\n";
  std::cout << "plan: " << plan.Count(ActionKind::kCreate) << " create, "
            << plan.Count(ActionKind::kReplace) << " replace, " << plan.Count(ActionKind::kStart)
            << " start, " << plan.Count(ActionKind::kStop) << " stop, "
            << plan.Count(ActionKind::kDelete) << " delete; " << plan.findings.size()
            << " findings; sha256 " << Sha256Hex(testing::PlanText(plan)) << "\n";
  std::cout << "runs " << runs << ": median " << times[times.size() / 2] << " ms, p95 "
            << times[std::min(times.size() - 1, times.size() * 95 / 100)] << " ms, max "
            << times.back() << " ms; CPU time median " << cpu_times[cpu_times.size() / 2]
            << " ms\n";
  std::cout << "peak RSS " << usage.ru_maxrss / 1024 << " MiB (" << inputs_usage.ru_maxrss / 1024
            << " MiB once the inputs were built)\n";
  return 0;
}
