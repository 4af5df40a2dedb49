// The Parallels provider's tunnels against flotilla-hostsim's reverse proxy: the module being
// off, reuse of the proxy host Flotilla keeps per VM and port, and the ports it must give up
// (one that something else answers on; one the host's proxy fails to bind without saying so).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <future>
#include <string>
#include <vector>

#include "providers/parallels/config.h"
#include "tests/integration/parallels_fixture.h"

namespace flotilla::providers::testing_fixture {
namespace {

using nlohmann::json;

// A socket bound to a free port of 127.0.0.1, listening or not. Bound without SO_REUSEADDR, so
// that nobody else can bind the port while it lives.
struct PortHolder {
  int fd = -1;
  uint16_t port = 0;
  explicit PortHolder(bool listen) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        (listen && ::listen(fd, 4) != 0) ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot bind";
    }
    port = ntohs(addr.sin_port);
  }
  ~PortHolder() { close(fd); }
};

class ParallelsTunnelTest : public ParallelsTest {
 protected:
  // A running Linux VM on the host, as the loop observed it.
  VmInfo RunningVm(const std::string& name) {
    sim_->Control("POST", "/_sim/hosts/sim/vms",
                  {{"name", name},
                   {"os", "linux"},
                   {"cpu", 2},
                   {"memory_mb", 2048},
                   {"disk_mb", 65536},
                   {"state", "running"}});
    HostObservation observation = provider().Observe(host(), Soon());
    for (const VmInfo& vm : observation.vms) {
      if (vm.name == name) {
        return vm;
      }
    }
    ADD_FAILURE() << name << " not observed";
    return {};
  }
  // The host's proxy hosts, read with the pool's API key.
  json ProxyHosts() {
    httplib::Client client(sim_->origin());
    httplib::Result result =
        client.Get("/api/v1/reverse-proxy/hosts", {{"X-Api-Key", Base64(kApiKeyPlain)}});
    EXPECT_TRUE(result);
    return result ? json::parse(result->body, nullptr, false) : json();
  }
  void OnlyPorts(uint16_t port) {
    setup_.pool.settings["tunnels"]["ports"] = std::to_string(port) + "-" + std::to_string(port);
  }
  static parallels::ParallelsTuning Tuning() {
    parallels::ParallelsTuning tuning = ::flotilla::testing::FastTuning();
    tuning.tunnel_listen_wait = milliseconds(500);
    tuning.tunnel_probe_interval = milliseconds(50);
    return tuning;
  }
};

TEST_F(ParallelsTunnelTest, AHostWithoutTheReverseProxyIsAFailedPreconditionSayingWhatToDo) {
  Start({"--no-reverse-proxy"});
  Build();
  const VmInfo vm = RunningVm("web-0");
  Result<Fd> tunnel = provider().OpenTunnel(host(), vm, 22, Soon());
  EXPECT_EQ(tunnel.status().code(), Status::Code::kFailedPrecondition)
      << tunnel.status().ToString();
  const std::string message = tunnel.status().message();
  EXPECT_NE(message.find("DISABLE_REVERSE_PROXY"), std::string::npos) << message;
  EXPECT_NE(message.find("reverse_proxy"), std::string::npos) << message;
  EXPECT_EQ(message.find(kPassword), std::string::npos);
  EXPECT_EQ(message.find(Base64(kApiKeyPlain)), std::string::npos);
}

TEST_F(ParallelsTunnelTest, TheProxyHostOfAVmPortIsKeptAndReused) {
  Start({});
  Build();
  const VmInfo vm = RunningVm("web-0");
  Result<Fd> first = provider().OpenTunnel(host(), vm, 22, Soon());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  first->Reset();
  const json before = ProxyHosts();
  ASSERT_EQ(before.size(), 1U) << before.dump();
  EXPECT_EQ(before[0]["name"], "flotilla-" + vm.id + "-22");
  EXPECT_EQ(before[0]["host"], "0.0.0.0");
  EXPECT_EQ(before[0]["tcp_route"]["target_port"], "22");
  const std::string port = before[0]["port"];
  EXPECT_GE(std::stoi(port), 45000);
  EXPECT_LE(std::stoi(port), 45999);

  Result<Fd> second = provider().OpenTunnel(host(), vm, 22, Soon());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  const json after = ProxyHosts();
  ASSERT_EQ(after.size(), 1U) << after.dump();  // no new record: no restart of the proxy
  EXPECT_EQ(after[0]["id"], before[0]["id"]);
}

