#pragma once

// A whole fleet on loopback for converge tests and benchmarks: flotilla-hostsim serving N hosts
// (sim-000, sim-001, ...) on one port, a local Git repository of manifests, a secrets folder
// with the hosts' API key and a catalog connection, and a flotilla.yaml pointing at all of it,
// in one scratch folder. Commands run the real `flotilla` binary.
// With `shards` > 1 the hosts are spread over that many flotilla-hostsim processes (one port
// each; hostsim gives each thread per host, so 1,000 hosts behind one port are slow): host i
// is served by process i % shards; its name in the pool stays sim-<i>, whatever hostsim calls
// it (Address, SimOf and SimName say where it lives).
//
// REQUIRES: FLOTILLA_BIN and FLOTILLA_HOSTSIM_BIN compile definitions.

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "reconciler/model/text.h"
#include "tests/support/cli_runner.h"
#include "tests/support/hostsim.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"

namespace flotilla::testing {

inline constexpr const char* kFleetApiKey = "FLEET:fixture-secret-7";

struct FleetOptions {
  int hosts = 3;
  int shards = 1;                      // flotilla-hostsim processes serving the hosts
  std::vector<std::string> sim_flags;  // added to flotilla-hostsim's
  uint32_t max_vms = 4;                // the pool's defaults.maxVMs
  std::string config_extra;            // appended to flotilla.yaml (top-level YAML)
  std::string reconcile_extra;         // added inside `reconcile:` (e.g. "maxAttempts: 6")
  std::string source_interval = "1s";  // source.interval
  std::string resync_interval = "2s";  // reconcile.resyncInterval
  uint64_t sim_seed = 0;  // not 0: process i gets --seed sim_seed + i (distinct UUIDs, faults)
};

class FleetFixture {
 public:
  explicit FleetFixture(FleetOptions options = {}) : options_(std::move(options)) {
    options_.shards = std::max(1, std::min(options_.shards, options_.hosts));
    for (int shard = 0; shard < options_.shards; ++shard) {
      // Hosts shard, shard + shards, ...: as many as fall on this process.
      const int hosts = (options_.hosts - shard + options_.shards - 1) / options_.shards;
      std::vector<std::string> flags = {"--hosts",    std::to_string(hosts), "--api-key",
                                        kFleetApiKey, "--offline-hang",      "1s"};
      if (options_.sim_seed != 0) {
        flags.insert(flags.end(), {"--seed", std::to_string(options_.sim_seed + shard)});
      }
      flags.insert(flags.end(), options_.sim_flags.begin(), options_.sim_flags.end());
      sims_.push_back(std::make_unique<Hostsim>(flags));
    }
    fs::create_directories(repo());
    fs::create_directories(dir() / "secrets/sims");
    fs::create_directories(dir() / "secrets/catalog");
    std::ofstream(dir() / "secrets/sims/apiKey") << EncodeBase64(kFleetApiKey) << "\n";
    std::ofstream(dir() / "secrets/catalog/connection") << "host=reader:pw@catalog.example:443\n";
    Git(repo(), "init -q -b main");
    WriteManifest("pool.yaml", PoolYaml());
    WriteConfig();
  }

  bool ready() const {
    return std::all_of(sims_.begin(), sims_.end(), [](const auto& sim) { return sim->ready(); });
  }
  // The (first) flotilla-hostsim process; with one shard, the one serving every host.
  Hostsim& sim() { return *sims_.front(); }
  // The process serving host i, and hostsim's own name for it there.
  Hostsim& SimOf(int i) { return *sims_[i % options_.shards]; }
  std::string SimName(int i) const { return Name(i / options_.shards); }
  // Host i's address in the pool: "<origin of its process>/h/<its hostsim name>/api".
  std::string Address(int i) const { return sims_[i % options_.shards]->address(SimName(i)); }
  const fs::path& dir() const { return scratch_.path(); }
  fs::path repo() const { return dir() / "fleet"; }
  fs::path config() const { return dir() / "flotilla.yaml"; }
  fs::path state_dir() const { return dir() / "state"; }
  fs::path store_path() const { return state_dir() / "flotilla.db"; }
  std::string host(int i) const { return Name(i); }
  // hostsim's counter `endpoint` ("create_async", "create_jobs", ...) summed over every host.
  int CountOnAllHosts(const std::string& endpoint) {
    int n = 0;
    for (int i = 0; i < options_.hosts; ++i) {
      n += SimOf(i).Count(SimName(i), endpoint);
    }
    return n;
  }

