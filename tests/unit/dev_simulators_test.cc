// How `flotilla dev` finds and starts flotilla-hostsim: where it looks, in which order, what it
// says when it finds nothing, and the flags it passes (none of them a secret).

#include "reconciler/cli/dev_simulators.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

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

}  // namespace
}  // namespace flotilla::cli
