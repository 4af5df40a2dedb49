// bench/converge: `flotilla apply --yes` converging a fleet of simulated hosts, against the
// critical path that the simulated latencies and the executor's concurrency limits allow.
//
// For every concurrency given, a fresh flotilla-hostsim serves H hosts (sim-000, ...) with fixed
// simulated latencies, a fresh Git repository holds one HostPool of the H hosts (maxVMs = V)
// and VMSets of 100 replicas totalling H*V VMs (desired running: every VM is a create and then
// a start that depends on it), and `flotilla apply --yes` runs as a child process. Measured:
// wall clock from spawn to exit, and the span from the first action started to the last one
// finished, read from the log's millisecond timestamps.
//
// The lower bound for the actions (the "critical path") follows from the latency model:
//   per VM      c = create + start, where create is the provider's calls with latency
//               (clone: list + clone + set + rename; catalog: list + job + rename)
//   per host    max(V*c / perHostConcurrency, c)
//   global      H*V*c / concurrency
//   bound       max(per host, global)
// A sequential one-VM-at-a-time baseline is computed (H*V*c) and, if asked, also measured:
// concurrency 1 on a fleet of one host with S VMs, extrapolated per VM to H*V.
//
// Images: `clone` (vm://golden, a stopped template VM seeded on every host; the clone call is
// synchronous) or `catalog` (catalog://LINUX/v1, cached on every host; the create is an
// asynchronous job that the provider polls every quarter of its age, 250 ms to 10 s).
//
// Usage: converge_bench FLOTILLA_BIN HOSTSIM_BIN [hosts=100] [vms_per_host=10]
//          [concurrencies=32,200] [image=clone] [sequential_vms=10] [latency=...]
//   latency: hostsim's --latency spec; default
//   list=100ms,clone=2s,set=200ms,rename=200ms,start=1s,create=2s

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using flotilla::testing::Process;
using flotilla::testing::RunShell;
using flotilla::testing::ScratchDir;
using flotilla::testing::SpawnLogged;
using flotilla::testing::WaitUntil;
using nlohmann::json;

constexpr const char* kApiKey = "BENCH:bench-secret";
constexpr const char* kApiKeyBase64 = "QkVOQ0g6YmVuY2gtc2VjcmV0";  // base64(kApiKey)
constexpr int kSetSize = 100;                                      // replicas per VMSet

std::string HostName(int i) {
  char name[16];
  std::snprintf(name, sizeof name, "sim-%03d", i);
  return name;
}

// "250ms", "2s", "1.5s" -> seconds.
double ParseSeconds(const std::string& text) {
  if (text.size() > 2 && text.ends_with("ms")) {
    return std::stod(text.substr(0, text.size() - 2)) / 1000.0;
  }
  if (!text.empty() && text.back() == 's') {
    return std::stod(text.substr(0, text.size() - 1));
  }
  return std::stod(text);
}

std::map<std::string, double> ParseLatency(const std::string& spec) {
  std::map<std::string, double> out;
  std::stringstream items(spec);
  for (std::string item; std::getline(items, item, ',');) {
    const size_t eq = item.find('=');
    if (eq != std::string::npos) {
      out[item.substr(0, eq)] = ParseSeconds(item.substr(eq + 1));
    }
  }
  return out;
}

