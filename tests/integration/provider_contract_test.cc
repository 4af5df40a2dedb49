// The provider contract: what every Provider must do, checked against each implementation.
// The Parallels provider runs against flotilla-hostsim over HTTP on loopback, once per service
// version hostsim reproduces and per way to authenticate (an API key; a username and
// password). On 0.9.21, which cannot create from a catalog, VMs are cloned from a template VM.
// The Tart provider runs over a real sshd on loopback against flotilla-tartsim (a simulated Mac,
// tests/support/tart_host.h). The FakeProvider runs the same tests so that unit tests built on
// it see the same rules.

#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <functional>
#include <memory>

#include "providers/fake_provider.h"
#include "providers/parallels/provider.h"
#include "providers/tart/provider.h"
#include "tests/integration/parallels_setup.h"
#include "tests/support/hostsim.h"
#include "tests/support/tart_host.h"

namespace flotilla::providers {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Hostsim;
using testing::kApiKeyPlain;
using testing::kPassword;
using testing::kUser;
using testing::ParallelsSetup;
using testing::Soon;

// A provider plus the means to change the world behind its back.
class World {
 public:
  virtual ~World() = default;
  virtual bool ready() const = 0;
  virtual Provider& provider() = 0;
  virtual HostRef host() const = 0;
  // Puts a VM on the host out of band (an unmanaged VM, or a leftover).
  virtual void PutVm(const std::string& name, GuestOs os, const std::string& state) = 0;
  virtual void SetState(const std::string& name, const std::string& state) = 0;
  virtual void SetOnline(bool online) = 0;
  // The image new VMs are made from.
  virtual std::string image() const { return "catalog://MACOS_BASE/v1"; }
  // VMs the world keeps on the host for itself (a template), left out of observations.
  virtual std::vector<std::string> fixtures() const { return {}; }
  // Whether the provider opens tunnels to VM ports (OpenTunnel), with the world's running
  // guests answering on port 22 with an echo service and refusing ports nothing listens on.
  virtual bool tunnels() const { return false; }
};

// The fake host's words for states: the model's names, and one in-between state (what a
// host in the middle of a stop says).
VmState FakeState(const std::string& state) {
  return state == "stopping" ? VmState::kTransitional : VmStateFromName(state);
}

class FakeWorld final : public World {
 public:
  FakeWorld() { fake_.AddHost(kAddress); }
  bool ready() const override { return true; }
  Provider& provider() override { return fake_; }
  HostRef host() const override { return {.pool = "pool", .name = "h1", .address = kAddress}; }
  void PutVm(const std::string& name, GuestOs os, const std::string& state) override {
    fake_.PutVm(kAddress, VmInfo{.name = name,
                                 .state = FakeState(state),
                                 .raw_state = state,
                                 .os = os,
                                 .cpu = 2,
                                 .memory_bytes = uint64_t{4} << 30,
                                 .disk_bytes = uint64_t{64} << 30});
  }
  void SetState(const std::string& name, const std::string& state) override {
    ASSERT_TRUE(fake_.SetVmState(kAddress, name, FakeState(state)).ok());
  }
  void SetOnline(bool online) override { fake_.SetOnline(kAddress, online); }

 private:
  static constexpr const char* kAddress = "fake://h1";
  FakeProvider fake_;
};

class HostsimWorld final : public World {
 public:
  enum class Auth { kApiKey, kPassword };

