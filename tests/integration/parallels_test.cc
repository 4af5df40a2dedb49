// The Parallels provider's protocol behaviour against flotilla-hostsim over real HTTP(S):
// authentication and token renewal, verb choice by host version, error classification, forced
// stop, asynchronous creates that survive an interruption, TLS, and secret redaction.

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

#include "providers/parallels/wire.h"
#include "tests/integration/parallels_fixture.h"
#include "tests/support/shell.h"

namespace flotilla::providers {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Base64;
using testing::Hostsim;
using testing::kApiKeyPlain;
using testing::kPassword;
using testing::kUser;
using testing::ParallelsSetup;
using testing_fixture::MacTemplate;
using testing_fixture::ParallelsTest;
using testing_fixture::Soon;

TEST_F(ParallelsTest, StateChangesUseGetOnOldHostsAndPutOnNewOnes) {
  for (const char* version : {"1.0.4", "1.0.5"}) {
    SCOPED_TRACE(version);
    Start({"--version", version});
    Build();
    ASSERT_TRUE(provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon()).ok());
    // No observation first: the provider asks the host's version itself.
    ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
    EXPECT_EQ(sim_->Count("sim", "start", "200"), 1);
    EXPECT_EQ(sim_->Count("sim", "unrouted", "405"), 0);
  }
}

// The service's router answers a wrong verb with its plain 404, never 405 (audit #6).
TEST_F(ParallelsTest, WrongVerbIsCorrectedOnTheRoutersNotFound) {
  Start({"--version", "1.0.4"});
  Build();
  ASSERT_TRUE(provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon()).ok());
  // The version report fails, so the provider guesses PUT; the 1.0.4 router answers 404.
  setup_.provider.reset();
  ASSERT_TRUE(setup_.Build().ok());
  sim_->Control("POST", "/_sim/faults", {{"endpoint", "hardware"}, {"count", 1}});
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  // The router refuses the wrong verb before any handler runs ("unrouted" in hostsim's counts).
  EXPECT_EQ(sim_->Count("sim", "unrouted", "404"), 1);
  EXPECT_EQ(sim_->Count("sim", "start", "200"), 1);
  // The verb is remembered.
  ASSERT_TRUE(provider().Stop(host(), "ios-0", {}, Soon()).ok());
  EXPECT_EQ(sim_->Count("sim", "unrouted", "404"), 1);
}

TEST_F(ParallelsTest, LoginTokenIsRenewedAfterItExpiresMidRun) {
  Start({}, /*login=*/true);
  Build();
  ASSERT_TRUE(provider().Observe(host(), Soon()).status.ok());
  EXPECT_EQ(sim_->Count("sim", "login"), 1);
  ASSERT_TRUE(provider().Observe(host(), Soon()).status.ok());
  EXPECT_EQ(sim_->Count("sim", "login"), 1) << "the token is reused while valid";

  sim_->Control("POST", "/_sim/hosts/sim/expire-tokens");
  HostObservation after = provider().Observe(host(), Soon());
  EXPECT_TRUE(after.status.ok()) << after.status.ToString();
  EXPECT_EQ(sim_->Count("sim", "login"), 2);
  EXPECT_EQ(sim_->Count("sim", "hardware", "401"), 1);
}

TEST_F(ParallelsTest, LoginTokenIsRenewedBeforeItExpires) {
  ManualClock clock(std::chrono::system_clock::now());
  setup_.clock = &clock;
  Start({"--token-ttl", "15m"}, /*login=*/true);
  Build();
  ASSERT_TRUE(provider().Observe(host(), Soon()).status.ok());
  clock.Advance(std::chrono::minutes{14} + seconds{30});  // inside the renewal margin
  ASSERT_TRUE(provider().Observe(host(), Soon()).status.ok());
  EXPECT_EQ(sim_->Count("sim", "login"), 2);
  EXPECT_EQ(sim_->Count("sim", "hardware", "401"), 0) << "renewed before the host refused it";
}

