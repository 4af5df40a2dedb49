// Provider tart over a real sshd against flotilla-tartsim: what the contract test does not cover.
// The SSH transport (host and user keys refused, one connection reused, a dropped connection
// mid-create resumed), Tart's own traps (a `tart run` that dies out of band, Apple's VM limit
// with a stuck counter, hostile names) and Exec's exit statuses and secrets.

#include <gtest/gtest.h>

#include <filesystem>

#include <spdlog/spdlog.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "providers/tart/provider.h"
#include "providers/tart/scripts.h"
#include "tests/support/process.h"
#include "tests/support/status.h"
#include "tests/support/tart_host.h"
#include "tests/support/wait_until.h"

namespace flotilla::providers::tart {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::SimulatedMac;

Deadline Soon() { return DeadlineIn(seconds{60}); }

class TartTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(mac_.ready()); }

  // A provider for the Mac; `change` edits the pool or the secrets first.
  std::unique_ptr<Provider> Build(
      const std::function<void(HostPool&, MapSecretSource&)>& change = {}) {
    pool_ = mac_.Pool("macs", "macs");
    secrets_ = std::make_unique<MapSecretSource>();
    mac_.AddSecrets(*secrets_, "macs");
    if (change) {
      change(pool_, *secrets_);
    }
    TartTuning tuning;
    tuning.settle = seconds{1};
    tuning.poll = milliseconds{100};
    tuning.stop_timeout_seconds = 2;
    TartProviderFactory factory(tuning);
    Result<std::unique_ptr<Provider>> built = factory.Build(
        ProviderContext{.pool = pool_, .secrets = *secrets_, .logger = logger_, .clock = clock_});
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    return built.ok() ? std::move(*built) : nullptr;
  }

  HostRef Host() const { return {.pool = "macs", .name = "mac", .address = mac_.address()}; }

  static VMTemplate Mac() {
    return VMTemplate{.image = std::string("oci://") + testing::kMacImage,
                      .os = GuestOs::kMacos,
                      .arch = Arch::kArm64,
                      .cpu = 2,
                      .memory = Quantity::FromMiB(4096)};
  }

  // The steps an attempt sends to create ios-0 under `temp`, started on the Mac by themselves
  // in their own process group (as over SSH): what reaches the host of an attempt killed while
  // it launched them.
  std::unique_ptr<testing::Process> StartSteps(const std::string& temp) {
    Result<TartPoolSettings> settings = ParsePoolSettings(mac_.Settings());
    EXPECT_TRUE(settings.ok()) << settings.status().ToString();
    const fs::path script = scratch_.path() / (temp + ".sh");
    std::ofstream(script) << Scripts(*settings).Create(testing::kMacImage, temp, "ios-0", false, 2,
                                                       Quantity::FromMiB(4096), std::nullopt, {});
    return std::make_unique<testing::Process>(testing::ShellArgv(
        "/bin/sh -s <" + script.string() + " >" + script.string() + ".out 2>&1"));
  }
  std::string StepsOutput(const std::string& temp) const {
    return SimulatedMac::ReadText(scratch_.path() / (temp + ".sh.out"));
  }
  fs::path Marker(const std::string& temp) const {
    return mac_.home() / "flotilla" / "run" / (temp + ".create");
  }
  // Nothing of a create is left on the Mac but ios-0.
  void ExpectOnlyTheVm() {
    EXPECT_EQ(mac_.Tart("list --source local -q").out, "ios-0\n");
    std::error_code ec;
    EXPECT_TRUE(fs::is_empty(mac_.home() / "flotilla" / "run", ec)) << ec.message();
  }

  static const VmInfo* Find(const HostObservation& o, const std::string& name) {
    for (const VmInfo& vm : o.vms) {
      if (vm.name == name) {
        return &vm;
      }
    }
    return nullptr;
  }

  testing::ScratchDir scratch_;
  SimulatedMac mac_{scratch_.path()};
  HostPool pool_;
  std::unique_ptr<MapSecretSource> secrets_;
  std::shared_ptr<spdlog::logger> logger_ = std::make_shared<spdlog::logger>("tart");
  SystemClock clock_;
};