  HostsimWorld(const std::string& version, Auth auth)
      : sim_(auth == Auth::kApiKey
                 ? std::vector<std::string>{"--version", version, "--api-key", kApiKeyPlain,
                                            "--offline-hang", "3s", "--guest-boot", "500ms"}
                 : std::vector<std::string>{"--version", version, "--username", kUser, "--password",
                                            kPassword, "--offline-hang", "3s", "--guest-boot",
                                            "500ms"}),
        catalog_(version != "0.9.21") {
    setup_.UseCredentials(auth == Auth::kPassword);
    // Proxy ports of its own: the hostsims of tests running at once all listen on 127.0.0.1,
    // and their VMs' equal ids would otherwise pick the same ports of the default range.
    const int first = ::flotilla::testing::FreePort();
    setup_.pool.settings["tunnels"]["ports"] =
        std::to_string(first) + "-" + std::to_string(std::min(first + 15, 65535));
    built_ = setup_.Build().ok();
    if (!catalog_ && sim_.ready()) {
      sim_.Control("POST", "/_sim/hosts/sim/vms",
                   {{"name", "golden-template"},
                    {"os", "macos"},
                    {"cpu", 8},
                    {"memory_mb", 16384},
                    {"disk_mb", 65536},
                    {"state", "stopped"}});
    }
  }
  bool ready() const override { return sim_.ready() && built_; }
  std::string image() const override { return catalog_ ? World::image() : "vm://golden-template"; }
  std::vector<std::string> fixtures() const override {
    return catalog_ ? std::vector<std::string>{} : std::vector<std::string>{"golden-template"};
  }
  Provider& provider() override { return *setup_.provider; }
  HostRef host() const override {
    return {.pool = "pool", .name = "sim", .address = sim_.address()};
  }
  bool tunnels() const override { return true; }  // hostsim's reverse proxy; guests echo on 22
  void PutVm(const std::string& name, GuestOs os, const std::string& state) override {
    sim_.Control("POST", "/_sim/hosts/sim/vms",
                 {{"name", name},
                  {"os", os == GuestOs::kMacos ? "macos" : "linux"},
                  {"cpu", 2},
                  {"memory_mb", 4096},
                  {"disk_mb", 65536},
                  {"state", state}});
  }
  void SetState(const std::string& name, const std::string& state) override {
    sim_.Control("PATCH", "/_sim/hosts/sim/vms/" + name, {{"state", state}});
  }
  void SetOnline(bool online) override {
    sim_.Control("POST", std::string("/_sim/hosts/sim/") + (online ? "online" : "offline"));
  }

 private:
  Hostsim sim_;
  ParallelsSetup setup_;
  bool built_ = false;
  bool catalog_;
};

class TartWorld final : public World {
 public:
  TartWorld() : mac_(scratch_.path()) {
    if (!mac_.ready()) {
      return;
    }
    pool_ = mac_.Pool("pool", "macs");
    mac_.AddSecrets(secrets_, "macs");
    providers::tart::TartTuning tuning;
    tuning.settle = std::chrono::seconds{1};
    tuning.poll = std::chrono::milliseconds{100};
    tuning.stop_timeout_seconds = 2;
    providers::tart::TartProviderFactory factory(tuning);
    Result<std::unique_ptr<Provider>> built = factory.Build(
        ProviderContext{.pool = pool_, .secrets = secrets_, .logger = logger_, .clock = clock_});
    if (built.ok()) {
      provider_ = std::move(*built);
    }
  }
  bool ready() const override { return mac_.ready() && provider_ != nullptr; }
  std::string image() const override { return std::string("oci://") + testing::kMacImage; }
  bool tunnels() const override { return true; }  // flotilla-tartsim's guests echo on 22
  Provider& provider() override { return *provider_; }
  HostRef host() const override {
    return {.pool = "pool", .name = "mac", .address = mac_.address()};
  }
  void PutVm(const std::string& name, GuestOs os, const std::string& state) override {
    mac_.PutVm(name, os, state);
  }
  void SetState(const std::string& name, const std::string& state) override {
    if (state == "suspended") {
      std::ofstream(mac_.home() / "vms" / name / "state.vzvmsave") << "saved";
    } else if (state == "stopping") {
      // Tart has no in-between state; the provider's is a `tart run` it started that has not
      // taken the VM yet.
      // A process that looks like one (the provider checks the command line).
      sleeper_ = std::make_unique<testing::Process>(std::vector<std::string>{
          "/usr/bin/perl", "-e", "sleep 600", "run", "--no-graphics", name});
      std::filesystem::create_directories(mac_.home() / "flotilla" / "run");
      std::ofstream(mac_.home() / "flotilla" / "run" / (name + ".pid"))
          << sleeper_->pid() << " " << std::time(nullptr) << "\n";
    }
  }
  void SetOnline(bool online) override { mac_.sshd().SetOnline(online); }

