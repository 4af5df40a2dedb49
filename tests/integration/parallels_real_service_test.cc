// The Parallels provider against what the real prl-devops-service does and hostsim now
// reproduces (../shared/reference/parallels-real-service-audit.md, one test or more per
// finding): disk from the Parallels home, API keys exchanged for tokens, logins that old hosts
// understand, versions too old for catalog creates, startup scripts that wait for the guest and
// outlive the 3-minute prlctl limit, disks grown to the template, the cache left alone during
// pulls, ids normalised, reaped jobs, the brute-force guard, the HTTPS-only defect.

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>
#include <thread>

#include "tests/integration/parallels_fixture.h"

namespace flotilla::providers {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Base64;
using testing::kApiKeyPlain;
using testing::kPassword;
using testing::kUser;
using testing::ParallelsSetup;
using testing_fixture::MacTemplate;
using testing_fixture::ParallelsTest;
using testing_fixture::Soon;

// --- #1 disk -----------------------------------------------------------------------------------

// The service reports the sealed system volume's usage as free disk; the provider reads the
// Parallels home's statfs instead, so a 40 GiB template fits a host with 300 GiB free.
TEST_F(ParallelsTest, FreeDiskIsTheParallelsHomesNotDfsUsedColumn) {
  Start({"--disk", "460Gi", "--disk-used", "150Gi", "--system-volume-used", "10Gi"});
  Build();
  HostObservation observation = provider().Observe(host(), Soon());
  ASSERT_TRUE(observation.status.ok()) << observation.status.ToString();
  EXPECT_TRUE(observation.facts.disk_known);
  EXPECT_EQ(observation.facts.available.disk_bytes, uint64_t{310} << 30);
  EXPECT_EQ(observation.facts.total.disk_bytes, uint64_t{460} << 30);
}

// --- #2 API keys -------------------------------------------------------------------------------

// From 1.0.1 the key is exchanged for a token once: jobs can be read, and no request carries
// the key (each would cost the host a bcrypt comparison).
TEST_F(ParallelsTest, ApiKeyIsExchangedForATokenAndCatalogCreatesFinish) {
  Start({"--version", "1.0.5", "--latency", "create=300ms"});
  Build();
  Result<CreateResult> created =
      provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->vm.name, "ios-0");
  EXPECT_EQ(sim_->Count("sim", "login"), 1);
  EXPECT_GE(sim_->Count("sim", "job", "200"), 1);
  EXPECT_EQ(sim_->Count("sim", "job", "401"), 0);
  EXPECT_TRUE(provider().Observe(host(), Soon()).status.ok());
  EXPECT_EQ(sim_->Count("sim", "login"), 1) << "the token is reused";
}

// 1.0.0 cannot exchange a key, and answers its jobs 401: the provider follows the VM by its
// temporary name instead, and never leaves a `.flotilla-` VM behind.
TEST_F(ParallelsTest, ApiKeyOnAHostThatCannotExchangeItFollowsTheVmByName) {
  Start({"--version", "1.0.0", "--latency", "create=300ms"});
  Build();
  Result<CreateResult> created =
      provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_GE(sim_->Count("sim", "job", "401"), 1);
  HostObservation observation = provider().Observe(host(), Soon());
  ASSERT_EQ(observation.vms.size(), 1u);
  EXPECT_EQ(observation.vms[0].name, "ios-0");
  EXPECT_EQ(sim_->Count("sim", "login", "400"), 1) << "the exchange is tried once";
}

// --- #4 login body -----------------------------------------------------------------------------

TEST_F(ParallelsTest, UsernameLoginWorksOnHostsThatReadOnlyEmail) {
  for (const char* version : {"0.9.21", "1.0.0", "1.0.5"}) {
    SCOPED_TRACE(version);
    Start({"--version", version}, /*login=*/true);
    Build();
    HostObservation observation = provider().Observe(host(), Soon());
    EXPECT_TRUE(observation.status.ok()) << observation.status.ToString();
  }
}

// --- #5 versions -------------------------------------------------------------------------------