TEST_F(TartTest, AChangedHostKeyIsRefused) {
  // Another host's key under this host's name in known_hosts.
  const fs::path other = scratch_.path() / "other";
  testing::Sh("ssh-keygen -q -t ed25519 -N '' -f " + testing::Quote(other));
  std::ifstream pub(other.string() + ".pub");
  std::string type, key;
  pub >> type >> key;
  std::ofstream(scratch_.path() / "known_hosts")
      << "[127.0.0.1]:" << mac_.sshd().port() << " " << type << " " << key << "\n";
  auto provider = Build([&](HostPool& pool, MapSecretSource&) {
    pool.settings["ssh"]["knownHostsFile"] = (scratch_.path() / "known_hosts").string();
  });
  HostObservation o = provider->Observe(Host(), Soon());
  EXPECT_EQ(o.status.code(), Status::Code::kPermissionDenied) << o.status.ToString();
  EXPECT_NE(o.status.message().find("host key"), std::string::npos) << o.status.ToString();
  EXPECT_FALSE(o.status.IsRetryable());
}

TEST_F(TartTest, AnUnknownHostIsRefused) {
  std::ofstream(scratch_.path() / "empty_known_hosts") << "";
  auto provider = Build([&](HostPool& pool, MapSecretSource&) {
    pool.settings["ssh"]["knownHostsFile"] = (scratch_.path() / "empty_known_hosts").string();
  });
  HostObservation o = provider->Observe(Host(), Soon());
  EXPECT_EQ(o.status.code(), Status::Code::kPermissionDenied) << o.status.ToString();
  EXPECT_NE(o.status.message().find("not in the pool's known_hosts"), std::string::npos)
      << o.status.ToString();
}

TEST_F(TartTest, AWrongUserKeyIsRefused) {
  const fs::path stranger = scratch_.path() / "stranger";
  testing::Sh("ssh-keygen -q -t ecdsa -N '' -f " + testing::Quote(stranger));
  auto provider = Build([&](HostPool&, MapSecretSource& secrets) {
    secrets.Set("macs", "sshKey", SimulatedMac::ReadText(stranger));
  });
  HostObservation o = provider->Observe(Host(), Soon());
  EXPECT_EQ(o.status.code(), Status::Code::kPermissionDenied) << o.status.ToString();
  EXPECT_NE(o.status.message().find("refused"), std::string::npos);
  EXPECT_EQ(o.status.message().find("PRIVATE KEY"), std::string::npos);
}

TEST_F(TartTest, OneConnectionServesEveryCall) {
  auto provider = Build();
  auto* tart = dynamic_cast<TartProvider*>(provider.get());
  ASSERT_NE(tart, nullptr);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(provider->Observe(Host(), Soon()).status.ok());
  }
  ASSERT_OK(provider->Create(Host(), CreateRequest{.name = "ios-0", .templ = Mac()}, Soon()));
  EXPECT_EQ(tart->ConnectionsTo(Host().address), 1);
}

TEST_F(TartTest, ATartRunKilledOutOfBandIsObservedStoppedAndStartsAgain) {
  auto provider = Build();
  ASSERT_OK(provider->Create(Host(), CreateRequest{.name = "ios-0", .templ = Mac()}, Soon()));
  ASSERT_OK(provider->Start(Host(), "ios-0", Soon()));
  std::ifstream pidfile(mac_.home() / "flotilla" / "run" / "ios-0.pid");
  pid_t pid = 0;
  pidfile >> pid;
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  HostObservation o;
  ASSERT_TRUE(testing::WaitUntil([&] {
    o = provider->Observe(Host(), Soon());
    const VmInfo* vm = Find(o, "ios-0");
    return vm != nullptr && vm->state == VmState::kStopped;
  }));
  EXPECT_TRUE(Find(o, "ios-0")->raw_state.starts_with("stopped (tart run exited"))
      << Find(o, "ios-0")->raw_state;
  EXPECT_EQ(o.facts.running_macos_vms, 0u);
  ASSERT_OK(provider->Start(Host(), "ios-0", Soon()));
  EXPECT_EQ(Find(provider->Observe(Host(), Soon()), "ios-0")->state, VmState::kRunning);
}

TEST_F(TartTest, AStuckLimitCounterCoolsTheHostDown) {
  auto provider = Build();
  ASSERT_OK(provider->Create(Host(), CreateRequest{.name = "ios-0", .templ = Mac()}, Soon()));
  mac_.config()["faults"]["limit_stuck"] = 1;
  mac_.WriteConfig();
  Status refused = provider->Start(Host(), "ios-0", Soon());
  EXPECT_EQ(refused.code(), Status::Code::kFailedPrecondition) << refused.ToString();
  EXPECT_NE(refused.message().find("needs a reboot"), std::string::npos) << refused.ToString();
  // Placement sees the host as full for macOS VMs, though none runs.
  HostObservation o = provider->Observe(Host(), Soon());
  EXPECT_EQ(o.facts.running_macos_vms, 2u);
  EXPECT_EQ(Find(o, "ios-0")->state, VmState::kStopped);
}