 private:
  testing::ScratchDir scratch_;
  testing::SimulatedMac mac_;
  HostPool pool_;
  MapSecretSource secrets_;
  std::shared_ptr<spdlog::logger> logger_ = std::make_shared<spdlog::logger>("tart");
  SystemClock clock_;
  std::unique_ptr<Provider> provider_;
  std::unique_ptr<testing::Process> sleeper_;
};

struct Case {
  std::string label;
  std::function<std::unique_ptr<World>()> make;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.label; }

class ProviderContractTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    world_ = GetParam().make();
    ASSERT_TRUE(world_->ready()) << "the world for " << GetParam().label << " did not start";
  }

  Provider& provider() { return world_->provider(); }
  HostRef host() { return world_->host(); }

  VMTemplate MacTemplate() {
    return VMTemplate{.image = world_->image(),
                      .os = GuestOs::kMacos,
                      .arch = Arch::kArm64,
                      .cpu = 2,
                      .memory = Quantity::FromMiB(4096)};
  }

  Result<CreateResult> Create(const std::string& name) {
    return provider().Create(host(), CreateRequest{.name = name, .templ = MacTemplate()}, Soon());
  }

  const VmInfo* Find(const HostObservation& observation, const std::string& name) {
    for (const VmInfo& vm : observation.vms) {
      if (vm.name == name) {
        return &vm;
      }
    }
    return nullptr;
  }

  HostObservation Observe() {
    HostObservation observation = provider().Observe(host(), Soon());
    EXPECT_TRUE(observation.status.ok()) << observation.status.ToString();
    const std::vector<std::string> fixtures = world_->fixtures();
    std::erase_if(observation.vms, [&](const VmInfo& vm) {
      return std::find(fixtures.begin(), fixtures.end(), vm.name) != fixtures.end();
    });
    return observation;
  }

  // The VM as observed now (for OpenTunnel), or a VmInfo with only the name.
  VmInfo Observed(const std::string& name) {
    const HostObservation observation = Observe();
    const VmInfo* vm = Find(observation, name);
    return vm != nullptr ? *vm : VmInfo{.id = name, .name = name};
  }

  std::unique_ptr<World> world_;
};