TEST_F(ParallelsTest, WrongCredentialsArePermissionDenied) {
  Start({});
  setup_.secrets.Set("hosts", "apiKey", Base64("FLOTILLA:not-the-secret"));
  Build();
  HostObservation observation = provider().Observe(host(), Soon());
  EXPECT_TRUE(observation.status.IsPermissionDenied()) << observation.status.ToString();
  EXPECT_FALSE(observation.status.IsRetryable());
  EXPECT_TRUE(observation.reachable);

  ParallelsSetup login;
  login.pool.credentials_ref = "hosts";
  login.secrets.Set("hosts", "username", kUser);
  login.secrets.Set("hosts", "password", "wrong-password");
  ASSERT_TRUE(login.Build().ok());
  HostObservation refused = login.provider->Observe(host(), Soon());
  EXPECT_TRUE(refused.status.IsPermissionDenied()) << refused.status.ToString();
}

TEST_F(ParallelsTest, ALoginThatFailsOnTheHostsSideIsRetryable) {
  Start({}, /*login=*/true);
  Build();
  sim_->Control("POST", "/_sim/faults", {{"endpoint", "login"}, {"count", 1}, {"status", 503}});
  HostObservation observation = provider().Observe(host(), Soon());
  EXPECT_EQ(observation.status.code(), Status::Code::kUnavailable) << observation.status.ToString();
  EXPECT_TRUE(provider().Observe(host(), Soon()).status.ok());
}

TEST_F(ParallelsTest, ServerErrorsAndTimeoutsAreRetryable) {
  Start({"--latency", "stop=3s"});
  Build();
  ASSERT_TRUE(provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon()).ok());
  for (int code : {500, 503, 429}) {
    sim_->Control("POST", "/_sim/faults", {{"endpoint", "start"}, {"count", 1}, {"status", code}});
    Status failed = provider().Start(host(), "ios-0", Soon());
    EXPECT_TRUE(failed.IsRetryable()) << code << ": " << failed.ToString();
    EXPECT_EQ(failed.code(), Status::Code::kUnavailable) << code;
  }
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());

  // The host takes 3 s to stop; the caller gives it 300 ms.
  Status slow = provider().Stop(host(), "ios-0", {}, DeadlineIn(milliseconds{300}));
  EXPECT_EQ(slow.code(), Status::Code::kDeadlineExceeded) << slow.ToString();
  EXPECT_TRUE(slow.IsRetryable());
}

TEST_F(ParallelsTest, HostCommandFailureIsNotMistakenForAMissingVm) {
  Start({});
  Build();
  for (const char* name : {"mac-0", "mac-1", "mac-2"}) {
    ASSERT_TRUE(provider().Create(host(), {.name = name, .templ = MacTemplate()}, Soon()).ok());
  }
  ASSERT_TRUE(provider().Start(host(), "mac-0", Soon()).ok());
  ASSERT_TRUE(provider().Start(host(), "mac-1", Soon()).ok());
  // The host answers 404 for the failed command (reference section 1.1), not for a lost VM.
  Status third = provider().Start(host(), "mac-2", Soon());
  EXPECT_EQ(sim_->Count("sim", "start", "404"), 1);
  EXPECT_EQ(third.code(), Status::Code::kFailedPrecondition) << third.ToString();
  EXPECT_TRUE(provider().Start(host(), "gone", Soon()).IsNotFound());
}

TEST_F(ParallelsTest, StopPowersOffAVmThatIgnoresShutdown) {
  Start({});
  Build();
  ASSERT_TRUE(provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon()).ok());
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  sim_->Control("PATCH", "/_sim/hosts/sim/vms/ios-0", {{"ignore_graceful_stop", true}});
  Status stopped = provider().Stop(host(), "ios-0", {.graceful_timeout = seconds{2}}, Soon());
  ASSERT_TRUE(stopped.ok()) << stopped.ToString();
  EXPECT_EQ(sim_->Count("sim", "stop"), 2) << "a graceful stop, then a forced one";
  HostObservation observation = provider().Observe(host(), Soon());
  ASSERT_EQ(observation.vms.size(), 1u);
  EXPECT_EQ(observation.vms[0].state, VmState::kStopped);
}