TEST_F(TartTest, HostileNamesReachTartAsOneWord) {
  auto provider = Build();
  const std::string name = "x'$(touch pwned)`touch pwned2`;echo";
  ASSERT_OK(provider->Create(Host(), CreateRequest{.name = name, .templ = Mac()}, Soon()));
  ASSERT_OK(provider->Start(Host(), name, Soon()));
  EXPECT_NE(Find(provider->Observe(Host(), Soon()), name), nullptr);
  EXPECT_FALSE(fs::exists(mac_.home() / "pwned"));
  EXPECT_FALSE(fs::exists(fs::path(getenv("HOME")) / "pwned"));
  EXPECT_FALSE(fs::exists(fs::path("/pwned")));
  const std::string argv =
      SimulatedMac::ReadText(mac_.home() / ".fake" / "runs" / (name + ".argv"));
  EXPECT_NE(argv.find(name), std::string::npos) << argv;
  ASSERT_OK(provider->Delete(Host(), name, Soon()));
}

TEST_F(TartTest, ExecStatusesAreTheScriptsAndItsSecretsStayHidden) {
  auto provider = Build();
  ASSERT_OK(provider->Create(Host(), CreateRequest{.name = "ios-0", .templ = Mac()}, Soon()));
  ASSERT_OK(provider->Start(Host(), "ios-0", Soon()));
  for (int code : {0, 1, 2, 7}) {
    Result<ExecResult> ran =
        provider->Exec(Host(), "ios-0", "exit " + std::to_string(code), {}, Soon());
    ASSERT_TRUE(ran.ok()) << ran.status().ToString();
    EXPECT_EQ(ran->exit_code, code);
  }
  Result<ExecResult> secret =
      provider->Exec(Host(), "ios-0", "echo \"token=$TOKEN\"; echo \"$TOKEN\" >&2; cat; echo done",
                     {{"TOKEN", "hunter2-secret"}}, Soon());
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  EXPECT_EQ(secret->exit_code, 0);
  EXPECT_EQ(secret->stdout_text.find("hunter2"), std::string::npos) << secret->stdout_text;
  EXPECT_NE(secret->stdout_text.find("token=[REDACTED]"), std::string::npos) << secret->stdout_text;
  EXPECT_NE(secret->stdout_text.find("done"), std::string::npos);
  EXPECT_EQ(secret->stderr_text.find("hunter2"), std::string::npos);
  // Not on any command line the host saw: the fake records tart's argv.
  EXPECT_EQ(testing::Sh("grep -rl hunter2 " + testing::Quote(mac_.home()) + " || true"), "");
}

TEST_F(TartTest, ACreateCutOffByADroppedConnectionIsResumed) {
  mac_.config()["latency_ms"]["clone"] = 3000;
  mac_.WriteConfig();
  auto provider = Build();
  std::optional<PendingCreate> journal;
  std::atomic<bool> reported{false};
  CreateRequest request{.name = "ios-0", .templ = Mac()};
  request.on_progress = [&](const PendingCreate& p) {
    journal = p;
    reported = true;
  };
  std::thread drop([&] {
    testing::WaitUntil([&] { return reported.load(); });
    std::this_thread::sleep_for(milliseconds{800});
    mac_.sshd().SetOnline(false);
    mac_.sshd().SetOnline(true);
  });
  Result<CreateResult> first = provider->Create(Host(), request, Soon());
  drop.join();
  ASSERT_FALSE(first.ok());
  EXPECT_TRUE(first.status().IsRetryable()) << first.status().ToString();
  ASSERT_TRUE(journal.has_value());
  request.resume = journal;
  Result<CreateResult> second = provider->Create(Host(), request, Soon());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  // The host's steps go on without the connection: when they finished before the second
  // attempt looked (a slow reconnect on a busy machine), the VM is returned as adopted, as
  // provider.h says of a previous attempt that got through. Either way: one VM, no temporary.
  const HostObservation o = provider->Observe(Host(), Soon());
  ASSERT_EQ(o.vms.size(), 1u);
  EXPECT_EQ(o.vms[0].name, "ios-0");
  EXPECT_EQ(mac_.Tart("list --source local -q").out, "ios-0\n");
}