// Sends `text` through `fd`, half-closes it, and reads until the other end closes.
std::string RoundTrip(const Fd& fd, const std::string& text) {
  size_t sent = 0;
  while (sent < text.size()) {
    const ssize_t n = send(fd.get(), text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      break;
    }
    sent += static_cast<size_t>(n);
  }
  shutdown(fd.get(), SHUT_WR);
  timeval timeout{.tv_sec = 30, .tv_usec = 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string got;
  char buffer[16384];
  for (ssize_t n = 0; (n = recv(fd.get(), buffer, sizeof(buffer), 0)) > 0;) {
    got.append(buffer, static_cast<size_t>(n));
  }
  return got;
}

TEST_P(ProviderContractTest, ObserveReportsFactsAndEveryVm) {
  world_->PutVm("someone-elses", GuestOs::kLinux, "running");
  const HostObservation observation = Observe();
  EXPECT_TRUE(observation.reachable);
  EXPECT_EQ(observation.facts.arch, Arch::kArm64);
  EXPECT_EQ(observation.facts.total.cpu, 12u);
  EXPECT_FALSE(observation.facts.agent_version.empty());
  // cpu and memory of the running VM are in use.
  EXPECT_EQ(observation.facts.available.cpu, 12u - 1u - 2u);
  // Hosts before 1.0.0 do not say how much disk is free.
  EXPECT_TRUE(!observation.facts.disk_known || observation.facts.available.disk_bytes > 0u);
  const VmInfo* vm = Find(observation, "someone-elses");
  ASSERT_NE(vm, nullptr);
  EXPECT_EQ(vm->state, VmState::kRunning);
  EXPECT_EQ(vm->os, GuestOs::kLinux);
  EXPECT_EQ(vm->cpu, 2u);
  EXPECT_EQ(vm->memory_bytes, uint64_t{4} << 30);
  EXPECT_FALSE(vm->id.empty());
}

TEST_P(ProviderContractTest, CreateStartStopDeleteRoundTrip) {
  Result<CreateResult> created = Create("ios-0");
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_FALSE(created->adopted);
  EXPECT_EQ(created->vm.name, "ios-0");
  EXPECT_EQ(created->vm.cpu, 2u);
  EXPECT_EQ(created->vm.memory_bytes, uint64_t{4096} << 20);
  EXPECT_EQ(Find(Observe(), "ios-0")->state, VmState::kStopped);

  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  HostObservation running = Observe();
  EXPECT_EQ(Find(running, "ios-0")->state, VmState::kRunning);
  EXPECT_EQ(running.facts.running_macos_vms, 1u);

  ASSERT_TRUE(provider().Stop(host(), "ios-0", StopOptions{}, Soon()).ok());
  EXPECT_EQ(Find(Observe(), "ios-0")->state, VmState::kStopped);

  ASSERT_TRUE(provider().Delete(host(), "ios-0", Soon()).ok());
  EXPECT_EQ(Find(Observe(), "ios-0"), nullptr);
}

TEST_P(ProviderContractTest, RepeatingAnOperationIsHarmless) {
  Result<CreateResult> first = Create("ios-0");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Result<CreateResult> again = Create("ios-0");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->adopted);
  EXPECT_EQ(again->vm.id, first->vm.id);

  EXPECT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  EXPECT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  EXPECT_TRUE(provider().Stop(host(), "ios-0", StopOptions{}, Soon()).ok());
  EXPECT_TRUE(provider().Stop(host(), "ios-0", StopOptions{}, Soon()).ok());
  EXPECT_TRUE(provider().Delete(host(), "ios-0", Soon()).ok());
  EXPECT_TRUE(provider().Delete(host(), "ios-0", Soon()).ok());
  EXPECT_TRUE(Observe().vms.empty());
}

TEST_P(ProviderContractTest, ACreateCancelledRightAfterItsProgressChangesNothing) {
  // The executor cancels from on_progress when the journal cannot record the temporary name:
  // a VM made under an unrecorded name would later look like someone else's.
  bool journal_full = false;
  std::string reported;
  CreateRequest request{.name = "ios-0", .templ = MacTemplate()};
  request.on_progress = [&](const PendingCreate& pending) {
    reported = pending.temp_name;
    journal_full = true;
  };
  request.cancelled = [&] { return journal_full; };
  Result<CreateResult> created = provider().Create(host(), request, Soon());
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(created.status().IsCancelled()) << created.status().ToString();
  EXPECT_FALSE(reported.empty());
  EXPECT_TRUE(Observe().vms.empty()) << "the host was changed after the cancellation";
}

TEST_P(ProviderContractTest, CreateSurvivesTheSubstringNameTrap) {
  // The host's duplicate check would match "ios-1" inside "ios-10".
  world_->PutVm("ios-10", GuestOs::kMacos, "stopped");
  Result<CreateResult> created = Create("ios-1");
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_FALSE(created->adopted);
  HostObservation observation = Observe();
  ASSERT_EQ(observation.vms.size(), 2u);
  EXPECT_EQ(observation.vms[0].name, "ios-1");
  EXPECT_EQ(observation.vms[1].name, "ios-10");
  EXPECT_TRUE(observation.vms[0].pending_create_for.empty());
}

