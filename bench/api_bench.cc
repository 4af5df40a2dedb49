// bench/api: GET /api/v1/vms and /api/v1/hosts of a large snapshot through the real API server
// (real HTTP on loopback, keep-alive), and whether serving them slows the loop's passes.
//
// The fleet is built in memory: H hosts in pools of 100, each pool with 10 VMSets whose VMs are
// spread over its hosts, 9 managed VMs and 1 unmanaged VM per host (10 VMs per host). Reports,
// for each endpoint, the answer's size and the latency (median, p95) of:
//   cold   the first GET after a new snapshot is published (a fresh copy each time);
//   warm   repeated GETs of the same snapshot;
//   304    repeated GETs with If-None-Match set to the ETag of the answer (when there is one);
//   gzip   warm GETs with Accept-Encoding: gzip (what browsers send);
//   after a pass   the loop publishes a new snapshot and tells the server (SnapshotPublished),
//          which renders ahead the views asked of the snapshot before: the time until that is
//          done, then the first GET of the new snapshot, gzip and identity.
// Then ComputePlan of the same fleet (a stand-in for the CPU of a pass) alone and while one
// client GETs /api/v1/vms without pause, and while it repeats it with If-None-Match; and passes
// (a snapshot published, then ComputePlan) alone and while a client polls /api/v1/vms as the
// dashboard does.
// With `render` as the second argument, only the rendering and compression of the unfiltered
// /api/v1/vms and /api/v1/hosts, and the rendering of /metrics, in process and without HTTP
// (their CPU, to profile them).
// Usage: bench_api [hosts=10000] [samples=20|render] [plan_runs=3]

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "reconciler/api/gzip.h"
#include "reconciler/api/server.h"
#include "reconciler/api/views.h"
#include "reconciler/api/vms_pieces.h"
#include "reconciler/model/normalize.h"
#include "reconciler/model/template_hash.h"
#include "reconciler/planner/planner.h"
#include "tests/support/fleet_values.h"
#include "tests/support/process.h"
#include "tests/support/snapshot_backend.h"

namespace {

using namespace flotilla;
using testing::kGi;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kToken = "bench-token";

std::string Name(const char* prefix, int i) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%s-%04d", prefix, i);
  return buffer;
}