TEST_F(ParallelsTest, CatalogCreateIsAsynchronousAndResumesAfterAnInterruption) {
  Start({"--latency", "create=1500ms"});
  Build();
  // The caller gives up (or crashes) while the host is still pulling.
  const std::optional<PendingCreate> journalled = InterruptedCreate();
  ASSERT_TRUE(journalled.has_value());
  EXPECT_EQ(ParsePendingCreateName(journalled->temp_name), "ios-0");
  EXPECT_FALSE(journalled->job_id.empty());
  EXPECT_EQ(sim_->Count("sim", "create_async"), 1);

  // A new provider (a restarted process) resumes from what was journalled.
  ASSERT_TRUE(setup_.Build().ok());
  Result<CreateResult> resumed = provider().Create(
      host(), {.name = "ios-0", .templ = MacTemplate(), .resume = journalled}, Soon());
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_FALSE(resumed->adopted);
  EXPECT_EQ(resumed->vm.name, "ios-0");
  EXPECT_EQ(sim_->Count("sim", "create_async"), 1) << "the pull was not started twice";
  HostObservation observation = provider().Observe(host(), Soon());
  ASSERT_EQ(observation.vms.size(), 1u);
  EXPECT_EQ(observation.vms[0].name, "ios-0");
}

TEST_F(ParallelsTest, CreateFinishesAJournalledVmWhosePullCompleted) {
  Start({"--latency", "create=400ms"});
  Build();
  const std::optional<PendingCreate> journalled = InterruptedCreate();
  ASSERT_TRUE(journalled.has_value());
  // The pull completes while nobody watches: the VM exists under its temporary name.
  ASSERT_TRUE(testing::WaitUntil([&] {
    HostObservation o = provider().Observe(host(), Soon());
    return o.vms.size() == 1 && o.vms[0].name == journalled->temp_name;
  }));
  Result<CreateResult> finished = provider().Create(
      host(), {.name = "ios-0", .templ = MacTemplate(), .resume = journalled}, Soon());
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->vm.name, "ios-0");
  EXPECT_EQ(sim_->Count("sim", "create_async"), 1);
  EXPECT_EQ(sim_->Count("sim", "rename"), 1);
  EXPECT_EQ(provider().Observe(host(), Soon()).vms.size(), 1u);
}

TEST_F(ParallelsTest, ResumeWaitsWhenTheJobCannotBeRead) {
  Start({"--latency", "create=1s"});
  Build();
  const std::optional<PendingCreate> journalled = InterruptedCreate();
  ASSERT_TRUE(journalled.has_value());
  sim_->Control("POST", "/_sim/faults", {{"endpoint", "job"}, {"count", 1}, {"status", 502}});
  const CreateRequest request{.name = "ios-0", .templ = MacTemplate(), .resume = journalled};
  Result<CreateResult> refused = provider().Create(host(), request, Soon());
  EXPECT_EQ(refused.status().code(), Status::Code::kUnavailable) << refused.status().ToString();
  Result<CreateResult> resumed = provider().Create(host(), request, Soon());
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(sim_->Count("sim", "create_async"), 1) << "no second pull";
}

// Scripts, their environment and the commands around them travel base64-encoded: no quote
// ever reaches the service's `bash -c '<command>'`, and no environment value is readable on
// the wire; the values are redacted from what comes back.
TEST_F(ParallelsTest, ScriptsTravelWithoutQuotesAndWithTheirEnvironment) {
  Start({});
  Build();
  ASSERT_TRUE(provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon()).ok());
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  Result<ExecResult> ran = provider().Exec(host(), "ios-0", "echo 'hello' \"$RUNNER\"",
                                           {{"RUNNER", "it's-secret-ish"}}, Soon());
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_EQ(ran->exit_code, 0);
  EXPECT_EQ(ran->stdout_text, "hello [REDACTED]\n");
  nlohmann::json executions = sim_->Control("GET", "/_sim/hosts/sim/vms/ios-0/executions");
  ASSERT_GE(executions.size(), 2u) << executions.dump();  // launch, looks, clean-up
  for (const nlohmann::json& execution : executions) {
    const std::string command = execution["command"].get<std::string>();
    EXPECT_EQ(command.find('\''), std::string::npos) << command;
    EXPECT_EQ(command.find("secret-ish"), std::string::npos) << "values travel encoded";
  }
}

