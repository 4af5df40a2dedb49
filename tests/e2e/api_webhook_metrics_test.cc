// The HTTP API of the real `flotilla run` against flotilla-hostsim hosts on loopback
// (tests/support/fleet_fixture.h): push webhooks (GitHub, GitLab, generic signatures), and
// metrics read with Prometheus' own parser. api_test.cc has the rest of the API.

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "reconciler/api/webhook.h"
#include "tests/e2e/api_fixture.h"
#include "tests/support/cli_runner.h"
#include "tests/support/process.h"

namespace flotilla::api_test {
namespace {

using nlohmann::json;
using testing::Contains;
using testing::Outcome;
using testing::WaitUntil;

class WebhookTest : public ::testing::Test {
 protected:
  // No timer would fetch or reconcile during the test: only a webhook (or the API) does.
  WebhookTest() : fx_(ApiFleet({}, "1h", "1h")) {}

  void SetUp() override {
    ASSERT_TRUE(fx_.ready());
    fx_.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
    fx_.Commit("ci");
    api_ = std::make_unique<ApiLoop>(fx_);
    ASSERT_TRUE(api_->ok()) << fx_.LoopLog();
    ASSERT_TRUE(api_->Converged()) << fx_.LoopLog();
  }

  httplib::Result GitHubPush(const std::string& branch, const std::string& secret = kWebhookSecret,
                             std::string body = "") {
    if (body.empty()) {
      body = json{{"ref", "refs/heads/" + branch}, {"after", std::string(40, 'a')}}.dump();
    }
    return api_->Post("/api/v1/webhooks/git", body,
                      {{"X-GitHub-Event", "push"},
                       {"X-Hub-Signature-256", "sha256=" + api::HmacSha256Hex(secret, body)}});
  }

  // Proves that nothing was triggered: a pass asked for now through the API is the next run,
  // and no run was recorded with the webhook trigger before it (triggers are taken in order).
  void ExpectNoWebhookRun() {
    httplib::Result r = api_->Post("/api/v1/reconcile", "");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    EXPECT_TRUE(api_->RunWithTrigger("webhook").is_null());
    EXPECT_EQ(api_->Runs()[0]["trigger"], "api");
  }

  FleetFixture fx_;
  std::unique_ptr<ApiLoop> api_;
};

TEST_F(WebhookTest, SignedPushToTheBranchReconcilesTheNewCommit) {
  fx_.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 2));
  const std::string sha = fx_.Commit("two");
  const auto sent = std::chrono::steady_clock::now();
  httplib::Result r = GitHubPush("main");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202) << r->body;
  EXPECT_EQ(json::parse(r->body)["triggered"], true);
  json run;
  ASSERT_TRUE(WaitUntil([&] {
    run = api_->RunWithTrigger("webhook");
    return !run.is_null();
  })) << fx_.LoopLog();
  const auto took = std::chrono::steady_clock::now() - sent;
  EXPECT_EQ(run["revision"], sha);
  // The timer is an hour away: only the webhook can have fetched the commit. The latency is
  // measured by bench/webhook; here a generous bound only catches a webhook that waits.
  EXPECT_LT(took, std::chrono::seconds(10));
  std::printf(
      "webhook to recorded run: %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  ASSERT_TRUE(api_->Converged());
  EXPECT_EQ(api_->GetJson("/api/v1/vms?vmset=ci")["vms"].size(), 2u);
}