// "2024-05-01T12:00:00.123Z ..." -> milliseconds since the epoch; nullopt if not a log line.
std::optional<int64_t> LogTimeMs(const std::string& line) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(line.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Setup {
  int hosts = 100;
  int vms_per_host = 10;
  int concurrency = 32;
  int per_host = 2;
  std::string image = "clone";
  std::string latency;
  std::string durability;  // the config's store.durability; empty: the default
};

struct Outcome {
  bool ok = false;
  int exit_code = -1;
  double wall_s = 0;       // spawn to exit
  double to_first_s = 0;   // spawn to the first action started (load, fetch, observe, plan)
  double span_s = 0;       // first action started to last action finished
  int actions_logged = 0;  // "succeeded" lines
  int vms_running = 0;     // on the hosts afterwards, named like ours
  std::map<std::string, long> calls;  // per endpoint, all hosts
  std::string summary;                // flotilla's "Apply complete ..." line
};

// One fresh fleet (hostsim, repository, secrets, configuration) and one `flotilla apply --yes`.
Outcome Converge(const std::string& flotilla, const std::string& hostsim, const Setup& s) {
  Outcome outcome;
  ScratchDir scratch;
  const fs::path dir = scratch.path();
  const fs::path port_file = dir / "port";
  // Real hosts are separate machines; one simulator process needs a thread for every keep-alive
  // connection (the provider keeps up to a few per host), so give it enough.
  const int threads = 64 + 4 * s.hosts;
  std::vector<std::string> sim_argv = {hostsim,
                                       "--listen",
                                       "127.0.0.1:0",
                                       "--port-file",
                                       port_file,
                                       "--hosts",
                                       std::to_string(s.hosts),
                                       "--control",
                                       "--lookup-delay",
                                       "0s",
                                       "--api-key",
                                       kApiKey,
                                       "--cpu",
                                       "64",
                                       "--memory",
                                       "256Gi",
                                       "--threads",
                                       std::to_string(threads),
                                       "--latency",
                                       s.latency};
  if (s.image == "catalog") {
    sim_argv.insert(sim_argv.end(), {"--cached", "LINUX/v1"});
  }
  Process sim(sim_argv);
  int port = 0;
  if (!WaitUntil([&] {
        std::ifstream in(port_file);
        return static_cast<bool>(in >> port) && port > 0;
      })) {
    std::cerr << "hostsim did not start\n";
    return outcome;
  }
  const std::string origin = "http://127.0.0.1:" + std::to_string(port);
  httplib::Client control(origin);
  control.set_keep_alive(true);
  control.set_tcp_nodelay(true);
  control.set_read_timeout(std::chrono::seconds(60));
  if (s.image == "clone") {
    for (int h = 0; h < s.hosts; ++h) {
      auto r = control.Post(
          "/_sim/hosts/" + HostName(h) + "/vms",
          R"({"name":"golden","os":"linux","cpu":2,"memory_mb":2048,"disk_mb":20480,"state":"stopped"})",
          "application/json");
      if (!r || r->status >= 300) {
        std::cerr << "seeding the template VM failed on " << HostName(h) << "\n";
        return outcome;
      }
    }
  }

  // Repository, secrets, configuration.
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
         << s.vms_per_host << "}\n  hosts:\n";
    for (int h = 0; h < s.hosts; ++h) {
      pool << "    - {name: " << HostName(h) << ", address: \"" << origin << "/h/" << HostName(h)
           << "/api\"}\n";
    }
  }
  const std::string image = s.image == "clone" ? "vm://golden" : "catalog://LINUX/v1";
  const int total = s.hosts * s.vms_per_host;
  for (int set = 0, left = total; left > 0; ++set, left -= kSetSize) {
    char name[16];
    std::snprintf(name, sizeof name, "set-%02d", set);
    std::ofstream(repo / (std::string(name) + ".yaml"))
        << "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: " << name
        << "}\nspec:\n  pool: sims\n  replicas: " << std::min(left, kSetSize)
        << "\n  template: {image: \"" << image
        << "\", os: linux, arch: arm64, cpu: 2, memory: 2Gi, state: running}\n";
  }
  if (RunShell("git -C " + repo.string() + " init -q -b main && git -C " + repo.string() +
               " add -A && git -C " + repo.string() +
               " -c user.email=b@example.com -c user.name=bench commit -q -m fleet") != 0) {
    std::cerr << "cannot create the fleet repository\n";
    return outcome;
  }
  const fs::path config = dir / "flotilla.yaml";
  std::ofstream(config) << "source: {url: \"" << repo.string()
                        << "\", branch: main, interval: 60s}\n"
                        << "stateDir: \"" << (dir / "state").string() << "\"\n"
                        << "secretsDir: \"" << (dir / "secrets").string() << "\"\n"
                        << "reconcile:\n  resyncInterval: 30s\n  hostTimeout: 30s\n"
                        << "  concurrency: " << s.concurrency << "\n"
                        << "  perHostConcurrency: " << s.per_host << "\n";
  if (!s.durability.empty()) {
    std::ofstream(config, std::ios::app) << "store: {durability: " << s.durability << "}\n";
  }

  // The apply.
  const fs::path out = dir / "apply.out";
  const fs::path err = dir / "apply.err";
  const int64_t spawned_ms = NowMs();
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid =
      SpawnLogged({flotilla, "apply", "--yes", "--config", config.string()}, out, err);
  if (pid <= 0) {
    std::cerr << "cannot start " << flotilla << "\n";
    return outcome;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  outcome.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

  std::ifstream log(err);
  std::optional<int64_t> first;
  std::optional<int64_t> last;
  for (std::string line; std::getline(log, line);) {
    if (line.rfind("Apply ", 0) == 0) {
      outcome.summary = line;
    }
    const std::optional<int64_t> t = LogTimeMs(line);
    if (!t || line.find("] ") == std::string::npos || line.find(" [") == std::string::npos) {
      continue;
    }
    if (line.ends_with(" ...")) {
      first = first ? std::min(*first, *t) : *t;
    } else if (line.find(": succeeded in ") != std::string::npos ||
               line.find(": failed in ") != std::string::npos ||
               line.find(": abandoned in ") != std::string::npos) {
      last = last ? std::max(*last, *t) : *t;
      outcome.actions_logged += line.find(": succeeded in ") != std::string::npos ? 1 : 0;
    }
  }
  if (first && last) {
    outcome.span_s = static_cast<double>(*last - *first) / 1000.0;
    outcome.to_first_s = static_cast<double>(*first - spawned_ms) / 1000.0;
  }

  // What the hosts hold now, and the calls they served.
  httplib::Headers headers = {{"X-Api-Key", kApiKeyBase64}};
  for (int h = 0; h < s.hosts; ++h) {
    auto r = control.Get("/h/" + HostName(h) + "/api/v1/machines", headers);
    if (!r || r->status != 200) {
      continue;
    }
    for (const json& vm : json::parse(r->body, nullptr, false)) {
      if (vm.is_object() && vm.value("Name", "").rfind("set-", 0) == 0 &&
          vm.value("State", "") == "running") {
        ++outcome.vms_running;
      }
    }
  }
  if (auto r = control.Get("/_sim/counters"); r && r->status == 200) {
    const json counters = json::parse(r->body, nullptr, false);
    if (counters.is_object()) {
      for (const auto& [host, endpoints] : counters.items()) {
        for (const auto& [endpoint, counts] : endpoints.items()) {
          outcome.calls[endpoint] += counts.value("calls", 0L);
        }
      }
    }
  }
  outcome.ok = outcome.exit_code == 0 && outcome.vms_running == total;
  if (!outcome.ok) {
    std::cerr << "apply exit " << outcome.exit_code << ", " << outcome.vms_running << " of "
              << total << " VMs running; log tail:\n";
    RunShell("tail -20 " + err.string() + " >&2");
  }
  return outcome;
}

// Time of the create action's provider calls that carry latency, in seconds.
double CreateSeconds(const std::map<std::string, double>& lat, const std::string& image,
                     bool quantised) {
  auto at = [&](const char* name) {
    auto it = lat.find(name);
    return it == lat.end() ? 0.0 : it->second;
  };
  if (image == "clone") {
    return at("list") + at("clone") + at("set") + at("rename");
  }
  double job = at("create");  // the image is cached: no pull
  if (quantised) {
    // PollJob looks at once, then waits a quarter of the time since it started (at least
    // 0.25 s, at most 10 s) before each next look.
    double t = 0;
    while (t < job) {
      t += std::clamp(t / 4, 0.25, 10.0);
    }
    job = t;
  }
  return at("list") + job + at("rename");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: converge_bench FLOTILLA_BIN HOSTSIM_BIN [hosts] [vms_per_host] "
                 "[concurrencies] [clone|catalog] [sequential_vms] [latency] [full|normal]\n";
    return 1;
  }
  const std::string flotilla = argv[1];
  const std::string hostsim = argv[2];
  Setup base;
  base.hosts = argc > 3 ? std::atoi(argv[3]) : 100;
  base.vms_per_host = argc > 4 ? std::atoi(argv[4]) : 10;
  std::vector<int> concurrencies;
  {
    std::stringstream list(argc > 5 ? argv[5] : "32,200");
    for (std::string item; std::getline(list, item, ',');) {
      concurrencies.push_back(std::atoi(item.c_str()));
    }
  }
  base.image = argc > 6 ? argv[6] : "clone";
  const int sequential_vms = argc > 7 ? std::atoi(argv[7]) : 10;
  base.latency =
      argc > 8 ? argv[8] : "list=100ms,clone=2s,set=200ms,rename=200ms,start=1s,create=2s";
  base.durability = argc > 9 ? argv[9] : "";
  if (base.image != "clone" && base.image != "catalog") {
    std::cerr << "image must be clone or catalog\n";
    return 1;
  }
  const std::map<std::string, double> lat = ParseLatency(base.latency);
  const double start_s = lat.contains("start") ? lat.at("start") : 0.0;
  const double create_s = CreateSeconds(lat, base.image, false);
  const double create_q = CreateSeconds(lat, base.image, true);
  const double per_vm = create_s + start_s;
  const double per_vm_q = create_q + start_s;
  const int total = base.hosts * base.vms_per_host;

  std::cout << "fleet: " << base.hosts << " hosts, " << total << " VMs (desired running), image "
            << base.image << ", per-host concurrency " << base.per_host << "\n"
            << "latency: " << base.latency << "\n"
            << "store durability: " << (base.durability.empty() ? "default" : base.durability)
            << "\n"
            << "model per VM: create " << create_s << " s + start " << start_s << " s = " << per_vm
            << " s";
  if (create_q != create_s) {
    std::cout << " (with the provider's job polling: create " << create_q << " s, " << per_vm_q
              << " s)";
  }
  std::cout << "\nsequential (computed): " << total * per_vm << " s\n";

  std::optional<double> sequential_measured;
  if (sequential_vms > 0) {
    Setup seq = base;
    seq.hosts = 1;
    seq.vms_per_host = sequential_vms;
    seq.concurrency = 1;
    seq.per_host = 1;
    const Outcome o = Converge(flotilla, hostsim, seq);
    std::cout << "\nsequential (measured): concurrency 1, 1 host, " << sequential_vms
              << " VMs: actions " << o.span_s << " s (" << o.span_s / sequential_vms
              << " s per VM; model " << per_vm << "), wall " << o.wall_s << " s";
    if (!o.ok) {
      std::cout << " FAILED\n";
      return 1;
    }
    sequential_measured = o.span_s / sequential_vms * total;
    std::cout << "\n  extrapolated to " << total << " VMs: " << *sequential_measured << " s\n";
  }

  bool all_ok = true;
  for (int concurrency : concurrencies) {
    Setup s = base;
    s.concurrency = concurrency;
    const double host_bound = std::max(s.vms_per_host * per_vm / s.per_host, per_vm);
    const double global_bound = total * per_vm / std::min(concurrency, 2 * total);
    const double bound = std::max(host_bound, global_bound);
    const double bound_q = std::max(std::max(s.vms_per_host * per_vm_q / s.per_host, per_vm_q),
                                    total * per_vm_q / std::min(concurrency, 2 * total));
    std::cout << "\nconcurrency " << concurrency << ": bound per host " << host_bound
              << " s, global " << global_bound << " s -> critical path " << bound << " s ("
              << (std::abs(host_bound - global_bound) < 1e-6 * bound ? "per-host and global equal"
                  : host_bound > global_bound                        ? "per-host limit binds"
                                                                     : "global limit binds")
              << ")";
    if (bound_q != bound) {
      std::cout << "; with job polling " << bound_q << " s";
    }
    std::cout << "\n";
    const Outcome o = Converge(flotilla, hostsim, s);
    all_ok = all_ok && o.ok;
    std::cout << "  " << o.summary << "\n"
              << "  VMs running afterwards: " << o.vms_running << "/" << total << "\n"
              << "  wall (spawn to exit): " << o.wall_s << " s; spawn to first action "
              << o.to_first_s << " s; first to last action: " << o.span_s << " s\n"
              << "  ratio actions / critical path: " << o.span_s / bound
              << "; wall / critical path: " << o.wall_s / bound << "\n"
              << "  speed-up vs sequential (computed " << total * per_vm
              << " s): " << total * per_vm / o.wall_s << "x (wall)";
    if (sequential_measured) {
      std::cout << "; vs sequential (measured, extrapolated " << *sequential_measured
                << " s): " << *sequential_measured / o.wall_s << "x";
    }
    std::cout << "\n  host calls:";
    for (const auto& [endpoint, n] : o.calls) {
      std::cout << " " << endpoint << "=" << n;
    }
    std::cout << "\n" << std::flush;
  }
  return all_ok ? 0 : 1;
}
