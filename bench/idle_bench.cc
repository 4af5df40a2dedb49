// bench/idle: the CPU that `flotilla run` uses while the fleet is converged.
//
// A flotilla-hostsim serves H hosts (no simulated latency), a Git repository holds one HostPool
// and VMSets totalling N VMs (desired running), and `flotilla apply --yes` converges them.
// Then, for every resync interval given, `flotilla run` starts (source.interval 60s, the
// default) on the same state directory; once it has observed every host once (its first pass,
// seen in hostsim's request counters) its CPU time (utime + stime of /proc/<pid>/stat, all
// threads) is read, and again after the measuring window. Reported: CPU as % of one core over
// the window, the requests it made, its resident memory, and any action it logged (none
// expected: the fleet is converged).
//
// Usage: idle_bench FLOTILLA_BIN HOSTSIM_BIN [seconds=60] [hosts=10] [vms=20]
//          [resync_intervals=30s,5s]

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using flotilla::testing::Process;
using flotilla::testing::RssKiB;
using flotilla::testing::RunShell;
using flotilla::testing::ScratchDir;
using flotilla::testing::SpawnLogged;
using flotilla::testing::WaitUntil;
using nlohmann::json;

constexpr const char* kApiKey = "BENCH:bench-secret";
constexpr const char* kApiKeyBase64 = "QkVOQ0g6YmVuY2gtc2VjcmV0";  // base64(kApiKey)

std::string HostName(int i) {
  char name[16];
  std::snprintf(name, sizeof name, "sim-%03d", i);
  return name;
}

// utime + stime of a process (all its threads), in clock ticks; -1 if unreadable.
long CpuTicks(pid_t pid) {
  // utime and stime are fields 14 and 15.
  const std::vector<std::string> f =
      flotilla::testing::ProcStatFields("/proc/" + std::to_string(pid) + "/stat");
  return f.size() < 13 ? -1 : std::stol(f[11]) + std::stol(f[12]);
}

// Calls per endpoint over all hosts, and the fewest `cache` calls of any host (the last
// request of an observation).
struct Counters {
  std::map<std::string, long> calls;
  long min_cache = 0;
  long total = 0;
};