TEST_F(ParallelsTest, CreateCleansUpWhatAForgottenAttemptLeftBehind) {
  Start({});
  Build();
  sim_->Control("POST", "/_sim/hosts/sim/vms",
                {{"name", "ios-3.flotilla-0123456789"},
                 {"os", "macos"},
                 {"cpu", 2},
                 {"memory_mb", 4096},
                 {"disk_mb", 65536},
                 {"state", "stopped"}});
  HostObservation before = provider().Observe(host(), Soon());
  ASSERT_EQ(before.vms.size(), 1u);
  EXPECT_EQ(before.vms[0].pending_create_for, "ios-3");

  ASSERT_TRUE(provider().Create(host(), {.name = "ios-3", .templ = MacTemplate()}, Soon()).ok());
  HostObservation after = provider().Observe(host(), Soon());
  ASSERT_EQ(after.vms.size(), 1u);
  EXPECT_EQ(after.vms[0].name, "ios-3");
}

TEST_F(ParallelsTest, CloneOfATemplateVmTakesTheTemplatesSize) {
  Start({});
  Build();
  sim_->Control("POST", "/_sim/hosts/sim/vms",
                {{"name", "golden"},
                 {"os", "macos"},
                 {"cpu", 8},
                 {"memory_mb", 16384},
                 {"disk_mb", 65536},
                 {"state", "stopped"}});
  VMTemplate templ = MacTemplate("vm://golden");
  templ.cpu = 3;
  Result<CreateResult> created =
      provider().Create(host(), {.name = "ci-0", .templ = templ}, Soon());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->vm.cpu, 3u);
  EXPECT_EQ(created->vm.memory_bytes, uint64_t{4096} << 20);
  EXPECT_EQ(sim_->Count("sim", "clone"), 1);

  Result<CreateResult> missing =
      provider().Create(host(), {.name = "ci-1", .templ = MacTemplate("vm://nope")}, Soon());
  EXPECT_EQ(missing.status().code(), Status::Code::kFailedPrecondition)
      << missing.status().ToString();
}

TEST_F(ParallelsTest, ObserveReadsTheCatalogCache) {
  Start({"--cached", "MACOS_BASE/v1"});
  Build();
  HostObservation observation = provider().Observe(host(), Soon());
  ASSERT_TRUE(observation.status.ok()) << observation.status.ToString();
  // Keyed the way the catalog stores ids (lower case), so "catalog://MACOS_BASE/v1" finds it.
  EXPECT_EQ(observation.facts.cached_images, std::vector<std::string>{"catalog://macos_base/v1"});
}

TEST_F(ParallelsTest, ManyHostsBehindOnePortAreSeparate) {
  Start({"--hosts", "3"});
  Build();
  const HostRef a{.pool = "pool", .name = "sim-000", .address = sim_->address("sim-000")};
  const HostRef b{.pool = "pool", .name = "sim-002", .address = sim_->address("sim-002")};
  ASSERT_TRUE(provider().Create(a, {.name = "ios-0", .templ = MacTemplate()}, Soon()).ok());
  EXPECT_EQ(provider().Observe(a, Soon()).vms.size(), 1u);
  HostObservation other = provider().Observe(b, Soon());
  ASSERT_TRUE(other.status.ok()) << other.status.ToString();
  EXPECT_TRUE(other.vms.empty());
}

// TLS: hostsim serves HTTPS with a certificate made for this test.
class ParallelsTlsTest : public ParallelsTest {
 protected:
  void SetUp() override {
    const std::string dir = tls_dir_.path().string();
    testing::Sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-days 2 -subj /CN=flotilla-test-ca -addext subjectAltName=IP:127.0.0.1 "
        "-keyout " +
        dir + "/key.pem -out " + dir + "/cert.pem");
    Start({"--tls-cert", dir + "/cert.pem", "--tls-key", dir + "/key.pem"}, false, "https");
  }
  std::string cert() const { return tls_dir_.path().string() + "/cert.pem"; }
  testing::ScratchDir tls_dir_;
};

TEST_F(ParallelsTlsTest, UntrustedCertificateIsRefusedWithoutCaFile) {
  Build();
  HostObservation observation = provider().Observe(host(), Soon());
  EXPECT_FALSE(observation.status.ok());
  EXPECT_FALSE(observation.reachable);
  EXPECT_NE(observation.status.message().find("TLS"), std::string::npos)
      << observation.status.ToString();
  EXPECT_EQ(sim_->Count("sim", "hardware"), 0) << "no request got through";
}

