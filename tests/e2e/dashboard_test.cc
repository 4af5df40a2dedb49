// The web dashboard in a real browser: each test starts a real fleet (flotilla-hostsim serving 3
// hosts, a Git repository, `flotilla run` with its API and token; tests/support/) and then runs
// one scenario, `node tests/browser/<scenario>.mjs`, which drives Debian's Chromium through
// playwright-core against it and compares what the page shows with the API's JSON.
//
// The fleet: pool `sims` (sim-000..sim-002), VMSets web (3 replicas) and db (2), and an
// unmanaged VM `legacy-build` on sim-002. Screenshots (1280x800) go to
// <build>/dashboard-screenshots/, and with FLOTILLA_UPDATE_DOCS=1 to docs/images/ too:
//   FLOTILLA_UPDATE_DOCS=1 build/bin/dashboard_test
// writes docs/images/dashboard-{overview,hosts,vms,plan,runs,events,run,plan-pending,
// fail-static}.png. They are written, not compared (no two runs draw the same pixels: times,
// commit hashes, IDs), so the update run passes; review them before committing. A failing
// scenario leaves failure-<scenario>-<page>.png beside them.
//
// Node.js, tests/browser/node_modules (npm ci) and /usr/bin/chromium come from
// scripts/install-deps.sh; without them every test here fails and says so.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/api_loop.h"
#include "tests/support/cli_runner.h"
#include "tests/support/fleet_fixture.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"
#include "tests/support/text_files.h"

namespace flotilla {
namespace {

using nlohmann::json;
using testing::ApiLoop;
using testing::FleetFixture;
using testing::FleetOptions;
using testing::Outcome;
using testing::Quote;

namespace fs = std::filesystem;

constexpr const char* kToken = "dashboard-token-8e31c";
constexpr const char* kTokenEnv = "FLOTILLA_DASHBOARD_TOKEN";
// A token without the read role (api.tokens): the dashboard refuses it with the API's reason.
constexpr const char* kCiToken = "ci-token-7a02d";
const fs::path kSource = FLOTILLA_SOURCE_DIR;
const fs::path kBrowserDir = kSource / "tests/browser";

// What the browser tests need and scripts/install-deps.sh installs; "" when all is there.
std::string MissingBrowserTools() {
  std::string missing;
  if (testing::RunShell("command -v node >/dev/null 2>&1") != 0) {
    missing += "\n  node (Node.js) is not on PATH";
  }
  if (!fs::exists(kBrowserDir / "node_modules/playwright-core/package.json")) {
    missing += "\n  " + (kBrowserDir / "node_modules/playwright-core").string() +
               " is missing (npm ci in tests/browser)";
  }
  if (!fs::exists("/usr/bin/chromium")) {
    missing += "\n  /usr/bin/chromium is missing (Debian's chromium)";
  }
  return missing.empty()
             ? ""
             : "the browser tests cannot run:" + missing + "\nrun scripts/install-deps.sh";
}

class DashboardTest : public ::testing::Test {
 protected:
  // Starts the fleet and the loop and waits until the fleet has converged. `sim_flags` go to
  // flotilla-hostsim (e.g. latencies that keep a plan in view while it runs).
  void StartFleet(std::vector<std::string> sim_flags = {}) {
    const std::string missing = MissingBrowserTools();
    ASSERT_TRUE(missing.empty()) << missing;
    FleetOptions options;
    options.hosts = 3;
    options.sim_flags = std::move(sim_flags);
    options.config_extra =
        std::string("api: {listen: \"127.0.0.1:0\", tokenEnv: ") + kTokenEnv +
        ", tokens: [{name: ci, tokenEnv: FLOTILLA_DASHBOARD_CI_TOKEN, roles: [reconcile]}]}\n";
    fx_ = std::make_unique<FleetFixture>(options);
    ASSERT_TRUE(fx_->ready());
    fx_->WriteManifest("web.yaml", FleetFixture::VmSetYaml("web", 3));
    fx_->WriteManifest(
        "db.yaml", FleetFixture::VmSetYaml("db", 2, "  prune: true\n", "catalog://LINUX/v1", 4));
    fx_->Commit("web: 3 replicas, db: 2");
    fx_->sim().Control("POST", "/_sim/hosts/" + fx_->host(2) + "/vms",
                       {{"name", "legacy-build"},
                        {"os", "linux"},
                        {"cpu", 2},
                        {"memory_mb", 4096},
                        {"state", "running"}});
    loop_ = std::make_unique<ApiLoop>(*fx_, kToken, kTokenEnv,
                                      std::string("FLOTILLA_DASHBOARD_CI_TOKEN=") + kCiToken);
    ASSERT_TRUE(loop_->ok()) << fx_->LoopLog();
    ASSERT_TRUE(loop_->Converged(std::chrono::seconds(120))) << fx_->LoopLog();
  }

