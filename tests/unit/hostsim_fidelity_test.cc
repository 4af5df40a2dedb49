// flotilla-hostsim against the real prl-devops-service, behaviour by behaviour and version by
// version, from the service's source (../shared/reference/parallels-real-service-audit.md): what
// the Parallels provider must cope with on real hosts.

#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/wait_until.h"
#include "tests/unit/hostsim_fixture.h"

namespace flotilla::hostsim {
namespace {

using flotilla::testing::WaitUntil;
using nlohmann::json;
using std::chrono::milliseconds;
using testing::Answer;
using testing::Base64;
using testing::HostsimTest;
using testing::TestOptions;

// --- versions
// -------------------------------------------------------------------------------------

// Login by username and by API key arrived in 1.0.1; before, LoginRequest is {email, password}
// (and the email field still matches a user name). Async create, jobs and cache arrived in 1.0.0.
TEST_F(HostsimTest, VersionsGateLoginFieldsAndAsyncCreate) {
  for (const char* version : {"0.9.21", "1.0.0", "1.0.1"}) {
    SCOPED_TRACE(version);
    SimOptions o = TestOptions();
    o.version = version;
    sim_.reset();
    Start(o);
    const bool modern = std::string(version) == "1.0.1";
    const bool has_async = std::string(version) != "0.9.21";
    Answer by_username =
        Call("POST", "/api/v1/auth/token",
             json{{"username", "root"}, {"password", "Secret-Passw0rd"}}.dump(), "");
    EXPECT_EQ(by_username.status, modern ? 200 : 400) << by_username.body;
    if (!modern) {
      EXPECT_EQ(by_username.Json()["message"], "Invalid request body: Email is required");
    }
    Answer by_email = Call(
        "POST", "/api/v1/auth/token",
        json{{"email", "root"}, {"username", "root"}, {"password", "Secret-Passw0rd"}}.dump(), "");
    EXPECT_EQ(by_email.status, 200) << by_email.body;
    Answer by_key = Call("POST", "/api/v1/auth/token",
                         json{{"api_key", Base64("CI-KEY:ci-secret")}}.dump(), "");
    EXPECT_EQ(by_key.status, modern ? 200 : 400) << by_key.body;

    EXPECT_EQ(Call("POST", "/api/v1/machines/async", CreateBody("a").dump()).status,
              has_async ? 202 : 404);
    EXPECT_EQ(Call("GET", "/api/v1/cache").status, has_async ? 200 : 404);
    Answer jobs = Call("GET", "/api/v1/jobs", "", by_email.Json().value("token", ""));
    EXPECT_EQ(jobs.status, has_async ? 200 : 404);
    // State changes are GET before 1.0.5.
    AddVm("vm", "linux", "stopped");
    EXPECT_EQ(Call("GET", "/api/v1/machines/vm/start").status, 200);
  }
}

// --- jobs
// -----------------------------------------------------------------------------------------

// Only a login token sets a user; the jobs endpoints need one, so API keys get 401 although
// the async create they started was accepted.
TEST_F(HostsimTest, JobsAnswerApiKeysWithUserNotFound) {
  Start();
  Answer a = Call("POST", "/api/v1/machines/async", CreateBody("runner").dump());
  ASSERT_EQ(a.status, 202) << a.body;
  const std::string id = a.Json()["id"];
  Answer by_key = Call("GET", "/api/v1/jobs/" + id);
  EXPECT_EQ(by_key.status, 401);
  EXPECT_EQ(by_key.Json(), json({{"message", "User not found"}, {"code", 401}}));
  EXPECT_EQ(Call("GET", "/api/v1/jobs").status, 401);
  // A token made from the same key (1.0.1+) reads it.
  const std::string token =
      Call("POST", "/api/v1/auth/token", json{{"api_key", Base64("CI-KEY:ci-secret")}}.dump(), "")
          .Json()
          .value("token", "");
  EXPECT_EQ(Call("GET", "/api/v1/jobs/" + id, "", token).status, 200);
  EXPECT_EQ(WaitJob(id)["state"], "completed");
}

// The download step reports bytes, a total and an estimate while it runs.
TEST_F(HostsimTest, PullProgressIsReportedInTheDownloadStep) {
  SimOptions o = TestOptions();
  o.latency["pull"] = milliseconds(3000);
  Start(o);
  const std::string token = Login();
  Answer a = Call("POST", "/api/v1/machines/async", CreateBody("runner").dump(), token);
  ASSERT_EQ(a.status, 202) << a.body;
  const std::string id = a.Json()["id"];
  json download;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    const json job = Call("GET", "/api/v1/jobs/" + id, "", token).Json();
    for (const json& step : job["steps"]) {
      if (step["name"] == "Downloading pack file" && step["state"] == "running" &&
          step["value"].get<int64_t>() > 0) {
        download = step;
      }
    }
    if (!download.is_null()) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_FALSE(download.is_null()) << "no download progress seen";
  EXPECT_EQ(download["has_percentage"], true);
  EXPECT_EQ(download["total"], 20480);
  EXPECT_EQ(download["unit"], "MB");
  EXPECT_LT(download["value"].get<int64_t>(), 20480);
  EXPECT_FALSE(download["eta"].get<std::string>().empty());
  EXPECT_EQ(WaitJob(id)["state"], "completed");
}

// A job without an update for the ghost timeout is failed with "Canceled Job" (1.0.1+), while
// the pull goes on and registers its VM regardless.
TEST_F(HostsimTest, StaleJobsAreCanceledWhileThePullGoesOn) {
  SimOptions o = TestOptions();
  o.ghost_job_timeout = milliseconds(200);
  o.latency["create"] = milliseconds(6000);  // registering: no job updates
  Start(o);
  Answer a = Call("POST", "/api/v1/machines/async", CreateBody("runner").dump());
  ASSERT_EQ(a.status, 202) << a.body;
  const json job = WaitJob(a.Json()["id"]);
  EXPECT_EQ(job["state"], "failed");
  EXPECT_EQ(job["error"], "Canceled Job");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (Call("GET", "/api/v1/machines/runner").status != 200 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(StateOf("runner"), "stopped");
}

// Listing the cache while a pull caches its image rewrites the item's metadata: the pull fails
// its integrity check and registers nothing.
TEST_F(HostsimTest, ListingTheCacheDuringAPullFailsThePull) {
  SimOptions o = TestOptions();
  o.latency["pull"] = milliseconds(500);
  Start(o);
  Answer a = Call("POST", "/api/v1/machines/async", CreateBody("runner").dump());
  ASSERT_EQ(a.status, 202) << a.body;
  ASSERT_EQ(Call("GET", "/api/v1/cache").status, 200);
  const json job = WaitJob(a.Json()["id"]);
  EXPECT_EQ(job["state"], "failed");
  EXPECT_NE(job["error"].get<std::string>().find("Cache is not completed"), std::string::npos);
  EXPECT_EQ(Call("GET", "/api/v1/machines/runner").status, 404);
}

// --- create -------------------------------------------------------------------------------------

// The host applies only specs.cpu and specs.memory: the VM keeps its image's disk and OS.
// Ids are matched and cached the catalog's way (lower case, separators as '_').
TEST_F(HostsimTest, CreateIgnoresSpecsDiskAndTypeAndNormalisesIds) {
  SimOptions o = TestOptions();
  o.catalog = {{"MACOS_BASE", "v1", 40960, GuestOs::kMacos}};
  Start(o);
  json body = CreateBody("runner", "MacOS_Base");
  body["catalog_manifest"]["version"] = "V1";
  body["catalog_manifest"]["specs"]["disk"] = "81920";
  body["catalog_manifest"]["specs"]["type"] = "pvm";
  Answer a = Call("POST", "/api/v1/machines", body.dump());
  ASSERT_EQ(a.status, 200) << a.body;
  const json vm = Call("GET", "/api/v1/machines/runner").Json();
  EXPECT_EQ(vm["Hardware"]["hdd0"]["size"], "40960Mb");
  EXPECT_EQ(vm["OS"], "macosx");
  const json cache = Call("GET", "/api/v1/cache").Json();
  ASSERT_EQ(cache["manifests"].size(), 1u);
  EXPECT_EQ(cache["manifests"][0]["catalog_id"], "macos_base");
  EXPECT_EQ(cache["manifests"][0]["version"], "v1");
}

// A catalog manager holds the connection; it is looked up for a logged-in user only.
TEST_F(HostsimTest, CatalogManagersReplaceTheConnection) {
  SimOptions o = TestOptions();
  o.catalog_managers = {"acme"};
  Start(o);
  json body = CreateBody("runner");
  body["catalog_manifest"].erase("connection");
  body["catalog_manifest"]["catalog_manager_id"] = "acme";
  Answer by_key = Call("POST", "/api/v1/machines", body.dump());
  EXPECT_EQ(by_key.status, 401) << by_key.body;
  EXPECT_EQ(Call("POST", "/api/v1/machines", body.dump(), Login()).status, 200);
  body["catalog_manifest"]["catalog_manager_id"] = "other";
  body["name"] = "second";
  EXPECT_EQ(Call("POST", "/api/v1/machines", body.dump(), Login()).status, 404);
  body["catalog_manifest"]["connection"] = "host=a:b@c";
  EXPECT_EQ(Call("POST", "/api/v1/machines", body.dump(), Login()).status, 400);
}

// --- guests -------------------------------------------------------------------------------------

// A start returns before the guest has booted: until then exec fails inside a 200 answer, and
// the live status shows no address.
TEST_F(HostsimTest, ExecFailsUntilTheGuestHasBooted) {
  SimOptions o = TestOptions();
  o.guest_boot = milliseconds(1500);
  Start(o);
  AddVm("vm", "linux", "stopped");
  ASSERT_EQ(Call("PUT", "/api/v1/machines/vm/start").status, 200);
  const json command = {{"command", "echo up"}};
  Answer early = Call("PUT", "/api/v1/machines/vm/execute", command.dump());
  ASSERT_EQ(early.status, 200);
  EXPECT_NE(early.Json()["exit_code"], 0);
  EXPECT_FALSE(early.Json().value("error", "").empty());
  EXPECT_EQ(Call("GET", "/api/v1/machines/vm/status").Json()["ip_configured"], "-");
  // Booted: the status shows an address, and from then on exec runs.
  ASSERT_TRUE(WaitUntil(
      [&] { return Call("GET", "/api/v1/machines/vm/status").Json()["ip_configured"] != "-"; }));
  Answer booted = Call("PUT", "/api/v1/machines/vm/execute", command.dump());
  EXPECT_EQ(booted.Json(), json({{"stdout", "up"}, {"exit_code", 0}}));
}

// ExecuteWithOutput's shaping: stderr is blanked on success; a failure keeps it and says
// "<stderr>, err: exit status N"; the prlctl time limit kills the command (exit -1) while its
// detached children live on.
TEST_F(HostsimTest, ExecShapesOutputAndKillsCommandsPastTheTimeLimit) {
  SimOptions o = TestOptions();
  o.prlctl_timeout = milliseconds(700);
  Start(o);
  AddVm("vm", "linux", "running");
  auto exec = [&](const std::string& command) {
    return Call("PUT", "/api/v1/machines/vm/execute", json{{"command", command}}.dump()).Json();
  };
  EXPECT_EQ(exec("echo out; echo err >&2"), json({{"stdout", "out"}, {"exit_code", 0}}));
  EXPECT_EQ(exec("echo out; echo err >&2; exit 3"), json({{"stdout", "out"},
                                                          {"stderr", "err"},
                                                          {"exit_code", 3},
                                                          {"error", "err\n, err: exit status 3"}}));
  const json killed = exec("sleep 5");
  EXPECT_EQ(killed["exit_code"], -1);
  EXPECT_EQ(killed["error"], ", err: signal: killed");
  // A command started in the background, with its output elsewhere, outlives the limit.
  EXPECT_EQ(exec("nohup sh -c 'sleep 1; echo done > marker' >/dev/null 2>&1 &")["exit_code"], 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  json marker;
  while (std::chrono::steady_clock::now() < deadline) {
    marker = exec("cat marker");
    if (marker["exit_code"] == 0) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(marker, json({{"stdout", "done"}, {"exit_code", 0}}));
}

// At most exec_slots commands run in a host's guests at once; the others wait their turn.
TEST_F(HostsimTest, ExecsWaitForASlot) {
  SimOptions o = TestOptions();
  o.exec_slots = 1;
  Start(o);
  AddVm("vm", "linux", "running");
  const json command = {{"command", "echo begin >> log; sleep 0.3; echo end >> log"}};
  std::thread first([&] { Call("PUT", "/api/v1/machines/vm/execute", command.dump()); });
  std::thread second([&] { Call("PUT", "/api/v1/machines/vm/execute", command.dump()); });
  first.join();
  second.join();
  const json log =
      Call("PUT", "/api/v1/machines/vm/execute", json{{"command", "cat log"}}.dump()).Json();
  EXPECT_EQ(log["stdout"], "begin\nend\nbegin\nend");
}

// --- configure ----------------------------------------------------------------------------------

// Every operation runs, and the first error is the answer; hdd0 grows through the device group.
TEST_F(HostsimTest, SetRunsEveryOperationAndGrowsTheDisk) {
  Start();
  AddVm("vm", "linux", "stopped", 2, 2048, 40000);
  const json ops = {{"operations",
                     {{{"group", "cpu"}, {"operation", "set"}, {"value", "nope"}},
                      {{"group", "memory"}, {"operation", "set"}, {"value", "8192"}},
                      {{"group", "device"},
                       {"operation", "set"},
                       {"value", "hdd0"},
                       {"options", {{{"flag", "size"}, {"value", "81920"}}}}}}}};
  Answer partly = Call("PUT", "/api/v1/machines/vm/set", ops.dump());
  EXPECT_EQ(partly.status, 404);
  EXPECT_NE(partly.Json()["message"].get<std::string>().find("invalid cpu"), std::string::npos);
  const json vm = Call("GET", "/api/v1/machines/vm").Json();
  EXPECT_EQ(vm["Hardware"]["memory"]["size"], "8192Mb");
  EXPECT_EQ(vm["Hardware"]["hdd0"]["size"], "81920Mb");
  const json shrink = {{"operations",
                        {{{"group", "device"},
                          {"operation", "set"},
                          {"value", "hdd0"},
                          {"options", {{{"flag", "size"}, {"value", "1000"}}}}}}}};
  EXPECT_EQ(Call("PUT", "/api/v1/machines/vm/set", shrink.dump()).status, 404);
}

// --- the service's caches and guards ------------------------------------------------------------

// The VM list follows the host's VM cache: a change shows there --list-lag later, while a
// lookup by id or name is current.
TEST_F(HostsimTest, VmListLagsBehindLookups) {
  SimOptions o = TestOptions();
  o.list_lag = milliseconds(1500);
  Start(o);
  AddVm("vm", "linux", "stopped");
  auto listed = [&] { return Call("GET", "/api/v1/machines").Json().size(); };
  ASSERT_TRUE(WaitUntil([&] { return listed() == 1u; }));  // the list has caught up
  ASSERT_EQ(Call("DELETE", "/api/v1/machines/vm").status, 202);
  EXPECT_EQ(Call("GET", "/api/v1/machines/vm").status, 404);
  EXPECT_EQ(listed(), 1u);
  EXPECT_TRUE(WaitUntil([&] { return listed() == 0u; }));
}

// After the limit of failed logins each further failure sleeps in the request, longer each
// time; the right password still works and resets the count.
TEST_F(HostsimTest, BruteForceGuardDelaysRepeatedFailedLogins) {
  SimOptions o = TestOptions();
  o.brute_force_attempts = 2;
  o.brute_force_wait = milliseconds(400);
  Start(o);
  auto login = [&](const std::string& password) {
    const auto started = std::chrono::steady_clock::now();
    Answer a = Call("POST", "/api/v1/auth/token",
                    json{{"email", "root"}, {"password", password}}.dump(), "");
    return std::make_pair(a.status, std::chrono::steady_clock::now() - started);
  };
  EXPECT_LT(login("wrong").second, milliseconds(400));
  const auto second = login("wrong");
  EXPECT_EQ(second.first, 404);
  EXPECT_GE(second.second, milliseconds(400));
  EXPECT_GE(login("wrong").second, milliseconds(800));
  EXPECT_EQ(login("Secret-Passw0rd").first, 200);
  EXPECT_LT(login("wrong").second, milliseconds(400));
  // An unknown user is not counted: 404 "user not found" at once.
  Answer unknown =
      Call("POST", "/api/v1/auth/token", json{{"email", "nobody"}, {"password", "x"}}.dump(), "");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.Json()["message"], "user not found");
}

}  // namespace
}  // namespace flotilla::hostsim