TEST_P(ProviderContractTest, ThirdRunningMacosVmIsRefused) {
  for (const char* name : {"mac-0", "mac-1", "mac-2"}) {
    ASSERT_TRUE(Create(name).ok()) << name;
  }
  ASSERT_TRUE(provider().Start(host(), "mac-0", Soon()).ok());
  ASSERT_TRUE(provider().Start(host(), "mac-1", Soon()).ok());
  Status third = provider().Start(host(), "mac-2", Soon());
  EXPECT_EQ(third.code(), Status::Code::kFailedPrecondition) << third.ToString();
  EXPECT_FALSE(third.IsRetryable());
  HostObservation observation = Observe();
  EXPECT_EQ(observation.facts.running_macos_vms, 2u);
  EXPECT_EQ(Find(observation, "mac-2")->state, VmState::kStopped);
}

TEST_P(ProviderContractTest, ConfigureNeedsAStoppedVm) {
  ASSERT_TRUE(Create("ios-0").ok());
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  Status refused = provider().Configure(host(), "ios-0", 4, Quantity::FromMiB(8192), Soon());
  EXPECT_EQ(refused.code(), Status::Code::kFailedPrecondition) << refused.ToString();
  EXPECT_EQ(Find(Observe(), "ios-0")->cpu, 2u);

  ASSERT_TRUE(provider().Stop(host(), "ios-0", StopOptions{}, Soon()).ok());
  ASSERT_TRUE(provider().Configure(host(), "ios-0", 4, Quantity::FromMiB(8192), Soon()).ok());
  const HostObservation observation = Observe();
  const VmInfo* vm = Find(observation, "ios-0");
  ASSERT_NE(vm, nullptr);
  EXPECT_EQ(vm->cpu, 4u);
  EXPECT_EQ(vm->memory_bytes, uint64_t{8192} << 20);
}

TEST_P(ProviderContractTest, OfflineHostIsUnreachableAndRetryable) {
  world_->SetOnline(false);
  HostObservation observation = provider().Observe(host(), DeadlineIn(milliseconds{800}));
  EXPECT_FALSE(observation.status.ok());
  EXPECT_TRUE(observation.status.IsRetryable()) << observation.status.ToString();
  EXPECT_FALSE(observation.reachable);
  Status start = provider().Start(host(), "ios-0", DeadlineIn(milliseconds{800}));
  EXPECT_TRUE(start.IsRetryable()) << start.ToString();

  world_->SetOnline(true);
  EXPECT_TRUE(provider().Observe(host(), Soon()).status.ok());
}

TEST_P(ProviderContractTest, ExecNeedsARunningVm) {
  ASSERT_TRUE(Create("ios-0").ok());
  Result<ExecResult> refused = provider().Exec(host(), "ios-0", "echo hi", {}, Soon());
  EXPECT_EQ(refused.status().code(), Status::Code::kFailedPrecondition);
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  Result<ExecResult> ran =
      provider().Exec(host(), "ios-0", "echo hi", {{"TOKEN", "value-1234"}}, Soon());
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_EQ(ran->exit_code, 0);
}

TEST_P(ProviderContractTest, StartResumesASuspendedVm) {
  ASSERT_TRUE(Create("ios-0").ok());
  world_->SetState("ios-0", "suspended");
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  EXPECT_EQ(Find(Observe(), "ios-0")->state, VmState::kRunning);
}

TEST_P(ProviderContractTest, DeletePowersOffARunningVm) {
  ASSERT_TRUE(Create("ios-0").ok());
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  ASSERT_TRUE(provider().Delete(host(), "ios-0", Soon()).ok());
  EXPECT_EQ(Find(Observe(), "ios-0"), nullptr);
}

TEST_P(ProviderContractTest, TransitionalStateIsRetriedNotForced) {
  ASSERT_TRUE(Create("ios-0").ok());
  world_->SetState("ios-0", "stopping");
  EXPECT_EQ(Find(Observe(), "ios-0")->state, VmState::kTransitional);
  Status start = provider().Start(host(), "ios-0", Soon());
  EXPECT_TRUE(start.IsRetryable()) << start.ToString();
}

