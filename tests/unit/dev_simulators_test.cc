// How `flotilla dev` finds and starts flotilla-hostsim: where it looks, in which order, what it
// says when it finds nothing, and the flags it passes (none of them a secret).

#include "reconciler/cli/dev_simulators.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "providers/builtin.h"
#include "reconciler/cli/embedded_examples.h"
#include "reconciler/manifest/loader.h"
#include "tests/support/process.h"

namespace flotilla::cli {
namespace {

namespace fs = std::filesystem;

void MakeExecutable(const fs::path& file) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << "#!/bin/sh\n";
  fs::permissions(file, fs::perms::owner_all);
}

TEST(DevSimulatorsTest, FindsTheSimulatorBesideFlotillaThenOnPath) {
  testing::ScratchDir scratch;
  const fs::path self = scratch.path() / "self";
  const fs::path first = scratch.path() / "first";
  const fs::path second = scratch.path() / "second";
  fs::create_directories(self);
  MakeExecutable(second / "flotilla-hostsim");
  const std::string path = first.string() + "::" + second.string();
  Result<std::string> found = FindHostSim(self.string(), path);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, (second / "flotilla-hostsim").string());

  MakeExecutable(self / "flotilla-hostsim");
  found = FindHostSim(self.string(), path);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, (self / "flotilla-hostsim").string());

  // A file that is not executable is not the simulator.
  fs::permissions(self / "flotilla-hostsim", fs::perms::owner_read | fs::perms::owner_write);
  fs::permissions(second / "flotilla-hostsim", fs::perms::owner_read | fs::perms::owner_write);
  found = FindHostSim(self.string(), path);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), Status::Code::kNotFound);
  const std::string message = found.status().message();
  EXPECT_NE(message.find("cannot find flotilla-hostsim"), std::string::npos) << message;
  for (const fs::path& dir : {self, first, second}) {
    EXPECT_NE(message.find(dir.string()), std::string::npos) << message;
  }
}

TEST(DevSimulatorsTest, PassesEverySettingAsAFlagAndNoSecret) {
  const SimulatorSpec spec{.pool = "mac-builders",
                           .port = 4321,
                           .hosts = 3,
                           .arch = "x86_64",
                           .cpu = 8,
                           .memory_mib = 16384,
                           .disk_mib = 512000,
                           .latency = "create=3s",
                           .jitter = 0.2,
                           .lookup_delay = "300ms",
                           .guest_boot = "3s",
                           .guest_exec = "succeed",
                           .api_key_file = "/d/hosts/api-keys",
                           .state_file = "/d/hosts/mac-builders.json",
                           .port_file = "/d/hosts/mac-builders.port",
                           .log_file = "/d/hosts/mac-builders.log"};
  const std::vector<std::string> args = SimulatorArguments(spec);
  auto value = [&](const std::string& flag) {
    auto it = std::find(args.begin(), args.end(), flag);
    return it == args.end() || it + 1 == args.end() ? std::string("<missing>") : *(it + 1);
  };
  EXPECT_EQ(value("--listen"), "127.0.0.1:4321");
  EXPECT_EQ(value("--hosts"), "3");
  EXPECT_EQ(value("--arch"), "x86_64");
  EXPECT_EQ(value("--cpu"), "8");
  EXPECT_EQ(value("--memory"), "16384Mi");
  EXPECT_EQ(value("--disk"), "512000Mi");
  EXPECT_EQ(value("--latency"), "create=3s");
  EXPECT_EQ(value("--jitter"), "0.2");
  EXPECT_EQ(value("--lookup-delay"), "300ms");
  EXPECT_EQ(value("--guest-boot"), "3s");
  EXPECT_EQ(value("--guest-exec"), "succeed");
  EXPECT_EQ(value("--api-key-file"), "/d/hosts/api-keys");
  EXPECT_EQ(value("--state-file"), "/d/hosts/mac-builders.json");
  EXPECT_EQ(value("--port-file"), "/d/hosts/mac-builders.port");
  EXPECT_EQ(std::count(args.begin(), args.end(), "--api-key"), 0);

  SimulatorSpec none = spec;
  none.latency.clear();
  const std::vector<std::string> quiet = SimulatorArguments(none);
  EXPECT_EQ(std::count(quiet.begin(), quiet.end(), "--latency"), 0);
}

