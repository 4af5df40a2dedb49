// `flotilla dev` end to end: it starts with no configuration, converges the example fleet on its
// simulated hosts, follows a commit that changes replicas, stops cleanly on SIGTERM, and a
// second start reuses the folder (repository, store and VMs) without changing anything. The
// simulated hosts are flotilla-hostsim child processes that never outlive flotilla, even when
// it is killed; without flotilla-hostsim, `flotilla dev` says where it looked.

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
#include "tests/support/process.h"
#include "tests/support/shell.h"

namespace flotilla {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Contains;
using testing::Process;
using testing::ScratchDir;
using testing::Slurp;
using testing::WaitUntil;

// The example fleet: ios-runners 4, linux-runners 4, macos-golden 1.
constexpr size_t kExampleVms = 9;

// The processes whose parent is `parent`, from /proc/<pid>/stat.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const std::string stat = Slurp(entry.path() / "stat");
    const size_t end_of_name = stat.rfind(')');  // "pid (comm) state ppid ..."
    if (end_of_name == std::string::npos) {
      continue;
    }
    std::istringstream rest(stat.substr(end_of_name + 1));
    char state = 0;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == parent) {
      children.push_back(std::stoi(name));
    }
  }
  return children;
}

// Whether `pid` has ended (gone, or a zombie its new parent has yet to collect).
bool Ended(pid_t pid) {
  const std::string stat = Slurp("/proc/" + std::to_string(pid) + "/stat");
  const size_t end_of_name = stat.rfind(')');
  return end_of_name == std::string::npos || stat.substr(end_of_name + 1, 3) == " Z ";
}

std::string ExecutableName(pid_t pid) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).filename().string();
}

class Dev {
 public:
  explicit Dev(const fs::path& scratch) : scratch_(scratch) {
    // A previous start's output would otherwise be read before this one's shell truncates it.
    fs::remove(scratch / "dev.out");
    fs::remove(scratch / "dev.err");
    process_ = std::make_unique<Process>(std::vector<std::string>{
        "/bin/sh", "-c",
        "cd " + scratch.string() + " && exec env NO_COLOR=1 HOME=" + scratch.string() +
            " GIT_CONFIG_NOSYSTEM=1 " FLOTILLA_BIN
            " dev --listen 127.0.0.1:0 --latency none >dev.out 2>dev.err"});
    const std::regex api(R"(API +(http://127\.0\.0\.1:(\d+)))");
    WaitUntil(
        [&] {
          std::smatch m;
          const std::string out = Slurp(scratch_ / "dev.out");
          if (std::regex_search(out, m, api)) {
            port_ = std::stoi(m[2].str());
            return true;
          }
          return false;
        },
        std::chrono::seconds(30));
    std::ifstream in(scratch_ / ".flotilla-dev" / "api-token");
    std::getline(in, token_);
  }

  bool ok() const { return port_ > 0; }
  pid_t pid() const { return process_->pid(); }
  std::string out() const { return Slurp(scratch_ / "dev.out"); }
  std::string err() const { return Slurp(scratch_ / "dev.err"); }

  json Get(const std::string& path) {
    httplib::Client client("127.0.0.1", port_);
    auto r = client.Get(path, {{"Authorization", "Bearer " + token_}});
    if (!r || r->status != 200) {
      return nullptr;
    }
    return json::parse(r->body, nullptr, false);
  }

  size_t ManagedVms(const std::string& vmset = "") {
    const json vms = Get("/api/v1/vms?managed=true" + (vmset.empty() ? "" : "&vmset=" + vmset));
    return vms.is_object() ? vms["vms"].size() : 0;
  }

  bool InSync() {
    const json plan = Get("/api/v1/plan");
    return plan.is_object() && plan["actions"].empty();
  }

