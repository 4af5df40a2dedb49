// `flotilla dev` end to end: it starts with no configuration, converges the example fleet on its
// simulated hosts (Parallels hosts and Tart Macs), follows a commit that changes replicas, stops
// cleanly on SIGTERM, and a second start reuses the folder (repository, store and VMs) without
// recreating anything. The simulated hosts are flotilla-hostsim and sshd child processes that
// never outlive flotilla, nor do the Macs' VMs, even when it is killed; without
// flotilla-hostsim, `flotilla dev` says where it looked, and without flotilla-tartsim it runs
// the Parallels pools and says why the Tart pool is left out.

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli_runner.h"
#include "tests/support/dev_runner.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"

namespace flotilla {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Contains;
using testing::Dev;
using testing::kExampleVms;
using testing::kTartVms;
using testing::Process;
using testing::ProcStatFields;
using testing::ScratchDir;
using testing::Slurp;
using testing::WaitUntil;

// The processes whose parent is `parent`, from /proc/<pid>/stat.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const std::vector<std::string> fields = ProcStatFields(entry.path() / "stat");
    if (fields.size() > 1 && std::stoi(fields[1]) == parent) {
      children.push_back(std::stoi(name));
    }
  }
  return children;
}

// Whether `pid` has ended (gone, or a zombie its new parent has yet to collect).
bool Ended(pid_t pid) {
  const std::vector<std::string> fields = ProcStatFields("/proc/" + std::to_string(pid) + "/stat");
  return fields.empty() || fields[0] == "Z";
}

std::string ExecutableName(pid_t pid) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).filename().string();
}

// The children of `parent` that run `executable`.
std::vector<pid_t> ChildrenRunning(pid_t parent, const std::string& executable) {
  std::vector<pid_t> found;
  for (pid_t child : ChildrenOf(parent)) {
    if (ExecutableName(child) == executable) {
      found.push_back(child);
    }
  }
  return found;
}

// The `tart run`s of the simulated Macs under `data`: flotilla-tartsim processes whose TART_HOME
// is there (the VMs of the Macs; they live in their own sessions, no child of flotilla).
std::vector<pid_t> TartRuns(const fs::path& data) {
  std::vector<pid_t> runs;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos ||
        ExecutableName(std::stoi(name)) != "flotilla-tartsim") {
      continue;
    }
    const std::string environ = Slurp(entry.path() / "environ");
    const std::string cmdline = Slurp(entry.path() / "cmdline");
    if (Contains(environ, "TART_HOME=" + (data / "macs").string()) &&
        Contains(cmdline, std::string("run\0", 4))) {
      runs.push_back(std::stoi(name));
    }
  }
  return runs;
}

// The number of banner lines that start with `label` and contain `text`.
size_t BannerLines(const std::string& banner, const std::string& label, const std::string& text) {
  size_t count = 0;
  std::istringstream lines(banner);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("  " + label) && Contains(line, text)) {
      ++count;
    }
  }
  return count;
}

