// The HTTP API of the real `flotilla run` against flotilla-hostsim hosts on loopback
// (tests/support/fleet_fixture.h): authentication, every endpoint's shape, filters, readiness,
// triggering and the CLI over the API. api_webhook_metrics_test.cc has webhooks and metrics.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/api_fixture.h"
#include "tests/support/api_loop.h"
#include "tests/support/cli_runner.h"
#include "tests/support/fleet_fixture.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"

namespace flotilla::api_test {
namespace {

using nlohmann::json;
using testing::Contains;
using testing::Outcome;
using testing::Process;
using testing::WaitUntil;

std::vector<std::string> ProtectedGets() {
  return {"/metrics",
          "/api/v1/status",
          "/api/v1/hosts",
          "/api/v1/vms",
          "/api/v1/overview/resources",
          "/api/v1/plan",
          "/api/v1/inventory",
          "/api/v1/runs",
          "/api/v1/runs/1",
          "/api/v1/revisions",
          "/api/v1/orchestrator/hosts",
          "/api/v1/orchestrator/overview/resources",
          "/api/v1/orchestrator/machines"};
}

TEST(ApiTest, EveryProtectedEndpointNeedsTheToken) {
  FleetOptions options = ApiFleet();
  // Room for every wrong token below: by default an address is answered 429 after 10.
  options.config_extra =
      "api: {listen: \"127.0.0.1:0\", tokenEnv: FLOTILLA_TEST_TOKEN, "
      "webhookSecretEnv: FLOTILLA_TEST_WEBHOOK, authFailures: {burst: 1000}}\n";
  FleetFixture fx(options);
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("ci");
  ApiLoop api(fx);
  ASSERT_TRUE(api.ok()) << fx.LoopLog();
  for (const std::string& path : ProtectedGets()) {
    for (const std::string& token : {std::string(), std::string("wrong-token")}) {
      httplib::Result r = api.Get(path, token);
      ASSERT_TRUE(r) << path;
      EXPECT_EQ(r->status, 401) << path << " with token \"" << token << "\"";
      const json body = json::parse(r->body, nullptr, false);
      EXPECT_TRUE(body.is_object() && body.contains("error")) << path << ": " << r->body;
      EXPECT_FALSE(Contains(r->body, kToken));
      EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer");
    }
  }
  httplib::Result post = api.Post("/api/v1/reconcile", "", {});
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 401);
  post = api.Post("/api/v1/reconcile", "", {{"Authorization", "Bearer wrong"}});
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 401);
  // Health needs none.
  httplib::Result health = api.Get("/healthz", "");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  // A token with a different length, and the right one with a prefix, are refused too.
  httplib::Result longer = api.Get("/api/v1/hosts", std::string(kToken) + "x");
  ASSERT_TRUE(longer);
  EXPECT_EQ(longer->status, 401);
}

TEST(ApiTest, ReadyOnlyAfterTheFirstObservation) {
  // Listing VMs takes 2 s on every host, so the first observation is still under way when the
  // API starts answering.
  FleetFixture fx(ApiFleet({"--latency", "list=2s"}));
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("ci");
  ApiLoop api(fx);
  ASSERT_TRUE(api.ok()) << fx.LoopLog();
  httplib::Result before = api.Get("/readyz", "");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 503) << before->body;
  EXPECT_EQ(json::parse(before->body)["status"], "not ready");
  httplib::Result hosts = api.Get("/api/v1/hosts");
  ASSERT_TRUE(hosts);
  EXPECT_EQ(hosts->status, 503) << "no observation to serve yet";
  ASSERT_TRUE(api.Ready()) << fx.LoopLog();
  const json ready = json::parse(api.Get("/readyz", "")->body);
  EXPECT_EQ(ready["status"], "ready");
  EXPECT_TRUE(ready["observed_at"].is_string());
}

