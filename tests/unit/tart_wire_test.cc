// Provider tart's readers of Tart's output (wire.h) and its remote scripts (scripts.h).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "providers/tart/scripts.h"
#include "providers/tart/ssh.h"
#include "providers/tart/wire.h"

namespace flotilla::providers::tart {
namespace {

// As Apple's JSONEncoder prints it: " : ", escaped slashes, fields of Tart 2.32.
constexpr std::string_view kList = R"([
  {
    "Accessed" : "2026-05-12T10:00:00Z",
    "Disk" : 50,
    "Name" : "ios-0",
    "Running" : true,
    "Size" : 22,
    "Source" : "local",
    "State" : "running"
  },
  {
    "Disk" : 50,
    "Name" : "ghcr.io\/cirruslabs\/macos-sequoia-base:latest",
    "Running" : false,
    "Size" : 22,
    "Source" : "OCI",
    "State" : "stopped"
  }
])";

TEST(TartWireTest, ListIsReadWhateverTheVersionPrints) {
  Result<std::vector<ListEntry>> entries = ParseList(kList);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].name, "ios-0");
  EXPECT_EQ((*entries)[0].state, "running");
  EXPECT_EQ((*entries)[0].disk_gb, 50u);
  EXPECT_EQ((*entries)[1].source, "oci");
  EXPECT_EQ((*entries)[1].name, "ghcr.io/cirruslabs/macos-sequoia-base:latest");

  // Before 1.8 there was no State; before 2.11 Source was "oci"; unknown fields are ignored.
  Result<std::vector<ListEntry>> old =
      ParseList(R"([{"Source":"oci","Name":"a","Running":true,"Size":3,"New":{"x":1}},)"
                R"({"Source":"local","Name":"b","Running":false}])");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ((*old)[0].state, "running");
  EXPECT_EQ((*old)[0].source, "oci");
  EXPECT_EQ((*old)[1].state, "stopped");

  EXPECT_FALSE(ParseList("[\n\n]").status().ok() && !ParseList("[\n\n]")->empty());
  EXPECT_FALSE(ParseList("not json").ok());
  EXPECT_FALSE(ParseList(R"([{"State":"running"}])").ok());  // no Name
}

TEST(TartWireTest, GetTakesSizeAsStringOrNumber) {
  Result<VmDetails> details = ParseGet(R"({
  "CPU" : 4,
  "Disk" : 50,
  "DiskFormat" : "raw",
  "Display" : "1024x768",
  "Memory" : 8192,
  "OS" : "darwin",
  "Running" : false,
  "Size" : "22.123",
  "State" : "suspended"
})");
  ASSERT_TRUE(details.ok()) << details.status().ToString();
  EXPECT_EQ(details->os, "darwin");
  EXPECT_EQ(details->cpu, 4u);
  EXPECT_EQ(details->memory_mib, 8192u);
  EXPECT_EQ(details->disk_gb, 50u);
  EXPECT_EQ(details->state, "suspended");
  EXPECT_TRUE(ParseGet(R"({"CPU":2,"Memory":4096,"Size":22,"Running":true})").ok());
  EXPECT_EQ(ParseGet(R"({"CPU":2,"Memory":4096,"Size":22,"Running":true})")->state, "running");
}

// Found with fuzz/tart_json_fuzz.cc (fuzz/corpus/tart_json/legacy-and-huge.json): a size
// printed as a double past 2^64 was converted to an integer, which is undefined behaviour
// (UBSan: "1e+300 is outside the range of representable values").
TEST(TartWireTest, NumbersOutOfRangeAreNoSize) {
  Result<VmDetails> huge = ParseGet(R"({"CPU":1e300,"Memory":-4.5,"Disk":1.8446744073709552e19})");
  ASSERT_TRUE(huge.ok()) << huge.status().ToString();
  EXPECT_EQ(huge->cpu, 0u);
  EXPECT_EQ(huge->memory_mib, 0u);
  EXPECT_EQ(huge->disk_gb, 0u);
  EXPECT_EQ(ParseGet(R"({"Disk":49.9})")->disk_gb, 49u);
}