  // The HostPool `sims` with every host, and maxVMs from the options.
  std::string PoolYaml(const std::string& extra_host_fields = "") const {
    std::string yaml =
        "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: sims}\nspec:\n"
        "  credentialsRef: sims\n  catalog: {connectionRef: catalog}\n"
        "  defaults: {maxVMs: " +
        std::to_string(options_.max_vms) + "}\n  hosts:\n";
    for (int i = 0; i < options_.hosts; ++i) {
      yaml += "    - {name: " + host(i) + ", address: \"" + Address(i) + "\"" + extra_host_fields +
              "}\n";
    }
    return yaml;
  }

  // A Linux VMSet of the pool; `extra_spec` lines go under spec (2-space indented), e.g.
  // "  prune: true\n"; `image` and `cpu` change the template.
  static std::string VmSetYaml(const std::string& name, int replicas,
                               const std::string& extra_spec = "  prune: true\n",
                               const std::string& image = "catalog://LINUX/v1", int cpu = 2) {
    return "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: " + name +
           "}\nspec:\n  pool: sims\n  replicas: " + std::to_string(replicas) + "\n" + extra_spec +
           "  template: {image: \"" + image +
           "\", os: linux, arch: arm64, cpu: " + std::to_string(cpu) + ", memory: 2Gi}\n";
  }

  void WriteManifest(const std::string& name, const std::string& content) {
    std::ofstream(repo() / name) << content;
  }
  void RemoveManifest(const std::string& name) { fs::remove(repo() / name); }

  // Commits everything in the repository; returns the new commit's SHA.
  std::string Commit(const std::string& message) { return CommitAll(repo(), message); }

  void WriteConfig(const std::string& source_url = "") {
    std::ofstream(config())
        << "source: {url: \"" << (source_url.empty() ? repo().string() : source_url)
        << "\", branch: main, interval: " << options_.source_interval << "}\n"
        << "stateDir: \"" << state_dir().string() << "\"\n"
        << "secretsDir: \"" << (dir() / "secrets").string() << "\"\n"
        << "reconcile:\n  resyncInterval: " << options_.resync_interval << "\n  hostTimeout: 5s\n"
        << (options_.reconcile_extra.empty() ? "" : "  " + options_.reconcile_extra + "\n")
        // A free port for the API, so that loops of parallel tests never
        // collide (tests that configure the API say so in config_extra).
        << (options_.config_extra.find("api:") == std::string::npos
                ? "api: {listen: \"127.0.0.1:0\"}\n"
                : "")
        << options_.config_extra;
  }

  // Runs `flotilla <args> --config <config>` to completion.
  Outcome Flotilla(const std::string& args) {
    return RunCommand("NO_COLOR=1 " FLOTILLA_BIN " " + args + " --config " + config().string(),
                      dir());
  }
  Outcome Apply(const std::string& extra = "") { return Flotilla("apply --yes " + extra); }

  // Starts `flotilla run` (stdout and stderr to files in the scratch folder). `env` is
  // prepended as VAR=value words.
  std::unique_ptr<Process> StartLoop(const std::string& extra = "", const std::string& env = "") {
    return std::make_unique<Process>(ShellArgv(
        loop_prefix_ + " env " + env + " " FLOTILLA_BIN " run --config " + config().string() + " " +
        extra + " >" + (dir() / "run.out").string() + " 2>" + (dir() / "run.err").string()));
  }
  std::string LoopLog() const { return Slurp(dir() / "run.err"); }
  // Put before `env ... flotilla run` by StartLoop: a command that ends by exec'ing its
  // arguments (one that mounts a file system on the state directory first, say).
  void SetLoopPrefix(std::string prefix) { loop_prefix_ = std::move(prefix); }

