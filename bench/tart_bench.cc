// The cost of one Observe of a Tart host over SSH: round trips (SSH commands) and milliseconds,
// against flotilla-tartsim behind a real sshd on loopback (tests/support/tart_host.h).
//
//   tart_bench VMS RUNNING ROUNDS CMD_LATENCY_MS
//
// VMS Linux VMs on the host (RUNNING of them running); each `tart` call of the fake sleeps
// CMD_LATENCY_MS first (Tart's own start-up and tmp GC, 0.1-0.3 s on a Mac by the reference's
// estimate). Prints the median and worst observe, the SSH commands per observe and the SSH
// connections made.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "providers/tart/provider.h"
#include "tests/support/tart_host.h"

namespace {

using namespace flotilla;
using namespace flotilla::providers;

class Counter final : public RequestObserver {
 public:
  void ProviderRequest(std::string_view, std::string_view, int) override { ++count; }
  std::atomic<int> count{0};
};

}  // namespace

int main(int argc, char** argv) {
  const int vms = argc > 1 ? std::atoi(argv[1]) : 10;
  const int running = argc > 2 ? std::atoi(argv[2]) : 2;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 20;
  const int latency = argc > 4 ? std::atoi(argv[4]) : 0;
  flotilla::testing::ScratchDir scratch;
  flotilla::testing::SimulatedMac mac(scratch.path());
  if (!mac.ready()) {
    std::fprintf(stderr, "sshd did not start\n");
    return 1;
  }
  for (int i = 0; i < vms; ++i) {
    mac.PutVm("vm-" + std::to_string(i), GuestOs::kLinux, i < running ? "running" : "stopped");
  }
  mac.config()["latency_ms"]["cmd"] = latency;
  mac.WriteConfig();
  HostPool pool = mac.Pool("macs", "macs");
  MapSecretSource secrets;
  mac.AddSecrets(secrets, "macs");
  SystemClock clock;
  Counter counter;
  tart::TartProviderFactory factory;
  Result<std::unique_ptr<Provider>> provider =
      factory.Build(ProviderContext{.pool = pool,
                                    .secrets = secrets,
                                    .logger = std::make_shared<spdlog::logger>("bench"),
                                    .clock = clock,
                                    .requests = &counter});
  if (!provider.ok()) {
    std::fprintf(stderr, "%s\n", provider.status().ToString().c_str());
    return 1;
  }
  const HostRef host{.pool = "macs", .name = "mac", .address = mac.address()};
  (void)(*provider)->Observe(host, DeadlineIn(std::chrono::seconds{60}));  // connects
  counter.count = 0;
  std::vector<double> ms;
  for (int i = 0; i < rounds; ++i) {
    const auto start = std::chrono::steady_clock::now();
    HostObservation o = (*provider)->Observe(host, DeadlineIn(std::chrono::seconds{60}));
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
    if (!o.status.ok() || o.vms.size() != size_t(vms)) {
      std::fprintf(stderr, "observe failed: %s\n", o.status.ToString().c_str());
      return 1;
    }
  }
  std::sort(ms.begin(), ms.end());
  auto* t = dynamic_cast<tart::TartProvider*>(provider->get());
  std::printf(
      "tart observe: %d VMs (%d running), fake tart start-up %d ms: median %.1f ms, worst %.1f "
      "ms over %d rounds; %.2f SSH commands per observe; %d SSH connection(s)\n",
      vms, running, latency, ms[ms.size() / 2], ms.back(), rounds, double(counter.count) / rounds,
      t->ConnectionsTo(host.address));
  return 0;
}
