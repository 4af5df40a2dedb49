// Golden tests for the plan's text, JSON and Markdown forms, and the JSON against
// schemas/plan.v1.json. Regenerate the golden files after a deliberate change with
//   FLOTILLA_UPDATE_GOLDEN=1 build-test/bin/plan_render_test
// which rewrites every golden file that differs and fails ("rewrote X; review the diff and
// rerun"); review the diff, then rerun without the variable.

#include "reconciler/render/plan_render.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "reconciler/manifest/yaml_reader.h"
#include "reconciler/model/normalize.h"
#include "reconciler/model/template_hash.h"
#include "reconciler/planner/planner.h"
#include "tests/support/fleet_values.h"
#include "tests/support/text_files.h"
#include "tests/unit/manifest_fixture.h"

namespace flotilla::render {
namespace {

using flotilla::testing::kGi;
using flotilla::testing::kNow;

ObservedHost Online(const std::string& name) {
  return flotilla::testing::Online(name, "mac-builders",
                                   {.cpu = 24, .memory_gi = 64, .free_disk_gi = 500});
}

// A fleet that exercises every symbol: creates and starts, a rolling replace, a drain, a stop, a
// delete, an unschedulable VM, a conflict and an adoption.
Plan ExamplePlan() {
  HostPool pool;
  pool.meta.name = "mac-builders";
  pool.defaults.max_vms = 6;
  for (const char* name : {"mini-01", "mini-02", "mini-03"}) {
    pool.hosts.push_back(flotilla::testing::Host(name, {}, "https"));
  }
  pool.hosts[2].cordoned = true;
  auto make_set = [](const std::string& name, uint32_t replicas, GuestOs os) {
    VMSet set;
    set.meta.name = name;
    set.pool = "mac-builders";
    set.replicas = replicas;
    set.prune = true;
    set.templ = flotilla::testing::Template("catalog://MACOS_BASE/v1", os, 4, 8, 80);
    set.image_cache_key = "catalog://macos_base/v1";  // as the loader fills it (parallels)
    return set;
  };
  VMSet ios = make_set("ios-runners", 4, GuestOs::kMacos);
  VMSet linux = make_set("linux-runners", 2, GuestOs::kLinux);
  linux.templ.image = "catalog://UBUNTU/24.04";
  linux.image_cache_key = "catalog://ubuntu/24.04";
  VMSet huge = make_set("huge", 1, GuestOs::kLinux);
  huge.templ.memory = Quantity::FromBytes(64 * kGi);
  VMSet golden = make_set("golden", 1, GuestOs::kMacos);
  golden.templ.state = PowerState::kStopped;
  golden.adopt_existing = true;

  Observed observed;
  Ledger ledger;
  for (const char* name : {"mini-01", "mini-02", "mini-03"}) {
    observed.hosts[name] = Online(name);
  }
  auto own = [&](const VMSet& set, const std::string& vm, const std::string& host, VmState state,
                 const std::string& hash) {
    observed.hosts[host].vms.push_back(VmInfo{.id = "id-" + vm,
                                              .name = vm,
                                              .state = state,
                                              .raw_state = std::string(ToString(state)),
                                              .os = set.templ.os,
                                              .cpu = 4,
                                              .memory_bytes = 8 * kGi,
                                              .disk_bytes = 80 * kGi});
    ledger.entries.push_back(LedgerEntry{.vm = vm,
                                         .vmset = set.meta.name,
                                         .pool = "mac-builders",
                                         .host = host,
                                         .provider_id = "id-" + vm,
                                         .template_hash = hash});
  };
  own(ios, "ios-runners-0", "mini-01", VmState::kRunning, TemplateHash(ios.templ));
  own(ios, "ios-runners-1", "mini-03", VmState::kRunning, TemplateHash(ios.templ));
  own(linux, "linux-runners-0", "mini-02", VmState::kRunning, "v1-outdated");
  own(linux, "linux-runners-1", "mini-02", VmState::kRunning, TemplateHash(linux.templ));
  // golden-0 was made by hand; its set adopts it, then stops it.
  observed.hosts["mini-01"].vms.push_back(VmInfo{.id = "id-golden-0",
                                                 .name = "golden-0",
                                                 .state = VmState::kRunning,
                                                 .raw_state = "running",
                                                 .os = GuestOs::kMacos,
                                                 .cpu = 4,
                                                 .memory_bytes = 8 * kGi,
                                                 .disk_bytes = 80 * kGi});
  VMSet old = make_set("old-runners", 1, GuestOs::kLinux);
  own(old, "old-runners-0", "mini-02", VmState::kStopped, TemplateHash(old.templ));
  ledger.vmset_prune["old-runners"] = true;
  observed.hosts["mini-02"].vms.push_back(VmInfo{.id = "x",
                                                 .name = "ios-runners-2",
                                                 .state = VmState::kStopped,
                                                 .raw_state = "stopped",
                                                 .os = GuestOs::kMacos});
  for (auto& [name, host] : observed.hosts) {
    std::sort(host.vms.begin(), host.vms.end(),
              [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
  }
  Desired desired;
  desired.pools = {pool};
  desired.sets = {ios, linux, huge, golden};
  Normalize(desired);
  planner::PlannerOptions options;
  options.max_deletions = 5;
  return planner::ComputePlan(desired, observed, ledger, options, kNow);
}

void ExpectGolden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(FLOTILLA_SOURCE_DIR) + "/tests/golden/" + name;
  const bool exists = std::filesystem::exists(path);
  if (testing::UpdateRequested("FLOTILLA_UPDATE_GOLDEN")) {
    if (!exists || testing::Slurp(path) != actual) {
      testing::RewriteAndFail(path, actual);
    }
    return;
  }
  ASSERT_TRUE(exists) << "missing golden file " << path
                      << " (run with FLOTILLA_UPDATE_GOLDEN=1 to create it)";
  EXPECT_EQ(actual, testing::Slurp(path))
      << "golden file " << path << " differs (FLOTILLA_UPDATE_GOLDEN=1 rewrites it)";
}

TEST(PlanRenderTest, TextMatchesGolden) {
  ExpectGolden("plan.txt", RenderPlanText(ExamplePlan(), {.revision = "main@1a2b3c4"}));
}

TEST(PlanRenderTest, MarkdownMatchesGolden) {
  ExpectGolden("plan.md", RenderPlanMarkdown(ExamplePlan(), {.revision = "main@1a2b3c4"}));
}

TEST(PlanRenderTest, JsonMatchesGoldenAndTheSchema) {
  const std::string json = RenderPlanJson(ExamplePlan(), {.revision = "main@1a2b3c4"});
  ExpectGolden("plan.json", json);
  manifest::Diagnostics diagnostics;
  manifest::DocumentBudget budget{.limit = 1};
  std::vector<manifest::YamlDocument> docs =
      manifest::ReadYamlDocuments(json, "plan.json", budget, diagnostics);
  ASSERT_EQ(docs.size(), 1u);
  manifest::testing::Validator()->Validate("plan.v1.json", docs[0], diagnostics);
  EXPECT_TRUE(diagnostics.empty())
      << (diagnostics.empty() ? "" : diagnostics.Sorted().front().message);
}

TEST(PlanRenderTest, ColourOnlyWhenAskedAndEmptyPlansSaySo) {
  const Plan plan = ExamplePlan();
  EXPECT_NE(RenderPlanText(plan, {.color = true}).find("\033[32m+ create"), std::string::npos);
  EXPECT_EQ(RenderPlanText(plan).find('\033'), std::string::npos);
  EXPECT_EQ(RenderPlanText(Plan{}), "No changes: the fleet matches the desired state.\n");
  EXPECT_EQ(PlanSummary(Plan{}),
            "Plan: 0 to create, 0 to replace, 0 to delete, 0 to start, 0 to stop; 0 "
            "unschedulable.");
  EXPECT_EQ(RenderPlanJson(plan), RenderPlanJson(ExamplePlan())) << "deterministic";
}

}  // namespace
}  // namespace flotilla::render