// 0.9.21 has no asynchronous create and no jobs: the host is marked as unable to use catalog
// images, and a create is refused before anything is asked of the host. Clones still work.
TEST_F(ParallelsTest, CatalogCreatesAreRefusedOnHostsBefore100) {
  Start({"--version", "0.9.21"});
  Build();
  HostObservation observation = provider().Observe(host(), Soon());
  ASSERT_TRUE(observation.status.ok()) << observation.status.ToString();
  ASSERT_TRUE(observation.facts.unsupported_images.contains("catalog://"));
  EXPECT_NE(observation.facts.unsupported_images.at("catalog://").find("0.9.21"),
            std::string::npos);
  EXPECT_FALSE(observation.facts.disk_known) << "no prl_home sizes before 1.0.0";
  EXPECT_EQ(sim_->Count("sim", "cache"), 0);

  Result<CreateResult> refused =
      provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon());
  EXPECT_EQ(refused.status().code(), Status::Code::kFailedPrecondition)
      << refused.status().ToString();
  EXPECT_EQ(sim_->Count("sim", "unrouted"), 0) << "nothing was attempted";
  EXPECT_TRUE(provider().Observe(host(), Soon()).vms.empty());

  sim_->Control("POST", "/_sim/hosts/sim/vms",
                {{"name", "golden"}, {"os", "macos"}, {"cpu", 4}, {"memory_mb", 8192}});
  Result<CreateResult> cloned =
      provider().Create(host(), {.name = "ios-0", .templ = MacTemplate("vm://golden")}, Soon());
  ASSERT_TRUE(cloned.ok()) << cloned.status().ToString();
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok()) << "GET state verbs";
}

// --- #3, #8 startup scripts ---------------------------------------------------------------------

// Start returns before the guest has booted; the script waits for it instead of failing.
TEST_F(ParallelsTest, AStartupScriptWaitsForTheGuestToBoot) {
  Start({"--guest-boot", "1500ms"});
  Build();
  ASSERT_TRUE(provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon()).ok());
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  Result<ExecResult> ran = provider().Exec(host(), "ios-0", "echo ready", {}, Soon());
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_EQ(ran->exit_code, 0);
  EXPECT_EQ(ran->stdout_text, "ready\n");
  // A script's own failure is its result, with its stderr.
  Result<ExecResult> failed = provider().Exec(host(), "ios-0", "echo no >&2; exit 7", {}, Soon());
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  EXPECT_EQ(failed->exit_code, 7);
  EXPECT_EQ(failed->stderr_text, "no\n");
}

// A guest that never boots is a retryable error that says why, with the host's words.
TEST_F(ParallelsTest, AGuestThatNeverBootsIsRetryable) {
  Start({"--guest-boot", "1h"});
  Build();
  ASSERT_TRUE(provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon()).ok());
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  Result<ExecResult> ran =
      provider().Exec(host(), "ios-0", "echo ready", {}, DeadlineIn(milliseconds{800}));
  EXPECT_EQ(ran.status().code(), Status::Code::kUnavailable) << ran.status().ToString();
  EXPECT_NE(ran.status().message().find("not ready"), std::string::npos) << ran.status().ToString();
}

// Every prlctl call is killed after 3 minutes (here 1 s): a script that runs longer still
// finishes, because it runs detached and is only looked at.
TEST_F(ParallelsTest, ScriptsLongerThanThePrlctlLimitFinish) {
  Start({"--prlctl-timeout", "1s"});
  Build();
  ASSERT_TRUE(provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon()).ok());
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  Result<ExecResult> ran = provider().Exec(host(), "ios-0", "sleep 2.5; echo done", {}, Soon());
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_EQ(ran->exit_code, 0);
  EXPECT_EQ(ran->stdout_text, "done\n");
}

// An Exec that runs out of time leaves the script running; asked again, the provider follows
// that run instead of starting the script a second time.
TEST_F(ParallelsTest, ARepeatedExecFollowsTheRunInsteadOfStartingItAgain) {
  Start({});
  Build();
  ASSERT_TRUE(provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon()).ok());
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  const std::string script = "echo run >> \"$HOME/runs\"; sleep 1.5; cat \"$HOME/runs\"";
  Result<ExecResult> early =
      provider().Exec(host(), "ios-0", script, {}, DeadlineIn(milliseconds{700}));
  EXPECT_EQ(early.status().code(), Status::Code::kDeadlineExceeded) << early.status().ToString();
  Result<ExecResult> later = provider().Exec(host(), "ios-0", script, {}, Soon());
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_EQ(later->stdout_text, "run\n") << "the script ran once";
}

