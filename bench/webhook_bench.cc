// bench/webhook: how soon a push reaches the hosts. A `flotilla run` (child process) follows a
// local fleet repository with its timers an hour apart, so that only webhooks make it fetch.
// For each of N pushes the benchmark commits one more replica, sends a signed GitHub push event
// to POST /api/v1/webhooks/git, and times, from just before the request is sent:
//   first call   the first request any host receives afterwards (the pass observing the hosts)
//   first action the create of the new VM (POST .../machines) on its host
// Hosts are one flotilla-hostsim child with --log-requests; its stderr is read live and each
// line is stamped when it arrives (the simulated latencies are 0, so a line is written as soon
// as the request is answered). Each push waits for the previous run to finish.
//
// Usage: webhook_bench FLOTILLA_BIN HOSTSIM_BIN [pushes=20] [hosts=10]

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "reconciler/api/webhook.h"
#include "reconciler/model/text.h"
#include "tests/support/process.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using flotilla::testing::RunShell;
using nlohmann::json;

constexpr const char* kApiKey = "BENCH:webhook-bench-secret";
constexpr const char* kToken = "webhook-bench-token";
constexpr const char* kSecret = "webhook-bench-hmac";

// Request lines from the hosts, stamped when read.
class RequestLog {
 public:
  void Add(std::string line) {
    std::lock_guard lock(mu_);
    lines_.push_back({Clock::now(), std::move(line)});
    cv_.notify_all();
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return lines_.size();
  }
  // The time of the first line at or after index `from` that contains `needle`; waits up to
  // `limit`.
  std::optional<Clock::time_point> First(size_t from, const std::string& needle,
                                         std::chrono::seconds limit) {
    std::unique_lock lock(mu_);
    std::optional<Clock::time_point> found;
    cv_.wait_for(lock, limit, [&] {
      for (size_t i = from; i < lines_.size(); ++i) {
        if (lines_[i].second.find(needle) != std::string::npos) {
          found = lines_[i].first;
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<Clock::time_point, std::string>> lines_;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  if (v.empty()) {
    return 0;
  }
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

std::string VmSet(int replicas) {
  return "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: ci}\nspec:\n  pool: sims\n"
         "  replicas: " +
         std::to_string(replicas) +
         "\n  template: {image: \"catalog://LINUX/v1\", os: linux, arch: arm64, cpu: 1, "
         "memory: 1Gi}\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: webhook_bench FLOTILLA_BIN HOSTSIM_BIN [pushes=20] [hosts=10]\n";
    return 2;
  }
  const std::string flotilla = argv[1];
  const std::string hostsim = argv[2];
  const int pushes = argc > 3 ? std::atoi(argv[3]) : 20;
  const int hosts = argc > 4 ? std::atoi(argv[4]) : 10;

  char pattern[] = "/tmp/flotilla-webhook-bench-XXXXXX";
  const fs::path dir = mkdtemp(pattern);
  const fs::path repo = dir / "fleet";
  fs::create_directories(repo);
  fs::create_directories(dir / "secrets/sims");
  fs::create_directories(dir / "secrets/catalog");
  std::ofstream(dir / "secrets/sims/apiKey") << flotilla::EncodeBase64(kApiKey) << "\n";
  std::ofstream(dir / "secrets/catalog/connection") << "host=r:p@catalog.example:443\n";

  // The hosts: stderr into a pipe read by a thread.
  int fds[2];
  if (pipe(fds) != 0) {
    return 1;
  }
  const fs::path port_file = dir / "hostsim.port";
  std::vector<std::string> sim_args = {hostsim,
                                       "--listen",
                                       "127.0.0.1:0",
                                       "--port-file",
                                       port_file.string(),
                                       "--hosts",
                                       std::to_string(hosts),
                                       "--api-key",
                                       kApiKey,
                                       "--lookup-delay",
                                       "0s",
                                       "--log-requests",
                                       "--cached",
                                       "LINUX/v1"};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> args;
  for (std::string& a : sim_args) {
    args.push_back(a.data());
  }
  args.push_back(nullptr);
  pid_t sim_pid = -1;
  if (posix_spawn(&sim_pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
    std::cerr << "cannot start " << hostsim << "\n";
    return 1;
  }
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  RequestLog log;
  std::thread reader([&log, fd = fds[0]] {
    std::string pending;
    char buffer[4096];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof buffer)) > 0) {
      pending.append(buffer, static_cast<size_t>(n));
      size_t eol;
      while ((eol = pending.find('\n')) != std::string::npos) {
        log.Add(pending.substr(0, eol));
        pending.erase(0, eol + 1);
      }
    }
  });
  int sim_port = 0;
  flotilla::testing::WaitUntil([&] {
    std::ifstream in(port_file);
    return static_cast<bool>(in >> sim_port) && sim_port > 0;
  });
  if (sim_port <= 0) {
    std::cerr << "hostsim did not start\n";
    return 1;
  }

  // The fleet repository and the configuration.
  std::string pool =
      "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: sims}\nspec:\n"
      "  credentialsRef: sims\n  catalog: {connectionRef: catalog}\n  defaults: {maxVMs: 8}\n"
      "  hosts:\n";
  for (int i = 0; i < hosts; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "sim-%03d", i);
    pool += "    - {name: " + std::string(name) +
            ", address: \"http://127.0.0.1:" + std::to_string(sim_port) + "/h/" + name +
            "/api\"}\n";
  }
  std::ofstream(repo / "pool.yaml") << pool;
  int replicas = 1;
  std::ofstream(repo / "ci.yaml") << VmSet(replicas);
  const std::string git =
      "git -C " + repo.string() + " -c user.email=b@example.com -c user.name=bench ";
  if (RunShell("git -C " + repo.string() + " init -q -b main && " + git + "add -A && " + git +
               "commit -q -m fleet") != 0) {
    std::cerr << "cannot create the fleet repository\n";
    return 1;
  }
  const fs::path config = dir / "flotilla.yaml";
  std::ofstream(config) << "source: {url: \"" << repo.string()
                        << "\", branch: main, interval: 1h}\n"
                        << "stateDir: \"" << (dir / "state").string() << "\"\n"
                        << "secretsDir: \"" << (dir / "secrets").string() << "\"\n"
                        << "api: {listen: \"127.0.0.1:0\", tokenEnv: BENCH_TOKEN, "
                           "webhookSecretEnv: BENCH_SECRET}\n"
                        << "reconcile: {resyncInterval: 1h}\n";

  // The loop.
  flotilla::testing::Process loop(
      {"/bin/sh", "-c",
       std::string("exec env BENCH_TOKEN=") + kToken + " BENCH_SECRET=" + kSecret + " " + flotilla +
           " run --config " + config.string() + " 2>" + (dir / "run.err").string()});
  const std::regex api_line(R"(API http://127\.0\.0\.1:(\d+))");
  int api_port = 0;
  flotilla::testing::WaitUntil([&] {
    std::ifstream in(dir / "run.err");
    std::stringstream text;
    text << in.rdbuf();
    std::smatch m;
    const std::string s = text.str();
    if (std::regex_search(s, m, api_line)) {
      api_port = std::stoi(m[1].str());
      return true;
    }
    return false;
  });
  if (api_port == 0) {
    std::cerr << "flotilla run did not start its API\n";
    return 1;
  }
  httplib::Client api("127.0.0.1", api_port);
  api.set_read_timeout(std::chrono::seconds(60));
  const httplib::Headers bearer = {{"Authorization", std::string("Bearer ") + kToken}};
  // Idle: the first pass has converged (the plan is empty) and no run is under way.
  auto idle = [&] {
    auto plan = api.Get("/api/v1/plan", bearer);
    auto runs = api.Get("/api/v1/runs?limit=1", bearer);
    if (!plan || plan->status != 200 || !runs || runs->status != 200) {
      return false;
    }
    const json p = json::parse(plan->body, nullptr, false);
    const json r = json::parse(runs->body, nullptr, false);
    return p.is_object() && p["actions"].empty() && r.is_object() && !r["runs"].empty() &&
           r["runs"][0]["finished_at"].is_string();
  };
  if (!flotilla::testing::WaitUntil(idle, std::chrono::seconds(60))) {
    std::cerr << "the first pass did not converge\n";
    return 1;
  }

  std::vector<double> first_call_ms;
  std::vector<double> first_action_ms;
  for (int push = 0; push < pushes; ++push) {
    ++replicas;
    std::ofstream(repo / "ci.yaml") << VmSet(replicas);
    if (RunShell(git + "commit -q -am more") != 0) {
      std::cerr << "commit failed\n";
      return 1;
    }
    const std::string body = json{{"ref", "refs/heads/main"}}.dump();
    const size_t mark = log.size();
    const Clock::time_point sent = Clock::now();
    auto r =
        api.Post("/api/v1/webhooks/git",
                 {{"X-GitHub-Event", "push"},
                  {"X-Hub-Signature-256", "sha256=" + flotilla::api::HmacSha256Hex(kSecret, body)}},
                 body, "application/json");
    if (!r || r->status != 202) {
      std::cerr << "webhook refused: " << (r ? r->body : "no answer") << "\n";
      return 1;
    }
    const std::optional<Clock::time_point> call =
        log.First(mark, "/api/", std::chrono::seconds(30));
    const std::optional<Clock::time_point> create =
        log.First(mark, "POST /h/", std::chrono::seconds(30));
    if (!call || !create) {
      std::cerr << "push " << push << ": no host call within 30 s\n";
      return 1;
    }
    first_call_ms.push_back(std::chrono::duration<double, std::milli>(*call - sent).count());
    first_action_ms.push_back(std::chrono::duration<double, std::milli>(*create - sent).count());
    if (!flotilla::testing::WaitUntil(idle, std::chrono::seconds(60))) {
      std::cerr << "push " << push << ": the run did not finish\n";
      return 1;
    }
  }

  loop.Stop();
  kill(sim_pid, SIGTERM);
  waitpid(sim_pid, nullptr, 0);
  reader.join();
  std::printf("webhook_bench: %d pushes, %d hosts (hostsim latencies 0)\n", pushes, hosts);
  std::printf("  webhook -> first host call:    median %.1f ms, p90 %.1f ms, max %.1f ms\n",
              Median(first_call_ms), Percentile(first_call_ms, 0.9),
              *std::max_element(first_call_ms.begin(), first_call_ms.end()));
  std::printf("  webhook -> first action (create): median %.1f ms, p90 %.1f ms, max %.1f ms\n",
              Median(first_action_ms), Percentile(first_action_ms, 0.9),
              *std::max_element(first_action_ms.begin(), first_action_ms.end()));
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