// An attempt killed as it launched its steps, and the next attempt (resuming its journalled
// temporary name) launching its own before the first ones reached the host: whichever steps
// come second find the others' marker and do nothing; the attempt follows the running ones.
TEST_F(TartTest, LateStepsOfAKilledAttemptLeaveTheCreateToTheRunningOnes) {
  mac_.config()["latency_ms"]["clone"] = 2000;
  mac_.WriteConfig();
  auto provider = Build();
  std::mutex mutex;
  std::string temp;
  CreateRequest request{.name = "ios-0", .templ = Mac()};
  request.on_progress = [&](const PendingCreate& p) {
    std::lock_guard lock(mutex);
    temp = p.temp_name;
  };
  std::optional<Result<CreateResult>> made;
  std::thread create([&] { made = provider->Create(Host(), request, Soon()); });
  const bool claimed = testing::WaitUntil(
      [&] {
        std::lock_guard lock(mutex);
        return !temp.empty() && fs::exists(Marker(temp));
      },
      seconds{60});
  std::unique_ptr<testing::Process> late = claimed ? StartSteps(temp) : nullptr;
  create.join();
  ASSERT_TRUE(claimed);
  EXPECT_EQ(late->Wait(seconds{60}), 0);
  EXPECT_EQ(StepsOutput(temp), "@@busy\n");
  ASSERT_TRUE(made.has_value());
  ASSERT_TRUE(made->ok()) << made->status().ToString();
  EXPECT_FALSE((*made)->adopted);
  ExpectOnlyTheVm();
}

TEST_F(TartTest, AnAttemptWhoseStepsFindEarlierOnesRunningFollowsThem) {
  mac_.config()["latency_ms"]["clone"] = 2000;
  mac_.WriteConfig();
  auto provider = Build();
  std::unique_ptr<testing::Process> early;
  std::string temp;
  CreateRequest request{.name = "ios-0", .templ = Mac()};
  // Between this attempt's look at the host and its launch, the earlier steps arrive.
  request.on_progress = [&](const PendingCreate& p) {
    temp = p.temp_name;
    early = StartSteps(temp);
    testing::WaitUntil([&] { return fs::exists(Marker(temp)); }, seconds{60});
  };
  Result<CreateResult> made = provider->Create(Host(), request, Soon());
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_FALSE(made->adopted);
  EXPECT_EQ(made->vm.name, "ios-0");
  ASSERT_NE(early, nullptr);
  EXPECT_EQ(early->Wait(seconds{60}), 0);
  EXPECT_NE(StepsOutput(temp).find("@@done"), std::string::npos) << StepsOutput(temp);
  ExpectOnlyTheVm();
}

// The next attempt (resuming the journalled temporary name) looks at the host while the earlier
// attempt's steps, still running, rename the VM: its look must not see the steps gone and the
// VM not yet made, or it clones the VM again and fails at the rename ("VM ios-0 appeared while
// it was being created"), as an apply killed mid-create once did. A `tart` in front of the
// fake holds the look's second listing until the earlier steps end.
TEST_F(TartTest, AnAttemptLookingAsEarlierStepsFinishFollowsThem) {
  mac_.config()["latency_ms"]["clone"] = 2000;
  mac_.WriteConfig();
  const std::string temp = PendingCreateName("ios-0", "0123abcd");
  const fs::path gate = scratch_.path() / "gate" / "tart";
  fs::create_directories(gate.parent_path());
  std::ofstream(gate) << "#!/bin/sh\n"
                      << "if [ \"$1 $2 $3\" = 'list --source oci' ]; then\n"
                      << "  while [ -e '" << Marker(temp).string() << "' ]; do sleep 0.05; done\n"
                      << "fi\n"
                      << "exec '" << mac_.tart().string() << "' \"$@\"\n";
  fs::permissions(gate, fs::perms::owner_all);
  auto provider = Build(
      [&](HostPool& pool, MapSecretSource&) { pool.settings["tart"]["path"] = gate.string(); });
  std::unique_ptr<testing::Process> early = StartSteps(temp);
  ASSERT_TRUE(testing::WaitUntil([&] { return fs::exists(Marker(temp)); }, seconds{60}));
  CreateRequest request{.name = "ios-0", .templ = Mac()};
  request.resume = PendingCreate{.temp_name = temp};
  Result<CreateResult> made = provider->Create(Host(), request, Soon());
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ(made->vm.name, "ios-0");
  EXPECT_EQ(early->Wait(seconds{60}), 0);
  EXPECT_NE(StepsOutput(temp).find("@@done"), std::string::npos) << StepsOutput(temp);
  ExpectOnlyTheVm();
}