// A running loop holds deletions back by its budget; POST /api/v1/reconcile with an approval
// lets exactly that pass delete, records who approved it (the token's name), and is spent by the
// pass. A token with only the read role cannot approve; `flotilla history` names the approver.
TEST(ApiTest, AnApprovalLetsOnePassOfARunningLoopDelete) {
  FleetOptions options = ApiFleet();
  options.config_extra =
      "api: {listen: \"127.0.0.1:0\", tokenEnv: FLOTILLA_TEST_TOKEN,\n"
      "      tokens: [{name: ops, tokenEnv: FLOTILLA_TEST_OPS, roles: [approve]},\n"
      "               {name: viewer, tokenEnv: FLOTILLA_TEST_VIEWER, roles: [read]}]}\n";
  options.reconcile_extra = "maxDeletionsPerRun: 0";
  FleetFixture fx(options);
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("a.yaml", FleetFixture::VmSetYaml("a", 1));
  fx.WriteManifest("b.yaml", FleetFixture::VmSetYaml("b", 2));
  fx.Commit("a and b");
  ASSERT_EQ(fx.Apply().exit_code, 0);
  fx.RemoveManifest("b.yaml");
  fx.Commit("remove b");
  constexpr const char* kOps = "ops-token-81c2";
  constexpr const char* kViewer = "viewer-token-0f3e";
  testing::ApiLoop api(
      fx, kToken, "FLOTILLA_TEST_TOKEN",
      std::string("FLOTILLA_TEST_OPS=") + kOps + " FLOTILLA_TEST_VIEWER=" + kViewer);
  ASSERT_TRUE(api.ok()) << fx.LoopLog();
  ASSERT_TRUE(api.Ready()) << fx.LoopLog();
  const json held = api.GetJson("/api/v1/plan?format=json");
  EXPECT_TRUE(Contains(held.dump(), "approve it with")) << held.dump();

  const httplib::Headers as_ops = {{"Authorization", std::string("Bearer ") + kOps}};
  httplib::Result bad = api.Post("/api/v1/reconcile", R"({"max_deletions": -1})", as_ops);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400) << bad->body;
  httplib::Result viewer =
      api.Post("/api/v1/reconcile", R"({"reason": "drop-b", "max_deletions": 2})",
               {{"Authorization", std::string("Bearer ") + kViewer}});
  ASSERT_TRUE(viewer);
  EXPECT_EQ(viewer->status, 403) << viewer->body;
  httplib::Result approved =
      api.Post("/api/v1/reconcile", R"({"reason": "drop-b", "max_deletions": 2})", as_ops);
  ASSERT_TRUE(approved);
  EXPECT_EQ(approved->status, 202) << approved->body;
  ASSERT_TRUE(WaitUntil([&] {
    const json run = api.RunWithTrigger("drop-b");
    return run.is_object() && run.value("outcome", "") != "running";
  })) << fx.LoopLog();
  const json run = api.RunWithTrigger("drop-b");
  EXPECT_EQ(run["approval"], "token ops: up to 2 deletions") << run.dump();
  EXPECT_EQ(run["actor"], "ops") << run.dump();
  EXPECT_EQ(run["outcome"], "succeeded") << run.dump();
  EXPECT_TRUE(Contains(fx.LoopLog(), "approved by token ops: up to 2 deletions")) << fx.LoopLog();

  std::ofstream(fx.dir() / "viewer-token") << kViewer << "\n";
  Outcome history = fx.Flotilla("history --server " + api.url() + " --token-file " +
                                (fx.dir() / "viewer-token").string());
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_TRUE(Contains(history.out, "drop-b (token ops)")) << history.out;
  EXPECT_TRUE(Contains(history.out, "approved by token ops: up to 2 deletions")) << history.out;
  // The CLI says why a token without the role is refused.
  Outcome refused = fx.Flotilla("reconcile --server " + api.url() + " --token-file " +
                                (fx.dir() / "viewer-token").string());
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(Contains(refused.err, "does not have the reconcile")) << refused.err;
  // Tokens are never logged.
  for (const char* token : {kToken, kOps, kViewer}) {
    EXPECT_FALSE(Contains(fx.LoopLog(), token)) << token;
  }
}

// Hosts whose service is too old for catalog creates say so, in the hosts view and in the
// plan's findings, and nothing is created on them.
TEST(ApiTest, HostsTooOldForCatalogCreatesSaySo) {
  FleetFixture fx(ApiFleet({"--version", "0.9.21"}));
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("ci");
  ApiLoop api(fx);
  ASSERT_TRUE(api.ok()) << fx.LoopLog();
  ASSERT_TRUE(api.Ready()) << fx.LoopLog();
  const json hosts = api.GetJson("/api/v1/hosts");
  ASSERT_EQ(hosts["hosts"].size(), 3u) << hosts.dump();
  for (const json& h : hosts["hosts"]) {
    const std::string conditions = h["conditions"].dump();
    EXPECT_TRUE(Contains(conditions, "cannot create VMs from catalog:// images")) << conditions;
    EXPECT_TRUE(Contains(conditions, "0.9.21")) << conditions;
    EXPECT_TRUE(Contains(conditions, "reports no free disk")) << conditions;
  }
  const json plan = api.GetJson("/api/v1/plan?format=json");
  EXPECT_TRUE(Contains(plan.dump(), "cannot use the image")) << plan.dump();
  EXPECT_TRUE(fx.sim().Control("GET", "/_sim/hosts").dump().find("\"vms\":1") == std::string::npos)
      << "no VM was created";
}

