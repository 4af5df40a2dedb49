// `flotilla diff`: what a change to a fleet repository does, run as CI would run it (a real Git
// repository, the real binary, no credentials, no hosts).

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/support/cli_runner.h"
#include "tests/support/inventory.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"

namespace {

namespace fs = std::filesystem;
using flotilla::testing::Contains;
using flotilla::testing::InventoryHost;
using flotilla::testing::Outcome;
using flotilla::testing::Resources;
using flotilla::testing::Slurp;
using flotilla::testing::WriteInventory;

// A fleet repository seeded from examples/fleet, with commits made by the test.
class DiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = scratch_.path() / "repo";
    fs::create_directories(repo_);
    fs::copy(fs::path(FLOTILLA_SOURCE_DIR) / "examples/fleet", repo_ / "fleet",
             fs::copy_options::recursive);
    flotilla::testing::Git(repo_, "init -q");
    Commit("base");
  }

  void Commit(const std::string& message) { flotilla::testing::CommitAll(repo_, message); }

  // Replaces `from` by `to` in a file of the fleet.
  void Edit(const std::string& file, const std::string& from, const std::string& to) {
    const fs::path path = repo_ / "fleet" / file;
    std::string text = Slurp(path);
    const size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from << " not in " << file;
    text.replace(at, from.size(), to);
    std::ofstream(path) << text;
  }

  Outcome Diff(const std::string& args) {
    return flotilla::testing::RunCommand(
        "cd " + repo_.string() + " && NO_COLOR=1 " FLOTILLA_BIN " diff --path fleet " + args,
        scratch_.path());
  }

  flotilla::testing::ScratchDir scratch_;
  fs::path repo_;
};

TEST_F(DiffTest, NoChangeExitsZero) {
  Commit("nothing");
  Outcome r = Diff("--base HEAD~1 --head HEAD");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "Plan for HEAD~1..HEAD\n\nNo changes: the fleet matches the desired state.\n");
}

// Hosts that declare no arch or capacity are taken to fit, as validate assumes: an ordinary fleet
// repository's change lists every create and the deletions of a removed set (which the base
// revision, stood up on the same assumption, had made), marked as assumed, and exits 2.
TEST_F(DiffTest, HostsWithoutDeclaredFactsNeverHideAChange) {
  fs::remove_all(repo_ / "fleet");
  fs::create_directories(repo_ / "fleet");
  std::ofstream(repo_ / "fleet/pool.yaml")
      << "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: p}\n"
         "spec:\n  provider: parallels\n  credentialsRef: p\n"
         "  hosts:\n    - {name: a, address: \"https://10.0.0.1:3080\"}\n";
  const auto set = [](const std::string& name, int replicas) {
    return "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: " + name +
           "}\nspec:\n  pool: p\n  replicas: " + std::to_string(replicas) +
           "\n  prune: true\n  template: {image: \"vm://golden\", os: linux, arch: x86_64, cpu: 1, "
           "memory: 1Gi}\n";
  };
  std::ofstream(repo_ / "fleet/lx.yaml") << set("lx", 2);
  std::ofstream(repo_ / "fleet/old.yaml") << set("old", 1);
  Commit("fleet");
  std::ofstream(repo_ / "fleet/lx.yaml") << set("lx", 3);
  fs::remove(repo_ / "fleet/old.yaml");
  Commit("grow lx, drop old");

  Outcome r = Diff("--base HEAD~1 --head HEAD");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "+ create        lx-2 on a (new VM) [assumed host facts]")) << r.out;
  EXPECT_TRUE(Contains(r.out, "- delete        old-0 on a")) << r.out;
  EXPECT_TRUE(Contains(r.out, "1 placement assumes undeclared host facts")) << r.out;
  EXPECT_FALSE(Contains(r.out, "! unschedulable")) << r.out;

  Outcome json = Diff("--base HEAD~1 --head HEAD --format json");
  const nlohmann::json plan = nlohmann::json::parse(json.out);
  EXPECT_EQ(plan["summary"]["create"], 1);
  EXPECT_EQ(plan["summary"]["delete"], 1);
  EXPECT_EQ(plan["summary"]["assumed_placements"], 1);
  EXPECT_TRUE(Contains(plan["placement"].get<std::string>(), "declare")) << json.out;
  Outcome markdown = Diff("--base HEAD~1 --head HEAD --format markdown");
  EXPECT_TRUE(Contains(markdown.out, "Placement: simulated on the hosts the manifests declare"))
      << markdown.out;
}

// Nothing can be done, but a VM finds no host: exit 3, so CI can tell it from "no changes";
// when something else can be done too, exit 2.
TEST_F(DiffTest, OnlyUnschedulableVmsExitThree) {
  Edit("vmsets/linux-runners.yaml", "replicas: 4", "replicas: 8");  // 2 hosts x maxVMs 4
  Commit("fill linux-builders");
  std::ofstream(repo_ / "fleet/vmsets/extra.yaml")
      << "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: extra}\n"
         "spec:\n  pool: linux-builders\n  replicas: 1\n"
         "  template: {image: \"vm://golden\", os: linux, arch: x86_64, cpu: 2, memory: 1Gi}\n";
  Commit("one more, nowhere to go");
  Outcome none = Diff("--base HEAD~1 --head HEAD");
  EXPECT_EQ(none.exit_code, 3) << none.out << none.err;
  EXPECT_TRUE(Contains(none.out, "! unschedulable extra-0")) << none.out;
  EXPECT_EQ(Diff("--base HEAD~2 --head HEAD").exit_code, 2) << "some VMs are created";
}

