// flotilla-tartsim's command line: JSON and error texts against tests/golden/tart/<version>/
// (shared with the Tart provider's parser tests), clone/rename/set/delete semantics, the fake
// registry, hostile VM names, and the host tools.

#include <sys/stat.h>

#include <string>
#include <vector>

#include "tests/unit/tartsim_fixture.h"

namespace flotilla::tartsim::testing {
namespace {

using nlohmann::json;

constexpr time_t kAccessed = 1778580000;  // 2026-05-12T10:00:00Z

void SetAccessed(const std::string& path) {
  struct timespec times[2] = {{kAccessed, 0}, {0, UTIME_OMIT}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

class TartsimVersionTest : public TartsimTest, public ::testing::WithParamInterface<const char*> {};

// Two darwin clones (one running) and a Linux one, as `list` and `get` print them.
TEST_P(TartsimVersionTest, ListAndGetMatchTheGoldenFiles) {
  const std::string version = GetParam();
  Config({{"version", version}, {"latency_ms", {{"limitcheck", 0}}}});
  Clone("ci-runner-0");
  Clone("ci-runner-1");
  Clone("ubuntu-builder", "ghcr.io/cirruslabs/ubuntu:latest");
  const pid_t run = Boot("ci-runner-0");
  for (const char* vm : {"ci-runner-0", "ci-runner-1", "ubuntu-builder"}) {
    SetAccessed(home_ + "/vms/" + vm);
  }
  const std::string ocis = home_ + "/cache/OCIs/ghcr.io/cirruslabs/";
  SetAccessed(ocis + "macos-sequoia-base/latest");
  SetAccessed(ocis + "ubuntu/latest");

  Outcome list = Run({"list", "--format", "json"});
  ASSERT_EQ(list.code, 0) << list.err;
  ExpectGolden(version + "/list.json", list.out);
  EXPECT_EQ(Run({"list", "--source", "local", "-q"}).out,
            "ci-runner-0\nci-runner-1\nubuntu-builder\n");
  Outcome get = Run({"get", "ci-runner-0", "--format", "json"});
  ASSERT_EQ(get.code, 0) << get.err;
  ExpectGolden(version + "/get.json", get.out);
  ExpectGolden(version + "/get.txt", Run({"get", "ubuntu-builder"}).out);
  ExpectGolden(version + "/version.txt", Run({"--version"}).out);

  // The parser contract: real JSON, `Size` a string in get and a number in list.
  const json parsed = json::parse(list.out);
  EXPECT_EQ(parsed[0]["State"], "running");
  EXPECT_TRUE(json::parse(get.out)["Size"].is_string());
  EXPECT_EQ(Run({"stop", "ci-runner-0"}).code, 0);
  EXPECT_EQ(WaitExit(run), 0);
}

INSTANTIATE_TEST_SUITE_P(Versions, TartsimVersionTest, ::testing::Values("2.22.3", "2.32.1"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '.', '_');
                           return "v" + name;
                         });

TEST_F(TartsimTest, FieldsFollowTheVersion) {
  Clone("vm");
  Config({{"version", "2.10.0"}});
  json old = json::parse(Run({"list", "--format", "json"}).out);
  EXPECT_EQ(old[1]["Source"], "oci");  // lower case before 2.11
  EXPECT_FALSE(old[0].contains("SizeOnDisk"));
  EXPECT_FALSE(json::parse(Run({"get", "vm", "--format", "json"}).out).contains("DiskFormat"));
  Config({{"version", "2.32.1"}, {"shuffle_keys", 7}, {"get_size_number", true}});
  const std::string shuffled = Run({"get", "vm", "--format", "json"}).out;
  EXPECT_TRUE(json::parse(shuffled)["Size"].is_number());
  EXPECT_NE(shuffled.find("\"Size\" : 22.123"), std::string::npos) << shuffled;
  EXPECT_EQ(Run({"list", "--source", "local", "--format", "json"}).out.find("[\n  {"), 0u);
  std::filesystem::remove_all(home_ + "/vms");
  std::filesystem::remove_all(home_ + "/cache");
  EXPECT_EQ(Run({"list", "--format", "json"}).out, "[\n\n]\n");
  Outcome exec = Run({"exec", "vm", "true"});
  EXPECT_EQ(exec.code, 2) << exec.err;  // 2.32.1 has exec: "does not exist"
  Config({{"version", "2.26.0"}});
  exec = Run({"exec", "vm", "true"});
  EXPECT_EQ(exec.code, 64);
  EXPECT_EQ(exec.err.rfind("Error: Unexpected argument 'exec'\nUsage: tart <subcommand>\n", 0), 0u);
}

TEST_F(TartsimTest, ErrorTextsMatchTheGoldenFiles) {
  auto expect = [&](const std::vector<std::string>& args, int code, const std::string& golden) {
    Outcome got = Run(args);
    EXPECT_EQ(got.code, code) << golden << ": " << got.err;
    ExpectGolden("2.32.1/errors/" + golden + ".exit" + std::to_string(code) + ".txt", got.err);
  };
  Clone("vm");
  Clone("other");
  expect({"get", "nope"}, 2, "get-missing");
  expect({"run", "nope"}, 1, "run-missing");  // thrown from Run.validate(): "Error: ..."
  expect({"stop", "vm"}, 2, "stop-not-running");
  expect({"suspend", "vm"}, 2, "suspend-not-running");
  expect({"exec", "vm", "true"}, 2, "exec-not-running");
  expect({"rename", "vm", "other"}, 64, "rename-target-exists");
  expect({"rename", "nope", "fresh"}, 64, "rename-missing");
  expect({"rename", "vm", "a/b"}, 64, "rename-new-name-with-slash");
  expect({"clone", "vm", "a/b"}, 64, "clone-new-name-with-slash");
  expect({"set", "vm", "--disk-size", "20"}, 1, "set-disk-shrink");
  expect({"set", "vm", "--cpu", "2"}, 1, "set-cpu-below-minimum");
  expect({"set", "vm", "--memory", "4096"}, 1, "set-memory-below-minimum");
  expect({"ip", "vm"}, 1, "ip-not-running");
  expect({"pull", "ghcr.io/cirruslabs/nothing-here:1.0"}, 1, "pull-unknown-image");
  expect({"list", "--source", "remote"}, 64, "list-bad-source");
  expect({"stop", "vm", "--timeout", "soon"}, 64, "stop-bad-timeout");

  Config({{"faults", {{"vm_limit", 0}}}});
  expect({"run", "--no-graphics", "vm"}, 1, "run-vm-limit");
  Config({{"faults", {{"keychain_locked", true}}}});
  expect({"run", "--no-graphics", "vm"}, 1, "run-keychain-locked");
  Config({{"faults", {{"vz_start_failure", true}}}});
  expect({"run", "--no-graphics", "vm"}, 1, "run-vz-start-failure");
  Config({{"version", "2.17.0"}, {"faults", {{"vm_limit", 0}}}});
  Outcome old = Run({"run", "--no-graphics", "vm"});
  EXPECT_EQ(old.code, 1);
  EXPECT_EQ(old.err.rfind("Error Domain=VZErrorDomain Code=6 \"The maximum supported number", 0),
            0u)
      << old.err;
}

// VMStorageOCI.swift link() removes a tag's symlink before making it anew: a clone that opens
// the tag in between finds nothing (faults.link_race opens that window on demand).
TEST_F(TartsimTest, ACloneMeetingARelinkedTagFindsNothing) {
  Config({{"faults", {{"link_race", 1}}}});
  Outcome raced = Run({"clone", "ghcr.io/cirruslabs/ubuntu:latest", "vm"});
  EXPECT_EQ(raced.code, 2);
  EXPECT_EQ(raced.err, "the specified VM \"ghcr.io/cirruslabs/ubuntu:latest\" does not exist\n");
  EXPECT_EQ(json::parse(ReadText(Fake("config.json")))["faults"]["link_race"], 0);
  EXPECT_FALSE(std::filesystem::exists(home_ + "/vms/vm"));
  Outcome again = Run({"clone", "ghcr.io/cirruslabs/ubuntu:latest", "vm"});
  EXPECT_EQ(again.code, 0) << again.err;
}

TEST_F(TartsimTest, CloneOntoAnExistingNameReplacesIt) {
  Clone("vm");
  ASSERT_EQ(Run({"set", "vm", "--cpu", "8", "--memory", "16384"}).code, 0);
  const std::string before = json::parse(ReadText(home_ + "/vms/vm/config.json"))["macAddress"];
  WriteText(home_ + "/vms/vm/marker", "old disk");
  Outcome again = Run({"clone", "ghcr.io/cirruslabs/macos-sequoia-base:latest", "vm"});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, "");  // cached: nothing pulled, nothing said
  const json config = json::parse(ReadText(home_ + "/vms/vm/config.json"));
  EXPECT_EQ(config["cpuCount"], 4);
  EXPECT_FALSE(std::filesystem::exists(home_ + "/vms/vm/marker"));
  // The old `vm` had the image's MAC, so the copy got a fresh one.
  EXPECT_NE(config["macAddress"], before);
  EXPECT_TRUE(std::filesystem::is_empty(home_ + "/tmp"));
  // A local source works too, and keeps the disk sparse.
  ASSERT_EQ(Run({"clone", "vm", "copy"}).code, 0);
  struct stat st {};
  ASSERT_EQ(stat((home_ + "/vms/copy/disk.img").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 50000000000);
  EXPECT_LT(st.st_blocks * 512, 1 << 20);
}

TEST_F(TartsimTest, SetChecksMinimumsAndOnlyGrowsTheDisk) {
  Clone("vm");
  Clone("linux", "ghcr.io/cirruslabs/ubuntu:latest");
  EXPECT_EQ(Run({"set", "linux", "--cpu", "1", "--memory", "1024"}).code, 0);  // not darwin
  EXPECT_EQ(Run({"set", "vm", "--disk-size", "60", "--display", "1920x1080px"}).code, 0);
  EXPECT_EQ(std::filesystem::file_size(home_ + "/vms/vm/disk.img"), 60000000000u);
  const json config = json::parse(ReadText(home_ + "/vms/vm/config.json"));
  EXPECT_EQ(config["display"], json({{"width", 1920}, {"height", 1080}, {"unit", "px"}}));
  const std::string mac = config["macAddress"];
  EXPECT_EQ(Run({"set", "vm", "--random-mac"}).code, 0);
  EXPECT_NE(json::parse(ReadText(home_ + "/vms/vm/config.json"))["macAddress"], mac);
  json got = json::parse(Run({"get", "vm", "--format", "json"}).out);
  EXPECT_EQ(got["Disk"], 60);
  EXPECT_EQ(Run({"set", "vm", "--cpu", "abc"}).code, 64);
}

TEST_F(TartsimTest, RenameAndDelete) {
  Clone("vm");
  EXPECT_EQ(Run({"rename", "vm", "renamed"}).code, 0);
  EXPECT_EQ(Run({"list", "--source", "local", "-q"}).out, "renamed\n");
  EXPECT_EQ(Run({"delete", "renamed", "nope"}).code, 2);  // deletes until the first error
  EXPECT_EQ(Run({"list", "--source", "local", "-q"}).out, "");
  // Remote names delete the cache entry; the unreferenced digest goes with its last tag.
  EXPECT_EQ(Run({"delete", "ghcr.io/cirruslabs/macos-sequoia-base:latest"}).code, 0);
  EXPECT_EQ(Run({"list", "--source", "oci", "-q"}).out, "");
}

TEST_F(TartsimTest, RegistryPullAuthenticationAndFqn) {
  Image("ghcr.io/acme/private/1.0", {{"os", "linux"},
                                     {"diskGB", 20},
                                     {"username", "robot"},
                                     {"password", "s3cret"},
                                     {"digest", std::string(64, 'a')}});
  Config({{"faults", {{"keychain_locked", true}}}});
  Outcome denied = Run({"pull", "ghcr.io/acme/private:1.0"});
  EXPECT_EQ(denied.code, 1);
  EXPECT_EQ(denied.out,
            "pulling ghcr.io/acme/private:1.0...\npulling manifest...\nFailed to retrieve "
            "credentials using Keychain credentials provider, authentication may fail: "
            "Failed(message: \"Keychain returned unsuccessful status -25308\")\n");
  ExpectGolden("2.32.1/errors/pull-auth-denied.exit1.txt", denied.err);
  Outcome wrong = Run({"pull", "ghcr.io/acme/private:1.0"}, "",
                      {"TART_REGISTRY_USERNAME=robot", "TART_REGISTRY_PASSWORD=nope"});
  EXPECT_EQ(wrong.code, 1);
  Outcome pulled = Run({"pull", "ghcr.io/acme/private:1.0"}, "",
                       {"TART_REGISTRY_USERNAME=robot", "TART_REGISTRY_PASSWORD=s3cret"});
  ASSERT_EQ(pulled.code, 0) << pulled.err;
  EXPECT_EQ(pulled.out,
            "pulling ghcr.io/acme/private:1.0...\npulling manifest...\npulling disk (7.2 GB "
            "compressed)...\n0%\n100%\npulling NVRAM...\n");
  EXPECT_EQ(Run({"fqn", "ghcr.io/acme/private:1.0"}).out,
            "ghcr.io/acme/private@sha256:" + std::string(64, 'a') + "\n");
  EXPECT_EQ(Run({"fqn", "ghcr.io/acme/other:1.0"}).code, 1);
  EXPECT_EQ(Run({"list", "--source", "oci", "-q"}).out,
            "ghcr.io/acme/private:1.0\nghcr.io/acme/private@sha256:" + std::string(64, 'a') + "\n");
  EXPECT_EQ(std::filesystem::read_symlink(home_ + "/cache/OCIs/ghcr.io/acme/private/1.0"),
            home_ + "/cache/OCIs/ghcr.io/acme/private/sha256:" + std::string(64, 'a'));
  // Pulled again: nothing to fetch.
  EXPECT_EQ(
      Run({"pull", "ghcr.io/acme/private:1.0"}, "",
          {"TART_REGISTRY_USERNAME=robot", "TART_REGISTRY_PASSWORD=s3cret"})
          .out,
      "pulling ghcr.io/acme/private:1.0...\npulling manifest...\nghcr.io/acme/private@sha256:" +
          std::string(64, 'a') + " image is already cached and linked!\n");
}

TEST_F(TartsimTest, PruneRemovesWhatItIsAskedTo) {
  Clone("vm");
  EXPECT_EQ(Run({"prune"}).code, 64);                      // at least one criterion
  EXPECT_EQ(Run({"prune", "--older-than", "0"}).code, 0);  // caches by default
  EXPECT_EQ(Run({"list", "--source", "oci", "-q"}).out, "");
  EXPECT_EQ(Run({"list", "--source", "local", "-q"}).out, "vm\n");
  EXPECT_EQ(Run({"prune", "--entries", "vms", "--space-budget", "100"}).code, 0);  // fits
  EXPECT_EQ(Run({"list", "--source", "local", "-q"}).out, "vm\n");
  EXPECT_EQ(Run({"prune", "--entries", "vms", "--space-budget", "0"}).code, 0);
  EXPECT_EQ(Run({"list", "--source", "local", "-q"}).out, "");
}

// Names reach tart as single argv entries: spaces, quotes and $(...) are just names.
TEST_F(TartsimTest, HostileNamesAreJustNames) {
  const std::vector<std::string> names = {"my vm", "it's \"quoted\"", "$(touch pwned)", "a;b|c&d",
                                          "-dash"};
  for (const std::string& name : names) {
    if (name[0] == '-') {
      EXPECT_EQ(Run({"clone", "ghcr.io/cirruslabs/ubuntu:latest", "--", name}).code, 0);
      continue;
    }
    Clone(name, "ghcr.io/cirruslabs/ubuntu:latest");
  }
  Outcome list = Run({"list", "--source", "local", "--format", "json"});
  std::vector<std::string> listed;
  for (const json& vm : json::parse(list.out)) {
    listed.push_back(vm["Name"]);
  }
  EXPECT_EQ(listed, std::vector<std::string>(
                        {"$(touch pwned)", "-dash", "a;b|c&d", "it's \"quoted\"", "my vm"}));
  const pid_t run = Boot("$(touch pwned)");
  EXPECT_EQ(State("$(touch pwned)"), "running");
  EXPECT_EQ(Run({"exec", "$(touch pwned)", "printf", "%s", "$HOME"}).out, "$HOME");
  EXPECT_EQ(Run({"stop", "$(touch pwned)"}).code, 0);
  EXPECT_EQ(WaitExit(run), 0);
  EXPECT_EQ(Run({"delete", "my vm", "it's \"quoted\""}).code, 0);
  EXPECT_FALSE(std::filesystem::exists("pwned"));
  EXPECT_FALSE(std::filesystem::exists(home_ + "/pwned"));
  // '/' cannot be in a local name (Clone.swift and Rename.swift validate()).
  EXPECT_EQ(Run({"clone", "ghcr.io/cirruslabs/ubuntu:latest", "../escape"}).code, 64);
  EXPECT_EQ(Run({"get", "../vms/my vm"}).code, 2);
  EXPECT_FALSE(std::filesystem::exists(root_ + "/escape"));
}

TEST_F(TartsimTest, HostTools) {
  Config({{"host", {{"ncpu", 24}, {"memsize", 68719476736}, {"os_version", "26.1"}}}});
  Outcome sysctl = Run({"-n", "hw.ncpu", "hw.memsize", "hw.machine"}, "", {}, "sysctl");
  EXPECT_EQ(sysctl.code, 0);
  EXPECT_EQ(sysctl.out, "24\n68719476736\narm64\n");
  Outcome unknown = Run({"-n", "hw.nope", "hw.ncpu"}, "", {}, "sysctl");
  EXPECT_EQ(unknown.code, 1);
  EXPECT_EQ(unknown.err, "sysctl: unknown oid 'hw.nope'\n");
  EXPECT_EQ(unknown.out, "24\n");
  EXPECT_EQ(Run({"-productVersion"}, "", {}, "sw_vers").out, "26.1\n");
  EXPECT_EQ(Run({"-buildVersion"}, "", {}, "sw_vers").out, "24F74\n");
  Outcome df = Run({"-k", home_}, "", {}, "df");
  ASSERT_EQ(df.code, 0) << df.err;
  std::istringstream lines(df.out);
  std::string header;
  std::string row;
  std::getline(lines, header);
  std::getline(lines, row);
  EXPECT_EQ(header.rfind("Filesystem", 0), 0u);
  EXPECT_NE(header.find("1024-blocks"), std::string::npos);
  std::istringstream fields(row);
  std::vector<std::string> cells{std::istream_iterator<std::string>(fields), {}};
  ASSERT_EQ(cells.size(), 9u) << row;
  EXPECT_EQ(cells[1], "976562500");
  EXPECT_EQ(cells[3], "781250000");
  EXPECT_EQ(Run({"-k", root_ + "/missing"}, "", {}, "df").code, 1);
}

TEST_F(TartsimTest, AMalformedFakeConfigIsLoud) {
  WriteText(Fake("config.json"), R"({"faults": {"vm_limt": 1}})");
  Outcome got = Run({"list"});
  EXPECT_EQ(got.code, 70);
  EXPECT_NE(got.err.find("unknown key \"vm_limt\""), std::string::npos) << got.err;
}

TEST_F(TartsimTest, HangingCommandsWaitToBeKilled) {
  Config({{"faults", {{"hang", {"list"}}}}});
  const pid_t list = Spawn({"list"}, "hung");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(list, SIGINT);  // like a hung tart, it does not react
  int status = 0;
  EXPECT_EQ(waitpid(list, &status, WNOHANG), 0);
  kill(list, SIGKILL);
  EXPECT_EQ(WaitExit(list), 128 + SIGKILL);
  EXPECT_EQ(Run({"get", "nope"}).code, 2);  // other commands are fine
}

}  // namespace
}  // namespace flotilla::tartsim::testing
