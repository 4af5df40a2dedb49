// bench/observe: observing a fleet of simulated Parallels hosts through the Parallels provider.
//
// Starts one flotilla-hostsim serving N hosts under path prefixes of one port, puts V VMs on
// every host (through the control API), then observes every host (hardware, VM list, cache:
// three authenticated requests each) with K threads, as the loop will each resync.
// Reports the median wall time of R rounds, the requests per second, and hostsim's memory.
// Which process is the bottleneck: every round also reports the CPU time hostsim (from
// /proc/PID/stat) and this client (getrusage) spent in it, and hostsim's thread count.
// Usage: bench_observe HOSTSIM_BIN [hosts=1000] [vms_per_host=10] [threads=32] [rounds=5]

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "providers/parallels/provider.h"
#include "tests/support/process.h"

namespace {

using namespace flotilla;
using providers::HostObservation;
using providers::HostRef;
using Steady = std::chrono::steady_clock;
using testing::RssKiB;

// CPU time (user + system, ms) and thread count of a process, from /proc/PID/stat.
struct ProcStat {
  double cpu_ms = 0;
  long threads = 0;
};
ProcStat ReadProcStat(pid_t pid) {
  // Field N is f[N - 3]: 14 utime, 15 stime ... 20 num_threads.
  const std::vector<std::string> f =
      testing::ProcStatFields("/proc/" + std::to_string(pid) + "/stat");
  if (f.size() < 18) {
    return {};
  }
  const double tick_ms = 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  return {.cpu_ms = (std::stod(f[11]) + std::stod(f[12])) * tick_ms, .threads = std::stol(f[17])};
}

// CPU time (user + system, ms) of this process.
double SelfCpuMs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1000.0 + static_cast<double>(t.tv_usec) / 1000.0;
  };
  return ms(u.ru_utime) + ms(u.ru_stime);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_observe HOSTSIM_BIN [hosts] [vms_per_host] [threads] [rounds]\n";
    return 1;
  }
  const std::string hostsim = argv[1];
  const int hosts = argc > 2 ? std::atoi(argv[2]) : 1000;
  const int vms_per_host = argc > 3 ? std::atoi(argv[3]) : 10;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 32;
  const int rounds = argc > 5 ? std::atoi(argv[5]) : 5;

  testing::ScratchDir dir;
  const std::string port_file = (dir.path() / "port").string();
  testing::Process sim({hostsim, "--listen", "127.0.0.1:0", "--port-file", port_file, "--hosts",
                        std::to_string(hosts), "--control", "--lookup-delay", "0s", "--api-key",
                        "BENCH:bench-secret", "--cpu", "1000", "--memory", "4Ti"});
  int port = 0;
  if (!testing::WaitUntil([&] {
        std::ifstream in(port_file);
        return static_cast<bool>(in >> port) && port > 0;
      })) {
    std::cerr << "hostsim did not start\n";
    return 1;
  }
  const std::string origin = "http://127.0.0.1:" + std::to_string(port);
  auto host_name = [](int i) {
    char name[16];
    std::snprintf(name, sizeof(name), "sim-%03d", i);
    return std::string(name);
  };

  // Seed the VMs.
  const auto seed_start = Steady::now();
  {
    httplib::Client control(origin);
    control.set_keep_alive(true);
    control.set_tcp_nodelay(true);
    for (int h = 0; h < hosts; ++h) {
      for (int v = 0; v < vms_per_host; ++v) {
        const std::string body =
            R"({"name":"vm-)" + std::to_string(v) +
            R"(","os":"linux","cpu":2,"memory_mb":4096,"disk_mb":65536,"state":")" +
            (v % 2 == 0 ? "running" : "stopped") + R"("})";
        auto r = control.Post("/_sim/hosts/" + host_name(h) + "/vms", body, "application/json");
        if (!r || r->status >= 300) {
          std::cerr << "seeding failed on " << host_name(h) << "\n";
          return 1;
        }
      }
    }
  }
  const double seed_s = std::chrono::duration<double>(Steady::now() - seed_start).count();

  HostPool pool;
  pool.meta.name = "bench";
  pool.credentials_ref = "hosts";
  providers::MapSecretSource secrets;
  secrets.Set("hosts", "apiKey", "QkVOQ0g6YmVuY2gtc2VjcmV0");  // base64("BENCH:bench-secret")
  SystemClock clock;
  auto logger = std::make_shared<spdlog::logger>("bench");
  logger->set_level(spdlog::level::off);
  providers::parallels::ParallelsProviderFactory factory;
  auto provider = static_cast<const providers::ProviderFactory&>(factory).Build(
      {.pool = pool, .secrets = secrets, .logger = logger, .clock = clock});
  if (!provider.ok()) {
    std::cerr << provider.status().ToString() << "\n";
    return 1;
  }

  std::vector<double> times;
  std::vector<double> sim_cpu;
  std::vector<double> client_cpu;
  std::vector<long> sim_threads;
  size_t vms_seen = 0;
  int failures = 0;
  for (int round = 0; round < rounds; ++round) {
    std::atomic<int> next{0};
    std::atomic<size_t> seen{0};
    std::atomic<int> failed{0};
    const ProcStat sim_before = ReadProcStat(sim.pid());
    const double client_before = SelfCpuMs();
    const auto start = Steady::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        for (int h = next++; h < hosts; h = next++) {
          const HostRef ref{.pool = "bench",
                            .name = host_name(h),
                            .address = origin + "/h/" + host_name(h) + "/api"};
          HostObservation o =
              (*provider)->Observe(ref, providers::DeadlineIn(std::chrono::seconds{30}));
          if (!o.status.ok()) {
            ++failed;
          }
          seen += o.vms.size();
        }
      });
    }
    for (auto& w : workers) {
      w.join();
    }
    times.push_back(std::chrono::duration<double, std::milli>(Steady::now() - start).count());
    const ProcStat sim_after = ReadProcStat(sim.pid());
    sim_cpu.push_back(sim_after.cpu_ms - sim_before.cpu_ms);
    client_cpu.push_back(SelfCpuMs() - client_before);
    sim_threads.push_back(sim_after.threads);
    vms_seen = seen;
    failures += failed;
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  std::cout << "hosts " << hosts << ", VMs " << vms_seen << ", threads " << threads << ", rounds "
            << rounds << "\n";
  std::cout << "seeding " << hosts * vms_per_host << " VMs: " << seed_s << " s\n";
  std::cout << "observe all hosts, per round (ms):";
  for (double t : times) {
    std::cout << " " << static_cast<long>(t);
  }
  auto print = [](const char* what, const auto& values) {
    std::cout << "\n" << what;
    for (auto v : values) {
      std::cout << " " << static_cast<long>(v);
    }
  };
  print("CPU time per round (ms), hostsim:", sim_cpu);
  print("CPU time per round (ms), client: ", client_cpu);
  print("hostsim threads after each round:", sim_threads);
  std::cout << "\nmedian " << median << " ms; " << (3.0 * hosts) / (median / 1000.0)
            << " requests/s; failures " << failures << "\n";
  std::cout << "hostsim RSS " << RssKiB(sim.pid()) / 1024 << " MiB\n";
  return failures == 0 ? 0 : 1;
}