  // Makes branch `branch` of the fleet repository hold one commit on top of main with
  // `change` (manifests written through the fixture), leaving main where it is. A scenario
  // moves main there when it wants the loop to see the commit (lib.mjs pushToMain).
  void PrepareBranch(const std::string& branch, const std::function<void(FleetFixture&)>& change,
                     const std::string& message) {
    testing::Git(fx_->repo(), "checkout -q -b " + branch);
    change(*fx_);
    fx_->Commit(message);
    testing::Git(fx_->repo(), "checkout -q main");
  }

  // Runs tests/browser/<scenario>.mjs against the fleet with `env` (VAR=value words) added to
  // the environment; fails the test with the scenario's output unless it passes.
  void RunScenario(const std::string& scenario, const std::string& env = "") {
    ASSERT_TRUE(fx_ && loop_) << "StartFleet first";
    const fs::path shots = fs::path(FLOTILLA_BUILD_DIR) / "dashboard-screenshots";
    std::string vars = "FLOTILLA_URL=" + loop_->url() + " FLOTILLA_TOKEN=" + kToken +
                       " FLOTILLA_REPO=" + Quote(fx_->repo()) +
                       " FLOTILLA_SIM=" + fx_->sim().origin() +
                       " FLOTILLA_SCREENSHOTS=" + Quote(shots);
    if (testing::UpdateRequested("FLOTILLA_UPDATE_DOCS")) {
      vars += " FLOTILLA_DOCS_IMAGES=" + Quote(kSource / "docs/images");
    }
    const Outcome r = testing::RunCommand(
        "env " + vars + " " + env + " node " + Quote(kBrowserDir / (scenario + ".mjs")),
        fx_->dir());
    EXPECT_EQ(r.exit_code, 0) << scenario << ".mjs failed\n--- stdout\n"
                              << r.out << "--- stderr\n"
                              << r.err << "--- flotilla run (tail)\n"
                              << Tail(fx_->LoopLog());
    if (r.exit_code == 0) {
      std::printf("%s", r.out.c_str());
    }
  }

  static std::string Tail(const std::string& log, size_t bytes = 4000) {
    return log.size() <= bytes ? log : "..." + log.substr(log.size() - bytes);
  }

