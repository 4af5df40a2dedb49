// flotilla-hostsim over real HTTP: the simulator runs in-process on 127.0.0.1 port 0 and is
// exercised with httplib::Client, the way the Parallels provider talks to it.

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "providers/hostsim/sim_options.h"
#include "providers/hostsim/sim_server.h"
#include "tests/unit/hostsim_fixture.h"

namespace flotilla::hostsim {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::Answer;
using testing::Base64;
using testing::HostsimTest;
using testing::TestOptions;

// --- wire basics ------------------------------------------------------------------------------

TEST_F(HostsimTest, ServesBothPathFormsWithExactContentType) {
  Start();
  for (const char* path : {"/api/v1/health/probe", "/api/health/probe"}) {
    Answer a = Call("GET", path, "", "");
    EXPECT_EQ(a.status, 200) << path;
    EXPECT_EQ(a.Json(), json({{"status", "OK"}})) << path;
    EXPECT_EQ(a.content_type, "application/json") << path;
  }
  Answer health = Call("GET", "/api/health/system", "", "");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.Json()["healthy"], true);
  EXPECT_EQ(health.Json()["services"][0]["name"], "Parallels Desktop Service");

  AddVm("gone", "linux", "stopped");
  Answer del = Call("DELETE", "/api/machines/gone");
  EXPECT_EQ(del.status, 202);
  EXPECT_EQ(del.body, "");
  EXPECT_TRUE(del.has_content_type);
  EXPECT_EQ(del.content_type, "application/json");
}

// What curl sends for `curl -X PUT URL`: no Content-Length. The Go service accepts it.
TEST_F(HostsimTest, AcceptsAPutWithoutContentLength) {
  Start();
  AddVm("vm", "linux", "stopped");
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(sim_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "PUT /api/v1/machines/vm/start HTTP/1.1\r\nHost: sim\r\nX-Api-Key: " +
                              Base64("ci-key:ci-secret") + "\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) {
    response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
  EXPECT_EQ(StateOf("vm"), "running");
}

// The service's router (gorilla/mux 1.8.1, one subrouter per route) never answers 405: a known
// path with the wrong verb gets the same 404 as an unknown path.
TEST_F(HostsimTest, UnknownPathAndWrongMethodAre404) {
  Start();
  Answer a = Call("GET", "/api/v1/no/such/thing");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.Json(),
            json({{"message", "resource /api/v1/no/such/thing not found"}, {"code", 404}}));
  EXPECT_EQ(a.content_type, "application/json");

  Answer b = Call("POST", "/api/v1/health/probe");
  EXPECT_EQ(b.status, 404);
  EXPECT_EQ(b.Json(),
            json({{"message", "resource /api/v1/health/probe not found"}, {"code", 404}}));
  EXPECT_EQ(b.content_type, "application/json");

  // The control API does not exist without --control.
  SimOptions o = TestOptions();
  o.control = false;
  sim_.reset();
  Start(o);
  EXPECT_EQ(Control("GET", "hosts").status, 404);
}

// --- authentication -----------------------------------------------------------------------------