TEST(ApiTest, EndpointShapesAndFilters) {
  FleetFixture fx(ApiFleet());
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 3));
  fx.WriteManifest("golden.yaml", FleetFixture::VmSetYaml("golden", 1,
                                                          "  prune: true\n"
                                                          "  placement: pack\n"));
  fx.Commit("ci and golden");
  ASSERT_EQ(fx.Apply().exit_code, 0);
  // A VM flotilla does not own.
  fx.sim().Control("POST", "/_sim/hosts/" + fx.host(2) + "/vms",
                   {{"name", "hand-made"},
                    {"os", "linux"},
                    {"cpu", 1},
                    {"memory_mb", 1024},
                    {"disk_mb", 10240},
                    {"state", "stopped"}});

  ApiLoop api(fx);
  ASSERT_TRUE(api.ok()) << fx.LoopLog();
  ASSERT_TRUE(api.Ready());

  const json hosts = api.GetJson("/api/v1/hosts");
  ASSERT_EQ(hosts["hosts"].size(), 3u) << hosts.dump();
  for (const json& h : hosts["hosts"]) {
    for (const char* k : {"name", "pool", "address", "state", "cordoned", "tags", "arch", "vms",
                          "managed_vms", "last_seen", "resources", "conditions"}) {
      EXPECT_TRUE(h.contains(k)) << k << " in " << h.dump();
    }
    EXPECT_EQ(h["conditions"], json::array()) << "nothing limits a 1.0.5 host";
    EXPECT_EQ(h["pool"], "sims");
    EXPECT_EQ(h["state"], "online");
    EXPECT_EQ(h["arch"], "arm64");
    EXPECT_GT(h["resources"]["total"]["cpu"].get<int>(), 0);
    EXPECT_FALSE(Contains(h["address"].get<std::string>(), "@"));
  }

  const json all = api.GetJson("/api/v1/vms");
  size_t managed = 0;
  for (const json& vm : all["vms"]) {
    for (const char* k : {"name", "id", "host", "pool", "vmset", "managed", "state", "cpu",
                          "memory_bytes", "disk_bytes", "ip"}) {
      EXPECT_TRUE(vm.contains(k)) << k << " in " << vm.dump();
    }
    managed += vm["managed"].get<bool>() ? 1 : 0;
  }
  EXPECT_EQ(managed, 4u) << all.dump();
  EXPECT_EQ(api.GetJson("/api/v1/vms?vmset=ci")["vms"].size(), 3u);
  EXPECT_EQ(api.GetJson("/api/v1/vms?vmset=golden&state=running")["vms"].size(), 1u);
  EXPECT_EQ(api.GetJson("/api/v1/vms?state=suspended")["vms"].size(), 0u);
  EXPECT_EQ(api.GetJson("/api/v1/vms?host=" + fx.host(0) + "&pool=sims")["vms"].size(),
            fx.Vms(0).size());
  const json unmanaged = api.GetJson("/api/v1/vms?managed=false");
  ASSERT_EQ(unmanaged["vms"].size(), 1u) << unmanaged.dump();
  EXPECT_EQ(unmanaged["vms"][0]["name"], "hand-made");
  EXPECT_EQ(unmanaged["vms"][0]["vmset"], "");
  httplib::Result bad_filter = api.Get("/api/v1/vms?managed=maybe");
  ASSERT_TRUE(bad_filter);
  EXPECT_EQ(bad_filter->status, 400);

  const json resources = api.GetJson("/api/v1/overview/resources");
  ASSERT_EQ(resources["pools"].size(), 1u);
  EXPECT_EQ(resources["pools"][0]["pool"], "sims");
  EXPECT_EQ(resources["pools"][0]["online_hosts"], 3);
  ASSERT_EQ(resources["arches"].size(), 1u);
  EXPECT_EQ(resources["arches"][0]["arch"], "arm64");

  const json plan = api.GetJson("/api/v1/plan");
  EXPECT_TRUE(plan.contains("actions") && plan.contains("summary")) << plan.dump();
  httplib::Result text = api.Get("/api/v1/plan?format=text");
  ASSERT_TRUE(text);
  EXPECT_TRUE(Contains(text->body, "Plan for main@")) << text->body;

  const json inventory = api.GetJson("/api/v1/inventory");
  EXPECT_TRUE(inventory.is_object()) << inventory.dump();

  const json revisions = api.GetJson("/api/v1/revisions");
  EXPECT_EQ(revisions["in_force"], revisions["last_applied"]["sha"]);
  EXPECT_EQ(revisions["last_applied"]["outcome"], "applied");
  EXPECT_FALSE(revisions["revisions"].empty());

  const json runs = api.Runs();
  ASSERT_FALSE(runs.empty());
  const json& first = runs.back();  // the apply
  EXPECT_EQ(first["trigger"], "apply");
  const json run = api.GetJson("/api/v1/runs/" + std::to_string(first["id"].get<int64_t>()));
  ASSERT_TRUE(run.contains("actions")) << run.dump();
  EXPECT_FALSE(run["actions"].empty());
  EXPECT_TRUE(run["actions"][0].contains("kind") && run["actions"][0].contains("state"));
  httplib::Result missing = api.Get("/api/v1/runs/999999");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  httplib::Result unknown = api.Get("/api/v1/nothing-here");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_TRUE(json::parse(unknown->body, nullptr, false).contains("error"));

  // The orchestrator's shapes and status codes.
  httplib::Result ohosts = api.Get("/api/v1/orchestrator/hosts");
  ASSERT_TRUE(ohosts);
  EXPECT_EQ(ohosts->status, 200);
  const json orchestrator_hosts = json::parse(ohosts->body);
  ASSERT_EQ(orchestrator_hosts.size(), 3u);
  for (const char* k : {"id", "enabled", "host", "architecture", "state", "tags", "resources",
                        "detailed_resources", "devops_version"}) {
    EXPECT_TRUE(orchestrator_hosts[0].contains(k)) << k;
  }
  EXPECT_EQ(orchestrator_hosts[0]["state"], "healthy");
  EXPECT_TRUE(orchestrator_hosts[0]["resources"].contains("disk_size"));
  EXPECT_TRUE(orchestrator_hosts[0]["resources"].contains("memory_size"));
  httplib::Result overview = api.Get("/api/v1/orchestrator/overview/resources");
  ASSERT_TRUE(overview);
  EXPECT_EQ(overview->status, 202);
  const json per_arch = json::parse(overview->body);
  ASSERT_EQ(per_arch.size(), 1u);
  EXPECT_EQ(per_arch[0]["cpu_type"], "arm64");
  for (const char* k :
       {"total", "total_available", "total_in_use", "total_reserved", "system_reserved"}) {
    EXPECT_TRUE(per_arch[0][k].contains("logical_cpu_count")) << k;
    EXPECT_TRUE(per_arch[0][k].contains("disk_count")) << k;
  }
  httplib::Result machines = api.Get("/api/v1/orchestrator/machines");
  ASSERT_TRUE(machines);
  EXPECT_EQ(machines->status, 202);
  const json vms = json::parse(machines->body);
  EXPECT_EQ(vms.size(), 5u);
  for (const char* k : {"ID", "Name", "State", "host_id", "host_name", "host_state"}) {
    EXPECT_TRUE(vms[0].contains(k)) << k;
  }
}

