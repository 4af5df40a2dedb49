// bench/tart_converge: `flotilla apply --yes` converging a Tart pool of H simulated Macs (each a
// real sshd on loopback with flotilla-tartsim, tests/support/tart_host.h) to V running Linux VMs
// per Mac, against the critical path the simulated latencies and the executor's concurrency
// allow.
//
// Per VM, c = clone latency + the provider's settle window for a start (5 s: a started VM must
// live that long before it counts); SSH round trips and the fake's own work are the overhead
// being measured. Bound = max(per host V*c / perHostConcurrency (2), global H*V*c / concurrency
// (32), c).
//
// Usage: tart_converge_bench FLOTILLA_BIN [hosts=10] [vms_per_host=10] [clone_ms=2000]
//          [boot_ms=1000] [apply_log]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "tests/support/cli_runner.h"
#include "tests/support/tart_host.h"

int main(int argc, char** argv) {
  using flotilla::testing::SimulatedMac;
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: tart_converge_bench FLOTILLA_BIN [hosts] [vms] [clone_ms] [boot_ms]\n");
    return 2;
  }
  const std::string flotilla = argv[1];
  const int hosts = argc > 2 ? std::atoi(argv[2]) : 10;
  const int vms = argc > 3 ? std::atoi(argv[3]) : 10;
  const int clone_ms = argc > 4 ? std::atoi(argv[4]) : 2000;
  const int boot_ms = argc > 5 ? std::atoi(argv[5]) : 1000;
  const std::string apply_log = argc > 6 ? argv[6] : "";
  flotilla::testing::ScratchDir scratch;
  const fs::path dir = scratch.path();
  std::vector<std::unique_ptr<SimulatedMac>> macs;
  for (int i = 0; i < hosts; ++i) {
    macs.push_back(std::make_unique<SimulatedMac>(
        dir / ("mac-" + std::to_string(i)),
        nlohmann::json{{"latency_ms", {{"clone", clone_ms}, {"boot", boot_ms}}}}));
    if (!macs.back()->ready()) {
      std::fprintf(stderr, "sshd %d did not start\n", i);
      return 1;
    }
    if (i > 0) {
      macs.back()->Authorize(*macs[0]);
    }
  }
  const fs::path repo = dir / "fleet";
  fs::create_directories(repo);
  fs::create_directories(dir / "secrets" / "macs");
  std::ofstream(dir / "secrets" / "macs" / "sshKey") << SimulatedMac::ReadText(macs[0]->user_key());
  {
    std::ofstream known(dir / "known_hosts");
    for (const auto& mac : macs) {
      known << SimulatedMac::ReadText(mac->known_hosts());
    }
    std::ofstream pool(repo / "pool.yaml");
    pool << "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: macs}\nspec:\n"
         << "  provider: tart\n  credentialsRef: macs\n"
         << "  tart: {path: \"" << macs[0]->tart().string() << "\"}\n"
         << "  ssh: {knownHostsFile: \"" << (dir / "known_hosts").string() << "\"}\n"
         << "  defaults: {maxVMs: " << vms << "}\n  hosts:\n";
    for (int i = 0; i < hosts; ++i) {
      pool << "    - {name: mac-" << i << ", address: \"" << macs[i]->address() << "\"}\n";
    }
    std::ofstream(repo / "runners.yaml")
        << "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: runners}\nspec:\n"
        << "  pool: macs\n  replicas: " << hosts * vms << "\n"
        << "  template: {image: \"oci://" << flotilla::testing::kLinuxImage
        << "\", os: linux, arch: arm64, cpu: 1, memory: 1Gi}\n";
  }
  flotilla::testing::Git(repo, "init -q -b main");
  flotilla::testing::CommitAll(repo, "fleet");
  std::ofstream(dir / "flotilla.yaml")
      << "source: {url: \"" << repo.string() << "\", branch: main}\n"
      << "stateDir: \"" << (dir / "state").string() << "\"\n"
      << "secretsDir: \"" << (dir / "secrets").string() << "\"\n"
      << "reconcile: {hostTimeout: 60s}\n"
      << "api: {listen: \"127.0.0.1:0\"}\n";
  // The images are cached first (a pull is not what is measured).
  for (const auto& mac : macs) {
    mac->Tart(std::string("pull ") + flotilla::testing::kLinuxImage);
  }
  const auto start = std::chrono::steady_clock::now();
  flotilla::testing::Outcome applied = flotilla::testing::RunCommand(
      "env NO_COLOR=1 " + flotilla + " apply --yes --config " + (dir / "flotilla.yaml").string(),
      dir);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!apply_log.empty()) {
    std::ofstream(apply_log) << applied.err;
  }
  if (applied.exit_code != 0) {
    std::fprintf(stderr, "apply failed (%d):\n%s\n%s\n", applied.exit_code, applied.out.c_str(),
                 applied.err.c_str());
    return 1;
  }
  int running = 0;
  for (const auto& mac : macs) {
    std::stringstream list(mac->Tart("list --source local --format json").out);
    const std::string text = list.str();
    for (size_t at = text.find("\"running\""); at != std::string::npos;
         at = text.find("\"running\"", at + 1)) {
      ++running;
    }
  }
  const double c = clone_ms / 1000.0 + 5.0;
  const double bound = std::max({vms * c / 2, double(hosts) * vms * c / 32, c});
  std::printf(
      "tart converge: %d hosts x %d VMs (clone %d ms, boot %d ms): apply %.1f s, critical path "
      "%.1f s (c = %.1f s per VM), ratio %.2f; %d VMs running\n",
      hosts, vms, clone_ms, boot_ms, wall, bound, c, wall / bound, running);
  return running == hosts * vms ? 0 : 1;
}