TEST_F(HostsimTest, BearerTokenAndApiKeyAuthenticate) {
  Start();
  Answer login = Call("POST", "/api/v1/auth/token",
                      json{{"email", "ROOT"}, {"password", "Secret-Passw0rd"}}.dump(), "");
  ASSERT_EQ(login.status, 200) << login.body;
  const json token = login.Json();
  EXPECT_EQ(token["email"], "root@localhost");
  EXPECT_GT(token["expires_at"].get<int64_t>(), 1'700'000'000);
  EXPECT_EQ(Call("GET", "/api/v1/machines", "", token["token"]).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/machines", "", "key").status, 200);

  Answer valid =
      Call("POST", "/api/v1/auth/token/validate", json{{"token", token["token"]}}.dump(), "");
  EXPECT_EQ(valid.status, 200);
  EXPECT_EQ(valid.Json(), json({{"valid", true}}));

  // Login with the API key yields a token too.
  Answer key_login =
      Call("POST", "/api/v1/auth/token", json{{"api_key", Base64("CI-KEY:ci-secret")}}.dump(), "");
  EXPECT_EQ(key_login.status, 200);
}

TEST_F(HostsimTest, AuthFailuresHaveTheServiceShapes) {
  Start();
  const std::string token = Login();
  // Both headers: nobody authenticates, body null.
  Answer both =
      Call("GET", "/api/v1/machines", "", token, {{"X-Api-Key", Base64("ci-key:ci-secret")}});
  EXPECT_EQ(both.status, 401);
  EXPECT_EQ(both.body, "null");

  Answer none = Call("GET", "/api/v1/machines", "", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.Json(),
            json({{"error", "unauthorized_client"},
                  {"error_description", "API key must be in format base64(key:secret)"}}));

  Answer unknown = Call("GET", "/api/v1/machines", "", "not-a-token");
  EXPECT_EQ(unknown.Json()["error_description"], "Invalid token");

  Answer bad_secret =
      Call("GET", "/api/v1/machines", "", "", {{"X-Api-Key", Base64("ci-key:wrong")}});
  EXPECT_EQ(bad_secret.status, 401);
  EXPECT_EQ(bad_secret.Json()["error_description"], "Invalid API key secret");

  Answer wrong_password = Call("POST", "/api/v1/auth/token",
                               json{{"username", "root"}, {"password", "nope"}}.dump(), "");
  EXPECT_EQ(wrong_password.status, 404);
  EXPECT_EQ(wrong_password.Json()["message"], "Invalid user or Password");
  EXPECT_EQ(wrong_password.Json()["code"], 404);
  EXPECT_TRUE(wrong_password.Json().contains("diagnostics"));

  EXPECT_EQ(Call("POST", "/api/v1/auth/token", "{not json", "").status, 400);

  // Tokens expire (here: forced through the control API).
  ASSERT_EQ(Control("POST", "hosts/sim/expire-tokens").status, 200);
  Answer expired = Call("GET", "/api/v1/machines", "", token);
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(expired.Json(),
            json({{"error", "unauthorized_client"}, {"error_description", "Token is expired"}}));
  EXPECT_EQ(Call("POST", "/api/v1/auth/token/validate", json{{"token", token}}.dump(), "").status,
            401);
}

// --- hardware -----------------------------------------------------------------------------------

TEST_F(HostsimTest, HardwareCountsRunningAsInUseAndStoppedAsReserved) {
  SimOptions o = TestOptions();
  o.cpu = 12;
  o.memory_mb = 32768;
  o.disk_mb = 1000000;
  o.disk_used_mb = 40000;
  Start(o);
  const std::string mac = AddVm("mac-1", "macos", "running", 4, 8192, 60000);
  AddVm("lin-1", "linux", "stopped", 2, 4096, 10000);

  Answer a = Call("GET", "/api/v1/config/hardware");
  ASSERT_EQ(a.status, 200) << a.body;
  const json hw = a.Json();
  EXPECT_EQ(hw["cpu_type"], "arm64");
  EXPECT_EQ(hw["devops_version"], "1.0.5");
  EXPECT_EQ(hw["os_name"], "macOS");
  EXPECT_EQ(hw["system_reserved"],
            json({{"logical_cpu_count", 1}, {"memory_size", 2048}, {"disk_count", 20000}}));
  EXPECT_EQ(hw["total"]["logical_cpu_count"], 12);
  EXPECT_EQ(hw["total"]["physical_cpu_count"], 12);
  EXPECT_EQ(hw["total"]["memory_size"], 32768);
  EXPECT_EQ(hw["total_in_use"]["logical_cpu_count"], 4);
  EXPECT_EQ(hw["total_in_use"]["memory_size"], 8192);
  EXPECT_EQ(hw["total_in_use"]["mac_vms_running"], json::array({mac}));
  EXPECT_EQ(hw["total_reserved"]["logical_cpu_count"], 2);
  EXPECT_EQ(hw["total_reserved"]["memory_size"], 4096);
  // Stopped VMs do not reduce cpu/memory availability.
  EXPECT_EQ(hw["total_available"]["logical_cpu_count"], 12 - 1 - 4);
  EXPECT_EQ(hw["total_available"]["memory_size"], 32768 - 2048 - 8192);
  // The real disk figures: the Parallels home's statfs.
  EXPECT_EQ(hw["total_available"]["prl_home_free_size"], 1000000 - 110000);
  EXPECT_EQ(hw["total_available"]["prl_home_total_size"], 1000000);
}

// `df -h /` on macOS 11+ reports the sealed system volume as Used, and the service reads that
// column as free disk: total.disk_count = Size - Used, total_available.disk_count = Used,
// whatever the VMs take.
TEST_F(HostsimTest, HardwareReportsDfUsedColumnAsFreeDisk) {
  SimOptions o = TestOptions();
  o.disk_mb = 471040;  // 460Gi
  o.disk_used_mb = 40000;
  o.system_volume_used_mb = 10240;  // 10Gi
  Start(o);
  AddVm("big", "linux", "stopped", 2, 2048, 200000);
  const json hw = Call("GET", "/api/v1/config/hardware").Json();
  EXPECT_EQ(hw["total"]["disk_count"], 471040 - 10240);
  EXPECT_EQ(hw["total_available"]["disk_count"], 10240);
  EXPECT_EQ(hw["total_available"]["prl_home_free_size"], 471040 - 40000 - 200000);
}

// mac_vms_running lists running VMs whose OS is macOS or whose name contains "mac"; the list is
// omitted when empty, and before 1.0.0 it does not exist (nor do the prl_home sizes).
TEST_F(HostsimTest, MacVmsRunningCountsNamesWithMacAndIsAbsentOnOldVersions) {
  Start();
  const std::string emacs = AddVm("emacs-dev", "linux", "running");
  AddVm("web", "linux", "running");
  json hw = Call("GET", "/api/v1/config/hardware").Json();
  EXPECT_EQ(hw["total_in_use"]["mac_vms_running"], json::array({emacs}));
  ASSERT_EQ(Call("PUT", "/api/v1/machines/emacs-dev/stop").status, 200);
  hw = Call("GET", "/api/v1/config/hardware").Json();
  EXPECT_FALSE(hw["total_in_use"].contains("mac_vms_running"));

  SimOptions o = TestOptions();
  o.version = "0.9.21";
  sim_.reset();
  Start(o);
  AddVm("mac-1", "macos", "running");
  hw = Call("GET", "/api/v1/config/hardware").Json();
  EXPECT_FALSE(hw["total_in_use"].contains("mac_vms_running"));
  EXPECT_FALSE(hw["total_available"].contains("prl_home_free_size"));
  EXPECT_FALSE(hw["total_available"].contains("prl_home_total_size"));
}

// --- create -------------------------------------------------------------------------------------

TEST_F(HostsimTest, SyncCreateRegistersAStoppedVmAndCachesTheImage) {
  Start();
  Answer a = Call("POST", "/api/v1/machines", CreateBody("web-01").dump());
  ASSERT_EQ(a.status, 200) << a.body;
  const json created = a.Json();
  EXPECT_EQ(created["name"], "web-01");
  EXPECT_EQ(created["current_state"], "stopped");
  EXPECT_EQ(created["owner"], "root");

  const json vm = Call("GET", "/api/v1/machines/" + created["id"].get<std::string>()).Json();
  EXPECT_EQ(vm["Name"], "web-01");
  EXPECT_EQ(vm["Type"], "VM");
  EXPECT_EQ(vm["OS"], "ubuntu");
  EXPECT_EQ(vm["Hardware"]["cpu"]["cpus"], 4);
  EXPECT_EQ(vm["Hardware"]["memory"]["size"], "8192Mb");
  EXPECT_EQ(vm["internal_ip_address"], "");

  const json cache = Call("GET", "/api/v1/cache").Json();
  ASSERT_EQ(cache["manifests"].size(), 1u);
  // Stored as the catalog normalised them (lower case, separators as '_').
  EXPECT_EQ(cache["manifests"][0]["catalog_id"], "ubuntu-22");
  EXPECT_EQ(cache["manifests"][0]["version"], "1.0.0");
  EXPECT_EQ(cache["manifests"][0]["architecture"], "arm64");
  EXPECT_EQ(cache["manifests"][0]["cache_type"], "pvm");
  EXPECT_EQ(Call("GET", "/api/catalog/cache").status, 200);

  // Request validation.
  Answer no_template = Call("POST", "/api/v1/machines", json{{"name", "x"}}.dump());
  EXPECT_EQ(no_template.status, 400);
  EXPECT_EQ(no_template.Json()["message"], "Invalid request body: no template was specified");
  json no_connection = CreateBody("y");
  no_connection["catalog_manifest"].erase("connection");
  Answer nc = Call("POST", "/api/v1/machines", no_connection.dump());
  EXPECT_EQ(nc.status, 400);
  EXPECT_EQ(nc.Json()["message"],
            "missing connection or catalog_manager_id; local catalog is not enabled");
  EXPECT_EQ(Call("POST", "/api/v1/machines",
                 json{{"name", "z"}, {"vagrant_box", {{"box", "hashicorp/bionic64"}}}}.dump())
                .status,
            400);
}

TEST_F(HostsimTest, AsyncCreateReturnsAJobThatCompletes) {
  Start();
  Answer a = Call("POST", "/api/machines/async",
                  CreateBody("MACOS-runner", "macos-sequoia", /*start=*/true).dump());
  ASSERT_EQ(a.status, 202) << a.body;
  const json accepted = a.Json();
  EXPECT_EQ(accepted["job_type"], "machines");
  // Nothing in a job names its VM until it completes.
  EXPECT_FALSE(accepted.contains("result_record_name")) << accepted.dump();
  EXPECT_EQ(accepted["job_operation"], "create");
  const json job = WaitJob(accepted["id"]);
  ASSERT_EQ(job["state"], "completed") << job.dump();
  EXPECT_EQ(job["progress"], 100);
  EXPECT_EQ(job["result_record_type"], "virtual_machine");
  EXPECT_EQ(job["result_record_name"], "MACOS-runner");
  const json vm =
      Call("GET", "/api/v1/machines/" + job["result_record_id"].get<std::string>()).Json();
  EXPECT_EQ(vm["Type"], "APPLE_VZ_VM");
  EXPECT_EQ(vm["OS"], "macosx");
  EXPECT_EQ(vm["State"], "running");
  EXPECT_EQ(vm["Network"]["ipAddresses"][0]["type"], "ipv4");
  EXPECT_EQ(Call("GET", "/api/v1/jobs", "", Login()).Json().size(), 1u);
}

TEST_F(HostsimTest, CreateRejectsANameThatAnExistingNameMatchesAsARegex) {
  Start();
  AddVm("ios-10", "linux", "stopped");
  Answer sync = Call("POST", "/api/v1/machines", CreateBody("ios-1").dump());
  EXPECT_EQ(sync.status, 400);
  EXPECT_EQ(
      sync.Json(),
      json({{"message", "error 400: Error pulling manifest: \n\nmachine ios-1 already exists"},
            {"code", 400}}));

  Answer async = Call("POST", "/api/v1/machines/async", CreateBody("ios-1").dump());
  ASSERT_EQ(async.status, 202);
  const json job = WaitJob(async.Json()["id"]);
  EXPECT_EQ(job["state"], "failed");
  EXPECT_EQ(job["error"], "error 400: Error pulling manifest: \n\nmachine ios-1 already exists");
  // A name that no existing name contains is fine.
  EXPECT_EQ(Call("POST", "/api/v1/machines", CreateBody("ios-100").dump()).status, 200);
}

TEST_F(HostsimTest, CreateFailsWhenTheDiskIsFullOrTheImageIsUnknown) {
  SimOptions o = TestOptions();
  o.disk_mb = 50000;
  o.disk_used_mb = 40000;
  o.catalog = {{"UBUNTU-22", "1.0.0", 20000, GuestOs::kLinux}};
  Start(o);
  Answer full = Call("POST", "/api/v1/machines", CreateBody("big").dump());
  EXPECT_EQ(full.status, 400);
  EXPECT_NE(full.Json()["message"].get<std::string>().find("not enough disk space"),
            std::string::npos)
      << full.body;
  Answer unknown = Call("POST", "/api/v1/machines", CreateBody("x", "NOPE").dump());
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.Json()["message"].get<std::string>().find("not found"), std::string::npos);
  json bad_arch = CreateBody("y");
  bad_arch["architecture"] = "sparc";
  Answer arch = Call("POST", "/api/v1/machines", bad_arch.dump());
  EXPECT_EQ(arch.Json()["message"], "error 400: Error pulling manifest: \n\ninvalid architecture");
}

// --- state operations ---------------------------------------------------------------------------

TEST_F(HostsimTest, ThirdMacosStartHitsTheAppleLimit) {
  Start();
  AddVm("mac-a", "macos", "running");
  AddVm("mac-b", "macos", "running");
  AddVm("mac-c", "macos", "stopped");
  AddVm("lin", "linux", "stopped");
  Answer a = Call("PUT", "/api/v1/machines/mac-c/start");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.Json()["message"],
            "Failed to start the VM: the maximum number of running macOS virtual machines (2) "
            "has been reached.");
  EXPECT_EQ(StateOf("mac-c"), "stopped");
  EXPECT_EQ(Call("PUT", "/api/v1/machines/lin/start").status, 200);
  // Once one stops, the third may start.
  EXPECT_EQ(Call("PUT", "/api/v1/machines/mac-a/stop").status, 200);
  EXPECT_EQ(Call("PUT", "/api/v1/machines/mac-c/start").status, 200);
  EXPECT_EQ(StateOf("mac-c"), "running");
}