TEST(ApiTest, ReconcileStartsARunAndAnswersItsId) {
  FleetFixture fx(ApiFleet({}, "1h", "1h"));
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("ci");
  ApiLoop api(fx);
  ASSERT_TRUE(api.ok()) << fx.LoopLog();
  ASSERT_TRUE(api.Converged()) << fx.LoopLog();

  httplib::Result r = api.Post("/api/v1/reconcile", R"({"reason":"manual"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202) << r->body;
  const json answer = json::parse(r->body);
  ASSERT_TRUE(answer["run_id"].is_number_integer()) << r->body;
  const json run = api.GetJson("/api/v1/runs/" + std::to_string(answer["run_id"].get<int64_t>()));
  EXPECT_EQ(run["trigger"], "manual");

  httplib::Result malformed = api.Post("/api/v1/reconcile", "{not json");
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400);
  EXPECT_TRUE(Contains(malformed->body, "JSON"));
}

// `flotilla run` tells its API of every pass's snapshot: the views read before it are rendered
// for the new one ahead of the next request (flotilla_api_view_renders_total{when="ahead"}).
TEST(ApiTest, TheViewsClientsReadAreRenderedAheadAfterEachPass) {
  FleetFixture fx(ApiFleet({}, "1h", "1h"));
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("ci");
  ApiLoop api(fx);
  ASSERT_TRUE(api.ok()) << fx.LoopLog();
  ASSERT_TRUE(api.Converged()) << fx.LoopLog();
  httplib::Result before = api.Get("/api/v1/vms");
  ASSERT_TRUE(before && before->status == 200);
  auto ahead = [&] {
    httplib::Result r = api.Get("/metrics");
    const std::string line = "flotilla_api_view_renders_total{when=\"ahead\"} ";
    const size_t at = r ? r->body.find(line) : std::string::npos;
    return at == std::string::npos ? 0 : std::stoi(r->body.substr(at + line.size()));
  };
  const int ahead_before = ahead();
  httplib::Result r = api.Post("/api/v1/reconcile", R"({"reason":"manual"})");
  ASSERT_TRUE(r && r->status == 202);
  ASSERT_TRUE(WaitUntil([&] { return ahead() > ahead_before; })) << fx.LoopLog();
  httplib::Result after = api.Get("/api/v1/vms");  // the new snapshot's (observed_at has seconds)
  ASSERT_TRUE(after && after->status == 200);
  EXPECT_NE(after->get_header_value("ETag"), before->get_header_value("ETag"));
}