TEST(TartWireTest, ExitCodesAndTextsAreClassified) {
  EXPECT_EQ(Classify(2, "the specified VM \"a\" does not exist\n"), Failure::kDoesNotExist);
  EXPECT_EQ(Classify(2, "VM \"a\" is not running\n"), Failure::kNotRunning);
  EXPECT_EQ(Classify(2, "VM \"a\" is already running!\n"), Failure::kAlreadyRunning);
  EXPECT_EQ(Classify(1, "VM \"a\" is running\n"), Failure::kIsRunning);
  EXPECT_EQ(Classify(1, "The number of VMs exceeds the system limit (other running VMs: a, b)"),
            Failure::kVmLimit);
  EXPECT_EQ(Classify(1,
                     "Error Domain=VZErrorDomain Code=6 \"The maximum supported number of active "
                     "virtual machines has been reached.\""),
            Failure::kVmLimit);
  EXPECT_EQ(Classify(1, "Keychain returned unsuccessful status -25308"), Failure::kKeychainLocked);
  EXPECT_EQ(Classify(1, "SecKeyCreateRandomKey_ios failed"), Failure::kKeychainLocked);
  EXPECT_EQ(Classify(64,
                     "Error: failed to rename VM a, target VM b already exists, delete it "
                     "first!\nUsage: tart rename <name> <new-name>"),
            Failure::kTargetExists);
  EXPECT_EQ(Classify(1,
                     "Failed to connect to the VM using its control socket: x, is the Tart "
                     "Guest Agent running?"),
            Failure::kNoAgent);
  EXPECT_EQ(Classify(1,
                     "Error Domain=VZErrorDomain Code=1 \"The virtual machine failed to "
                     "start.\""),
            Failure::kOther);
  EXPECT_EQ(Classify(1,
                     "Error: dataCorrupted(Swift.DecodingError.Context(codingPath: [], "
                     "debugDescription: \"The given data was not valid JSON.\", "
                     "underlyingError: nil))"),
            Failure::kTornRead);
  EXPECT_EQ(Classify(1,
                     "pulling manifest...\nError: Failed(\"failed to lock "
                     "file:///Users/admin/.tart/tmp/1F0C/: Bad file descriptor\")"),
            Failure::kLockRace);
}

TEST(TartWireTest, HostReportSectionsAreRead) {
  const std::string out =
      "@@version\n2.32.1\n@@rc 0\n@@sysctl\n12\n34359738368\narm64\n@@rc 0\n"
      "@@sw_vers\n15.5\n@@rc 0\n"
      "@@df\nFilesystem 1024-blocks Used Available Capacity iused ifree %iused  Mounted on\n"
      "/dev/disk3s5 976490576 195298115 781192461 21% 1 2 0% /\n@@rc 0\n"
      "@@now 1764900000\n@@rc 0\n@@list\n" +
      std::string(kList) +
      "\n@@rc 0\n@@oci\nghcr.io/cirruslabs/macos-sequoia-base:latest\n@@rc 0\n"
      "@@get ios-0\n{\"CPU\":2,\"Memory\":4096,\"Disk\":50,\"OS\":\"darwin\",\"State\":"
      "\"running\"}\n@@rc 0\n@@ip ios-0\n192.168.64.3\n@@rc 0\n"
      "@@job ios-0\n4242 1764899990 1\n@@rc 0\n"
      "@@job gone\n4243 1764899000 0\n@@rc 0\n@@log gone\nStopping VM...\n@@rc 0\n@@end\n";
  Result<HostReport> report = ParseHostReport(out);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->tart_version, "2.32.1");
  EXPECT_EQ(report->ncpu, 12u);
  EXPECT_EQ(report->memsize, uint64_t{32} << 30);
  EXPECT_EQ(report->machine, "arm64");
  EXPECT_EQ(report->os_version, "15.5");
  EXPECT_EQ(report->disk_avail_kb, 781192461u);
  ASSERT_EQ(report->local.size(), 1u);
  EXPECT_EQ(report->cached,
            std::vector<std::string>{"ghcr.io/cirruslabs/macos-sequoia-base:latest"});
  EXPECT_EQ(report->details.at("ios-0").cpu, 2u);
  EXPECT_EQ(report->ips.at("ios-0"), "192.168.64.3");
  EXPECT_TRUE(report->jobs.at("ios-0").alive);
  EXPECT_FALSE(report->jobs.at("gone").alive);
  EXPECT_EQ(report->jobs.at("gone").log_tail, "Stopping VM...\n");

  EXPECT_FALSE(ParseHostReport("@@version\n2.32.1\n@@rc 0\n").ok());  // cut off
  Result<HostReport> broken = ParseHostReport("@@list\nError: boom\n@@rc 1\n@@end\n");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("boom"), std::string::npos);
}