TEST_F(HostsimTest, StateTableNoOpsAndErrors) {
  Start();
  AddVm("run", "linux", "running");
  AddVm("off", "linux", "stopped");
  AddVm("sus", "linux", "suspended");
  AddVm("pau", "linux", "paused");

  Answer noop = Call("PUT", "/api/v1/machines/RUN/start");
  EXPECT_EQ(noop.status, 200);
  EXPECT_EQ(noop.Json(), json({{"id", "RUN"}, {"operation", "Start"}, {"status", "Success"}}));
  Answer resume = Call("PUT", "/api/v1/machines/run/resume");
  EXPECT_EQ(resume.status, 400);
  EXPECT_EQ(resume.Json(),
            json({{"message", "error: VM is not paused or suspended"}, {"code", 400}}));
  EXPECT_EQ(Call("PUT", "/api/v1/machines/off/stop").status, 200);
  EXPECT_EQ(Call("PUT", "/api/v1/machines/off/restart").status, 200);
  EXPECT_EQ(StateOf("off"), "stopped");
  Answer start_suspended = Call("PUT", "/api/v1/machines/sus/start");
  EXPECT_EQ(start_suspended.status, 400);
  EXPECT_EQ(start_suspended.Json()["message"], "error: VM is not stopped");
  Answer stop_paused = Call("PUT", "/api/v1/machines/pau/stop");
  EXPECT_EQ(stop_paused.status, 400);
  EXPECT_EQ(stop_paused.Json()["message"], "error: VM is not running");
  EXPECT_EQ(Call("PUT", "/api/v1/machines/pau/stop?force=true").status, 200);
  EXPECT_EQ(StateOf("pau"), "stopped");
  EXPECT_EQ(Call("PUT", "/api/v1/machines/sus/resume").status, 200);
  EXPECT_EQ(StateOf("sus"), "running");
  EXPECT_EQ(Call("PUT", "/api/v1/machines/run/pause").status, 200);
  EXPECT_EQ(Call("PUT", "/api/v1/machines/run/pause").status, 200);  // no-op
  EXPECT_EQ(StateOf("run"), "paused");

  const json status = Call("GET", "/api/v1/machines/sus/status").Json();
  EXPECT_EQ(status["status"], "running");
  EXPECT_EQ(status["id"].get<std::string>().front(), '{');
  EXPECT_EQ(status["ip_configured"].get<std::string>().rfind("10.211.55.", 0), 0u);

  Answer missing = Call("PUT", "/api/v1/machines/ghost/start");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Json(),
            json({{"message", "error 404: Virtual machine not found"}, {"code", 404}}));
}