// Every create restarts the host's whole proxy: tunnels opened at once to one VM's port must
// make one proxy host between them, and all carry bytes.
TEST_F(ParallelsTunnelTest, TunnelsOpenedAtOnceToOneVmPortMakeOneProxyHost) {
  Start({});
  Build();
  const VmInfo vm = RunningVm("web-0");
  std::vector<std::future<std::string>> opened;
  for (int i = 0; i < 40; ++i) {
    opened.push_back(std::async(std::launch::async, [&, i]() -> std::string {
      Result<Fd> tunnel = provider().OpenTunnel(host(), vm, 22, Soon());
      if (!tunnel.ok()) {
        return tunnel.status().ToString();
      }
      const std::string hello = "hello " + std::to_string(i);
      send(tunnel->get(), hello.data(), hello.size(), MSG_NOSIGNAL);
      shutdown(tunnel->get(), SHUT_WR);
      std::string back;
      char buffer[64];
      for (ssize_t n = 0; (n = recv(tunnel->get(), buffer, sizeof(buffer), 0)) > 0;) {
        back.append(buffer, static_cast<size_t>(n));
      }
      return back == hello ? "" : "echoed \"" + back + "\"";
    }));
  }
  for (auto& result : opened) {
    EXPECT_EQ(result.get(), "");
  }
  EXPECT_EQ(ProxyHosts().size(), 1U) << ProxyHosts().dump();
}

TEST_F(ParallelsTunnelTest, TheProxyHostsOfVmsThatAreGoneAreDeletedWithTheNextNewOne) {
  Start({});
  Build();
  const VmInfo gone = RunningVm("web-0");
  ASSERT_TRUE(provider().OpenTunnel(host(), gone, 22, Soon()).ok());
  sim_->Control("DELETE", "/_sim/hosts/sim/vms/web-0");
  ASSERT_EQ(ProxyHosts().size(), 1U);  // kept while nothing else changes the proxy

  const VmInfo next = RunningVm("web-1");
  Result<Fd> tunnel = provider().OpenTunnel(host(), next, 22, Soon());
  ASSERT_TRUE(tunnel.ok()) << tunnel.status().ToString();
  const json left = ProxyHosts();
  ASSERT_EQ(left.size(), 1U) << left.dump();
  EXPECT_EQ(left[0]["name"], "flotilla-" + next.id + "-22");
}

TEST_F(ParallelsTunnelTest, APortSomethingElseAnswersOnIsNotUsed) {
  Start({});
  const PortHolder other(/*listen=*/true);
  OnlyPorts(other.port);
  ASSERT_TRUE(setup_.Build(Tuning()).ok());
  const VmInfo vm = RunningVm("web-0");
  Result<Fd> tunnel = provider().OpenTunnel(host(), vm, 22, Soon());
  EXPECT_EQ(tunnel.status().code(), Status::Code::kUnavailable) << tunnel.status().ToString();
  EXPECT_NE(tunnel.status().message().find("no free port"), std::string::npos)
      << tunnel.status().ToString();
  EXPECT_TRUE(ProxyHosts().empty());
}

TEST_F(ParallelsTunnelTest, AProxyHostWhoseListenerNeverCameUpIsDeleted) {
  Start({});
  // Bound, not listening: a connection is refused, and the proxy cannot bind the port either.
  const PortHolder blocker(/*listen=*/false);
  OnlyPorts(blocker.port);
  ASSERT_TRUE(setup_.Build(Tuning()).ok());
  const VmInfo vm = RunningVm("web-0");
  Result<Fd> tunnel = provider().OpenTunnel(host(), vm, 22, Soon());
  EXPECT_EQ(tunnel.status().code(), Status::Code::kUnavailable) << tunnel.status().ToString();
  EXPECT_NE(tunnel.status().message().find("nothing listens"), std::string::npos)
      << tunnel.status().ToString();
  EXPECT_TRUE(ProxyHosts().empty()) << ProxyHosts().dump();  // given up, not left behind
}

TEST(ParallelsTunnelSettingsTest, PortsAreARangeAndBindAnAddress) {
  using parallels::ParsePoolSettings;
  Result<parallels::ParallelsPoolSettings> defaults = ParsePoolSettings(json::object());
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->tunnels.first_port, 45000);
  EXPECT_EQ(defaults->tunnels.last_port, 45999);
  EXPECT_EQ(defaults->tunnels.bind, "0.0.0.0");
  Result<parallels::ParallelsPoolSettings> set =
      ParsePoolSettings({{"tunnels", {{"ports", "50000-50009"}, {"bind", "10.0.0.11"}}}});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->tunnels.first_port, 50000);
  EXPECT_EQ(set->tunnels.last_port, 50009);
  EXPECT_EQ(set->tunnels.bind, "10.0.0.11");
  for (const char* bad : {"50009-50000", "0-10", "1-70000", "45000", "a-b"}) {
    EXPECT_FALSE(ParsePoolSettings({{"tunnels", {{"ports", bad}}}}).ok()) << bad;
  }
}

}  // namespace
}  // namespace flotilla::providers::testing_fixture