// flotilla dev simulates Parallels hosts only: the example pools of other providers, and the
// sets on them, stay out of its fleet.
TEST(DevSimulatorsTest, LeavesOutThePoolsNoSimulatorServes) {
  const auto meta = [](std::string name, std::string file) {
    return ObjectMeta{.name = std::move(name), .origin = SourceLocation{.file = std::move(file)}};
  };
  Desired fleet;
  fleet.pools = {HostPool{.meta = meta("macs", "ex/pools/macs.yaml"), .provider = "parallels"},
                 HostPool{.meta = meta("minis", "ex/pools/minis.yaml"), .provider = "tart"}};
  fleet.sets = {VMSet{.meta = meta("ios", "ex/vmsets/ios.yaml"), .pool = "macs"},
                VMSet{.meta = meta("xcode", "ex/vmsets/xcode.yaml"), .pool = "minis"}};
  const std::map<std::string, std::string> files = {{"pools/macs.yaml", "a"},
                                                    {"pools/minis.yaml", "b"},
                                                    {"vmsets/ios.yaml", "c"},
                                                    {"vmsets/xcode.yaml", "d"},
                                                    {"README.md", "e"}};
  const SimulatedFleet simulated = SimulatedExamples(files, fleet, "ex/");
  EXPECT_EQ(simulated.files,
            (std::map<std::string, std::string>{
                {"pools/macs.yaml", "a"}, {"vmsets/ios.yaml", "c"}, {"README.md", "e"}}));
  EXPECT_EQ(simulated.left_out,
            (std::vector<std::string>{"pool minis (provider tart)", "VM set xcode"}));

  // Nothing to leave out: every file stays.
  fleet.pools.pop_back();
  fleet.sets.pop_back();
  EXPECT_EQ(SimulatedExamples(files, fleet, "ex/").files, files);
  EXPECT_TRUE(SimulatedExamples(files, fleet, "ex/").left_out.empty());
}

// The example fleet compiled into flotilla: what flotilla dev runs of it is valid on its own.
TEST(DevSimulatorsTest, TheSimulatedExampleFleetIsValid) {
  std::map<std::string, std::string> files;
  for (std::string_view name : examples::Names()) {
    files.emplace(std::string(name), std::string(examples::Find(name)));
  }
  auto validator = manifest::SchemaValidator::Create(providers::BuiltinRules());
  ASSERT_TRUE(validator.ok()) << validator.status().ToString();
  const manifest::ManifestLoader loader(*validator);
  const auto load = [&](const std::map<std::string, std::string>& texts) {
    std::vector<manifest::ManifestFile> manifests;
    for (const auto& [name, text] : texts) {
      manifests.push_back({.display_path = "examples/fleet/" + name, .content = text});
    }
    return loader.LoadFiles(manifests);
  };
  const manifest::LoadResult all = load(files);
  ASSERT_TRUE(all.ok());
  const SimulatedFleet simulated = SimulatedExamples(files, all.desired, "examples/fleet/");
  const manifest::LoadResult run = load(simulated.files);
  ASSERT_TRUE(run.ok());
  ASSERT_FALSE(run.desired.pools.empty());
  for (const HostPool& pool : run.desired.pools) {
    EXPECT_EQ(pool.provider, kSimulatedProvider) << pool.meta.name;
  }
  EXPECT_EQ(run.desired.sets.size() + run.desired.pools.size() + simulated.left_out.size(),
            all.desired.sets.size() + all.desired.pools.size());
}

}  // namespace
}  // namespace flotilla::cli
