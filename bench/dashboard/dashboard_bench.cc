// bench/dashboard: the web dashboard with a large fleet, in headless Chromium. H simulated hosts
// are spread over S flotilla-hostsim processes (tests/support/fleet_fixture.h, shards; idle
// connections closed after 1 s, as hostsim's idle keep-alive connections cost CPU), V VMs
// are put on every host through hostsim's control API (unmanaged: Flotilla observes them and
// leaves them alone; 4 in 5 running), and `flotilla run` observes them (every resync interval)
// with its API. Once the API lists every VM, the time of `GET /api/v1/vms` (the page's largest
// answer) is taken from C++ for reference, then `node bench/dashboard/dashboard.mjs` measures in
// Chromium the first render of /vms and the time to apply one live update (an out-of-band state
// change of one VM, seen at the loop's next observation), R times each; it prints the median
// and the max.
//
// Usage: dashboard_bench [hosts=1000] [vms_per_host=10] [shards=4] [repetitions=10]
//          [resync=10s]
// It uses the test fixture (GoogleTest, a real Git repository, flotilla-hostsim, the real
// flotilla) and the browser tests' playwright-core and Chromium (scripts/install-deps.sh); it is
// not part of the test suite.

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/api_loop.h"
#include "tests/support/fleet_fixture.h"
#include "tests/support/process.h"

namespace flotilla::testing {
namespace {

using Steady = std::chrono::steady_clock;

constexpr const char* kToken = "dashboard-bench-token";

struct Args {
  int hosts = 1000;
  int vms_per_host = 10;
  int shards = 4;
  int repetitions = 10;
  std::string resync = "10s";
};
Args& TheArgs() {
  static Args args;  // NOLINT: set once by main before the benchmark runs
  return args;
}

// VM j of host i: build-0042-3 (unique across the fleet, sorted by host).
std::string VmName(int host, int j) {
  char name[32];
  std::snprintf(name, sizeof name, "build-%04d-%d", host, j);
  return name;
}

// Puts `per_host` VMs on every host through the control API (one keep-alive client per shard).
bool Seed(FleetFixture& fx, int hosts, int per_host) {
  for (int i = 0; i < hosts; ++i) {
    httplib::Client control(fx.SimOf(i).origin());
    control.set_keep_alive(true);
    control.set_tcp_nodelay(true);
    for (int j = 0; j < per_host; ++j) {
      const nlohmann::json body = {
          {"name", VmName(i, j)},   {"os", "linux"},
          {"cpu", 2 + (j % 3) * 2}, {"memory_mb", 4096},
          {"disk_mb", 65536},       {"state", j % 5 == 4 ? "stopped" : "running"}};
      auto r =
          control.Post("/_sim/hosts/" + fx.SimName(i) + "/vms", body.dump(), "application/json");
      if (!r || r->status >= 300) {
        std::cerr << "seeding " << VmName(i, j) << " failed\n";
        return false;
      }
    }
  }
  return true;
}

double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

TEST(DashboardBench, FirstRenderAndLiveUpdate) {
  const Args& args = TheArgs();
  const auto setup = Steady::now();
  FleetFixture fx(FleetOptions{
      .hosts = args.hosts,
      .shards = args.shards,
      .sim_flags = {"--cpu", "1000", "--memory", "4Ti", "--keep-alive", "1s"},
      .max_vms = 64,
      .config_extra = "api: {listen: \"127.0.0.1:0\", tokenEnv: FLOTILLA_BENCH_TOKEN}\n",
      .source_interval = "60s",
      .resync_interval = args.resync});
  ASSERT_TRUE(fx.ready());
  ASSERT_TRUE(Seed(fx, args.hosts, args.vms_per_host));
  std::printf("%d hosts over %d hostsim processes, %d VMs seeded in %.1f s\n", args.hosts,
              args.shards, args.hosts * args.vms_per_host, Seconds(setup));
  fx.Commit("the pool");

  const auto start = Steady::now();
  ApiLoop loop(fx, kToken, "FLOTILLA_BENCH_TOKEN");
  ASSERT_TRUE(loop.ok()) << fx.LoopLog();
  const size_t expected = static_cast<size_t>(args.hosts) * args.vms_per_host;
  ASSERT_TRUE(WaitUntil(
      [&] {
        httplib::Result r = loop.Get("/api/v1/vms");
        if (!r || r->status != 200) {
          return false;
        }
        const nlohmann::json vms = nlohmann::json::parse(r->body, nullptr, false);
        return vms.is_object() && vms["vms"].size() == expected;
      },
      std::chrono::minutes(5)))
      << fx.LoopLog();
  std::printf("flotilla run (resync %s): every VM listed by the API %.1f s after the start\n",
              args.resync.c_str(), Seconds(start));
  for (int i = 0; i < 3; ++i) {
    const auto get = Steady::now();
    httplib::Result r = loop.Get("/api/v1/vms");
    std::printf("GET /api/v1/vms (C++, no compression): %d, %.1f MB in %.0f ms\n",
                r ? r->status : 0, r ? static_cast<double>(r->body.size()) / 1e6 : 0.0,
                Seconds(get) * 1000);
  }

  const std::string command =
      "env FLOTILLA_URL=" + loop.url() + " FLOTILLA_TOKEN=" + kToken +
      " BENCH_HOSTS=" + std::to_string(args.hosts) + " BENCH_VMS=" + std::to_string(expected) +
      " BENCH_VM=" + VmName(0, 0) + " BENCH_VM_HOST_URL=" + fx.SimOf(0).origin() + "/_sim/hosts/" +
      fx.SimName(0) + " BENCH_REPS=" + std::to_string(args.repetitions) + " node " +
      Quote(fs::path(FLOTILLA_SOURCE_DIR) / "bench/dashboard/dashboard.mjs");
  std::fflush(stdout);
  EXPECT_EQ(RunShell(command), 0) << "dashboard.mjs failed; flotilla run's log:\n" << fx.LoopLog();
}

}  // namespace
}  // namespace flotilla::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  flotilla::testing::Args& args = flotilla::testing::TheArgs();
  int* const targets[] = {&args.hosts, &args.vms_per_host, &args.shards, &args.repetitions};
  for (int i = 1; i < argc && i <= 4; ++i) {
    *targets[i - 1] = std::atoi(argv[i]);
  }
  if (argc > 5) {
    args.resync = argv[5];
  }
  return RUN_ALL_TESTS();
}
