// `flotilla plan` end to end: the real binary observes flotilla-hostsim hosts over HTTP through
// the Parallels provider, with credentials from a secrets folder, and plans.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "reconciler/model/text.h"
#include "tests/support/cli_runner.h"
#include "tests/support/hostsim.h"

namespace flotilla {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using testing::Outcome;

constexpr const char* kApiKey = "FLOTILLA:plan-test-secret-42";

class PlanCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sim_ = std::make_unique<testing::Hostsim>(
        std::vector<std::string>{"--hosts", "2", "--api-key", kApiKey, "--offline-hang", "5s"});
    ASSERT_TRUE(sim_->ready());
    const fs::path fleet = dir_.path() / "fleet";
    fs::create_directories(fleet);
    std::ofstream(fleet / "pool.yaml") << "apiVersion: flotilla.dev/v1\n"
                                          "kind: HostPool\n"
                                          "metadata: {name: sims}\n"
                                          "spec:\n"
                                          "  credentialsRef: sims\n"
                                          "  catalog: {connectionRef: catalog}\n"
                                          "  defaults: {maxVMs: 2}\n"
                                          "  hosts:\n"
                                          "    - name: sim-000\n"
                                          "      address: " +
                                              sim_->address("sim-000") +
                                              "\n"
                                              "    - name: sim-001\n"
                                              "      address: " +
                                              sim_->address("sim-001") + "\n";
    std::ofstream(fleet / "ci.yaml") << "apiVersion: flotilla.dev/v1\n"
                                        "kind: VMSet\n"
                                        "metadata: {name: ci}\n"
                                        "spec:\n"
                                        "  pool: sims\n"
                                        "  replicas: 3\n"
                                        "  template:\n"
                                        "    image: catalog://MACOS_BASE/v1\n"
                                        "    os: macos\n"
                                        "    arch: arm64\n"
                                        "    cpu: 2\n"
                                        "    memory: 4Gi\n";
    fs::create_directories(dir_.path() / "secrets/sims");
    fs::create_directories(dir_.path() / "secrets/catalog");
    std::ofstream(dir_.path() / "secrets/sims/apiKey") << EncodeBase64(kApiKey) << "\n";
    std::ofstream(dir_.path() / "secrets/catalog/connection")
        << "host=reader:pw-catalog-1@catalog.example.com:443\n";
  }

  Outcome Plan(const std::string& args = "") {
    return testing::RunCommand("NO_COLOR=1 " FLOTILLA_BIN " plan " +
                                   (dir_.path() / "fleet").string() + " --secrets-dir " +
                                   (dir_.path() / "secrets").string() + " " + args,
                               dir_.path());
  }

  testing::ScratchDir dir_;
  std::unique_ptr<testing::Hostsim> sim_;
};

TEST_F(PlanCommandTest, PlansAgainstLiveHostsAndTakesDesiredNamesAsItsOwn) {
  sim_->Control("POST", "/_sim/hosts/sim-000/vms",
                {{"name", "ci-0"},
                 {"os", "macos"},
                 {"cpu", 2},
                 {"memory_mb", 4096},
                 {"disk_mb", 65536},
                 {"state", "running"}});
  Outcome r = Plan();
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_FALSE(Contains(r.out, "create        ci-0")) << r.out;
  EXPECT_TRUE(Contains(r.out, "+ create        ci-1 on sim-001")) << r.out;
  EXPECT_TRUE(Contains(r.out, "+ create        ci-2 on sim-000")) << r.out;
  EXPECT_TRUE(Contains(r.out, "Plan: 2 to create, 0 to replace, 0 to delete, 2 to start")) << r.out;
  // Nothing was changed on the hosts.
  EXPECT_EQ(sim_->Count("sim-000", "create_async"), 0);
  EXPECT_EQ(sim_->Count("sim-001", "create_async"), 0);
  const std::string everything = r.out + r.err;
  EXPECT_FALSE(Contains(everything, EncodeBase64(kApiKey)));
  EXPECT_FALSE(Contains(everything, "pw-catalog-1"));
}

TEST_F(PlanCommandTest, AnOfflineHostIsReportedNotWaitedFor) {
  sim_->Control("POST", "/_sim/hosts/sim-001/offline");
  Outcome r = Plan("--host-timeout 1");
  // A VM not found on the hosts that answered may be on the silent one, which has never
  // answered: it is reported, not created a second time.
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, "host sim-001")) << r.err;
  EXPECT_TRUE(Contains(r.out,
                       "# unknown       ci-0: not created while sim-001 is offline: it has never "
                       "answered"))
      << r.out;
  sim_->Control("POST", "/_sim/hosts/sim-001/online");
}

TEST_F(PlanCommandTest, TheConfigFileNamesTheRepositoryAndTheSecrets) {
  // The fleet, committed to a repository; the config points at it and at the secrets folder.
  const fs::path repo = dir_.path() / "repo";
  fs::create_directories(repo);
  fs::copy(dir_.path() / "fleet", repo / "fleet", fs::copy_options::recursive);
  ASSERT_EQ(std::system(("cd " + repo.string() +
                         " && git init -q -b main && git add -A && git -c user.email=t@e -c "
                         "user.name=t commit -qm fleet")
                            .c_str()),
            0);
  std::ofstream(dir_.path() / "flotilla.yaml")
      << "source: {url: " << repo.string() << ", branch: main, path: fleet}\n"
      << "secretsDir: " << (dir_.path() / "secrets").string() << "\n"
      << "reconcile: {hostLostAfter: 5m, maxDeletionsPerRun: 50%}\n";
  const std::string command =
      "NO_COLOR=1 " FLOTILLA_BIN " plan --config " + (dir_.path() / "flotilla.yaml").string();
  Outcome r = testing::RunCommand(command, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Contains(r.out, "Plan: 3 to create")) << r.out;

  std::ofstream(dir_.path() / "flotilla.yaml") << "reconcile: {hostLostAfter: soon}\n";
  Outcome bad = testing::RunCommand(command, dir_.path());
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(Contains(bad.err, "flotilla.yaml:1:")) << bad.err;
}

TEST_F(PlanCommandTest, MissingCredentialsAreAClearError) {
  fs::remove_all(dir_.path() / "secrets/sims");
  Outcome r = Plan();
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(Contains(r.err, "credentialsRef \"sims\" has neither apiKey nor username")) << r.err;
}

}  // namespace
}  // namespace flotilla