TEST(DevTest, ConvergesFollowsACommitAndRestartsCleanly) {
  ScratchDir scratch;
  const fs::path data = scratch.path() / ".flotilla-dev";
  int64_t last_run = 0;
  {
    Dev dev(scratch.path());
    ASSERT_TRUE(dev.ok()) << dev.out() << dev.err();
    const std::string banner = dev.out();
    EXPECT_TRUE(Contains(banner, "API token")) << banner;
    // One click to the dashboard, logged in: the token rides in the fragment, which the
    // browser never sends; the page itself needs none.
    EXPECT_EQ(
        BannerLines(banner, "Dashboard",
                    "http://127.0.0.1:" + std::to_string(dev.port()) + "/#token=" + dev.token()),
        1u)
        << banner;
    auto page = httplib::Client("127.0.0.1", dev.port()).Get("/");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    EXPECT_TRUE(Contains(page->body, "/assets/")) << page->body;
    EXPECT_TRUE(Contains(banner, "Repository   .flotilla-dev/fleet")) << banner;
    EXPECT_TRUE(Contains(banner, "flotilla plan --config .flotilla-dev/flotilla.yaml")) << banner;
    EXPECT_TRUE(Contains(banner, "flotilla vms --server")) << banner;
    EXPECT_EQ(BannerLines(banner, "Hosts", "tart-minis: 3 simulated Macs"), 1u) << banner;
    EXPECT_FALSE(Contains(banner, "Left out")) << banner;
    // Both kinds converge: the Tart pool's VMs run on the simulated Macs.
    ASSERT_TRUE(WaitUntil([&] { return dev.Converged(kExampleVms); }, std::chrono::seconds(120)))
        << dev.ManagedVms() << " VMs, " << dev.ManagedVms("xcode-runners", "running")
        << " Tart VMs running\n"
        << dev.err();
    EXPECT_EQ(dev.ManagedVms("linux-runners"), 4u);
    EXPECT_EQ(dev.ManagedVms("ios-runners", "running"), 4u);
    EXPECT_EQ(TartRuns(data).size(), kTartVms);

    // The seeded repository is a normal Git repository: edit, commit, and the loop follows.
    const fs::path vmset = data / "fleet" / "vmsets" / "linux-runners.yaml";
    std::string text = Slurp(vmset);
    const size_t at = text.find("replicas: 4");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, 11, "replicas: 5");
    std::ofstream(vmset) << text;
    // With no Git identity anywhere (for `flotilla dev` and for this commit, HOME is the scratch
    // folder and there is no system config), as on a fresh machine: the seeded repository has
    // one of its own, so the suggested commit works.
    testing::Sh("HOME=" + scratch.path().string() + " GIT_CONFIG_NOSYSTEM=1 git -C " +
                (data / "fleet").string() + " commit -q -am 'five runners'");
    ASSERT_TRUE(WaitUntil([&] { return dev.ManagedVms("linux-runners") == 5u && dev.InSync(); },
                          std::chrono::seconds(60)))
        << dev.err();
    const json runs = dev.Get("/api/v1/runs?limit=1");
    ASSERT_TRUE(runs.is_object() && !runs["runs"].empty());
    last_run = runs["runs"][0]["id"].get<int64_t>();
    const std::vector<pid_t> simulators = ChildrenOf(dev.pid());
    EXPECT_FALSE(simulators.empty());
    EXPECT_EQ(dev.Terminate(), 0) << dev.err();
    EXPECT_TRUE(Contains(dev.err(), "stopped")) << dev.err();
    for (pid_t sim : simulators) {
      EXPECT_TRUE(Ended(sim)) << ExecutableName(sim) << " " << sim << " outlived flotilla dev";
    }
    // The Macs are powered off with it: their VMs stop as on `tart stop`.
    EXPECT_TRUE(WaitUntil([&] { return TartRuns(data).empty(); }, std::chrono::seconds(30)))
        << TartRuns(data).size() << " tart run(s) outlived flotilla dev";
  }
  {
    // The second start finds everything where it was.
    Dev dev(scratch.path());
    ASSERT_TRUE(dev.ok()) << dev.out() << dev.err();
    EXPECT_TRUE(Contains(dev.out(), "reusing")) << dev.out();
    EXPECT_EQ(BannerLines(dev.out(), "Hosts", "tart-minis: 3 simulated Macs"), 1u) << dev.out();
    ASSERT_TRUE(WaitUntil([&] { return dev.Converged(kExampleVms + 1); }, std::chrono::seconds(90)))
        << dev.ManagedVms() << "\n"
        << dev.err();
    const json runs = dev.Get("/api/v1/runs?limit=100");
    ASSERT_TRUE(runs.is_object());
    size_t started = 0;
    for (const json& run : runs["runs"]) {
      // Nothing was recreated after the restart: the runs since only started the Tart VMs
      // again (the simulated Macs were powered off with flotilla).
      if (run["id"].get<int64_t>() <= last_run) {
        continue;
      }
      const json detail = dev.Get("/api/v1/runs/" + std::to_string(run["id"].get<int64_t>()));
      ASSERT_TRUE(detail.is_object()) << run.dump();
      for (const json& action : detail["actions"]) {
        EXPECT_EQ(action["kind"], "start") << action.dump();
        EXPECT_EQ(action["vmset"], "xcode-runners") << action.dump();
        started += action["state"] == "succeeded" ? 1 : 0;
      }
    }
    EXPECT_EQ(started, kTartVms);
    EXPECT_EQ(dev.Terminate(), 0) << dev.err();
  }
}