// A marker whose process group is gone (its create died with the Mac) does not hold a create.
TEST_F(TartTest, AMarkerLeftByADeadCreateIsTakenOver) {
  auto provider = Build();
  CreateRequest request{.name = "ios-0", .templ = Mac()};
  request.on_progress = [&](const PendingCreate& p) {
    testing::Process gone(testing::ShellArgv("true"));
    const pid_t pid = gone.pid();
    gone.Wait(seconds{10});
    fs::create_directories(Marker(p.temp_name).parent_path());
    std::ofstream(Marker(p.temp_name)) << pid << " 1700000000\n";
  };
  Result<CreateResult> made = provider->Create(Host(), request, Soon());
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  ExpectOnlyTheVm();
}

// Tart's own race (FileLock.swift, Root.swift): another tart command on the host collects the
// clone's tmp folder before the clone locks it. The create fails as retryable, says why, and the
// next try makes the VM.
TEST_F(TartTest, ACloneWhoseTmpFolderIsCollectedIsRetryable) {
  ASSERT_EQ(mac_.Tart("pull " + std::string(testing::kMacImage)).code, 0);
  mac_.config()["latency_ms"]["tmplock"] = 8000;  // wide enough for one `tart list`
  mac_.WriteConfig();
  auto provider = Build();
  std::thread other([&] {
    testing::WaitUntil([&] {
      std::error_code ec;
      return fs::exists(mac_.home() / "tmp") && !fs::is_empty(mac_.home() / "tmp", ec);
    });
    mac_.Tart("list -q");  // its garbage collection removes the unlocked folder
  });
  CreateRequest request{.name = "ios-0", .templ = Mac()};
  Result<CreateResult> first = provider->Create(Host(), request, Soon());
  other.join();
  ASSERT_FALSE(first.ok());
  EXPECT_TRUE(first.status().IsRetryable()) << first.status().ToString();
  EXPECT_NE(first.status().message().find("failed to lock"), std::string::npos)
      << first.status().ToString();
  mac_.config()["latency_ms"]["tmplock"] = 0;
  mac_.WriteConfig();
  Result<CreateResult> second = provider->Create(Host(), request, Soon());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(provider->Observe(Host(), Soon()).vms.size(), 1u);
}

// Tart's own race (VMStorageOCI.swift link()): another clone or pull of the image re-links its
// tag between this clone's check and its open. The create fails as retryable, says why, and the
// next try makes the VM. Two creates of one uncached image on one host hit it under load.
TEST_F(TartTest, ACloneThatMeetsARelinkedTagIsRetryable) {
  mac_.config()["faults"]["link_race"] = 1;
  mac_.WriteConfig();
  auto provider = Build();
  CreateRequest request{.name = "ios-0", .templ = Mac()};
  Result<CreateResult> first = provider->Create(Host(), request, Soon());
  ASSERT_FALSE(first.ok());
  EXPECT_TRUE(first.status().IsRetryable()) << first.status().ToString();
  EXPECT_NE(first.status().message().find("re-linked its tag"), std::string::npos)
      << first.status().ToString();
  EXPECT_EQ(mac_.Tart("list --source local -q").out, "");
  Result<CreateResult> second = provider->Create(Host(), request, Soon());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(provider->Observe(Host(), Soon()).vms.size(), 1u);
}

TEST_F(TartTest, ACancelledPullLeavesNothingBehind) {
  mac_.config()["latency_ms"]["pull"] = 20000;
  mac_.WriteConfig();
  auto provider = Build();
  const auto start = std::chrono::steady_clock::now();
  CreateRequest request{.name = "ios-0", .templ = Mac()};
  request.cancelled = [&] { return std::chrono::steady_clock::now() - start > seconds{2}; };
  Result<CreateResult> made = provider->Create(Host(), request, Soon());
  EXPECT_TRUE(made.status().IsCancelled()) << made.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds{15});
  EXPECT_TRUE(provider->Observe(Host(), Soon()).vms.empty());
  EXPECT_EQ(mac_.Tart("list --source local -q").out, "");
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(mac_.home() / "flotilla" / "run", ec) || ec);
  EXPECT_TRUE(!fs::exists(mac_.home() / "tmp") || fs::is_empty(mac_.home() / "tmp"));
}

}  // namespace
}  // namespace flotilla::providers::tart