  // VM name -> state on one host, through the DevOps API the provider uses.
  std::map<std::string, std::string> Vms(int host_index) {
    httplib::Client client(SimOf(host_index).origin());
    httplib::Headers headers = {{"X-Api-Key", EncodeBase64(kFleetApiKey)}};
    auto result = client.Get("/h/" + SimName(host_index) + "/api/v1/machines", headers);
    std::map<std::string, std::string> vms;
    if (!result || result->status != 200) {
      ADD_FAILURE() << "cannot list VMs of " << host(host_index);
      return vms;
    }
    for (const auto& vm : nlohmann::json::parse(result->body)) {
      vms[vm.value("Name", "")] = vm.value("State", "");
    }
    return vms;
  }

  // Every VM name with the hosts holding it, across all hosts.
  std::map<std::string, std::vector<std::string>> AllVms() {
    std::map<std::string, std::vector<std::string>> all;
    for (int i = 0; i < options_.hosts; ++i) {
      for (const auto& [name, state] : Vms(i)) {
        all[name].push_back(host(i));
      }
    }
    return all;
  }

 private:
  static std::string Name(int i) {
    char name[16];
    std::snprintf(name, sizeof name, "sim-%03d", i);
    return name;
  }

  FleetOptions options_;
  std::string loop_prefix_;
  ScratchDir scratch_;
  std::vector<std::unique_ptr<Hostsim>> sims_;
};

// One VM as a host lists it.
struct HostVm {
  std::string host;
  std::string id;
  std::string name;
  std::string state;
  int cpus = 0;
};

// One VM of `host` as the DevOps API lists it (an element of GET /api/v1/machines).
inline HostVm HostVmFromJson(const std::string& host, const nlohmann::json& vm) {
  return HostVm{.host = host,
                .id = vm.value("ID", ""),
                .name = vm.value("Name", ""),
                .state = vm.value("State", ""),
                .cpus = vm.contains("Hardware") && vm["Hardware"].contains("cpu")
                            ? vm["Hardware"]["cpu"].value("cpus", 0)
                            : 0};
}

// Every VM of the fleet's first `hosts` hosts (duplicates kept), through the DevOps API; retries
// through injected faults and offline hangs. Fails the test if a host never answers.
inline std::vector<HostVm> ListAll(FleetFixture& f, int hosts) {
  std::vector<HostVm> all;
  httplib::Headers headers = {{"X-Api-Key", EncodeBase64(kFleetApiKey)}};
  for (int i = 0; i < hosts; ++i) {
    bool listed = false;
    for (int attempt = 0; attempt < 40 && !listed; ++attempt) {
      httplib::Client client(f.SimOf(i).origin());
      client.set_read_timeout(5, 0);
      auto result = client.Get("/h/" + f.SimName(i) + "/api/v1/machines", headers);
      if (!result || result->status != 200) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // then ask again
        continue;
      }
      nlohmann::json list = nlohmann::json::parse(result->body, nullptr, false);
      if (!list.is_array()) {
        continue;
      }
      for (const auto& vm : list) {
        all.push_back(HostVmFromJson(f.host(i), vm));
      }
      listed = true;
    }
    if (!listed) {
      ADD_FAILURE() << "cannot list the VMs of " << f.host(i);
    }
  }
  return all;
}

// The VMs one per line, for failure messages.
inline std::string Describe(const std::vector<HostVm>& vms) {
  std::string text;
  for (const HostVm& vm : vms) {
    text += "  " + vm.host + ": " + vm.name + " (" + vm.state + ", cpu " + std::to_string(vm.cpus) +
            ", " + vm.id + ")\n";
  }
  return text.empty() ? "  (none)\n" : text;
}

}  // namespace flotilla::testing