  // SIGTERM, then the exit code (-1 if it did not end within 30 s).
  int Terminate() {
    const pid_t pid = process_->pid();
    kill(pid, SIGTERM);
    int status = 0;
    if (!WaitUntil([&] { return waitpid(pid, &status, WNOHANG) == pid; },
                   std::chrono::seconds(30))) {
      return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
  }

 private:
  fs::path scratch_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
  std::string token_;
};

TEST(DevTest, ConvergesFollowsACommitAndRestartsCleanly) {
  ScratchDir scratch;
  const fs::path data = scratch.path() / ".flotilla-dev";
  int64_t last_run = 0;
  {
    Dev dev(scratch.path());
    ASSERT_TRUE(dev.ok()) << dev.out() << dev.err();
    const std::string banner = dev.out();
    EXPECT_TRUE(Contains(banner, "API token")) << banner;
    EXPECT_TRUE(Contains(banner, "Repository   .flotilla-dev/fleet")) << banner;
    EXPECT_TRUE(Contains(banner, "flotilla plan --config .flotilla-dev/flotilla.yaml")) << banner;
    EXPECT_TRUE(Contains(banner, "flotilla vms --server")) << banner;
    ASSERT_TRUE(WaitUntil([&] { return dev.ManagedVms() == kExampleVms && dev.InSync(); },
                          std::chrono::seconds(90)))
        << dev.ManagedVms() << " VMs\n"
        << dev.err();
    EXPECT_EQ(dev.ManagedVms("linux-runners"), 4u);

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
      EXPECT_TRUE(Ended(sim)) << "flotilla-hostsim " << sim << " outlived flotilla dev";
    }
  }
  {
    // The second start finds everything where it was.
    Dev dev(scratch.path());
    ASSERT_TRUE(dev.ok()) << dev.out() << dev.err();
    EXPECT_TRUE(Contains(dev.out(), "reusing")) << dev.out();
    ASSERT_TRUE(WaitUntil([&] { return dev.InSync() && dev.ManagedVms() == kExampleVms + 1; },
                          std::chrono::seconds(60)))
        << dev.ManagedVms() << "\n"
        << dev.err();
    const json runs = dev.Get("/api/v1/runs?limit=100");
    ASSERT_TRUE(runs.is_object());
    for (const json& run : runs["runs"]) {
      // Nothing was recreated after the restart: the runs since planned nothing.
      if (run["id"].get<int64_t>() > last_run) {
        EXPECT_EQ(run["planned"], 0) << run.dump();
      }
    }
    EXPECT_EQ(dev.Terminate(), 0) << dev.err();
  }
}

// One flotilla-hostsim child per pool, its API key secret nowhere on its command line; when
// flotilla is killed outright, the kernel stops them (SIGTERM: they save their VMs and exit).
TEST(DevTest, SimulatorsAreChildrenThatEndWithAKilledFlotilla) {
  ScratchDir scratch;
  Dev dev(scratch.path());
  ASSERT_TRUE(dev.ok()) << dev.out() << dev.err();
  const std::string banner = dev.out();
  size_t pools = 0;
  for (size_t at = banner.find("  Hosts  "); at != std::string::npos;
       at = banner.find("  Hosts  ", at + 1)) {
    ++pools;
  }
  const std::vector<pid_t> simulators = ChildrenOf(dev.pid());
  ASSERT_EQ(simulators.size(), pools) << banner;
  const fs::path data = scratch.path() / ".flotilla-dev";
  const json state = json::parse(Slurp(data / "dev.json"), nullptr, false);
  ASSERT_TRUE(state.is_object() && state["apiSecret"].is_string());
  const std::string secret = state["apiSecret"].get<std::string>();
  for (pid_t sim : simulators) {
    EXPECT_EQ(ExecutableName(sim), "flotilla-hostsim") << sim;
    const std::string cmdline = Slurp("/proc/" + std::to_string(sim) + "/cmdline");
    EXPECT_TRUE(Contains(cmdline, "--api-key-file")) << cmdline;
    EXPECT_FALSE(Contains(cmdline, secret)) << "the API key secret is on the command line";
  }

  ASSERT_EQ(kill(dev.pid(), SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(dev.pid(), &status, 0), dev.pid());
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (pid_t sim : simulators) {
          if (!Ended(sim)) {
            return false;
          }
        }
        return true;
      },
      std::chrono::seconds(60)))
      << "flotilla-hostsim outlived a killed flotilla";
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

}  // namespace
}  // namespace flotilla