std::string Golden(const std::string& rel) {
  std::ifstream in(std::string(FLOTILLA_SOURCE_DIR) + "/tests/golden/tart/" + rel);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The outputs flotilla-tartsim prints for each Tart version (tests/golden/tart/, checked against
// the fake by tartsim_test) are what the provider reads.
TEST(TartWireTest, GoldenOutputsOfEachVersionAreRead) {
  for (const std::string version : {"2.22.3", "2.32.1"}) {
    SCOPED_TRACE(version);
    Result<std::vector<ListEntry>> list = ParseList(Golden(version + "/list.json"));
    ASSERT_TRUE(list.ok()) << list.status().ToString();
    ASSERT_FALSE(list->empty());
    for (const ListEntry& entry : *list) {
      EXPECT_FALSE(entry.name.empty());
      EXPECT_TRUE(entry.source == "local" || entry.source == "oci") << entry.source;
      EXPECT_NE(StateFromTart(entry.state), VmState::kUnknown) << entry.state;
    }
    Result<VmDetails> get = ParseGet(Golden(version + "/get.json"));
    ASSERT_TRUE(get.ok()) << get.status().ToString();
    EXPECT_GT(get->cpu, 0u);
    EXPECT_GT(get->memory_mib, 0u);
    EXPECT_GT(get->disk_gb, 0u);
  }
  // Each error text, with its exit code from the file's name, means what the provider thinks.
  const std::vector<std::pair<std::string, Failure>> errors = {
      {"get-missing.exit2", Failure::kDoesNotExist},
      {"exec-not-running.exit2", Failure::kNotRunning},
      {"stop-not-running.exit2", Failure::kNotRunning},
      {"run-already-running.exit2", Failure::kAlreadyRunning},
      {"delete-running.exit1", Failure::kIsRunning},
      {"run-vm-limit.exit1", Failure::kVmLimit},
      {"run-keychain-locked.exit1", Failure::kKeychainLocked},
      {"exec-no-agent.exit1", Failure::kNoAgent},
      {"ip-not-running.exit1", Failure::kNoIp},
      {"rename-target-exists.exit64", Failure::kTargetExists},
      {"rename-missing.exit64", Failure::kUsage},
      {"run-vz-start-failure.exit1", Failure::kOther},
  };
  for (const auto& [name, failure] : errors) {
    const int code = std::stoi(name.substr(name.rfind("exit") + 4));
    EXPECT_EQ(Classify(code, Golden("2.32.1/errors/" + name + ".txt")), failure) << name;
  }
}

TEST(TartWireTest, AFailedIpIsKeptWithItsStatus) {
  Result<HostReport> report = ParseHostReport(
      "@@get vm\n{\"State\" : \"running\"}\n@@rc 0\n@@ip vm\nno IP address found\n@@rc 1\n@@end\n");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->ips.count("vm"), 0u);
  EXPECT_EQ(report->ip_failures.at("vm").exit_code, 1);
  EXPECT_EQ(report->ip_failures.at("vm").text, "no IP address found\n");
}

TEST(TartWireTest, TartVersionsCompareByNumber) {
  EXPECT_TRUE(TartAtLeast("2.32.1", "1.1.0"));
  EXPECT_TRUE(TartAtLeast("1.10.0", "1.9.2"));
  EXPECT_TRUE(TartAtLeast("1.1", "1.1.0"));
  EXPECT_FALSE(TartAtLeast("1.0.9", "1.1.0"));
  EXPECT_FALSE(TartAtLeast("0.1.0", "0.2.0"));
  EXPECT_TRUE(TartAtLeast("SNAPSHOT", "99.0.0"));
  EXPECT_FALSE(TartAtLeast("", "0.1.0"));
}

// `tart ip` for a tunnel gets --wait (0.2.0) and --resolver dhcp (1.1.0) only from the Tart
// versions that have them: older ones refuse an unknown option (exit 64).
TEST(TartScriptsTest, TunnelAddressAsksTartIpWithTheOptionsItsVersionHas) {
  const Scripts scripts(TartPoolSettings{});
  const std::string now = scripts.TunnelAddress("vm", "2.32.1", 7);
  EXPECT_NE(now.find("\"$T\" ip --wait 7 --resolver dhcp \"$N\""), std::string::npos) << now;
  const std::string before_resolver = scripts.TunnelAddress("vm", "1.0.0", 7);
  EXPECT_NE(before_resolver.find("\"$T\" ip --wait 7 \"$N\""), std::string::npos)
      << before_resolver;
  const std::string first = scripts.TunnelAddress("vm", "0.1.0", 7);
  EXPECT_NE(first.find("\"$T\" ip \"$N\""), std::string::npos) << first;
  EXPECT_NE(now.find("N='vm'"), std::string::npos);
}

TEST(TartScriptsTest, HostileNamesStayWords) {
  const std::string hostile = "a'; rm -rf / #$(id)`id`\n\"x";
  TartPoolSettings settings;
  settings.tart_path = "/opt/home brew/bin/tart";
  const Scripts scripts(settings);
  const std::string script = scripts.Set(hostile, 2, Quantity::FromMiB(4096), std::nullopt, false);
  EXPECT_NE(script.find(ShellQuote(hostile)), std::string::npos);
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  // Tart's units: MiB, and decimal GB rounded up.
  EXPECT_NE(script.find(" --cpu 2 --memory 4096"), std::string::npos) << script;
  EXPECT_NE(scripts.Set("a", 1, Quantity::FromBytes(1), Quantity::FromBytes(50'000'000'001), true)
                .find(" --cpu 1 --memory 1 --disk-size 51 --random-mac"),
            std::string::npos);
  // The script is one brace group read whole before it runs, with stdin closed.
  EXPECT_TRUE(script.starts_with("{\n"));
  EXPECT_TRUE(script.ends_with("\n} </dev/null\n"));
  // The remote command line carries no value of ours.
  EXPECT_EQ(RemoteCommand().find(hostile), std::string::npos);
}

TEST(TartScriptsTest, ExecTrailerTellsTheScriptsStatusFromTarts) {
  const std::string input = Scripts::ExecInput("exit 2", {{"TOKEN", "s3cr'et"}});
  EXPECT_NE(input.find("TOKEN='s3cr'\\''et'; export TOKEN"), std::string::npos);
  std::string out = "hello\n\n__FLOTILLA_EXIT=2\n";
  EXPECT_EQ(Scripts::ParseExecTrailer(out), 2);
  EXPECT_EQ(out, "hello\n");
  std::string none = "VM \"a\" is not running\n";
  EXPECT_EQ(Scripts::ParseExecTrailer(none), std::nullopt);
}

}  // namespace
}  // namespace flotilla::providers::tart