// 100-host pools, 10 VMSets each, 10 VMs per host (9 managed, 1 not).
controller::Snapshot Fleet(int hosts) {
  const auto now = std::chrono::system_clock::now();
  controller::Snapshot snapshot;
  snapshot.observed_at = now;
  snapshot.sha = std::string(40, 'a');
  constexpr int kHostsPerPool = 100;
  for (int p = 0; p * kHostsPerPool < hosts; ++p) {
    HostPool pool;
    pool.meta.name = Name("pool", p);
    pool.provider = "parallels";
    pool.defaults.max_vms = 20;
    std::vector<std::string> names;
    for (int h = 0; h < kHostsPerPool && p * kHostsPerPool + h < hosts; ++h) {
      const std::string host = pool.meta.name + "-" + Name("h", h);
      names.push_back(host);
      pool.hosts.push_back(testing::Host(host, {"rack-" + std::to_string(h % 8)}));
      ObservedHost& o = snapshot.observed.hosts[host];
      o = testing::Online(host, pool.meta.name,
                          {.cpu = 64, .memory_gi = 512, .disk_gi = 8000, .free_disk_gi = 7000},
                          now);
      o.vms.push_back(VmInfo{.id = "u-" + host,
                             .name = "unmanaged-" + host,
                             .state = VmState::kRunning,
                             .os = GuestOs::kLinux,
                             .cpu = 2,
                             .memory_bytes = 4 * kGi});
    }
    snapshot.desired.pools.push_back(pool);
    const uint32_t per_set = static_cast<uint32_t>(names.size()) * 9 / 10;
    size_t next = 0;
    for (int s = 0; s < 10; ++s) {
      VMSet set;
      set.meta.name = pool.meta.name + "-" + Name("set", s);
      set.pool = pool.meta.name;
      set.replicas = per_set;
      set.templ =
          testing::Template("catalog://IMG/" + std::to_string(s), GuestOs::kLinux, 2, 4, 40);
      const std::string hash = TemplateHash(set.templ);
      for (uint32_t i = 0; i < per_set; ++i) {
        const std::string vm = set.VMName(i);
        const std::string& host = names[next++ % names.size()];
        snapshot.observed.hosts[host].vms.push_back(VmInfo{.id = "id-" + vm,
                                                           .name = vm,
                                                           .state = VmState::kRunning,
                                                           .os = set.templ.os,
                                                           .cpu = 2,
                                                           .memory_bytes = 4 * kGi,
                                                           .disk_bytes = 40 * kGi,
                                                           .ip = "10.0.0.1"});
        snapshot.ledger.entries.push_back(LedgerEntry{.vm = vm,
                                                      .vmset = set.meta.name,
                                                      .pool = pool.meta.name,
                                                      .host = host,
                                                      .provider_id = "id-" + vm,
                                                      .template_hash = hash});
      }
      snapshot.desired.sets.push_back(set);
    }
  }
  Normalize(snapshot.desired);
  for (auto& [name, host] : snapshot.observed.hosts) {
    std::sort(host.vms.begin(), host.vms.end(),
              [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
  }
  return snapshot;
}

using BenchBackend = testing::SnapshotBackend;

double Ms(SteadyClock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Stats {
  double median = 0;
  double p95 = 0;
};

Stats Summarize(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  if (times.empty()) {
    return {};
  }
  return {times[times.size() / 2], times[std::min(times.size() - 1, times.size() * 95 / 100)]};
}

void Print(const std::string& what, const std::vector<double>& times) {
  const Stats s = Summarize(times);
  std::printf("  %-44s median %8.1f ms   p95 %8.1f ms   (%zu)\n", what.c_str(), s.median, s.p95,
              times.size());
}

// VmsText and HostsText of `fleet`, the gzip of each, and /metrics (Telemetry::Render), `runs`
// times: wall-clock medians.
void RenderAlone(const controller::Snapshot& fleet, int runs) {
  std::vector<double> vms;
  std::vector<double> vms_gzip;
  std::vector<double> hosts;
  std::vector<double> hosts_gzip;
  std::vector<double> metrics;
  api::Telemetry telemetry;
  size_t sizes[2] = {0, 0};
  for (int i = 0; i < runs; ++i) {
    auto start = SteadyClock::now();
    const std::string vms_text = api::VmsText(fleet, api::VmFilter{});
    vms.push_back(Ms(SteadyClock::now() - start));
    start = SteadyClock::now();
    sizes[0] = api::Gzip(vms_text).size();
    vms_gzip.push_back(Ms(SteadyClock::now() - start));
    start = SteadyClock::now();
    const std::string hosts_text = api::HostsText(fleet);
    hosts.push_back(Ms(SteadyClock::now() - start));
    start = SteadyClock::now();
    sizes[1] = api::Gzip(hosts_text).size();
    hosts_gzip.push_back(Ms(SteadyClock::now() - start));
    start = SteadyClock::now();
    (void)telemetry.Render(&fleet, std::nullopt, fleet.observed_at);
    metrics.push_back(Ms(SteadyClock::now() - start));
  }
  std::printf("Rendering alone (no HTTP), %d runs: /api/v1/vms gzip %zu bytes, /hosts %zu\n", runs,
              sizes[0], sizes[1]);
  Print("VmsText", vms);
  Print("Gzip of it", vms_gzip);
  Print("HostsText", hosts);
  Print("Gzip of it", hosts_gzip);
  Print("/metrics (Telemetry::Render)", metrics);

  // The unfiltered list from kept pieces (what GET /api/v1/vms does): all of them the first
  // time, then after a pass that changed nothing but the time, then after one in which one VM
  // in a hundred hosts changed state.
  std::vector<double> first;
  std::vector<double> unchanged;
  std::vector<double> some;
  size_t rendered[3] = {0, 0, 0};
  size_t zipped = 0;
  for (int i = 0; i < runs; ++i) {
    api::VmsPieces pieces;
    controller::Snapshot next = fleet;
    auto start = SteadyClock::now();
    api::VmsPieces::Rendered all = pieces.Render(next);
    first.push_back(Ms(SteadyClock::now() - start));
    rendered[0] = all.rendered;
    zipped = all.gzipped.size();
    next.observed_at += std::chrono::seconds{30};
    start = SteadyClock::now();
    all = pieces.Render(next);
    unchanged.push_back(Ms(SteadyClock::now() - start));
    rendered[1] = all.rendered;
    size_t n = 0;
    for (auto& [name, host] : next.observed.hosts) {
      if (n++ % 100 == 0 && !host.vms.empty()) {
        host.vms[0].state =
            host.vms[0].state == VmState::kRunning ? VmState::kStopped : VmState::kRunning;
      }
    }
    start = SteadyClock::now();
    all = pieces.Render(next);
    some.push_back(Ms(SteadyClock::now() - start));
    rendered[2] = all.rendered;
  }
  std::printf("VmsPieces::Render (text and gzip, %zu bytes compressed):\n", zipped);
  Print("all pieces (" + std::to_string(rendered[0]) + " rendered)", first);
  Print("next pass, nothing changed (" + std::to_string(rendered[1]) + " rendered)", unchanged);
  Print("one host in 100 changed (" + std::to_string(rendered[2]) + " rendered)", some);
}

struct Answer {
  int status = 0;
  size_t bytes = 0;
  std::string etag;
  std::string encoding;
  double ms = 0;
};

Answer Get(httplib::Client& client, const std::string& path, httplib::Headers headers) {
  headers.emplace("Authorization", std::string("Bearer ") + kToken);
  const auto start = SteadyClock::now();
  httplib::Result r = client.Get(path.c_str(), headers);
  Answer answer{.ms = Ms(SteadyClock::now() - start)};
  if (!r) {
    std::cerr << "GET " << path << " failed: " << httplib::to_string(r.error()) << " after "
              << answer.ms << " ms\n";
    std::exit(1);
  }
  answer.status = r->status;
  answer.bytes = r->body.size();
  answer.etag = r->get_header_value("ETag");
  answer.encoding = r->get_header_value("Content-Encoding");
  return answer;
}

// One GET of `path` by curl (identity, body thrown away): the server's time, without
// cpp-httplib's client (which reads 4 KiB at a time into a growing string).
double CurlMs(int port, const std::string& path) {
  const std::string command = "curl -s -o /dev/null -w '%{time_total}' -H 'Authorization: Bearer " +
                              std::string(kToken) + "' 'http://127.0.0.1:" + std::to_string(port) +
                              path + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    std::cerr << "curl: popen failed\n";
    std::exit(1);
  }
  double seconds = 0;
  const int read = std::fscanf(pipe, "%lf", &seconds);
  if (::pclose(pipe) != 0 || read != 1) {
    std::cerr << "curl " << path << " failed\n";
    std::exit(1);
  }
  return seconds * 1000;
}

// What `flotilla run` does after each pass (LoopOptions::published): a new snapshot, and the
// server told; then the time until the views asked of the previous one are rendered for it.
double PublishAndWaitForTheWarming(BenchBackend& backend, api::Server& server,
                                   const api::Telemetry& telemetry,
                                   std::shared_ptr<const controller::Snapshot> snapshot) {
  const uint64_t before = telemetry.ViewRenders("ahead");
  const auto start = SteadyClock::now();
  backend.Publish(std::move(snapshot));
  server.SnapshotPublished();
  while (telemetry.ViewRenders("ahead") == before) {
    if (SteadyClock::now() - start > std::chrono::seconds{120}) {
      std::cerr << "the views were not rendered ahead within 120 s\n";
      std::exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  return Ms(SteadyClock::now() - start);
}

void Endpoint(httplib::Client& client, BenchBackend& backend, api::Server& server,
              const api::Telemetry& telemetry,
              const std::shared_ptr<const controller::Snapshot>& base, const std::string& path,
              int samples) {
  const httplib::Headers identity{{"Accept-Encoding", "identity"}};
  std::vector<double> cold;
  for (int i = 0; i < std::max(samples / 4, 3); ++i) {
    auto copy = std::make_shared<controller::Snapshot>(*base);
    copy->observed_at += std::chrono::seconds{i + 1};
    backend.Publish(std::move(copy));
    cold.push_back(Get(client, path, identity).ms);
  }
  backend.Publish(base);
  const Answer first = Get(client, path, identity);
  std::vector<double> warm;
  for (int i = 0; i < samples; ++i) {
    warm.push_back(Get(client, path, identity).ms);
  }
  std::printf("GET %s: status %d, %zu bytes, ETag %s\n", path.c_str(), first.status, first.bytes,
              first.etag.empty() ? "(none)" : first.etag.c_str());
  Print("cold (first GET of a new snapshot)", cold);
  Print("warm", warm);
  std::vector<double> curl;
  for (int i = 0; i < samples; ++i) {
    curl.push_back(CurlMs(server.port(), path));
  }
  Print("warm, curl -o /dev/null (identity)", curl);
  std::vector<double> revalidate;
  int not_modified = 0;
  for (int i = 0; i < samples; ++i) {
    httplib::Headers headers = identity;
    if (!first.etag.empty()) {
      headers.emplace("If-None-Match", first.etag);
    }
    const Answer a = Get(client, path, headers);
    not_modified += a.status == 304 ? 1 : 0;
    revalidate.push_back(a.ms);
  }
  Print("If-None-Match (" + std::to_string(not_modified) + " answered 304)", revalidate);
  // The first gzip GET of a snapshot's view compresses it (kept); the others send what was kept.
  const Answer first_zipped = Get(client, path, {{"Accept-Encoding", "gzip"}});
  std::printf("  first GET with Accept-Encoding: gzip: %.1f ms, %zu bytes\n", first_zipped.ms,
              first_zipped.bytes);
  std::vector<double> gzip;
  Answer zipped;
  for (int i = 0; i < std::max(samples / 4, 3); ++i) {
    zipped = Get(client, path, {{"Accept-Encoding", "gzip"}});
    gzip.push_back(zipped.ms);
  }
  Print("warm, Accept-Encoding: gzip (" + (zipped.encoding.empty() ? "identity" : zipped.encoding) +
            ")",
        gzip);
  if (first.etag.empty()) {
    return;  // not a kept view: nothing is rendered ahead
  }
  std::vector<double> ready;
  std::vector<double> after_gzip;
  std::vector<double> after_identity;
  std::vector<double> after_curl;
  for (int i = 0; i < std::max(samples / 4, 3); ++i) {
    auto copy = std::make_shared<controller::Snapshot>(*base);
    copy->observed_at += std::chrono::seconds{1000 + i};
    ready.push_back(PublishAndWaitForTheWarming(backend, server, telemetry, std::move(copy)));
    after_gzip.push_back(Get(client, path, {{"Accept-Encoding", "gzip"}}).ms);
    after_curl.push_back(CurlMs(server.port(), path));
    after_identity.push_back(Get(client, path, identity).ms);
  }
  backend.Publish(base);
  Print("after a pass: rendered (and compressed) ahead, publication to ready", ready);
  Print("after a pass: first GET, Accept-Encoding: gzip", after_gzip);
  Print("after a pass: then curl, identity", after_curl);
  Print("after a pass: then cpp-httplib's client, identity", after_identity);
}

// One client GETting `path` on a thread of its own until it is stopped: with Accept-Encoding
// `encoding`, If-None-Match with the last ETag when `revalidate`, `pause` between requests.
class Poller {
 public:
  Poller(int port, std::string path, std::string encoding, bool revalidate,
         std::chrono::milliseconds pause)
      : thread_([this, port, path = std::move(path), encoding = std::move(encoding), revalidate,
                 pause] {
          httplib::Client client("127.0.0.1", port);
          client.set_read_timeout(std::chrono::seconds{60});
          client.set_decompress(false);
          std::string etag;
          while (!done_) {
            httplib::Headers headers{{"Accept-Encoding", encoding}};
            if (revalidate && !etag.empty()) {
              headers.emplace("If-None-Match", etag);
            }
            const Answer a = Get(client, path, headers);
            not_modified_ += a.status == 304 ? 1 : 0;
            if (!a.etag.empty()) {
              etag = a.etag;
            }
            ++gets_;
            std::this_thread::sleep_for(pause);
          }
        }) {}
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;
  ~Poller() { Stop(); }

  void Stop() {
    done_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  size_t gets() const { return gets_; }
  size_t not_modified() const { return not_modified_; }

 private:
  std::atomic<bool> done_{false};
  std::atomic<size_t> gets_{0};
  std::atomic<size_t> not_modified_{0};
  std::thread thread_;  // last: started once the counters exist
};

// ComputePlan of `fleet` (a stand-in for a pass's CPU), in ms.
double PlanMs(const controller::Snapshot& fleet) {
  planner::PlannerOptions options;
  options.max_deletions = 100000;
  const auto start = SteadyClock::now();
  const Plan plan = planner::ComputePlan(fleet.desired, fleet.observed, fleet.ledger, options,
                                         std::chrono::system_clock::now());
  return Ms(SteadyClock::now() - start);
}

// ComputePlan of the fleet, `runs` times; meanwhile, when `path` is set, one client GETs it
// without pause (with If-None-Match when `revalidate`).
std::vector<double> Passes(const controller::Snapshot& fleet, int runs, int port,
                           const std::string& path, bool revalidate, size_t& gets) {
  std::optional<Poller> client;
  if (!path.empty()) {
    client.emplace(port, path, "identity", revalidate, std::chrono::milliseconds{0});
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
  std::vector<double> times;
  for (int r = 0; r < runs; ++r) {
    times.push_back(PlanMs(fleet));
  }
  if (client) {
    client->Stop();
  }
  gets = client ? client->gets() : 0;
  return times;
}

// Passes as `flotilla run` makes them at the resync: a new snapshot published (the server told,
// so it renders ahead the views read before), then ComputePlan of the fleet as the pass's CPU;
// `runs` times, one second apart. With `poll`, a client polls `/api/v1/vms` as the dashboard
// does: once a second, with gzip and If-None-Match. Returns the plans' times; `gets` and
// `not_modified` count the client's requests.
std::vector<double> PublishedPasses(BenchBackend& backend, api::Server& server,
                                    const std::shared_ptr<const controller::Snapshot>& base,
                                    int runs, bool poll, size_t& gets, size_t& not_modified) {
  std::optional<Poller> client;
  if (poll) {
    client.emplace(server.port(), "/api/v1/vms", "gzip", true, std::chrono::seconds{1});
  }
  std::vector<double> times;
  for (int r = 0; r < runs; ++r) {
    auto copy = std::make_shared<controller::Snapshot>(*base);
    copy->observed_at += std::chrono::seconds{5000 + r};
    backend.Publish(std::move(copy));
    server.SnapshotPublished();
    times.push_back(PlanMs(*base));
    std::this_thread::sleep_for(std::chrono::seconds{1});
  }
  if (client) {
    client->Stop();
  }
  gets = client ? client->gets() : 0;
  not_modified = client ? client->not_modified() : 0;
  backend.Publish(base);
  return times;
}

}  // namespace

int main(int argc, char** argv) {
  const int hosts = argc > 1 ? std::atoi(argv[1]) : 10000;
  const bool render_only = argc > 2 && std::string(argv[2]) == "render";
  const int samples = argc > 2 && !render_only ? std::atoi(argv[2]) : 20;
  const int plan_runs = argc > 3 ? std::atoi(argv[3]) : 3;
  auto start = SteadyClock::now();
  auto base = std::make_shared<const controller::Snapshot>(Fleet(hosts));
  size_t vms = 0;
  for (const auto& [name, host] : base->observed.hosts) {
    vms += host.vms.size();
  }
  std::printf("fleet: %d hosts, %zu VMs (%zu managed), built in %.0f ms\n", hosts, vms,
              base->ledger.entries.size(), Ms(SteadyClock::now() - start));
  if (render_only) {
    RenderAlone(*base, plan_runs);
    return 0;
  }

  testing::ScratchDir scratch;
  Result<std::unique_ptr<store::Store>> store =
      store::Store::Open((scratch.path() / "flotilla.db").string());
  if (!store.ok()) {
    std::cerr << store.status().ToString() << "\n";
    return 1;
  }
  BenchBackend backend;
  backend.Publish(base);
  api::Telemetry telemetry;
  auto logger =
      std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  Result<std::unique_ptr<api::Server>> server =
      api::Server::Start(api::ServerOptions{.listen = "127.0.0.1:0", .token = kToken}, backend,
                         **store, telemetry, logger);
  if (!server.ok()) {
    std::cerr << server.status().ToString() << "\n";
    return 1;
  }
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_read_timeout(std::chrono::seconds{60});
  client.set_decompress(false);
  for (const char* path : {"/api/v1/vms", "/api/v1/hosts", "/api/v1/vms?pool=pool-0001",
                           "/api/v1/orchestrator/machines", "/metrics"}) {
    Endpoint(client, backend, **server, telemetry, base, path, samples);
  }

  std::printf("ComputePlan of the fleet (%d runs each; a stand-in for a pass's CPU):\n", plan_runs);
  size_t gets = 0;
  Print("alone", Passes(*base, plan_runs, (*server)->port(), "", false, gets));
  const std::vector<double> busy =
      Passes(*base, plan_runs, (*server)->port(), "/api/v1/vms", false, gets);
  Print("while GET /api/v1/vms repeats (" + std::to_string(gets) + " GETs)", busy);
  const std::vector<double> revalidating =
      Passes(*base, plan_runs, (*server)->port(), "/api/v1/vms", true, gets);
  Print("... with If-None-Match (" + std::to_string(gets) + " GETs)", revalidating);
  std::printf(
      "Passes: a snapshot published (views rendered ahead), then ComputePlan; 1 s apart:\n");
  size_t not_modified = 0;
  const int pass_runs = std::max(plan_runs, 5);
  Print("no client",
        PublishedPasses(backend, **server, base, pass_runs, false, gets, not_modified));
  const std::vector<double> polled =
      PublishedPasses(backend, **server, base, pass_runs, true, gets, not_modified);
  Print("a dashboard polls /api/v1/vms each second, gzip + If-None-Match (" + std::to_string(gets) +
            " GETs, " + std::to_string(not_modified) + " answered 304)",
        polled);
  (*server)->Stop();
  return 0;
}