// One flotilla-hostsim child per Parallels pool, its API key secret nowhere on its command line,
// and one sshd child per simulated Mac; when flotilla is killed outright, the kernel stops them
// (SIGTERM: the simulators save their VMs and exit), and the Macs' VMs stop with it.
TEST(DevTest, SimulatorsAreChildrenThatEndWithAKilledFlotilla) {
  ScratchDir scratch;
  Dev dev(scratch.path());
  ASSERT_TRUE(dev.ok()) << dev.out() << dev.err();
  const std::string banner = dev.out();
  const std::vector<pid_t> hostsims = ChildrenRunning(dev.pid(), "flotilla-hostsim");
  const std::vector<pid_t> sshds = ChildrenRunning(dev.pid(), "sshd");
  EXPECT_EQ(hostsims.size(), BannerLines(banner, "Hosts", "hosts on http://")) << banner;
  EXPECT_EQ(sshds.size(), 3u) << banner;
  const fs::path data = scratch.path() / ".flotilla-dev";
  const json state = json::parse(Slurp(data / "dev.json"), nullptr, false);
  ASSERT_TRUE(state.is_object() && state["apiSecret"].is_string());
  const std::string secret = state["apiSecret"].get<std::string>();
  for (pid_t sim : hostsims) {
    const std::string cmdline = Slurp("/proc/" + std::to_string(sim) + "/cmdline");
    EXPECT_TRUE(Contains(cmdline, "--api-key-file")) << cmdline;
    EXPECT_FALSE(Contains(cmdline, secret)) << "the API key secret is on the command line";
  }
  ASSERT_TRUE(WaitUntil([&] { return dev.ManagedVms("xcode-runners", "running") == kTartVms; },
                        std::chrono::seconds(120)))
      << dev.err();
  const std::vector<pid_t> runs = TartRuns(data);
  EXPECT_EQ(runs.size(), kTartVms);

  ASSERT_EQ(kill(dev.pid(), SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(dev.pid(), &status, 0), dev.pid());
  std::vector<pid_t> everything = hostsims;
  everything.insert(everything.end(), sshds.begin(), sshds.end());
  everything.insert(everything.end(), runs.begin(), runs.end());
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (pid_t pid : everything) {
          if (!Ended(pid)) {
            return false;
          }
        }
        return true;
      },
      std::chrono::seconds(60)))
      << "a simulator or a simulated Mac's VM outlived a killed flotilla";
  // They stopped as on Ctrl-C (their VMs saved), not killed.
  for (const fs::directory_entry& entry : fs::directory_iterator(data / "hosts")) {
    if (entry.path().extension() == ".log") {
      EXPECT_TRUE(Contains(Slurp(entry.path()), "stopping")) << entry.path();
    }
  }
}

// Without flotilla-hostsim beside flotilla or on PATH, `flotilla dev` names where it looked, and
// leaves no data folder behind.
TEST(DevTest, NamesWhereItLookedForAMissingSimulator) {
  ScratchDir scratch;
  const fs::path bin = scratch.path() / "bin";
  const fs::path empty = scratch.path() / "empty";
  fs::create_directories(bin);
  fs::create_directories(empty);
  std::error_code ec;
  fs::create_hard_link(FLOTILLA_BIN, bin / "flotilla", ec);  // /proc/self/exe names the link
  if (ec) {
    fs::copy_file(FLOTILLA_BIN, bin / "flotilla");
  }
  const fs::path data = scratch.path() / "data";
  const testing::Outcome outcome = testing::RunCommand(
      "cd " + scratch.path().string() + " && env NO_COLOR=1 HOME=" + scratch.path().string() +
          " PATH=" + empty.string() + " " + (bin / "flotilla").string() + " dev --dir " +
          data.string() + " --listen 127.0.0.1:0 --latency none",
      scratch.path());
  EXPECT_EQ(outcome.exit_code, 1) << outcome.out << outcome.err;
  EXPECT_TRUE(Contains(outcome.err, "cannot find flotilla-hostsim")) << outcome.err;
  EXPECT_TRUE(Contains(outcome.err, bin.string() + " (beside flotilla)")) << outcome.err;
  EXPECT_TRUE(Contains(outcome.err, empty.string())) << outcome.err;
  EXPECT_FALSE(fs::exists(data)) << "a failed first start left " << data;
}