TEST(ApiTest, CliTalksToTheApiAndFallsBackToTheStore) {
  FleetFixture fx(ApiFleet({}, "1s", "1h"));
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2));
  fx.Commit("ci");
  ApiLoop api(fx);
  ASSERT_TRUE(api.ok()) << fx.LoopLog();
  ASSERT_TRUE(api.Converged()) << fx.LoopLog();
  std::ofstream(fx.dir() / "token") << kToken << "\n";
  const std::string server =
      " --server " + api.url() + " --token-file " + (fx.dir() / "token").string();

  Outcome hosts = fx.Flotilla("hosts -o json" + server);
  ASSERT_EQ(hosts.exit_code, 0) << hosts.err;
  EXPECT_EQ(json::parse(hosts.out)["hosts"].size(), 3u);
  Outcome table = fx.Flotilla("hosts" + server);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(Contains(table.out, "HOST") && Contains(table.out, fx.host(0))) << table.out;

  Outcome vms = fx.Flotilla("vms --managed true -o json" + server);
  ASSERT_EQ(vms.exit_code, 0) << vms.err;
  EXPECT_EQ(json::parse(vms.out)["vms"].size(), 2u);
  Outcome vms_table = fx.Flotilla("vms --vmset ci" + server);
  EXPECT_TRUE(Contains(vms_table.out, "ci-0")) << vms_table.out;

  Outcome status = fx.Flotilla("status" + server);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_TRUE(Contains(status.out, "Managed VMs:       2")) << status.out;
  EXPECT_TRUE(Contains(status.out, "Hosts:             3 of 3 online")) << status.out;

  Outcome history = fx.Flotilla("history --json" + server);
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_FALSE(json::parse(history.out)["runs"].empty());

  Outcome reconcile = fx.Flotilla("reconcile --wait" + server);
  EXPECT_EQ(reconcile.exit_code, 0) << reconcile.out << reconcile.err;
  EXPECT_TRUE(Contains(reconcile.out, "succeeded")) << reconcile.out;

  // Without --server, reconcile asks the loop that a configuration describes.
  const std::filesystem::path client_config = fx.dir() / "client.yaml";
  std::ofstream(client_config) << "api: {listen: \"127.0.0.1:" << api.port()
                               << "\", tokenFile: " << (fx.dir() / "token").string() << "}\n";
  const Outcome by_config = testing::RunCommand(
      "NO_COLOR=1 " FLOTILLA_BIN " reconcile --wait --config " + client_config.string(), fx.dir());
  EXPECT_EQ(by_config.exit_code, 0) << by_config.out << by_config.err;
  EXPECT_TRUE(Contains(by_config.out, "succeeded")) << by_config.out;

  // A wrong token is an error that says what to do.
  std::ofstream(fx.dir() / "bad-token") << "nope\n";
  Outcome refused = fx.Flotilla("hosts --server " + api.url() + " --token-file " +
                                (fx.dir() / "bad-token").string());
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(Contains(refused.err, "token")) << refused.err;
  // No server: the store, which the loop keeps up to date.
  Outcome local = fx.Flotilla("vms --managed true -o json");
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_EQ(json::parse(local.out)["vms"].size(), 2u);
  Outcome local_hosts = fx.Flotilla("hosts");
  EXPECT_EQ(local_hosts.exit_code, 0) << local_hosts.err;
  // reconcile needs a server.
  Outcome no_server = fx.Flotilla("reconcile");
  EXPECT_EQ(no_server.exit_code, 1);
  EXPECT_TRUE(Contains(no_server.err, "--server")) << no_server.err;
  // Unreachable server.
  Outcome down = fx.Flotilla("status --server http://127.0.0.1:1");
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_TRUE(Contains(down.err, "cannot reach") && Contains(down.err, "connection refused"))
      << down.err;
  Outcome nowhere = fx.Flotilla("status --server http://no-such-host.invalid:8080");
  EXPECT_TRUE(Contains(nowhere.err, "unknown host no-such-host.invalid")) << nowhere.err;
}

