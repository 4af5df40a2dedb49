// bench/git_source: loading a fleet repository of 10,000 manifest files from Git.
//
// Measures, against a git daemon on loopback:
//   cold      first clone + load to Desired (parse and validate every file); then, apart,
//             freeing what the load built
//   refresh   after a one-file commit: fetch + read the tree + re-parse what changed
//             (and, separately, the full load with cross-file checks)
//   to Desired  after another one-file commit: Fetch + LoadRevision (warm cache), as the loop
//             loads a new revision
//   git CLI   the same refresh done by git: fetch + ls-tree -r + cat-file --batch over the tree
// Usage: bench_git_source [files=10000] [rounds=10] [threads=0: the machine's cores]

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "providers/builtin.h"
#include "reconciler/manifest/worker_pool.h"
#include "reconciler/source/git_source.h"
#include "reconciler/source/manifest_source.h"
#include "tests/support/loopback.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using flotilla::source::FetchResult;
using flotilla::source::GitSource;
using flotilla::source::ParseCache;

void Run(const std::string& command) {
  if (std::system(command.c_str()) != 0) {
    std::cerr << "command failed: " << command << "\n";
    std::exit(1);
  }
}

double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename F>
double Time(F f) {
  const auto start = Clock::now();
  f();
  return Millis(Clock::now() - start);
}

std::string Pool(int i) {
  std::string s = "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: pool-" +
                  std::to_string(i) +
                  "}\nspec:\n  credentialsRef: builders\n  defaults:\n    arch: arm64\n"
                  "    capacity: {cpu: 12, memory: 32Gi, disk: 460Gi}\n  hosts:\n";
  for (int h = 0; h < 10; ++h) {
    const std::string name = "p" + std::to_string(i) + "-h" + std::to_string(h);
    s += "    - name: " + name + "\n      address: https://10." + std::to_string(i / 250) + "." +
         std::to_string(i % 250) + "." + std::to_string(h + 1) + ":8080\n      tags: [builder]\n";
  }
  return s;
}

std::string Set(int i, int pools, int replicas) {
  return "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: set-" + std::to_string(i) +
         ", labels: {team: t" + std::to_string(i % 17) + "}}\nspec:\n  pool: pool-" +
         std::to_string(i % pools) + "\n  replicas: " + std::to_string(replicas) +
         "\n  selector: {tags: [builder]}\n  template:\n    image: catalog://macos/15\n"
         "    os: macos\n    arch: arm64\n    cpu: 4\n    memory: 8Gi\n";
}

}  // namespace