// The provider never has more guest commands in flight on a host than the host runs at once.
TEST_F(ParallelsTest, GuestCommandsRespectTheHostsTwoSlots) {
  Start({"--latency", "exec=200ms"});
  Build();
  for (const char* name : {"lx-0", "lx-1", "lx-2", "lx-3"}) {
    VMTemplate templ = MacTemplate("catalog://UBUNTU/1");
    templ.os = GuestOs::kLinux;
    ASSERT_TRUE(provider().Create(host(), {.name = name, .templ = templ}, Soon()).ok());
    ASSERT_TRUE(provider().Start(host(), name, Soon()).ok());
  }
  std::vector<std::thread> threads;
  for (const char* name : {"lx-0", "lx-1", "lx-2", "lx-3"}) {
    threads.emplace_back([this, name] {
      Result<ExecResult> ran = provider().Exec(host(), name, "echo hi", {}, Soon());
      EXPECT_TRUE(ran.ok()) << ran.status().ToString();
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_LE(sim_->Count("sim", "execute", "peak_requests"), 2);
}

// --- #7 disk size ------------------------------------------------------------------------------

// The host applies only cpu and memory of a catalog create; the provider grows the image's disk
// to the template's.
TEST_F(ParallelsTest, TheImagesDiskIsGrownToTheTemplates) {
  Start({"--catalog", "MACOS_BASE/v1=20Gi,os=macos"});
  Build();
  VMTemplate templ = MacTemplate();
  templ.disk = Quantity::FromMiB(40 * 1024);
  Result<CreateResult> created =
      provider().Create(host(), {.name = "ios-0", .templ = templ}, Soon());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->vm.disk_bytes, uint64_t{40} << 30);
  // A template asking for less than the image has keeps the image's disk.
  templ.disk = Quantity::FromMiB(10 * 1024);
  Result<CreateResult> small = provider().Create(host(), {.name = "ios-1", .templ = templ}, Soon());
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_EQ(small->vm.disk_bytes, uint64_t{20} << 30);
}

// --- #9, #10 the catalog cache ------------------------------------------------------------------

// Listing the cache during a pull can fail the pull; the provider does not list it while a
// pull runs on the host (its own or, after a restart, one it only sees in the job list).
TEST_F(ParallelsTest, TheCacheIsNotListedWhileAPullRuns) {
  Start({"--latency", "pull=1500ms"});
  Build();
  std::thread creator([this] {
    Result<CreateResult> created =
        provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon());
    EXPECT_TRUE(created.ok()) << created.status().ToString();
  });
  // Another process (the same loop restarted) observes meanwhile.
  ParallelsSetup other;
  other.pool.credentials_ref = "hosts";
  other.secrets.Set("hosts", "apiKey", Base64(kApiKeyPlain));
  ASSERT_TRUE(other.Build(testing::FastTuning()).ok());
  // The pull has begun on the host (before that, there is nothing to hold the listing back).
  ASSERT_TRUE(testing::WaitUntil([&] { return sim_->Count("sim", "create_jobs") > 0; }));
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(provider().Observe(host(), Soon()).status.ok());
    EXPECT_TRUE(other.provider->Observe(host(), Soon()).status.ok());
    std::this_thread::sleep_for(milliseconds(100));
  }
  creator.join();
  EXPECT_EQ(sim_->Count("sim", "cache"), 0);
  // Once the host is idle the cache is listed (once: it is kept for a while).
  HostObservation after = provider().Observe(host(), Soon());
  EXPECT_EQ(after.facts.cached_images, std::vector<std::string>{"catalog://macos_base/v1"});
  provider().Observe(host(), Soon());
  EXPECT_EQ(sim_->Count("sim", "cache"), 1);
}

// --- #11 reaped jobs -----------------------------------------------------------------------------

// The host's reaper fails a job without updates for 5 minutes while the pull goes on; the
// provider follows the VM by name and finishes the create.
TEST_F(ParallelsTest, AJobCancelledByTheReaperIsFollowedToItsVm) {
  Start({"--ghost-job-timeout", "200ms", "--latency", "create=6s"});
  Build();
  Result<CreateResult> created =
      provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, DeadlineIn(seconds{30}));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->vm.name, "ios-0");
  EXPECT_EQ(sim_->Count("sim", "create_async"), 1) << "no second pull";
}

// --- #12, #17 credentials ------------------------------------------------------------------------

// A refused password is not tried again for a while, so that the host's brute-force guard does
// not turn it into an unreachable host.
TEST_F(ParallelsTest, ARefusedLoginIsNotRepeatedAtOnce) {
  Start({}, /*login=*/true);
  setup_.secrets.Set("hosts", "password", "Wrong-Password-1234");
  Build();
  EXPECT_TRUE(provider().Observe(host(), Soon()).status.IsPermissionDenied());
  HostObservation again = provider().Observe(host(), Soon());
  EXPECT_TRUE(again.status.IsPermissionDenied()) << again.status.ToString();
  EXPECT_TRUE(again.reachable);
  EXPECT_EQ(sim_->Count("sim", "login"), 1);
  std::this_thread::sleep_for(milliseconds(350));  // FastTuning's first back-off is 300 ms
  EXPECT_TRUE(provider().Observe(host(), Soon()).status.IsPermissionDenied());
  EXPECT_EQ(sim_->Count("sim", "login"), 2);
}

