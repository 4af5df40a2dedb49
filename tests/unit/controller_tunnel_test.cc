// Controller::OpenTunnel: a tunnel keeps the provider that opened it. A change of the pool
// builds a new provider for what follows; the old one, whose connections carry the open tunnels
// (a Tart host's tunnels end with the provider's ssh master connection), stays until the last
// of them has closed.

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <vector>

#include "tests/support/forwarding_provider.h"
#include "tests/unit/controller_fixture.h"

namespace flotilla::controller::controller_test {
namespace {

// How many providers were built, and how many exist.
struct Counts {
  std::atomic<int> built{0};
  std::atomic<int> alive{0};
};

// A provider whose tunnels end with it, as the Tart provider's do: each tunnel is a socket
// pair, and the provider holds the far ends.
class TunnelingProvider final : public testing::ForwardingProvider {
 public:
  TunnelingProvider(providers::Provider& target, Counts& counts)
      : ForwardingProvider(target), counts_(counts) {
    ++counts_.built;
    ++counts_.alive;
  }
  ~TunnelingProvider() override { --counts_.alive; }
  TunnelingProvider(const TunnelingProvider&) = delete;
  TunnelingProvider& operator=(const TunnelingProvider&) = delete;

  Result<Fd> OpenTunnel(const providers::HostRef& /*host*/, const VmInfo& /*vm*/, uint16_t /*port*/,
                        providers::Deadline /*deadline*/) override {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      return Status::Unavailable("socketpair failed");
    }
    std::lock_guard lock(mu_);
    far_ends_.emplace_back(pair[1]);
    return Fd(pair[0]);
  }

 private:
  Counts& counts_;
  std::mutex mu_;
  std::vector<Fd> far_ends_;
};

class TunnelingFactory final : public providers::ProviderFactory {
 public:
  TunnelingFactory(providers::Provider& target, Counts& counts)
      : target_(target), counts_(counts) {}
  std::string_view name() const override { return "fake"; }
  std::shared_ptr<const ProviderRules> rules() const override {
    return std::make_shared<providers::FakeRules>();
  }
  Result<std::unique_ptr<providers::Provider>> Build(
      const providers::ProviderContext& /*context*/) const override {
    return std::unique_ptr<providers::Provider>(
        std::make_unique<TunnelingProvider>(target_, counts_));
  }

 private:
  providers::Provider& target_;
  Counts& counts_;
};

// Whether the other end of `fd` has closed (a read would return 0 at once).
bool FarEndClosed(const Fd& fd) {
  pollfd p{.fd = fd.get(), .events = POLLIN, .revents = 0};
  return poll(&p, 1, 0) > 0;
}

class ControllerTunnelTest : public ControllerTest {
 protected:
  ControllerTunnelTest() {
    registry_ = providers::ProviderRegistry();  // its "fake" provider is this one
    EXPECT_TRUE(registry_.Register(std::make_unique<TunnelingFactory>(fake_, counts_)).ok());
  }

  // Fleet(1) on a pool that allows `ports`, whose hosts take `max_vms` VMs each.
  static manifest::LoadResult TunnelingFleet(std::vector<uint16_t> ports, uint32_t max_vms = 4) {
    manifest::LoadResult fleet = Fleet(1);
    fleet.desired.pools[0].allowed_ports = std::move(ports);
    for (HostSpec& host : fleet.desired.pools[0].hosts) {
      host.max_vms = max_vms;
    }
    return fleet;
  }

  // Revision `sha` holds `fleet` and is the tip; `c` syncs to it and runs a pass.
  void PassOn(Controller& c, const std::string& sha, manifest::LoadResult fleet) {
    source_.revisions[sha] = std::move(fleet);
    source_.tip = sha;
    c.Sync();
    Pass(c);
  }

  Counts counts_;
};

TEST_F(ControllerTunnelTest, ATunnelKeepsItsProviderThroughAPoolChange) {
  Controller& c = Make();
  PassOn(c, "r1", TunnelingFleet({22}));
  ASSERT_EQ(counts_.alive.load(), 1);
  std::optional<Result<KeptFd>> tunnel(c.OpenTunnel(
      "p", "h1", VmInfo{.name = "set-0"}, 22, providers::DeadlineIn(std::chrono::seconds{10})));
  ASSERT_TRUE(tunnel->ok()) << tunnel->status().ToString();

  // The pool changes: the next pass builds its provider anew.
  PassOn(c, "r2", TunnelingFleet({22, 5900}, 8));
  EXPECT_EQ(counts_.built.load(), 2);
  EXPECT_EQ(counts_.alive.load(), 2);
  EXPECT_FALSE(FarEndClosed((*tunnel)->fd));
  Result<KeptFd> next = c.OpenTunnel("p", "h1", VmInfo{.name = "set-0"}, 5900,
                                     providers::DeadlineIn(std::chrono::seconds{10}));
  ASSERT_TRUE(next.ok()) << next.status().ToString();

  // The old provider goes with its last tunnel; the new one stays for the loop.
  tunnel.reset();
  EXPECT_EQ(counts_.alive.load(), 1);
  EXPECT_FALSE(FarEndClosed(next->fd));
}

// The ports a pool allows are the API's to check: a change of them alone keeps the provider (and
// its connections to the hosts), and the API sees the new ports.
TEST_F(ControllerTunnelTest, AChangeOfTheAllowedPortsAloneKeepsTheProvider) {
  Controller& c = Make();
  PassOn(c, "r1", TunnelingFleet({22}));
  ASSERT_EQ(counts_.alive.load(), 1);
  PassOn(c, "r2", TunnelingFleet({22, 5900}));
  EXPECT_EQ(counts_.built.load(), 1);
  ASSERT_NE(c.snapshot(), nullptr);
  EXPECT_EQ(c.snapshot()->desired.pools.at(0).allowed_ports, (std::vector<uint16_t>{22, 5900}));
}

}  // namespace
}  // namespace flotilla::controller::controller_test
