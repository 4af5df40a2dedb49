// Provider tart's tunnels to VM ports over a real sshd against flotilla-tartsim, beyond the
// contract test: sshd forbidding forwarding, the per-host limit, a VM without an address,
// `tart ip` options by Tart version, a guest port relayed to a real service, and the ssh
// clients collected once their streams end.

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "providers/tart/provider.h"
#include "tests/support/process.h"
#include "tests/support/tart_host.h"
#include "tests/support/wait_until.h"

namespace flotilla::providers::tart {
namespace tunnel_test {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::SimulatedMac;

Deadline Soon() { return DeadlineIn(seconds{60}); }

// What comes back through `fd` after sending `text` and half-closing.
std::string RoundTrip(const Fd& fd, const std::string& text) {
  EXPECT_EQ(send(fd.get(), text.data(), text.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(text.size()));
  shutdown(fd.get(), SHUT_WR);
  timeval timeout{.tv_sec = 30, .tv_usec = 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string got;
  char buffer[4096];
  for (ssize_t n = 0; (n = recv(fd.get(), buffer, sizeof(buffer), 0)) > 0;) {
    got.append(buffer, static_cast<size_t>(n));
  }
  return got;
}

// One simulated Mac, with `fake` in its tart's configuration and `sshd_config` in its sshd's.
class TartTunnelTest : public ::testing::Test {
 protected:
  void Start(const nlohmann::json& fake = {}, const std::string& sshd_config = "",
             const nlohmann::json& ssh = nlohmann::json::object()) {
    provider_.reset();
    mac_.reset();
    scratch_ = std::make_unique<testing::ScratchDir>();
    mac_ = std::make_unique<SimulatedMac>(scratch_->path(), fake, sshd_config);
    ASSERT_TRUE(mac_->ready());
    pool_ = mac_->Pool("macs", "macs");
    pool_.settings["ssh"].update(ssh);
    mac_->AddSecrets(secrets_, "macs");
    TartTuning tuning;
    tuning.settle = seconds{1};
    tuning.poll = milliseconds{100};
    tuning.stop_timeout_seconds = 2;
    tuning.tunnel_ip_wait = seconds{1};
    TartProviderFactory factory(tuning);
    Result<std::unique_ptr<Provider>> built = factory.Build(
        ProviderContext{.pool = pool_, .secrets = secrets_, .logger = logger_, .clock = clock_});
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    provider_ = std::move(*built);
    ASSERT_TRUE(
        provider_->Create(Host(), CreateRequest{.name = "ios-0", .templ = Mac()}, Soon()).ok());
    ASSERT_TRUE(provider_->Start(Host(), "ios-0", Soon()).ok());
  }

  HostRef Host() const { return {.pool = "macs", .name = "mac", .address = mac_->address()}; }
  TartProvider& Tart() { return dynamic_cast<TartProvider&>(*provider_); }
  static VmInfo Vm() { return VmInfo{.id = "ios-0", .name = "ios-0"}; }
  static VMTemplate Mac() {
    return VMTemplate{.image = std::string("oci://") + testing::kMacImage,
                      .os = GuestOs::kMacos,
                      .arch = Arch::kArm64,
                      .cpu = 2,
                      .memory = Quantity::FromMiB(4096)};
  }
  std::unique_ptr<testing::ScratchDir> scratch_;
  std::unique_ptr<SimulatedMac> mac_;
  HostPool pool_;
  MapSecretSource secrets_;
  std::shared_ptr<spdlog::logger> logger_ = std::make_shared<spdlog::logger>("tart");
  SystemClock clock_;
  std::unique_ptr<Provider> provider_;
};

TEST_F(TartTunnelTest, ForwardingForbiddenByTheHostsSshdSaysWhatToChange) {
  Start({}, "AllowTcpForwarding no\n");
  Result<Fd> refused = provider_->OpenTunnel(Host(), Vm(), 22, Soon());
  EXPECT_EQ(refused.status().code(), Status::Code::kFailedPrecondition)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("forbids TCP forwarding"), std::string::npos)
      << refused.status().ToString();
  // No credential in the message: not the key, not its passphrase.
  const std::string key = SimulatedMac::ReadText(mac_->user_key());
  EXPECT_EQ(refused.status().message().find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(refused.status().message().find(key.substr(40, 40)), std::string::npos);
  // Commands still run over the same connection.
  EXPECT_TRUE(provider_->Observe(Host(), Soon()).status.ok());
}

TEST_F(TartTunnelTest, ARefusedPortSaysSo) {
  Start();
  Result<Fd> refused = provider_->OpenTunnel(Host(), Vm(), 81, Soon());
  EXPECT_EQ(refused.status().code(), Status::Code::kUnavailable) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("Connection refused"), std::string::npos)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("host mac: VM ios-0 port 81"), std::string::npos)
      << refused.status().ToString();
}

TEST_F(TartTunnelTest, TunnelsPerHostAreCappedAndTheirClientsCollected) {
  Start({}, "", {{"maxTunnels", 2}});
  std::optional<Result<Fd>> first(provider_->OpenTunnel(Host(), Vm(), 22, Soon()));
  ASSERT_TRUE(first->ok()) << first->status().ToString();
  Result<Fd> second = provider_->OpenTunnel(Host(), Vm(), 5900, Soon());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(Tart().TunnelsTo(mac_->address()), 2);
  Result<Fd> third = provider_->OpenTunnel(Host(), Vm(), 22, Soon());
  EXPECT_EQ(third.status().code(), Status::Code::kUnavailable) << third.status().ToString();
  EXPECT_NE(third.status().message().find("too many tunnels open to"), std::string::npos)
      << third.status().ToString();
  // Closing one frees its slot once its ssh client has ended and been collected.
  first.reset();
  EXPECT_TRUE(testing::WaitUntil([&] { return Tart().TunnelsTo(mac_->address()) == 1; }));
  Result<Fd> again = provider_->OpenTunnel(Host(), Vm(), 22, Soon());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(RoundTrip(*again, "ping"), "ping");
  EXPECT_EQ(RoundTrip(*second, "vnc"), "vnc");
  // Both streams ended: their clients are gone, no zombie stays behind.
  EXPECT_TRUE(testing::WaitUntil([&] { return Tart().TunnelsTo(mac_->address()) == 0; }));
  EXPECT_EQ(testing::Sh("ps -o stat= --ppid " + std::to_string(getpid()) + " | grep -c Z || true"),
            "0");
}

TEST_F(TartTunnelTest, NoTunnelsWhenThePoolSwitchesThemOff) {
  Start({}, "", {{"maxTunnels", 0}});
  Result<Fd> off = provider_->OpenTunnel(Host(), Vm(), 22, Soon());
  EXPECT_EQ(off.status().code(), Status::Code::kFailedPrecondition) << off.status().ToString();
  EXPECT_NE(off.status().message().find("ssh.maxTunnels is 0"), std::string::npos);
}

TEST_F(TartTunnelTest, ARunningVmWithoutAnAddressIsAFailedPrecondition) {
  Start({{"faults", {{"no_lease", true}}}});
  Result<Fd> none = provider_->OpenTunnel(Host(), Vm(), 22, Soon());
  EXPECT_EQ(none.status().code(), Status::Code::kFailedPrecondition) << none.status().ToString();
  EXPECT_NE(none.status().message().find("no IP address"), std::string::npos)
      << none.status().ToString();
}

// Tart 1.2 to 1.7 say whether a VM runs only by `"Running" : true` in `tart get`; the fake
// refuses what its version does not have, as the real CLI would (exit 64). (The options of
// `tart ip` by version: TartScriptsTest.TunnelAddressAsksTartIpWithTheOptionsItsVersionHas.)
TEST_F(TartTunnelTest, TunnelsWorkWithOlderTart) {
  for (const char* version : {"1.2.0", "2.32.1"}) {
    SCOPED_TRACE(version);
    Start({{"version", version}});
    Result<Fd> tunnel = provider_->OpenTunnel(Host(), Vm(), 22, Soon());
    ASSERT_TRUE(tunnel.ok()) << tunnel.status().ToString();
    EXPECT_EQ(RoundTrip(*tunnel, version), version);
  }
}

// A guest port relayed to a real service (this Mac's own sshd, standing in for the guest's
// Remote Login): its banner comes through the tunnel.
TEST_F(TartTunnelTest, AGuestPortRelaysToARealService) {
  // The sshd's port is known once the Mac is up: map 22 to it and start the VM again.
  Start();
  mac_->config()["guest_ports"] = {{"22", "127.0.0.1:" + std::to_string(mac_->sshd().port())}};
  mac_->WriteConfig();
  ASSERT_TRUE(provider_->Stop(Host(), "ios-0", StopOptions{}, Soon()).ok());
  ASSERT_TRUE(provider_->Start(Host(), "ios-0", Soon()).ok());
  Result<Fd> tunnel = provider_->OpenTunnel(Host(), Vm(), 22, Soon());
  ASSERT_TRUE(tunnel.ok()) << tunnel.status().ToString();
  const std::string banner = RoundTrip(*tunnel, "");
  EXPECT_TRUE(banner.starts_with("SSH-2.0-OpenSSH")) << banner;
}

}  // namespace tunnel_test
}  // namespace flotilla::providers::tart