TEST_P(ProviderContractTest, MissingVmIsNotFound) {
  Status start = provider().Start(host(), "no-such-vm", Soon());
  EXPECT_TRUE(start.IsNotFound()) << start.ToString();
}

TEST_P(ProviderContractTest, ATunnelCarriesBytesToARunningVmsPort) {
  if (!world_->tunnels()) {
    GTEST_SKIP() << GetParam().label << " opens no tunnels";
  }
  ASSERT_TRUE(Create("ios-0").ok());
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  Result<Fd> tunnel = provider().OpenTunnel(host(), Observed("ios-0"), 22, Soon());
  ASSERT_TRUE(tunnel.ok()) << tunnel.status().ToString();
  const std::string text = "SSH-2.0-contract\r\n" + std::string(200000, 'x');
  EXPECT_EQ(RoundTrip(*tunnel, text), text);
  // Another one while the first is still open.
  Result<Fd> second = provider().OpenTunnel(host(), Observed("ios-0"), 22, Soon());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(RoundTrip(*second, "again"), "again");
}

TEST_P(ProviderContractTest, ATunnelNeedsARunningVm) {
  if (!world_->tunnels()) {
    GTEST_SKIP() << GetParam().label << " opens no tunnels";
  }
  ASSERT_TRUE(Create("ios-0").ok());
  Result<Fd> stopped = provider().OpenTunnel(host(), Observed("ios-0"), 22, Soon());
  EXPECT_EQ(stopped.status().code(), Status::Code::kFailedPrecondition)
      << stopped.status().ToString();
  Result<Fd> missing = provider().OpenTunnel(host(), Observed("no-such-vm"), 22, Soon());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound) << missing.status().ToString();
}

TEST_P(ProviderContractTest, ATunnelToAPortNothingListensOnIsRefused) {
  if (!world_->tunnels()) {
    GTEST_SKIP() << GetParam().label << " opens no tunnels";
  }
  ASSERT_TRUE(Create("ios-0").ok());
  ASSERT_TRUE(provider().Start(host(), "ios-0", Soon()).ok());
  Result<Fd> refused = provider().OpenTunnel(host(), Observed("ios-0"), 81, Soon());
  EXPECT_EQ(refused.status().code(), Status::Code::kUnavailable) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("ios-0"), std::string::npos)
      << refused.status().ToString();
  // The VM itself is still reachable.
  Result<Fd> open = provider().OpenTunnel(host(), Observed("ios-0"), 22, Soon());
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  EXPECT_EQ(RoundTrip(*open, "still there"), "still there");
}

Case Parallels(const std::string& version, HostsimWorld::Auth auth) {
  std::string label = std::string("parallels_") +
                      (auth == HostsimWorld::Auth::kApiKey ? "apikey_" : "login_") + version;
  std::replace(label.begin(), label.end(), '.', '_');
  return Case{label, [version, auth] {
                return std::unique_ptr<World>(std::make_unique<HostsimWorld>(version, auth));
              }};
}

INSTANTIATE_TEST_SUITE_P(
    Providers, ProviderContractTest,
    ::testing::Values(
        Case{"fake", [] { return std::unique_ptr<World>(std::make_unique<FakeWorld>()); }},
        Parallels("0.9.21", HostsimWorld::Auth::kApiKey),
        Parallels("0.9.21", HostsimWorld::Auth::kPassword),
        Parallels("1.0.0", HostsimWorld::Auth::kApiKey),
        Parallels("1.0.0", HostsimWorld::Auth::kPassword),
        Parallels("1.0.4", HostsimWorld::Auth::kApiKey),
        Parallels("1.0.4", HostsimWorld::Auth::kPassword),
        Parallels("1.0.5", HostsimWorld::Auth::kApiKey),
        Parallels("1.0.6", HostsimWorld::Auth::kPassword),
        Case{"tart_2_32_1", [] { return std::unique_ptr<World>(std::make_unique<TartWorld>()); }}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.label; });

}  // namespace
}  // namespace flotilla::providers