int main(int argc, char** argv) {
  const int files = argc > 1 ? std::atoi(argv[1]) : 10'000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 10;
  const size_t threads = argc > 3 ? static_cast<size_t>(std::atoi(argv[3])) : 0;
  const int pools = std::max(1, files / 100);
  std::string pattern = (fs::temp_directory_path() / "flotilla-bench-XXXXXX").string();
  const fs::path root = mkdtemp(pattern.data());
  const fs::path served = root / "served";
  const fs::path work = root / "work";
  const std::string q = "'";

  std::cerr << "generating " << files << " manifest files...\n";
  Run("git init -q --bare -b main " + q + (served / "fleet.git").string() + q);
  Run("git init -q -b main " + q + work.string() + q);
  fs::create_directories(work / "fleet" / "pools");
  fs::create_directories(work / "fleet" / "sets");
  for (int i = 0; i < pools; ++i) {
    std::ofstream(work / "fleet" / "pools" / ("pool-" + std::to_string(i) + ".yaml")) << Pool(i);
  }
  for (int i = 0; i < files - pools; ++i) {
    std::ofstream(work / "fleet" / "sets" / ("set-" + std::to_string(i) + ".yaml"))
        << Set(i, pools, 1);
  }
  const std::string git =
      "git -C " + q + work.string() + q + " -c user.name=Bench -c user.email=bench@example.com ";
  Run(git + "add -A && " + git + "commit -q -m seed && " + git + "remote add origin " + q +
      (served / "fleet.git").string() + q + " && " + git + "push -q origin main");

  const int port = flotilla::testing::FreePort();
  const fs::path pid_file = root / "daemon.pid";
  Run("git daemon --detach --reuseaddr --listen=127.0.0.1 --port=" + std::to_string(port) +
      " --pid-file=" + pid_file.string() + " --base-path=" + served.string() + " --export-all " +
      served.string());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // daemon start-up (bench only)
  const std::string url = "git://127.0.0.1:" + std::to_string(port) + "/fleet.git";

  flotilla::source::GitLibrary library;
  auto validator = flotilla::manifest::SchemaValidator::Create(flotilla::providers::BuiltinRules());
  const flotilla::manifest::ManifestLoader loader(*validator, {.threads = threads});

  auto open = [&](const fs::path& state) {
    flotilla::source::GitSourceOptions options;
    options.url = url;
    options.state_dir = state.string();
    return std::move(*flotilla::source::OpenGitSource(options));
  };

  // Cold: fresh mirror, clone and load everything. Timed to Desired, as the loop starts: it
  // keeps the mirror, the parse cache and Desired afterwards. Freeing them (what a bench or a
  // process exit pays, not a start) is timed on its own.
  std::vector<double> cold;
  std::vector<double> cold_teardown;
  size_t vms = 0;
  for (int i = 0; i < 3; ++i) {
    const fs::path state = root / ("cold-" + std::to_string(i));
    std::unique_ptr<GitSource> source;
    std::optional<ParseCache> cache;
    std::optional<flotilla::manifest::LoadResult> loaded;
    cold.push_back(Time([&] {
      source = open(state);
      if (!source->Fetch().ok()) {
        std::exit(1);
      }
      cache.emplace();
      auto r = flotilla::source::LoadRevision(*source, "main", "fleet", loader, *cache);
      if (!r.ok() || !r->ok()) {
        std::cerr << "load failed\n";
        std::exit(1);
      }
      vms = r->desired.DesiredVMCount();
      loaded = std::move(*r);
    }));
    cold_teardown.push_back(Time([&] {
      loaded.reset();
      cache.reset();
      source.reset();
    }));
    fs::remove_all(state);
  }

  // Incremental: our mirror and a git CLI mirror, both warm.
  std::unique_ptr<GitSource> source = open(root / "state");
  ParseCache cache;
  source->Fetch();
  flotilla::source::LoadRevision(*source, "main", "fleet", loader, cache);
  const fs::path cli = root / "cli.git";
  Run("git clone -q --bare " + url + " " + cli.string() + " 2>/dev/null");
  const std::string cli_refresh = "git -C " + cli.string() +
                                  " fetch -q origin '+refs/heads/*:refs/heads/*' && git -C " +
                                  cli.string() + " ls-tree -r --object-only main fleet | git -C " +
                                  cli.string() + " cat-file --batch > /dev/null";

  std::vector<double> ours_fetch_parse, ours_full, git_cli, to_desired, to_desired_fetch,
      to_desired_load, to_desired_load_cpu;
  size_t max_parsed = 0;
  for (int round = 0; round < rounds; ++round) {
    std::ofstream(work / "fleet" / "sets" / "set-0.yaml") << Set(0, pools, 2 + round);
    Run(git + "commit -q -am 'round " + std::to_string(round) + "' && " + git +
        "push -q origin main");

    const size_t parses_before = cache.parses();
    flotilla::manifest::Diagnostics diagnostics;
    // Fetch, read the tree, re-parse what changed (what the git CLI line does, plus parsing).
    double fetch_parse = Time([&] {
      if (!source->Fetch().ok()) {
        std::cerr << "fetch failed\n";
        std::exit(1);
      }
      auto sha = source->Resolve("main");
      auto tree = source->ReadTree(*sha, "fleet", diagnostics);
      flotilla::manifest::DocumentBudget budget;
      for (const auto& file : *tree) {
        cache.Get(loader, file.blob_id, file.path, file.content, budget);
      }
    });
    max_parsed = std::max(max_parsed, cache.parses() - parses_before);
    // The full reload the loop does: the same plus cross-file checks over all 10,000 docs.
    double full = Time([&] {
      auto r = flotilla::source::LoadRevision(*source, "main", "fleet", loader, cache);
      vms = r->desired.DesiredVMCount();
    });
    double cli_ms = Time([&] { Run(cli_refresh); });

    // A second one-file commit, loaded as the loop does: Fetch, then LoadRevision through the
    // warm cache, to a Desired with its diagnostics.
    std::ofstream(work / "fleet" / "sets" / "set-1.yaml") << Set(1, pools, 2 + round);
    Run(git + "commit -q -am 'round " + std::to_string(round) + "b' && " + git +
        "push -q origin main");
    const double fetch_ms = Time([&] {
      if (!source->Fetch().ok()) {
        std::cerr << "fetch failed\n";
        std::exit(1);
      }
    });
    const std::clock_t cpu_start = std::clock();
    const double load_ms = Time([&] {
      auto r = flotilla::source::LoadRevision(*source, "main", "fleet", loader, cache);
      if (!r.ok() || !r->ok()) {
        std::cerr << "load failed\n";
        std::exit(1);
      }
      vms = r->desired.DesiredVMCount();
    });
    to_desired.push_back(fetch_ms + load_ms);
    to_desired_fetch.push_back(fetch_ms);
    to_desired_load.push_back(load_ms);
    to_desired_load_cpu.push_back(1000.0 * static_cast<double>(std::clock() - cpu_start) /
                                  CLOCKS_PER_SEC);
    ours_fetch_parse.push_back(fetch_parse);
    ours_full.push_back(full);
    git_cli.push_back(cli_ms);
  }
  // LoadRevision of the tip again, nothing changed: the per-revision cost of the warm path on
  // its own (tree listing, cache lookups, cross-file checks, assembling Desired), without the
  // push and fetch around it; more samples than the rounds give.
  std::vector<double> warm_load, warm_load_cpu;
  for (int i = 0; i < 20; ++i) {
    const std::clock_t cpu_start = std::clock();
    warm_load.push_back(Time([&] {
      auto r = flotilla::source::LoadRevision(*source, "main", "fleet", loader, cache);
      if (!r.ok() || !r->ok()) {
        std::cerr << "load failed\n";
        std::exit(1);
      }
    }));
    warm_load_cpu.push_back(1000.0 * static_cast<double>(std::clock() - cpu_start) /
                            CLOCKS_PER_SEC);
  }
  // The git CLI's fetch alone of a one-file commit, against the same daemon: what the server
  // side (git daemon, upload-pack, pack-objects on this machine) costs any client.
  std::vector<double> cli_fetch;
  for (int round = 0; round < rounds; ++round) {
    std::ofstream(work / "fleet" / "sets" / "set-2.yaml") << Set(2, pools, 2 + round);
    Run(git + "commit -q -am 'round " + std::to_string(round) + "c' && " + git +
        "push -q origin main");
    cli_fetch.push_back(Time(
        [&] { Run("git -C " + cli.string() + " fetch -q origin '+refs/heads/*:refs/heads/*'"); }));
  }
  Run("kill $(cat " + pid_file.string() + ")");
  fs::remove_all(root);

  const double ours = Median(ours_fetch_parse);
  const double theirs = Median(git_cli);
  std::printf("files: %d (%d pools, %d VM sets), %zu VMs desired, rounds: %d, threads: %zu\n",
              files, pools, files - pools, vms, rounds,
              threads == 0 ? flotilla::manifest::DefaultThreads() : threads);
  std::printf("| measurement | median ms |\n| --- | ---: |\n");
  std::printf("| cold clone + full load to Desired (3 runs) | %.0f |\n", Median(cold));
  std::printf("| ... then freeing the mirror, parse cache and Desired | %.0f |\n",
              Median(cold_teardown));
  std::printf("| refresh: fetch + tree + re-parse changed blobs | %.1f |\n", ours);
  std::printf("| refresh with full reload (cross-file checks of every document) | %.1f |\n",
              Median(ours_full) + ours);
  std::printf("| one-file commit: Fetch + LoadRevision to Desired (target < 150) | %.1f |\n",
              Median(to_desired));
  std::printf("| ... of which Fetch | %.1f |\n", Median(to_desired_fetch));
  std::printf("| ... of which LoadRevision (tree, parse, checks) | %.1f |\n",
              Median(to_desired_load));
  std::printf("| ... LoadRevision's CPU time (process, all threads) | %.1f |\n",
              Median(to_desired_load_cpu));
  std::printf("| LoadRevision of an unchanged tip, warm (20 runs) | %.1f |\n", Median(warm_load));
  std::printf("| ... its CPU time (process, all threads) | %.1f |\n", Median(warm_load_cpu));
  std::printf("| git CLI: fetch + ls-tree -r + cat-file --batch | %.1f |\n", theirs);
  std::printf("| git CLI: fetch alone of a one-file commit | %.1f |\n", Median(cli_fetch));
  std::printf("ratio refresh / git CLI: %.2f (target <= 1.5)\n", ours / theirs);
  std::printf("blobs parsed per refresh: %zu (target 1)\n", max_parsed);
  return 0;
}