  std::unique_ptr<FleetFixture> fx_;
  std::unique_ptr<ApiLoop> loop_;
};

// The login form takes the token (then kept in sessionStorage only, and over a reload); a URL
// with #token=... logs in and loses the fragment.
TEST_F(DashboardTest, LogsInWithTheToken) {
  ASSERT_NO_FATAL_FAILURE(StartFleet());
  RunScenario("login");
}

// A wrong token is refused with a message, and nothing of the fleet is shown; so is a token
// without the read role, with the API's reason.
TEST_F(DashboardTest, RefusesAWrongToken) {
  ASSERT_NO_FATAL_FAILURE(StartFleet());
  RunScenario("wrong_token", std::string("FLOTILLA_CI_TOKEN=") + kCiToken);
}

// Every view shows the fleet's real names and counts, as the API has them; the back button
// works; each view is shot at 1280x800.
TEST_F(DashboardTest, EveryViewShowsTheFleet) {
  ASSERT_NO_FATAL_FAILURE(StartFleet());
  RunScenario("views");
}

// A commit that raises web to 5 replicas shows in the Plan view as two creates, then as two new
// running VMs, without a reload. Creates take 20 s on the hosts, so the plan (published before
// the pass acts) stays in view long enough for a page on a busy machine to fetch it.
TEST_F(DashboardTest, RaisedReplicasShowInThePlanThenAsNewVms) {
  ASSERT_NO_FATAL_FAILURE(StartFleet({"--latency", "create=20s"}));
  PrepareBranch(
      "more-web", [](FleetFixture& fx) { fx.WriteManifest("web.yaml", fx.VmSetYaml("web", 5)); },
      "web: 5 replicas");
  RunScenario("replicas", "FLOTILLA_BRANCH=more-web FLOTILLA_NEW_VMS=web-3,web-4");
}

// A commit the loop rejects shows the fail-static banner with every diagnostic as
// file:line:col: message.
TEST_F(DashboardTest, RejectedCommitShowsTheFailStaticBanner) {
  ASSERT_NO_FATAL_FAILURE(StartFleet());
  PrepareBranch(
      "broken",
      [](FleetFixture& fx) {
        fx.WriteManifest("broken.yaml",
                         "apiVersion: flotilla.dev/v1\n"
                         "kind: VMSet\n"
                         "metadata: {name: broken}\n"
                         "spec:\n"
                         "  pool: sims\n"
                         "  replicas: many\n"
                         "  template: {image: \"catalog://LINUX/v1\", os: linux, arch: arm64, "
                         "cpu: 2, memory: 2Gi}\n");
      },
      "broken: replicas is not a number");
  RunScenario("rejected", "FLOTILLA_BRANCH=broken FLOTILLA_DIAGNOSTIC=broken.yaml:6");
}

// A VM stopped behind Flotilla's back (hostsim's control API) shows as stopped in the VM table
// and as a start in the plan. Starts take 10 s on the hosts, so the drift stays in view.
TEST_F(DashboardTest, StoppedVmShowsAsDrift) {
  ASSERT_NO_FATAL_FAILURE(StartFleet({"--latency", "start=10s"}));
  RunScenario("drift", "FLOTILLA_DRIFT_VM=db-1");
}

// The timeline of the run that created the fleet has one lane per host and one bar per action
// (latencies with jitter give the bars lengths of their own); a failed start shows as failed,
// with its message, and as an error event.
TEST_F(DashboardTest, RunTimelineHasABarPerAction) {
  ASSERT_NO_FATAL_FAILURE(StartFleet({"--latency", "create=2s,start=1s", "--jitter", "0.5"}));
  RunScenario("timeline");
}

// A VM named <img src=x onerror=...> (made on a host behind Flotilla's back) and a commit
// subject with markup are shown as text and run nothing.
TEST_F(DashboardTest, FleetTextIsNeverMarkup) {
  ASSERT_NO_FATAL_FAILURE(StartFleet());
  PrepareBranch(
      "markup",
      [](FleetFixture& fx) { fx.WriteManifest("web.yaml", fx.VmSetYaml("web", 3) + "\n"); },
      "<b>bold</b> <script>window.__xss=2</script> & more");
  RunScenario("xss", "FLOTILLA_BRANCH=markup FLOTILLA_HOST=" + fx_->host(1));
}

// No console error or warning, failed request or error answer on any view, opened directly
// (each URL) and through the navigation.
TEST_F(DashboardTest, NoConsoleErrorsOnAnyView) {
  ASSERT_NO_FATAL_FAILURE(StartFleet());
  RunScenario("console");
}

// The security headers on the page and on an API answer; static files without a token, data
// never.
TEST_F(DashboardTest, SecurityHeadersAndTokenOnlyForData) {
  ASSERT_NO_FATAL_FAILURE(StartFleet());
  RunScenario("headers");
}

}  // namespace
}  // namespace flotilla