// A token refused for a missing claim is not renewed over and over.
TEST_F(ParallelsTest, ATokenLackingAClaimIsNotRenewed) {
  Start({}, /*login=*/true);
  Build();
  ASSERT_TRUE(provider().Observe(host(), Soon()).status.ok());
  sim_->Control("POST", "/_sim/faults",
                {{"endpoint", "list"},
                 {"count", 1},
                 {"status", 401},
                 {"message", "User does not contain enough permissions"}});
  HostObservation refused = provider().Observe(host(), Soon());
  EXPECT_TRUE(refused.status.IsPermissionDenied()) << refused.status.ToString();
  EXPECT_NE(refused.status.message().find("lacks the permission"), std::string::npos)
      << refused.status.ToString();
  EXPECT_EQ(sim_->Count("sim", "login"), 1);
}

// --- catalog managers, pull progress ----------------------------------------------------------

TEST_F(ParallelsTest, ACatalogManagerReplacesTheConnection) {
  Start({"--catalog-manager", "acme"});
  setup_.pool.settings["catalog"] = {{"managerId", "acme"}};
  Build();
  std::vector<std::string> steps;
  CreateRequest request{.name = "ios-0", .templ = MacTemplate()};
  Result<CreateResult> created = provider().Create(host(), request, Soon());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
}

TEST_F(ParallelsTest, PullProgressIsReported) {
  Start({"--latency", "pull=2500ms"});
  Build();
  std::vector<std::string> said;
  CreateRequest request{.name = "ios-0", .templ = MacTemplate()};
  request.on_status = [&said](std::string_view text) { said.emplace_back(text); };
  ASSERT_TRUE(provider().Create(host(), request, Soon()).ok());
  const bool downloading = std::any_of(said.begin(), said.end(), [](const std::string& s) {
    return s.starts_with("Downloading pack file") && s.find("GiB") != std::string::npos;
  });
  EXPECT_TRUE(downloading) << ::testing::PrintToString(said);
}

// --- pre-staging -------------------------------------------------------------------------------

// A prepull leaves the image in the host's cache and no VM behind; a create from it then copies
// instead of downloading; a second prepull does nothing.
TEST_F(ParallelsTest, PrepullLeavesTheImageCachedAndNoVm) {
  Start({"--latency", "pull=1s"});
  Build();
  std::vector<std::string> said;
  const PrepullRequest request{.templ = MacTemplate(),
                               .on_status = [&said](std::string_view s) { said.emplace_back(s); }};
  ASSERT_TRUE(provider().Prepull(host(), request, Soon()).ok());
  EXPECT_TRUE(std::any_of(said.begin(), said.end(), [](const std::string& s) {
    return s.starts_with("Downloading pack file");
  })) << ::testing::PrintToString(said);
  HostObservation observation = provider().Observe(host(), Soon());
  EXPECT_TRUE(observation.vms.empty());
  EXPECT_EQ(observation.facts.cached_images, std::vector<std::string>{"catalog://macos_base/v1"});
  EXPECT_EQ(sim_->Count("sim", "create_async"), 1);

  ASSERT_TRUE(provider().Prepull(host(), request, Soon()).ok());
  EXPECT_EQ(sim_->Count("sim", "create_async"), 1) << "already cached: nothing to pull";

  said.clear();
  CreateRequest create{.name = "ios-0", .templ = MacTemplate()};
  create.on_status = [&said](std::string_view s) { said.emplace_back(s); };
  ASSERT_TRUE(provider().Create(host(), create, Soon()).ok());
  EXPECT_TRUE(std::none_of(said.begin(), said.end(), [](const std::string& s) {
    return s.starts_with("Downloading pack file");
  })) << ::testing::PrintToString(said);
}

// --- #13 the VM list lags
// -------------------------------------------------------------------------

// The VM list is the host's cache: right after a create it may still show the temporary name.
// A second create of the same VM looks it up before treating it as a leftover to delete.
TEST_F(ParallelsTest, ALaggingListNeverGetsAFinishedVmDeleted) {
  Start({"--list-lag", "3s"});
  Build();
  Result<CreateResult> first =
      provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Result<CreateResult> again =
      provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->adopted);
  EXPECT_EQ(again->vm.id, first->vm.id);
  EXPECT_EQ(sim_->Count("sim", "delete"), 0);
}

// --- the HTTPS-only defect -----------------------------------------------------------------------

TEST_F(ParallelsTest, AHostServingNoApiRoutesIsNamedAsSuch) {
  Start({"--no-api-routes"});
  Build();
  HostObservation observation = provider().Observe(host(), Soon());
  EXPECT_EQ(observation.status.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(observation.status.message().find("registered no API routes"), std::string::npos)
      << observation.status.ToString();
}

}  // namespace
}  // namespace flotilla::providers