// Rotated secrets are used without a restart: host credentials and the API token are read again
// before each pass, and SIGHUP asks for a pass at once (the timers here are an hour).
TEST(ApiTest, RotatedSecretsAreUsedOnTheNextPassWithoutARestart) {
  testing::ScratchDir secrets;
  const std::filesystem::path token_file = secrets.path() / "api-token";
  std::ofstream(token_file) << "first-token-1234\n";
  FleetOptions options = ApiFleet({}, "1h", "1h");
  options.hosts = 1;
  options.config_extra = "api: {listen: \"127.0.0.1:0\", tokenFile: " + token_file.string() + "}\n";
  FleetFixture fx(options);
  ASSERT_TRUE(fx.ready());
  const std::filesystem::path key_file = fx.dir() / "secrets/sims/apiKey";
  std::ofstream(key_file) << EncodeBase64("FLEET:an-old-key") << "\n";
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("ci");
  const std::unique_ptr<Process> loop = fx.StartLoop();
  ASSERT_TRUE(WaitUntil([&] { return Contains(fx.LoopLog(), "is offline"); })) << fx.LoopLog();
  std::smatch m;
  const std::string started = fx.LoopLog();
  ASSERT_TRUE(std::regex_search(started, m, std::regex(R"(API (http://127\.0\.0\.1:\d+))")))
      << started;
  const std::string url = m[1].str();
  auto status_with = [&](const std::string& token) {
    httplib::Client client(url);
    httplib::Result r = client.Get("/api/v1/status", {{"Authorization", "Bearer " + token}});
    return r ? r->status : 0;
  };
  EXPECT_EQ(status_with("first-token-1234"), 200);
  EXPECT_TRUE(fx.Vms(0).empty());

  // The right key, and a new API token; SIGHUP: the next pass uses both.
  std::ofstream(key_file) << EncodeBase64(testing::kFleetApiKey) << "\n";
  std::ofstream(token_file) << "second-token-5678\n";
  ASSERT_EQ(kill(loop->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil([&] { return fx.Vms(0).contains("ci-0"); }, std::chrono::seconds(60)))
      << fx.LoopLog();
  EXPECT_TRUE(Contains(fx.LoopLog(), "pool sims: its credentials changed")) << fx.LoopLog();
  EXPECT_EQ(status_with("second-token-5678"), 200);
  EXPECT_EQ(status_with("first-token-1234"), 401);
  EXPECT_TRUE(Contains(fx.LoopLog(), "the API tokens or webhook secret changed")) << fx.LoopLog();
  // Nothing secret in the log.
  EXPECT_FALSE(Contains(fx.LoopLog(), "second-token-5678"));
  EXPECT_FALSE(Contains(fx.LoopLog(), EncodeBase64(testing::kFleetApiKey)));
  // An emptied token file is refused and the API keeps the token it has.
  std::ofstream(token_file) << "";
  ASSERT_EQ(kill(loop->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil([&] { return Contains(fx.LoopLog(), token_file.string() + " is empty"); }))
      << fx.LoopLog();
  EXPECT_EQ(status_with("second-token-5678"), 200);
}

TEST(ApiTest, ServesHttpsWithTheConfiguredCertificate) {
  testing::ScratchDir tls;
  const std::string cert = (tls.path() / "cert.pem").string();
  const std::string key = (tls.path() / "key.pem").string();
  testing::Sh(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=flotilla-api-test -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert);
  FleetOptions options = ApiFleet();
  options.hosts = 1;
  options.config_extra =
      "api: {listen: \"127.0.0.1:0\", tokenEnv: FLOTILLA_TEST_TOKEN, tls: "
      "{certFile: " +
      cert + ", keyFile: " + key + "}}\n";
  FleetFixture fx(options);
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("ci");
  const std::unique_ptr<Process> loop =
      fx.StartLoop("", std::string("FLOTILLA_TEST_TOKEN=") + kToken);
  std::string url;
  ASSERT_TRUE(WaitUntil([&] {
    std::smatch m;
    const std::string log = fx.LoopLog();
    if (std::regex_search(log, m, std::regex(R"(API (https://127\.0\.0\.1:\d+))"))) {
      url = m[1].str();
      return true;
    }
    return false;
  })) << fx.LoopLog();
  std::ofstream(fx.dir() / "token") << kToken << "\n";
  const std::string flags = " --server " + url + " --token-file " + (fx.dir() / "token").string();
  Outcome hosts;
  ASSERT_TRUE(WaitUntil([&] {
    hosts = fx.Flotilla("hosts -o json --ca-file " + cert + flags);
    return hosts.exit_code == 0;
  })) << hosts.err;
  EXPECT_EQ(json::parse(hosts.out)["hosts"].size(), 1u);
  // Without the CA the certificate is not trusted, and plain HTTP gets no API.
  const Outcome untrusted = fx.Flotilla("hosts" + flags);
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_TRUE(Contains(untrusted.err, "cannot reach")) << untrusted.err;
  std::string plain = url;
  plain.replace(0, 5, "http");
  const Outcome over_http =
      fx.Flotilla("hosts --server " + plain + " --token-file " + (fx.dir() / "token").string());
  EXPECT_EQ(over_http.exit_code, 1);
}

TEST(ApiTest, RefusesANonLoopbackAddressWithoutAToken) {
  FleetOptions options;
  options.hosts = 1;
  options.config_extra = "api: {listen: \"0.0.0.0:0\"}\n";
  FleetFixture fx(options);
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("ci");
  const Outcome run = fx.Flotilla("run");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(Contains(run.err, "without a token")) << run.err;
}

}  // namespace
}  // namespace flotilla::api_test