TEST_F(ParallelsTlsTest, CaFileMakesTheCertificateTrusted) {
  setup_.pool.settings["tls"]["caFile"] = cert();
  Build();
  HostObservation observation = provider().Observe(host(), Soon());
  EXPECT_TRUE(observation.status.ok()) << observation.status.ToString();
}

TEST_F(ParallelsTlsTest, InsecureSkipVerifyAcceptsAnyCertificateAndSaysSo) {
  std::ostringstream log;
  setup_.logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  setup_.pool.settings["tls"]["insecureSkipVerify"] = true;
  Build();
  HostObservation observation = provider().Observe(host(), Soon());
  EXPECT_TRUE(observation.status.ok()) << observation.status.ToString();
  EXPECT_NE(log.str().find("NOT verified"), std::string::npos) << log.str();
}

// Secrets never reach a log line or an error message.
TEST_F(ParallelsTest, SecretsAreNeverLoggedOrReturned) {
  const std::string catalog_password = "catalog-Pass-9876";
  Start({});
  std::ostringstream log;
  setup_.logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  setup_.logger->set_level(spdlog::level::trace);
  setup_.pool.settings["catalog"]["connectionRef"] = "catalog";
  setup_.secrets.Set("catalog", "connection",
                     "host=reader:" + catalog_password + "@catalog.example.com:443");
  Build();
  std::vector<std::string> messages;
  auto note = [&messages](const Status& s) { messages.push_back(s.ToString()); };

  note(provider().Observe(host(), Soon()).status);
  Result<CreateResult> created =
      provider().Create(host(), {.name = "ios-0", .templ = MacTemplate()}, Soon());
  note(created.status());
  note(provider().Start(host(), "ios-0", Soon()));
  Result<ExecResult> ran =
      provider().Exec(host(), "ios-0", "echo", {{"RUNNER_TOKEN", "runner-token-5555"}}, Soon());
  note(ran.status());
  sim_->Control("POST", "/_sim/faults", {{"endpoint", "start"}, {"count", 1}});
  note(provider().Start(host(), "ios-0", Soon()));
  // A host that echoes secrets back in its errors, past the point where messages are cut.
  sim_->Control("POST", "/_sim/faults",
                {{"endpoint", "stop"},
                 {"count", 1},
                 {"message", std::string(280, '.') + " " + Base64(kApiKeyPlain) + " " +
                                 catalog_password + " " + std::string(kApiKeyPlain)}});
  note(provider().Stop(host(), "ios-0", {}, Soon()));
  sim_->Control("POST", "/_sim/faults",
                {{"endpoint", "execute"}, {"count", 1}, {"message", "env runner-token-5555"}});
  note(provider()
           .Exec(host(), "ios-0", "echo", {{"RUNNER_TOKEN", "runner-token-5555"}}, Soon())
           .status());

  // Failures with credentials: a wrong API key, and a failed login.
  ParallelsSetup wrong;
  wrong.logger = setup_.logger;
  wrong.pool.credentials_ref = "hosts";
  wrong.secrets.Set("hosts", "username", kUser);
  wrong.secrets.Set("hosts", "password", "Wrong-Password-1234");
  ASSERT_TRUE(wrong.Build().ok());
  note(wrong.provider->Observe(host(), Soon()).status);
  ParallelsSetup login;
  login.logger = setup_.logger;
  login.pool.credentials_ref = "hosts";
  login.secrets.Set("hosts", "username", kUser);
  login.secrets.Set("hosts", "password", kPassword);
  ASSERT_TRUE(login.Build().ok());
  note(login.provider->Observe(host(), Soon()).status);

  std::string everything = log.str();
  for (const std::string& m : messages) {
    everything += "\n" + m;
  }
  EXPECT_NE(log.str().find("GET"), std::string::npos) << "the log was captured";
  for (const std::string& secret :
       {Base64(kApiKeyPlain), std::string(kApiKeyPlain), std::string("ak-0123456789-secret"),
        std::string(kPassword), std::string("Wrong-Password-1234"), catalog_password,
        std::string("runner-token-5555")}) {
    EXPECT_EQ(everything.find(secret), std::string::npos) << "leaked: " << secret;
  }
}

}  // namespace
}  // namespace flotilla::providers