// A bin folder with flotilla and flotilla-hostsim but no flotilla-tartsim.
fs::path BinWithoutTartSim(const fs::path& scratch) {
  fs::path bin = scratch / "bin";
  fs::create_directories(bin);
  for (const char* program : {"flotilla", "flotilla-hostsim"}) {
    const fs::path built = fs::path(FLOTILLA_BIN).parent_path() / program;
    std::error_code ec;
    fs::create_hard_link(built, bin / program, ec);  // /proc/self/exe names the link
    if (ec) {
      fs::copy_file(built, bin / program);
    }
  }
  return bin;
}

// Without flotilla-tartsim (as without sshd), `flotilla dev` runs the Parallels pools alone and
// the banner says why the Tart pool is left out; a later start with it keeps the folder as it
// was made, and says how to start over.
TEST(DevTest, LeavesOutTheTartPoolWithoutItsSimulator) {
  ScratchDir scratch;
  const fs::path bin = BinWithoutTartSim(scratch.path());
  const std::string no_path = "PATH=" + (scratch.path() / "empty").string();
  const fs::path data = scratch.path() / ".flotilla-dev";
  {
    Dev dev(scratch.path(), (bin / "flotilla").string(), no_path);
    ASSERT_TRUE(dev.ok()) << dev.out() << dev.err();
    const std::string banner = dev.out();
    EXPECT_EQ(BannerLines(banner, "Left out", "pool tart-minis, VM set xcode-runners"), 1u)
        << banner;
    EXPECT_EQ(BannerLines(banner, "Left out", "cannot find flotilla-tartsim"), 1u) << banner;
    EXPECT_EQ(BannerLines(banner, "Hosts", "simulated Macs"), 0u) << banner;
    EXPECT_TRUE(ChildrenRunning(dev.pid(), "sshd").empty());
    EXPECT_FALSE(fs::exists(data / "macs"));
    // The Parallels pools converge; the Tart pool is not in the repository.
    ASSERT_TRUE(
        WaitUntil([&] { return dev.ManagedVms() == kExampleVms - kTartVms && dev.InSync(); },
                  std::chrono::seconds(90)))
        << dev.ManagedVms() << " VMs\n"
        << dev.err();
    EXPECT_FALSE(fs::exists(data / "fleet" / "pools" / "tart-minis.yaml"));
    EXPECT_EQ(dev.Terminate(), 0) << dev.err();
  }
  {
    Dev dev(scratch.path());
    ASSERT_TRUE(dev.ok()) << dev.out() << dev.err();
    EXPECT_EQ(BannerLines(dev.out(), "Left out", "--reset"), 1u) << dev.out();
    EXPECT_TRUE(ChildrenRunning(dev.pid(), "sshd").empty());
    EXPECT_EQ(dev.Terminate(), 0) << dev.err();
  }
}

// A folder seeded with simulated Macs keeps its Tart pool when they cannot run: the banner says
// why its hosts are offline.
TEST(DevTest, SaysWhyTheSimulatedMacsOfAReusedFolderDoNotRun) {
  ScratchDir scratch;
  {
    Dev dev(scratch.path());
    ASSERT_TRUE(dev.ok()) << dev.out() << dev.err();
    EXPECT_EQ(ChildrenRunning(dev.pid(), "sshd").size(), 3u);
    EXPECT_EQ(dev.Terminate(), 0) << dev.err();
  }
  const fs::path bin = BinWithoutTartSim(scratch.path());
  Dev dev(scratch.path(), (bin / "flotilla").string(),
          "PATH=" + (scratch.path() / "empty").string());
  ASSERT_TRUE(dev.ok()) << dev.out() << dev.err();
  const std::string banner = dev.out();
  EXPECT_EQ(BannerLines(banner, "Not running", "cannot find flotilla-tartsim"), 1u) << banner;
  EXPECT_EQ(BannerLines(banner, "Left out", ""), 0u) << banner;
  EXPECT_TRUE(ChildrenRunning(dev.pid(), "sshd").empty());
  EXPECT_EQ(dev.Terminate(), 0) << dev.err();
}

}  // namespace
}  // namespace flotilla