Counters ReadCounters(httplib::Client& control, int hosts) {
  Counters c;
  auto r = control.Get("/_sim/counters");
  if (!r || r->status != 200) {
    return c;
  }
  const json counters = json::parse(r->body, nullptr, false);
  c.min_cache = -1;
  for (int h = 0; h < hosts; ++h) {
    long cache = 0;
    if (counters.contains(HostName(h))) {
      for (const auto& [endpoint, counts] : counters[HostName(h)].items()) {
        const long n = counts.value("calls", 0L);
        c.calls[endpoint] += n;
        c.total += n;
        if (endpoint == "cache") {
          cache = n;
        }
      }
    }
    c.min_cache = c.min_cache < 0 ? cache : std::min(c.min_cache, cache);
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: idle_bench FLOTILLA_BIN HOSTSIM_BIN [seconds] [hosts] [vms] "
                 "[resync_intervals]\n";
    return 1;
  }
  const std::string flotilla = argv[1];
  const std::string hostsim = argv[2];
  const int seconds = argc > 3 ? std::atoi(argv[3]) : 60;
  const int hosts = argc > 4 ? std::atoi(argv[4]) : 10;
  const int vms = argc > 5 ? std::atoi(argv[5]) : 20;
  std::vector<std::string> resyncs;
  {
    std::stringstream list(argc > 6 ? argv[6] : "30s,5s");
    for (std::string item; std::getline(list, item, ',');) {
      resyncs.push_back(item);
    }
  }
  const int max_vms = (vms + hosts - 1) / hosts;

  ScratchDir scratch;
  const fs::path dir = scratch.path();
  const fs::path port_file = dir / "port";
  Process sim({hostsim, "--listen", "127.0.0.1:0", "--port-file", port_file.string(), "--hosts",
               std::to_string(hosts), "--control", "--lookup-delay", "0s", "--api-key", kApiKey,
               "--cpu", "64", "--memory", "256Gi", "--cached", "LINUX/v1"});
  int port = 0;
  if (!WaitUntil([&] {
        std::ifstream in(port_file);
        return static_cast<bool>(in >> port) && port > 0;
      })) {
    std::cerr << "hostsim did not start\n";
    return 1;
  }
  const std::string origin = "http://127.0.0.1:" + std::to_string(port);
  httplib::Client control(origin);
  control.set_keep_alive(true);

  const fs::path repo = dir / "fleet";
  fs::create_directories(repo);
  fs::create_directories(dir / "secrets/sims");
  fs::create_directories(dir / "secrets/catalog");
  std::ofstream(dir / "secrets/sims/apiKey") << kApiKeyBase64 << "\n";
  std::ofstream(dir / "secrets/catalog/connection") << "host=reader:pw@catalog.example:443\n";
  {
    std::ofstream pool(repo / "pool.yaml");
    pool << "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: sims}\nspec:\n"
            "  credentialsRef: sims\n  catalog: {connectionRef: catalog}\n"
            "  defaults: {maxVMs: "
         << max_vms << "}\n  hosts:\n";
    for (int h = 0; h < hosts; ++h) {
      pool << "    - {name: " << HostName(h) << ", address: \"" << origin << "/h/" << HostName(h)
           << "/api\"}\n";
    }
    std::ofstream(repo / "set.yaml")
        << "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: idle}\nspec:\n"
           "  pool: sims\n  replicas: "
        << vms
        << "\n  template: {image: \"catalog://LINUX/v1\", os: linux, arch: arm64, cpu: 2, "
           "memory: 2Gi, state: running}\n";
  }
  if (RunShell("git -C " + repo.string() + " init -q -b main && git -C " + repo.string() +
               " add -A && git -C " + repo.string() +
               " -c user.email=b@example.com -c user.name=bench commit -q -m fleet") != 0) {
    std::cerr << "cannot create the fleet repository\n";
    return 1;
  }
  const fs::path config = dir / "flotilla.yaml";
  auto write_config = [&](const std::string& resync) {
    std::ofstream(config) << "source: {url: \"" << repo.string()
                          << "\", branch: main, interval: 60s}\n"
                          << "stateDir: \"" << (dir / "state").string() << "\"\n"
                          << "secretsDir: \"" << (dir / "secrets").string() << "\"\n"
                          << "api: {listen: \"127.0.0.1:0\"}\n"
                          << "reconcile:\n  resyncInterval: " << resync << "\n";
  };

  // Converge first.
  write_config("30s");
  {
    const pid_t pid = SpawnLogged({flotilla, "apply", "--yes", "--config", config.string()},
                                  dir / "apply.out", dir / "apply.err");
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::cerr << "apply failed:\n";
      RunShell("tail -20 " + (dir / "apply.err").string() + " >&2");
      return 1;
    }
  }
  std::cout << "fleet: " << hosts << " hosts, " << vms
            << " VMs (desired running), converged by flotilla apply\n"
            << "window: " << seconds << " s after the loop's first pass; source.interval 60s\n";

  const long ticks_per_s = sysconf(_SC_CLK_TCK);
  bool ok = true;
  for (const std::string& resync : resyncs) {
    write_config(resync);
    control.Post("/_sim/counters/reset", "", "application/json");
    const fs::path err = dir / ("run-" + resync + ".err");
    const auto spawned = std::chrono::steady_clock::now();
    const pid_t pid = SpawnLogged({flotilla, "run", "--config", config.string()},
                                  dir / ("run-" + resync + ".out"), err);
    if (pid <= 0) {
      std::cerr << "cannot start " << flotilla << "\n";
      return 1;
    }
    // Ready: every host observed once, and a moment for the plan.
    const bool ready = WaitUntil([&] { return ReadCounters(control, hosts).min_cache >= 1; },
                                 std::chrono::seconds(60));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const double startup_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - spawned).count();
    const long startup_ticks = CpuTicks(pid);
    const Counters before = ReadCounters(control, hosts);
    size_t log_before = 0;
    {
      std::ifstream in(err);
      for (std::string line; std::getline(in, line);) {
        ++log_before;
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    const long ticks0 = CpuTicks(pid);
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    const long ticks1 = CpuTicks(pid);
    const double window =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const long rss = RssKiB(pid);
    const Counters after = ReadCounters(control, hosts);
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    std::vector<std::string> new_lines;
    {
      std::ifstream in(err);
      size_t n = 0;
      for (std::string line; std::getline(in, line); ++n) {
        if (n >= log_before) {
          new_lines.push_back(line);
        }
      }
    }
    int action_lines = 0;
    for (const std::string& line : new_lines) {
      action_lines += line.find("] create ") != std::string::npos ||
                              line.find("] start ") != std::string::npos ||
                              line.find("] stop ") != std::string::npos ||
                              line.find("] delete ") != std::string::npos ||
                              line.find("] replace ") != std::string::npos
                          ? 1
                          : 0;
    }
    const double cpu_s = static_cast<double>(ticks1 - ticks0) / static_cast<double>(ticks_per_s);
    const double percent = 100.0 * cpu_s / window;
    const long requests = after.total - before.total;
    ok = ok && ready && ticks0 >= 0 && ticks1 >= 0 && action_lines == 0;
    std::cout << "\nresyncInterval " << resync << (ready ? "" : " (first pass NOT seen)") << ":\n"
              << "  start-up to first pass: " << startup_s << " s, "
              << static_cast<double>(startup_ticks) / static_cast<double>(ticks_per_s) << " s CPU\n"
              << "  window " << window << " s: CPU " << cpu_s << " s = " << percent
              << " % of one core (target < 1 %)\n"
              << "  observations in the window: " << after.min_cache - before.min_cache
              << " per host; requests " << requests << " (";
    for (const auto& [endpoint, n] : after.calls) {
      const long b = before.calls.contains(endpoint) ? before.calls.at(endpoint) : 0;
      if (n - b > 0) {
        std::cout << endpoint << "=" << n - b << " ";
      }
    }
    std::cout << "); log lines " << new_lines.size() << ", actions " << action_lines << "\n"
              << "  RSS " << rss / 1024 << " MiB; exit "
              << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << "\n"
              << std::flush;
  }
  return ok ? 0 : 1;
}
