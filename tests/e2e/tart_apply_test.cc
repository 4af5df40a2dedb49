// flotilla apply against a Tart pool of two simulated Macs (real sshd + flotilla-tartsim): the
// fleet converges, and an apply killed (SIGKILL) in the middle of its creates leaves nothing that
// the next apply does not finish: no VM twice, no temporary VM behind.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "tests/support/cli_runner.h"
#include "tests/support/shell.h"
#include "tests/support/tart_host.h"
#include "tests/support/wait_until.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;

class TartApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(a_.ready() && b_.ready());
    b_.Authorize(a_);  // one key for the pool
    fs::create_directories(repo());
    fs::create_directories(dir() / "secrets" / "macs");
    std::ofstream(dir() / "secrets" / "macs" / "sshKey") << SimulatedMac::ReadText(a_.user_key());
    std::ofstream(dir() / "known_hosts")
        << SimulatedMac::ReadText(a_.known_hosts()) << SimulatedMac::ReadText(b_.known_hosts());
    Git(repo(), "init -q -b main");
    std::ofstream(repo() / "pool.yaml")
        << "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: macs}\nspec:\n"
        << "  provider: tart\n  credentialsRef: macs\n"
        << "  tart: {path: \"" << a_.tart().string() << "\"}\n"
        << "  ssh: {knownHostsFile: \"" << (dir() / "known_hosts").string() << "\"}\n"
        << "  hosts:\n"
        << "    - {name: mac-a, address: \"" << a_.address() << "\"}\n"
        << "    - {name: mac-b, address: \"" << b_.address() << "\"}\n";
    std::ofstream(repo() / "runners.yaml")
        << "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: runners}\nspec:\n"
        << "  pool: macs\n  replicas: 4\n"
        << "  template: {image: \"oci://" << kLinuxImage
        << "\", os: linux, arch: arm64, cpu: 2, memory: 4Gi}\n";
    CommitAll(repo(), "fleet");
    std::ofstream(config()) << "source: {url: \"" << repo().string()
                            << "\", branch: main, interval: 1s}\n"
                            << "stateDir: \"" << (dir() / "state").string() << "\"\n"
                            << "secretsDir: \"" << (dir() / "secrets").string() << "\"\n"
                            << "reconcile: {hostTimeout: 20s}\n"
                            << "api: {listen: \"127.0.0.1:0\"}\n";
  }

  fs::path dir() const { return scratch_.path(); }
  fs::path repo() const { return dir() / "fleet"; }
  fs::path config() const { return dir() / "flotilla.yaml"; }
  std::string Apply() const {
    return "env NO_COLOR=1 " FLOTILLA_BIN " apply --yes --config " + config().string();
  }

  // Every VM name on both Macs.
  std::multiset<std::string> Vms() const {
    std::multiset<std::string> names;
    for (const SimulatedMac* mac : {&a_, &b_}) {
      std::stringstream lines(mac->Tart("list --source local -q").out);
      for (std::string line; std::getline(lines, line);) {
        if (!line.empty()) {
          names.insert(line);
        }
      }
    }
    return names;
  }
  bool CreateInFlight() const {
    for (const SimulatedMac* mac : {&a_, &b_}) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(mac->home() / "flotilla" / "run", ec)) {
        if (entry.path().extension() == ".create") {
          return true;
        }
      }
    }
    return false;
  }

  ScratchDir scratch_;
  SimulatedMac a_{scratch_.path() / "mac-a"};
  SimulatedMac b_{scratch_.path() / "mac-b"};
};

const std::multiset<std::string> kWanted = {"runners-0", "runners-1", "runners-2", "runners-3"};

TEST_F(TartApplyTest, ApplyConvergesTheTartPool) {
  Outcome applied = RunCommand(Apply(), dir());
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  EXPECT_EQ(Vms(), kWanted);
  // Spread over both Macs, each VM running.
  EXPECT_EQ(a_.Tart("list --source local -q").out.empty(), false);
  EXPECT_EQ(b_.Tart("list --source local -q").out.empty(), false);
  for (const std::string& name : kWanted) {
    const SimulatedMac& mac = a_.Tart("get " + name + " --format json").code == 0 ? a_ : b_;
    EXPECT_NE(mac.Tart("get " + name + " --format json").out.find("\"running\""), std::string::npos)
        << name;
  }
  // A second apply has nothing to do.
  Outcome again = RunCommand(Apply(), dir());
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(Vms(), kWanted);
}

TEST_F(TartApplyTest, AnApplyKilledMidCreateIsFinishedWithoutDuplicates) {
  for (SimulatedMac* mac : {&a_, &b_}) {
    mac->config()["latency_ms"]["clone"] = 4000;
    mac->WriteConfig();
  }
  Process apply(ShellArgv(Apply() + " >" + (dir() / "killed.out").string() + " 2>" +
                          (dir() / "killed.err").string()));
  ASSERT_TRUE(WaitUntil([&] { return CreateInFlight(); }, 60s))
      << SimulatedMac::ReadText(dir() / "killed.err");
  std::this_thread::sleep_for(500ms);
  apply.Signal(SIGKILL);
  ASSERT_TRUE(apply.Wait(10s).has_value());
  for (SimulatedMac* mac : {&a_, &b_}) {
    mac->config()["latency_ms"]["clone"] = 0;
    mac->WriteConfig();
  }
  Outcome applied = RunCommand(Apply(), dir());
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  EXPECT_EQ(Vms(), kWanted);
  EXPECT_FALSE(CreateInFlight());
}

}  // namespace
}  // namespace flotilla::testing