TEST_F(DiffTest, WorksFromAnyFolderOfTheRepository) {
  Edit("vmsets/ios-runners.yaml", "replicas: 4", "replicas: 5");
  Commit("grow");
  const std::string command = "cd " + (repo_ / "fleet/vmsets").string() +
                              " && NO_COLOR=1 " FLOTILLA_BIN
                              " diff --path fleet --base HEAD~1 >/dev/null 2>&1";
  const int status = std::system(command.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

TEST_F(DiffTest, ScalingAndTemplateChangesListEveryAffectedVm) {
  Edit("vmsets/linux-runners.yaml", "replicas: 4", "replicas: 2");
  Edit("vmsets/ios-runners.yaml", "replicas: 4", "replicas: 5");
  Edit("vmsets/ios-runners.yaml", "catalog://macos-sequoia-xcode/16.1",
       "catalog://macos-sequoia-xcode/16.2");
  Commit("head");
  Outcome r = Diff("--base HEAD~1 --max-deletions 5");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "- delete        linux-runners-2 ")) << r.out;
  EXPECT_TRUE(Contains(r.out, "- delete        linux-runners-3 ")) << r.out;
  EXPECT_TRUE(Contains(r.out, "+ create        ios-runners-4 ")) << r.out;
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(Contains(r.out, "ios-runners-" + std::to_string(i) + " ")) << i << r.out;
  }
  EXPECT_TRUE(Contains(r.out, "Plan: 1 to create")) << r.out;
}

TEST_F(DiffTest, ARemovedPoolListsAllItsVms) {
  fs::remove(repo_ / "fleet/pools/linux-builders.yaml");
  fs::remove(repo_ / "fleet/vmsets/linux-runners.yaml");
  Commit("drop linux");
  Outcome r = Diff("--base HEAD~1");
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(Contains(r.out, "linux-runners-" + std::to_string(i) + " on macpro-0"))
        << i << r.out;
  }
  EXPECT_TRUE(Contains(r.out, "pool linux-builders was removed")) << r.out;
}

TEST_F(DiffTest, AnInvalidHeadFailsWithLocatedMessages) {
  Edit("vmsets/ios-runners.yaml", "replicas: 4", "replica: 4");
  Commit("typo");
  Outcome r = Diff("--base HEAD~1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "fleet/vmsets/ios-runners.yaml@")) << r.err;
  EXPECT_TRUE(Contains(r.err, "did you mean \"replicas\"")) << r.err;
}

TEST_F(DiffTest, JsonAndMarkdownFormatsAndOut) {
  Edit("vmsets/ios-runners.yaml", "replicas: 4", "replicas: 5");
  Commit("grow");
  Outcome json =
      Diff("--base HEAD~1 --format json --out " + (scratch_.path() / "plan.json").string());
  EXPECT_EQ(json.exit_code, 2) << json.err;
  const nlohmann::json plan = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(plan.is_object()) << json.out;
  EXPECT_EQ(plan["kind"], "Plan");
  EXPECT_EQ(plan["summary"]["create"], 1);
  EXPECT_EQ(Slurp(scratch_.path() / "plan.json"), json.out);

  Outcome md = Diff("--base HEAD~1 --format markdown");
  EXPECT_TRUE(Contains(md.out, "### Flotilla plan for `HEAD~1..HEAD`")) << md.out;
  EXPECT_TRUE(Contains(md.out, "<details><summary><b>ios-runners</b>")) << md.out;
}

TEST_F(DiffTest, AnInventoryPreviewsPlacementAndCanFailOnUnschedulable) {
  Edit("vmsets/ios-runners.yaml", "replicas: 4", "replicas: 5");
  Commit("grow");
  // Every mac host full: online, but no memory left.
  nlohmann::json hosts = nlohmann::json::array();
  for (const char* name : {"mini-01", "mini-02", "mini-03", "mini-04"}) {
    hosts.push_back(InventoryHost(name, "mac-builders", "arm64", Resources(12, "16Gi", "500Gi"),
                                  Resources(1, "14Gi", "0"), Resources(11, "2Gi", "400Gi")));
  }
  WriteInventory(scratch_.path() / "inventory.json", hosts);
  const std::string args =
      "--base HEAD~1 --inventory " + (scratch_.path() / "inventory.json").string();
  Outcome r = Diff(args);
  // Only the golden VM, kept stopped, needs no memory: it is the one change.
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "+ create        macos-golden-0 ")) << r.out;
  EXPECT_TRUE(Contains(r.out, "! unschedulable ios-runners-0")) << r.out;
  EXPECT_TRUE(Contains(r.out, "insufficient memory")) << r.out;
  EXPECT_EQ(Diff(args + " --fail-on-unschedulable").exit_code, 1);

  // Hosts the snapshot lacks (the linux pool's) are not offline: they are taken as declared.
  EXPECT_TRUE(Contains(r.out, "+ create        linux-runners-0 on macpro-01")) << r.out;
  EXPECT_FALSE(Contains(r.out, "offline")) << r.out;

  std::ofstream(scratch_.path() / "inventory.json") << "{\"kind\":\"Inventory\",\"hosts\":[{}]}";
  Outcome bad = Diff(args);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(Contains(bad.err, "/hosts/0/name: is required")) << bad.err;
}

}  // namespace