TEST_F(HostsimTest, AnOperationInFlightShowsATransitionalStateAndBlocksOthers) {
  SimOptions o = TestOptions();
  o.latency["start"] = milliseconds(1500);
  Start(o);
  AddVm("slow", "linux", "stopped");
  AddVm("other", "linux", "stopped");
  std::thread starter([&] { EXPECT_EQ(Call("PUT", "/api/v1/machines/slow/start").status, 200); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (StateOf("slow") != "starting" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(StateOf("slow"), "starting");
  Answer second = Call("PUT", "/api/v1/machines/slow/start");
  EXPECT_EQ(second.status, 400);
  EXPECT_EQ(second.Json()["message"], "error: VM is not stopped");
  // Other VMs on the host are not blocked by the slow one.
  EXPECT_EQ(Call("PUT", "/api/v1/machines/other/stop").status, 200);
  starter.join();
  EXPECT_EQ(StateOf("slow"), "running");
}

TEST_F(HostsimTest, IgnoredGracefulStopFailsButForceStops) {
  Start();
  AddVm("stubborn", "linux", "running");
  ASSERT_EQ(Control("PATCH", "hosts/sim/vms/stubborn", {{"ignore_graceful_stop", true}}).status,
            200);
  Answer stop = Call("PUT", "/api/v1/machines/stubborn/stop");
  EXPECT_EQ(stop.status, 404);
  EXPECT_EQ(stop.Json()["message"], "Failed to stop the VM: the operation timed out.");
  EXPECT_EQ(StateOf("stubborn"), "running");
  EXPECT_EQ(Call("PUT", "/api/v1/machines/stubborn/stop?force=true").status, 200);
  EXPECT_EQ(StateOf("stubborn"), "stopped");
}

TEST_F(HostsimTest, Version104ServesStateOpsAsGet) {
  SimOptions o = TestOptions();
  o.version = "1.0.4";
  Start(o);
  AddVm("vm", "linux", "stopped");
  Answer put = Call("PUT", "/api/v1/machines/vm/start");
  EXPECT_EQ(put.status, 404);
  EXPECT_EQ(put.Json()["message"], "resource /api/v1/machines/vm/start not found");
  EXPECT_EQ(Call("GET", "/api/v1/machines/vm/start").status, 200);
  EXPECT_EQ(StateOf("vm"), "running");
  EXPECT_EQ(Call("GET", "/api/v1/config/hardware").Json()["devops_version"], "1.0.4");
}

// --- delete, set, execute, clone, rename ------------------------------------------------------

TEST_F(HostsimTest, DeleteOfARunningVmNeedsForce) {
  Start();
  AddVm("busy", "linux", "running", 2, 2048, 30000);
  auto free_disk = [&] {
    return Call("GET", "/api/v1/config/hardware")
        .Json()["total_available"]["prl_home_free_size"]
        .get<int64_t>();
  };
  const int64_t free_before = free_disk();
  Answer refused = Call("DELETE", "/api/v1/machines/busy");
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(refused.Json(), json({{"message", "error: VM is not stopped"}, {"code", 400}}));
  Answer forced = Call("DELETE", "/api/v1/machines/busy?force=true");
  EXPECT_EQ(forced.status, 202);
  EXPECT_EQ(forced.body, "");
  EXPECT_EQ(Call("GET", "/api/v1/machines/busy").status, 404);
  EXPECT_EQ(free_disk(), free_before + 30000);
}

TEST_F(HostsimTest, SetNeedsAStoppedVm) {
  Start();
  AddVm("vm", "linux", "running");
  const json ops = {{"operations",
                     {{{"group", "cpu"}, {"operation", "set"}, {"value", "4"}},
                      {{"group", "memory"}, {"operation", "set"}, {"value", "8192"}}}}};
  Answer running = Call("PUT", "/api/v1/machines/vm/set", ops.dump());
  EXPECT_EQ(running.status, 400);
  EXPECT_EQ(running.Json()["message"], "error: VM is not stopped");
  ASSERT_EQ(Call("PUT", "/api/v1/machines/vm/stop").status, 200);
  Answer stopped = Call("PUT", "/api/v1/machines/vm/set", ops.dump());
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  EXPECT_EQ(stopped.Json(),
            json({{"operations",
                   {{{"group", "cpu"}, {"operation", "set"}, {"status", "Success"}},
                    {{"group", "memory"}, {"operation", "set"}, {"status", "Success"}}}}}));
  const json vm = Call("GET", "/api/v1/machines/vm").Json();
  EXPECT_EQ(vm["Hardware"]["cpu"]["cpus"], 4);
  EXPECT_EQ(vm["Hardware"]["memory"]["size"], "8192Mb");
}

TEST_F(HostsimTest, ExecuteRunsCommandsOnRunningVms) {
  Start();
  AddVm("vm", "linux", "running");
  AddVm("off", "linux", "stopped");
  // With environment variables the service runs `env TOKEN='s3' bash -c '<command>'`.
  const json body = {{"command", "echo ready $TOKEN"},
                     {"environment_variables", {{"TOKEN", "s3"}}}};
  Answer a = Call("PUT", "/api/v1/machines/vm/execute", body.dump());
  ASSERT_EQ(a.status, 200);
  // A trailing newline is cut from stdout; empty fields are omitted.
  EXPECT_EQ(a.Json(), json({{"stdout", "ready s3"}, {"exit_code", 0}}));
  EXPECT_EQ(Call("PUT", "/api/v1/machines/off/execute", body.dump()).Json()["message"],
            "error: VM is not running");
  const json runs = Control("GET", "hosts/sim/vms/vm/executions").Json();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["command"], "echo ready $TOKEN");
  EXPECT_EQ(runs[0]["environment_variables"]["TOKEN"], "s3");
}

TEST_F(HostsimTest, CloneAndRenameRefuseExactNameClashes) {
  Start();
  AddVm("golden", "macos", "stopped", 4, 8192, 40000);
  AddVm("taken", "linux", "stopped");
  Answer clone = Call("PUT", "/api/v1/machines/golden/clone", json{{"clone_name", "copy"}}.dump());
  ASSERT_EQ(clone.status, 200) << clone.body;
  EXPECT_EQ(clone.Json()["status"], "Success");
  const json copy = Call("GET", "/api/v1/machines/" + clone.Json()["id"].get<std::string>()).Json();
  EXPECT_EQ(copy["Name"], "copy");
  EXPECT_EQ(copy["Type"], "APPLE_VZ_VM");
  EXPECT_EQ(copy["State"], "stopped");
  EXPECT_EQ(copy["Hardware"]["hdd0"]["size"], "40000Mb");
  EXPECT_EQ(
      Call("PUT", "/api/v1/machines/golden/clone", json{{"clone_name", "TAKEN"}}.dump()).status,
      404);

  Answer rename = Call("PUT", "/api/v1/machines/copy/rename",
                       json{{"new_name", "copy-2"}, {"description", "d"}}.dump());
  ASSERT_EQ(rename.status, 200);
  EXPECT_EQ(rename.Json()["Name"], "copy-2");
  EXPECT_EQ(rename.Json()["Description"], "d");
  EXPECT_EQ(
      Call("PUT", "/api/v1/machines/copy-2/rename", json{{"new_name", "taken"}}.dump()).status,
      404);
}

// --- filters, faults, hosts, state file -------------------------------------------------------

TEST_F(HostsimTest, XFilterSelectsByUnanchoredRegex) {
  Start();
  AddVm("web-1", "linux", "running");
  AddVm("web-2", "linux", "stopped");
  AddVm("db-1", "linux", "running");
  auto names = [&](const std::string& filter) {
    Answer a = Call("GET", "/api/v1/machines", "", "key", {{"X-Filter", filter}});
    std::vector<std::string> out;
    for (const json& vm : a.Json()) {
      out.push_back(vm["Name"]);
    }
    return out;
  };
  EXPECT_EQ(names("Name=^web"), (std::vector<std::string>{"web-1", "web-2"}));
  EXPECT_EQ(names("state=running"), (std::vector<std::string>{"web-1", "db-1"}));
  EXPECT_EQ(names("Name=WEB,i"), (std::vector<std::string>{"web-1", "web-2"}));
  EXPECT_EQ(names("Name=WEB"), std::vector<std::string>{});
  EXPECT_EQ(names("Name=-1"), (std::vector<std::string>{"web-1", "db-1"}));
  EXPECT_EQ(Call("GET", "/api/v1/machines", "", "key", {{"X-Filter", "Name"}}).status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/machines", "", "key", {{"X-Filter", "Name=(["}}).status, 404);
}

TEST_F(HostsimTest, InjectedFaultsFailTheNextCallsAndAreCounted) {
  Start();
  ASSERT_EQ(Control("POST", "faults", {{"endpoint", "list"}, {"count", 2}}).status, 200);
  for (int i = 0; i < 2; ++i) {
    Answer a = Call("GET", "/api/v1/machines");
    EXPECT_EQ(a.status, 500);
    EXPECT_EQ(a.Json(), json({{"message", "error 500: injected fault"}, {"code", 500}}));
  }
  EXPECT_EQ(Call("GET", "/api/v1/machines").status, 200);
  const json counters = Control("GET", "counters").Json();
  EXPECT_EQ(counters["sim"]["list"]["calls"], 3);
  EXPECT_EQ(counters["sim"]["list"]["500"], 2);
  EXPECT_EQ(counters["sim"]["list"]["200"], 1);
  ASSERT_EQ(Control("POST", "counters/reset").status, 200);
  EXPECT_EQ(Control("GET", "counters").Json()["sim"], json::object());

  ASSERT_EQ(Control("POST", "faults", {{"endpoint", "start"}, {"status", 503}}).status, 200);
  AddVm("vm", "linux", "stopped");
  EXPECT_EQ(Call("PUT", "/api/v1/machines/vm/start").status, 503);
  EXPECT_EQ(Call("PUT", "/api/v1/machines/vm/start").status, 200);
  EXPECT_EQ(Control("POST", "faults", {{"endpoint", "bogus"}}).status, 400);
}

TEST_F(HostsimTest, ManyHostsAreServedUnderTheirOwnPrefix) {
  SimOptions o = TestOptions();
  o.hosts = 3;
  Start(o);
  const json hosts = Control("GET", "hosts").Json();
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[2]["name"], "sim-002");
  AddVm("only-here", "linux", "stopped", 2, 2048, 1000, "sim-001");
  EXPECT_EQ(Call("GET", "/h/sim-001/api/v1/machines").Json().size(), 1u);
  EXPECT_EQ(Call("GET", "/h/sim-000/api/machines").Json().size(), 0u);
  EXPECT_EQ(Call("GET", "/api/v1/machines").status, 404);
  EXPECT_EQ(Call("GET", "/h/sim-009/api/v1/machines").status, 404);
  // A token from one host is not valid on another.
  Answer login = Call("POST", "/h/sim-000/api/v1/auth/token",
                      json{{"username", "root"}, {"password", "Secret-Passw0rd"}}.dump(), "");
  const std::string token = login.Json()["token"];
  EXPECT_EQ(Call("GET", "/h/sim-000/api/v1/machines", "", token).status, 200);
  EXPECT_EQ(Call("GET", "/h/sim-001/api/v1/machines", "", token).status, 401);
}

TEST_F(HostsimTest, OfflineHostsHangUntilBackOnline) {
  Start();
  ASSERT_EQ(Control("POST", "hosts/sim/offline").status, 200);
  EXPECT_EQ(Control("GET", "hosts").Json()[0]["online"], false);
  Answer timed_out = Call("GET", "/api/health/probe", "", "", {}, milliseconds(200));
  EXPECT_EQ(timed_out.status, 0);  // the client gave up
  ASSERT_EQ(Control("POST", "hosts/sim/online").status, 200);
  EXPECT_EQ(Call("GET", "/api/health/probe", "", "").status, 200);
}

TEST_F(HostsimTest, StateFileSurvivesARestartButTokensDoNot) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("hostsim-state-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::filesystem::create_directories(dir);
  SimOptions o = TestOptions();
  o.state_file = (dir / "state.json").string();
  Start(o);
  ASSERT_EQ(Call("POST", "/api/v1/machines", CreateBody("keeper").dump()).status, 200);
  AddVm("runner", "linux", "running");
  const std::string token = Login();
  ASSERT_EQ(Control("POST", "hosts/sim/offline").status, 200);
  sim_->Stop();
  sim_.reset();
  ASSERT_TRUE(std::filesystem::exists(o.state_file));

  Start(o);
  EXPECT_EQ(Control("GET", "hosts").Json()[0]["online"], false);
  ASSERT_EQ(Control("POST", "hosts/sim/online").status, 200);
  EXPECT_EQ(StateOf("keeper"), "stopped");
  EXPECT_EQ(StateOf("runner"), "running");
  EXPECT_EQ(Call("GET", "/api/v1/cache").Json()["manifests"].size(), 1u);
  EXPECT_EQ(Call("GET", "/api/v1/machines", "", token).status, 401);
  sim_.reset();
  std::filesystem::remove_all(dir);
}

TEST_F(HostsimTest, SameSeedGivesSameUuids) {
  std::string first;
  for (int run = 0; run < 2; ++run) {
    Start();
    Answer a = Call("POST", "/api/v1/machines", CreateBody("det").dump());
    ASSERT_EQ(a.status, 200);
    if (run == 0) {
      first = a.Json()["id"];
    } else {
      EXPECT_EQ(a.Json()["id"], first);
    }
    sim_.reset();
  }
  EXPECT_EQ(first.size(), 36u);
}

TEST_F(HostsimTest, StartOnCreateBeyondTheAppleLimitLeavesTheVmStopped) {
  Start();
  AddVm("mac-a", "macos", "running");
  AddVm("mac-b", "macos", "running");
  Answer a = Call("POST", "/api/v1/machines", CreateBody("mac-c", "MACOS-15", true).dump());
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(a.Json()["message"].get<std::string>().find("maximum number of running macOS"),
            std::string::npos);
  EXPECT_EQ(StateOf("mac-c"), "stopped");
}

// --- options
// --------------------------------------------------------------------------------------

TEST(HostsimOptionsTest, ParsesDurationsLatenciesFaultsAndCatalog) {
  EXPECT_EQ(*ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration("2s"), milliseconds(2000));
  EXPECT_EQ(*ParseDuration("1m"), milliseconds(60000));
  EXPECT_FALSE(ParseDuration("fast").ok());
  EXPECT_FALSE(ParseDuration("2d").ok());

  Result<std::map<std::string, Duration>> lat = ParseLatencySpec("create=20s, pull=1m,start=500ms");
  ASSERT_TRUE(lat.ok());
  EXPECT_EQ(lat->at("pull"), milliseconds(60000));
  EXPECT_EQ(lat->at("start"), milliseconds(500));
  EXPECT_FALSE(ParseLatencySpec("boot=1s").ok());

  double all = 0;
  std::map<std::string, double> rates;
  EXPECT_TRUE(ParseFaultSpec("0.25", &all, &rates).ok());
  EXPECT_DOUBLE_EQ(all, 0.25);
  EXPECT_TRUE(ParseFaultSpec("start=0.5,create_async=1", &all, &rates).ok());
  EXPECT_DOUBLE_EQ(rates.at("create_async"), 1.0);
  EXPECT_FALSE(ParseFaultSpec("start=2", &all, &rates).ok());
  EXPECT_FALSE(ParseFaultSpec("nope=0.1", &all, &rates).ok());

  Result<CatalogImage> image = ParseCatalogSpec("macos-15/v1=32Gi,os=macos");
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->id, "MACOS-15");
  EXPECT_EQ(image->version, "v1");
  EXPECT_EQ(image->size_mb, 32768u);
  EXPECT_EQ(image->os, GuestOs::kMacos);
  EXPECT_FALSE(ParseCatalogSpec("no-version=1Gi").ok());

  std::string host;
  int port = 0;
  EXPECT_TRUE(ParseListen("0.0.0.0:8080", &host, &port).ok());
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 8080);
  EXPECT_FALSE(ParseListen("localhost", &host, &port).ok());
}

TEST(HostsimOptionsTest, RefusesToStartWithoutCredentials) {
  SimOptions o;
  EXPECT_FALSE(Validate(o).ok());
  o.no_auth = true;
  EXPECT_TRUE(Validate(o).ok());
  o.no_auth = false;
  o.api_keys = {{"K", "S"}};
  EXPECT_TRUE(Validate(o).ok());
  o.version = "1.0.3";
  EXPECT_TRUE(Validate(o).ok());
  o.version = "0.9.21";
  EXPECT_TRUE(Validate(o).ok());
  o.version = "1.0.7";
  EXPECT_FALSE(Validate(o).ok());
  o.version = "1.0.5";
  // A guest shell runs what callers send: never without auth on a non-loopback address.
  o.no_auth = true;
  o.listen_host = "0.0.0.0";
  EXPECT_FALSE(Validate(o).ok());
  o.guest_exec = "succeed";
  EXPECT_TRUE(Validate(o).ok());

  std::vector<std::string> args = {"flotilla-hostsim", "--no-auth",    "--hosts",      "2",
                                   "--memory",         "16Gi",         "--latency",    "create=1s",
                                   "--catalog",        "UBUNTU/1=5Gi", "--keep-alive", "2s"};
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  SimOptions parsed;
  EXPECT_EQ(ParseCommandLine(static_cast<int>(argv.size()), argv.data(), &parsed), std::nullopt);
  EXPECT_EQ(parsed.hosts, 2);
  EXPECT_EQ(parsed.memory_mb, 16384u);
  EXPECT_EQ(parsed.latency.at("create"), milliseconds(1000));
  EXPECT_EQ(parsed.catalog.at(0).size_mb, 5120u);
  EXPECT_EQ(parsed.keep_alive, milliseconds(2000));
  EXPECT_EQ(SimOptions{}.keep_alive, milliseconds(60000));
  parsed.keep_alive = milliseconds(500);
  EXPECT_FALSE(Validate(parsed).ok());
}

// --api-key-file keeps secrets out of argv (which `ps` shows); its errors never quote the file.
TEST(SimOptionsTest, ApiKeysFromAFile) {
  const std::string path = ::testing::TempDir() + "/hostsim-api-keys";
  auto parse = [&](const std::string& text, SimOptions* parsed) {
    std::ofstream(path, std::ios::trunc) << text;
    std::vector<std::string> args = {"flotilla-hostsim", "--api-key-file", path};
    std::vector<char*> argv;
    for (std::string& a : args) {
      argv.push_back(a.data());
    }
    return ParseCommandLine(static_cast<int>(argv.size()), argv.data(), parsed);
  };
  SimOptions parsed;
  EXPECT_EQ(parse("dev:s3cret\n\nci:other\n", &parsed), std::nullopt);
  ASSERT_EQ(parsed.api_keys.size(), 2u);
  EXPECT_EQ(parsed.api_keys[0].key, "DEV");
  EXPECT_EQ(parsed.api_keys[0].secret, "s3cret");
  EXPECT_EQ(parsed.api_keys[1].key, "CI");
  SimOptions bad;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(parse("no-colon-s3cret\n", &bad), 2);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("line 1 is not KEY:SECRET"), std::string::npos) << err;
  EXPECT_EQ(err.find("s3cret"), std::string::npos) << err;
  std::remove(path.c_str());
}

}  // namespace
}  // namespace flotilla::hostsim