TEST_F(WebhookTest, GitLabTokenAndGenericSignatureAreAccepted) {
  const std::string body = R"({"object_kind":"push","ref":"refs/heads/main"})";
  httplib::Result gitlab =
      api_->Post("/api/v1/webhooks/git", body,
                 {{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", kWebhookSecret}});
  ASSERT_TRUE(gitlab);
  EXPECT_EQ(gitlab->status, 202) << gitlab->body;
  EXPECT_EQ(json::parse(gitlab->body)["triggered"], true);
  ASSERT_TRUE(WaitUntil([&] { return !api_->RunWithTrigger("webhook").is_null(); }));

  const std::string generic = R"({"branch":"main"})";
  httplib::Result signed_generic = api_->Post(
      "/api/v1/webhooks/git", generic,
      {{"X-Flotilla-Signature", "sha256=" + api::HmacSha256Hex(kWebhookSecret, generic)}});
  ASSERT_TRUE(signed_generic);
  EXPECT_EQ(signed_generic->status, 202) << signed_generic->body;
  EXPECT_EQ(json::parse(signed_generic->body)["triggered"], true);
}

TEST_F(WebhookTest, BadSignatureTriggersNothing) {
  httplib::Result r = GitHubPush("main", "not-the-secret");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401) << r->body;
  EXPECT_FALSE(Contains(r->body, kWebhookSecret));
  httplib::Result unsigned_push = api_->Post("/api/v1/webhooks/git", R"({"ref":"refs/heads/main"})",
                                             {{"X-GitHub-Event", "push"}});
  ASSERT_TRUE(unsigned_push);
  EXPECT_EQ(unsigned_push->status, 401);
  httplib::Result wrong_gitlab =
      api_->Post("/api/v1/webhooks/git", R"({"ref":"refs/heads/main"})",
                 {{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", "guess"}});
  ASSERT_TRUE(wrong_gitlab);
  EXPECT_EQ(wrong_gitlab->status, 401);
  ExpectNoWebhookRun();
}

TEST_F(WebhookTest, OtherBranchesAreIgnored) {
  httplib::Result r = GitHubPush("feature-x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202) << r->body;
  const json answer = json::parse(r->body);
  EXPECT_EQ(answer["triggered"], false);
  EXPECT_TRUE(Contains(answer["reason"].get<std::string>(), "feature-x"));
  ExpectNoWebhookRun();
}

TEST_F(WebhookTest, OversizedBodyIsRefused) {
  const std::string big =
      json{{"ref", "refs/heads/main"}, {"padding", std::string(size_t{1} << 20, 'x')}}.dump();
  httplib::Result r = GitHubPush("main", kWebhookSecret, big);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << r->body.substr(0, 200);
  ExpectNoWebhookRun();
}

// The families of a Prometheus text exposition, as Prometheus' own Python parser reads them:
// name -> list of (labels, value).
std::map<std::string, std::vector<std::pair<std::map<std::string, std::string>, double>>>
ParseMetrics(const std::string& text, const std::filesystem::path& dir) {
  const std::filesystem::path in = dir / "metrics.txt";
  std::ofstream(in) << text;
  const std::string script =
      "import json,sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "out = {}\n"
      "for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
      "    for s in f.samples:\n"
      "        out.setdefault(s.name, []).append([s.labels, s.value])\n"
      "print(json.dumps(out))\n";
  std::ofstream(dir / "parse.py") << script;
  const Outcome parsed = testing::RunCommand(
      "/usr/bin/python3 " + (dir / "parse.py").string() + " " + in.string(), dir);
  EXPECT_EQ(parsed.exit_code, 0) << parsed.err;
  std::map<std::string, std::vector<std::pair<std::map<std::string, std::string>, double>>> out;
  const json doc = json::parse(parsed.out, nullptr, false);
  if (!doc.is_object()) {
    ADD_FAILURE() << "parser output: " << parsed.out << parsed.err;
    return out;
  }
  for (const auto& [name, samples] : doc.items()) {
    for (const json& s : samples) {
      out[name].push_back({s[0].get<std::map<std::string, std::string>>(), s[1].get<double>()});
    }
  }
  return out;
}

double Sum(const std::vector<std::pair<std::map<std::string, std::string>, double>>& samples,
           const std::map<std::string, std::string>& match) {
  double sum = 0;
  for (const auto& [labels, value] : samples) {
    bool all = true;
    for (const auto& [k, v] : match) {
      all = all && labels.contains(k) && labels.at(k) == v;
    }
    sum += all ? value : 0;
  }
  return sum;
}

TEST(ApiTest, MetricsParseWithPrometheusAndMoveWhenActionsRun) {
  FleetFixture fx(ApiFleet({}, "1s", "1h"));
  ASSERT_TRUE(fx.ready());
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 1));
  fx.Commit("ci");
  ApiLoop api(fx);
  ASSERT_TRUE(api.ok()) << fx.LoopLog();
  ASSERT_TRUE(api.Converged()) << fx.LoopLog();

  auto scrape = [&] {
    httplib::Result r = api.Get("/metrics");
    EXPECT_TRUE(r && r->status == 200);
    EXPECT_TRUE(r && Contains(r->get_header_value("Content-Type"), "text/plain"));
    return ParseMetrics(r ? r->body : "", fx.dir());
  };
  auto before = scrape();
  for (const char* name : {"flotilla_reconcile_runs_total",
                           "flotilla_reconcile_duration_seconds_count",
                           "flotilla_actions_total",
                           "flotilla_action_duration_seconds_count",
                           "flotilla_hosts",
                           "flotilla_vms",
                           "flotilla_vms_unschedulable",
                           "flotilla_drift_vms",
                           "flotilla_git_fetch_total",
                           "flotilla_git_last_applied_timestamp_seconds",
                           "flotilla_revision_info",
                           "flotilla_deletions_deferred_total",
                           "flotilla_provider_requests_total",
                           "flotilla_source_rejected_revisions_total",
                           "flotilla_fail_static",
                           "flotilla_host_observation_age_seconds",
                           "flotilla_deletions_deferred",
                           "flotilla_conflicts",
                           "flotilla_refused_deletions",
                           "flotilla_ledger_mismatches"}) {
    EXPECT_TRUE(before.contains(name)) << name;
  }
  EXPECT_EQ(Sum(before["flotilla_ledger_mismatches"], {}), 0);
  EXPECT_EQ(Sum(before["flotilla_hosts"], {{"pool", "sims"}, {"state", "online"}}), 3);
  EXPECT_EQ(Sum(before["flotilla_actions_total"], {{"kind", "create"}, {"outcome", "succeeded"}}),
            1);
  EXPECT_EQ(Sum(before["flotilla_vms"], {{"vmset", "ci"}, {"state", "running"}}), 1);
  EXPECT_EQ(Sum(before["flotilla_drift_vms"], {{"vmset", "ci"}}), 0);
  EXPECT_GT(Sum(before["flotilla_git_fetch_total"], {{"outcome", "success"}}), 0);
  EXPECT_GT(Sum(before["flotilla_provider_requests_total"], {{"provider", "parallels"}}), 0);
  EXPECT_GT(Sum(before["flotilla_git_last_applied_timestamp_seconds"], {}), 1.7e9);
  ASSERT_EQ(before["flotilla_revision_info"].size(), 1u);
  EXPECT_EQ(Sum(before["flotilla_fail_static"], {}), 0);
  EXPECT_EQ(Sum(before["flotilla_source_rejected_revisions_total"], {}), 0);
  EXPECT_EQ(Sum(before["flotilla_git_fetch_total"], {{"outcome", "rejected"}}), 0);
  ASSERT_EQ(before["flotilla_host_observation_age_seconds"].size(), 3u);
  for (const auto& [labels, age] : before["flotilla_host_observation_age_seconds"]) {
    EXPECT_EQ(labels.at("pool"), "sims");
    EXPECT_GE(age, 0);
    EXPECT_LT(age, 3600);  // observed by this run, not at the epoch
  }
  EXPECT_EQ(Sum(before["flotilla_deletions_deferred"], {{"pool", "sims"}}), 0);
  EXPECT_EQ(Sum(before["flotilla_conflicts"], {{"pool", "sims"}, {"vmset", "ci"}}), 0);

  // Three more replicas: the counters move.
  fx.WriteManifest("ci.yaml", FleetFixture::VmSetYaml("ci", 4));
  const std::string sha = fx.Commit("four");
  ASSERT_TRUE(WaitUntil(
      [&] {
        return api.GetJson("/api/v1/vms?vmset=ci&state=running")["vms"].size() == 4 &&
               api.GetJson("/api/v1/revisions")["in_force"] == sha;
      },
      std::chrono::seconds(60)))
      << fx.LoopLog();
  ASSERT_TRUE(api.Converged());
  auto after = scrape();
  EXPECT_EQ(Sum(after["flotilla_actions_total"], {{"kind", "create"}, {"outcome", "succeeded"}}),
            4);
  EXPECT_EQ(Sum(after["flotilla_actions_total"], {{"kind", "start"}, {"outcome", "succeeded"}}), 4);
  EXPECT_GE(Sum(after["flotilla_action_duration_seconds_count"], {{"kind", "create"}}), 4);
  EXPECT_GT(Sum(after["flotilla_reconcile_runs_total"], {{"outcome", "succeeded"}}),
            Sum(before["flotilla_reconcile_runs_total"], {{"outcome", "succeeded"}}));
  EXPECT_EQ(Sum(after["flotilla_vms"], {{"vmset", "ci"}, {"state", "running"}}), 4);
  EXPECT_GT(
      Sum(after["flotilla_provider_requests_total"], {{"endpoint", "POST /v1/machines/async"}}), 0);
  ASSERT_EQ(after["flotilla_revision_info"].size(), 1u);
  EXPECT_EQ(after["flotilla_revision_info"][0].first.at("sha"), sha);

  // A revision that cannot be used: counted once, fetches of it are "rejected", not
  // "success", and the loop fails static until a good revision follows.
  fx.WriteManifest("broken.yaml", "apiVersion: flotilla.dev/v1\nkind: VMSet\n");
  fx.Commit("broken");
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto m = scrape();
        return Sum(m["flotilla_fail_static"], {}) == 1 &&
               Sum(m["flotilla_git_fetch_total"], {{"outcome", "rejected"}}) >= 2;
      },
      std::chrono::seconds(60)))
      << fx.LoopLog();
  auto rejected = scrape();
  EXPECT_EQ(Sum(rejected["flotilla_source_rejected_revisions_total"], {}), 1);
  fx.RemoveManifest("broken.yaml");
  fx.Commit("fixed");
  ASSERT_TRUE(WaitUntil([&] { return Sum(scrape()["flotilla_fail_static"], {}) == 0; },
                        std::chrono::seconds(60)))
      << fx.LoopLog();
  EXPECT_EQ(Sum(scrape()["flotilla_source_rejected_revisions_total"], {}), 1);
}

}  // namespace
}  // namespace flotilla::api_test