namespace flotilla::api_test {
namespace {

// Issue 18, item 3: one failed request must not make a host offline. With 10% of requests
// answered 500 for a minute, no host goes offline; the flaky hosts show as degraded, with their
// error rate, in the API and the metrics.
TEST(ApiTest, AFlakyHostIsDegradedNotOfflineAndOnlyTransitionsAreRecorded) {
  FleetFixture fx(ApiFleet({"--fault-rate", "0.1", "--seed", "7"}, "1h", "1s"));
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("ci");
  ApiLoop api(fx);
  ASSERT_TRUE(api.ok()) << fx.LoopLog();
  ASSERT_TRUE(api.Ready()) << fx.LoopLog();
  std::this_thread::sleep_for(std::chrono::seconds(60));
  const std::string log = fx.LoopLog();
  EXPECT_FALSE(Contains(log, "is offline"))
      << log.substr(log.size() > 6000 ? log.size() - 6000 : 0);
  const json hosts = api.GetJson("/api/v1/hosts")["hosts"];
  size_t degraded = 0;
  for (const json& h : hosts) {
    EXPECT_NE(h.value("state", ""), "offline") << h.dump();
    if (h.value("state", "") == "degraded") {
      ++degraded;
      EXPECT_GT(h.value("error_rate", 0.0), 0.0) << h.dump();
    }
  }
  EXPECT_GT(degraded, 0U) << hosts.dump(2);
  httplib::Result metrics = api.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_TRUE(Contains(metrics->body, "state=\"degraded\"")) << metrics->body;
  // Warnings mark transitions: a few per host in a minute, not one per failed request.
  size_t transitions = 0;
  for (size_t at = log.find("is degraded"); at != std::string::npos;
       at = log.find("is degraded", at + 1)) {
    ++transitions;
  }
  EXPECT_LE(transitions, 3U * 3U) << log;
}

}  // namespace
}  // namespace flotilla::api_test
