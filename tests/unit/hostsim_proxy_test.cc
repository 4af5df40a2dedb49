// flotilla-hostsim's reverse proxy (sim_proxy.h): the REST records of /reverse-proxy/hosts and
// the TCP listeners behind them, with the real service's rules and defects (a target resolved
// only when the proxy restarts, every change dropping live relays, silent bind failures).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

#include "tests/unit/hostsim_fixture.h"

namespace flotilla::hostsim::testing {
namespace {

// A socket on 127.0.0.1 that listens on a free port (kept, so nobody else takes it).
struct LocalListener {
  int fd = -1;
  int port = 0;
  LocalListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 16) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen";
      return;
    }
    port = ntohs(addr.sin_port);
  }
  ~LocalListener() { Close(); }
  void Close() {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  }
  // Accepts one connection (10 s at most); -1 when none came.
  int Accept() const {
    timeval tv{.tv_sec = 10, .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return ::accept(fd, nullptr, nullptr);
  }
};

// A port nothing listens on now.
int FreePort() {
  LocalListener l;
  return l.port;
}

// A client connection to 127.0.0.1:port with 10 s read timeouts; -1 if refused.
int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{.tv_sec = 10, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// Sends `text` and reads until as many bytes came back, the peer closed ("" then) or 10 s.
std::string RoundTrip(int fd, const std::string& text) {
  if (::send(fd, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size())) {
    return "";
  }
  std::string got;
  char buffer[256];
  while (got.size() < text.size()) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      return "";
    }
    got.append(buffer, static_cast<size_t>(n));
  }
  return got;
}

// True when the peer closes the connection (EOF or reset) within 10 s without sending.
bool ClosedByPeer(int fd) {
  char c = 0;
  const ssize_t n = ::recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

class HostsimProxyTest : public HostsimTest {
 protected:
  json HostBody(const std::string& vm, int port, int target_port = 22) {
    return {{"name", "t-" + std::to_string(port)},
            {"host", "0.0.0.0"},
            {"port", std::to_string(port)},
            {"tcp_route", {{"target_vm_id", vm}, {"target_port", std::to_string(target_port)}}}};
  }
  // Creates a proxy host and expects 201; returns its id.
  std::string AddProxyHost(const std::string& vm, int port, int target_port = 22) {
    Answer a = Call("POST", "/api/v1/reverse-proxy/hosts", HostBody(vm, port, target_port).dump());
    EXPECT_EQ(a.status, 201) << a.body;
    return a.Json().value("id", "");
  }
};

TEST_F(HostsimProxyTest, RecordsFollowTheServiceRules) {
  Start();
  const std::string vm = AddVm("web", "linux", "running");
  const int port = FreePort();
  Answer created = Call("POST", "/api/v1/reverse-proxy/hosts", HostBody(vm, port).dump());
  ASSERT_EQ(created.status, 201) << created.body;
  const json host = created.Json();
  EXPECT_EQ(host["port"], std::to_string(port));  // a string, as is target_port
  EXPECT_EQ(host["tcp_route"]["target_port"], "22");
  EXPECT_FALSE(host["tcp_route"].value("id", "").empty());
  EXPECT_EQ(host["tcp_route"]["target_vm_details"]["state"], "running");
  const std::string id = host["id"];

  // {id} is the id or host:port, in any case.
  EXPECT_EQ(Call("GET", "/api/v1/reverse-proxy/hosts/" + id).status, 200);
  Answer by_key = Call("GET", "/api/v1/reverse-proxy/hosts/0.0.0.0:" + std::to_string(port));
  EXPECT_EQ(by_key.Json().value("id", ""), id) << by_key.body;
  json list = Call("GET", "/api/v1/reverse-proxy/hosts").Json();
  ASSERT_EQ(list.size(), 1U);
  EXPECT_EQ(list[0]["name"], "t-" + std::to_string(port));

  // The same host:port again.
  Answer again = Call("POST", "/api/v1/reverse-proxy/hosts", HostBody(vm, port).dump());
  EXPECT_EQ(again.status, 400);
  EXPECT_NE(again.Json().value("message", "").find("already exists"), std::string::npos);

  // Validation.
  json no_host = HostBody(vm, port + 1);
  no_host.erase("host");
  Answer a = Call("POST", "/api/v1/reverse-proxy/hosts", no_host.dump());
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.Json().value("message", ""),
            "Invalid request body: error 400: missing reverse proxy host");
  json numeric = HostBody(vm, port + 1);
  numeric["port"] = port + 1;
  EXPECT_EQ(Call("POST", "/api/v1/reverse-proxy/hosts", numeric.dump()).status, 400);
  json no_route = HostBody(vm, port + 1);
  no_route.erase("tcp_route");
  EXPECT_NE(Call("POST", "/api/v1/reverse-proxy/hosts", no_route.dump()).body.find("routes"),
            std::string::npos);
  json tls = HostBody(vm, port + 1);
  tls["tls"] = {{"enabled", true}};
  EXPECT_EQ(Call("POST", "/api/v1/reverse-proxy/hosts", tls.dump()).status, 400);
  json no_target = HostBody(vm, port + 1);
  no_target["tcp_route"].erase("target_vm_id");
  EXPECT_EQ(Call("POST", "/api/v1/reverse-proxy/hosts", no_target.dump()).status, 400);

  // tcp_route replaces the route (201), PUT updates (201), DELETE answers 202.
  Answer route = Call("POST", "/api/v1/reverse-proxy/hosts/" + id + "/tcp_route",
                      json{{"target_vm_id", vm}, {"target_port", "5900"}}.dump());
  EXPECT_EQ(route.status, 201) << route.body;
  EXPECT_EQ(route.Json()["tcp_route"]["target_port"], "5900");
  Answer put = Call("PUT", "/api/v1/reverse-proxy/hosts/" + id,
                    json{{"host", "0.0.0.0"}, {"port", std::to_string(port)}}.dump());
  EXPECT_EQ(put.status, 201) << put.body;
  EXPECT_EQ(Call("DELETE", "/api/v1/reverse-proxy/hosts/" + id).status, 202);
  Answer gone = Call("GET", "/api/v1/reverse-proxy/hosts/" + id);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.Json().value("message", ""), "error 404: reverse proxy host not found");
}

TEST_F(HostsimProxyTest, HardwareSaysWhetherTheModuleIsOn) {
  Start();
  json on = Call("GET", "/api/v1/config/hardware").Json();
  EXPECT_EQ(on["is_reverse_proxy_enabled"], true);
  EXPECT_EQ(on["reverse_proxy"]["host"], "0.0.0.0");
  EXPECT_EQ(on["reverse_proxy"]["port"], "5080");
  sim_->Stop();

  SimOptions off = TestOptions();
  off.reverse_proxy = false;
  Start(off);
  json hw = Call("GET", "/api/v1/config/hardware").Json();
  EXPECT_EQ(hw["is_reverse_proxy_enabled"], false);
  EXPECT_FALSE(hw.contains("reverse_proxy"));
  for (const json& module : hw["enabled_modules"]) {
    EXPECT_NE(module, "reverse_proxy");
  }
  EXPECT_EQ(Call("GET", "/api/v1/reverse-proxy/hosts").status, 404);
  EXPECT_EQ(Call("POST", "/api/v1/reverse-proxy/hosts", HostBody("x", 1).dump()).status, 404);
}

TEST_F(HostsimProxyTest, RelaysToTheGuestsEchoOn22And5900AndRefusesOtherPorts) {
  Start();
  const std::string vm = AddVm("web", "linux", "running");
  const int ssh = FreePort();
  AddProxyHost(vm, ssh, 22);
  const int vnc = FreePort();
  AddProxyHost(vm, vnc, 5900);
  const int web = FreePort();
  AddProxyHost(vm, web, 8080);

  const int a = Connect(ssh);
  ASSERT_GE(a, 0);
  EXPECT_EQ(RoundTrip(a, "SSH-2.0-hello\r\n"), "SSH-2.0-hello\r\n");
  ::close(a);
  const int b = Connect(vnc);
  ASSERT_GE(b, 0);
  EXPECT_EQ(RoundTrip(b, "RFB 003.008\n"), "RFB 003.008\n");
  ::close(b);
  // The listener accepts; the dial to the guest's 8080 fails and the connection closes.
  const int c = Connect(web);
  ASSERT_GE(c, 0);
  EXPECT_TRUE(ClosedByPeer(c));
  ::close(c);
}

TEST_F(HostsimProxyTest, GuestPortsRelayToTheGivenAddress) {
  LocalListener sshd;
  SimOptions options = TestOptions();
  options.guest_ports[22] = "127.0.0.1:" + std::to_string(sshd.port);
  Start(options);
  const std::string vm = AddVm("web", "linux", "running");
  const int ssh = FreePort();
  AddProxyHost(vm, ssh, 22);
  const int vnc = FreePort();
  AddProxyHost(vm, vnc, 5900);

  const int client = Connect(ssh);
  ASSERT_GE(client, 0);
  const int server = sshd.Accept();
  ASSERT_GE(server, 0);
  const std::string banner = "SSH-2.0-OpenSSH_9.2\r\n";
  ASSERT_EQ(::send(server, banner.data(), banner.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(banner.size()));
  char buffer[64] = {};
  ASSERT_EQ(::recv(client, buffer, banner.size(), MSG_WAITALL),
            static_cast<ssize_t>(banner.size()));
  EXPECT_EQ(std::string(buffer, banner.size()), banner);
  ::close(server);
  ::close(client);
  // With --guest-port given, only the ports it names answer.
  const int other = Connect(vnc);
  ASSERT_GE(other, 0);
  EXPECT_TRUE(ClosedByPeer(other));
  ::close(other);
}

TEST_F(HostsimProxyTest, AVmNotRunningAtRestartLeavesAListenerThatFailsEveryDial) {
  SimOptions options = TestOptions();
  options.version = "0.9.21";  // before 1.0.0, nothing but a restart resolves the VM again
  Start(options);
  const std::string vm = AddVm("web", "linux", "stopped");
  const int port = FreePort();
  AddProxyHost(vm, port);
  // target "---": the listener is up, every connection is closed at once.
  int fd = Connect(port);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ClosedByPeer(fd));
  ::close(fd);

  // Starting the VM changes nothing until the proxy restarts.
  ASSERT_EQ(Control("PATCH", "hosts/sim/vms/web", {{"state", "running"}}).status, 200);
  fd = Connect(port);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ClosedByPeer(fd));
  ::close(fd);

  AddProxyHost(vm, FreePort());  // any change restarts the whole proxy
  fd = Connect(port);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(RoundTrip(fd, "ping"), "ping");
  ::close(fd);
}

TEST_F(HostsimProxyTest, FromVersion100TheProxyFollowsAVmThatStarts) {
  Start();  // 1.0.5
  const std::string vm = AddVm("web", "linux", "stopped");
  const int port = FreePort();
  AddProxyHost(vm, port);
  int fd = Connect(port);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ClosedByPeer(fd));  // "---"
  ::close(fd);

  // 2 s after the start the listener is restarted with the VM's address.
  ASSERT_EQ(Control("PATCH", "hosts/sim/vms/web", {{"state", "running"}}).status, 200);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string echoed;
  while (echoed.empty() && std::chrono::steady_clock::now() < deadline) {
    fd = Connect(port);
    if (fd >= 0) {
      echoed = RoundTrip(fd, "up");
      ::close(fd);
    }
    if (echoed.empty()) {
      std::this_thread::sleep_for(milliseconds(200));
    }
  }
  EXPECT_EQ(echoed, "up");
}

TEST_F(HostsimProxyTest, EveryChangeRestartsTheProxyAndDropsLiveRelays) {
  Start();
  const std::string vm = AddVm("web", "linux", "running");
  const int port = FreePort();
  AddProxyHost(vm, port);
  const int live = Connect(port);
  ASSERT_GE(live, 0);
  ASSERT_EQ(RoundTrip(live, "one"), "one");

  // A change to another, unrelated proxy host.
  const std::string other = AddProxyHost(vm, FreePort());
  EXPECT_TRUE(ClosedByPeer(live));
  ::close(live);

  // The listener is back after the restart; a delete drops relays too.
  const int next = Connect(port);
  ASSERT_GE(next, 0);
  ASSERT_EQ(RoundTrip(next, "two"), "two");
  EXPECT_EQ(Call("DELETE", "/api/v1/reverse-proxy/hosts/" + other).status, 202);
  EXPECT_TRUE(ClosedByPeer(next));
  ::close(next);
}

TEST_F(HostsimProxyTest, APortInUseIsNotReported) {
  Start();
  const std::string vm = AddVm("web", "linux", "running");
  LocalListener squatter;  // something else listens on the port
  Answer a = Call("POST", "/api/v1/reverse-proxy/hosts", HostBody(vm, squatter.port).dump());
  EXPECT_EQ(a.status, 201) << a.body;
  EXPECT_EQ(Call("GET", "/api/v1/reverse-proxy/hosts/" + a.Json().value("id", "")).status, 200);
  // A connection reaches the squatter, not the proxy.
  const int fd = Connect(squatter.port);
  ASSERT_GE(fd, 0);
  const int accepted = squatter.Accept();
  EXPECT_GE(accepted, 0);
  ::close(accepted);
  ::close(fd);
}

TEST_F(HostsimProxyTest, RecordsSurviveARestartOfTheSimulator) {
  const std::string state =
      std::filesystem::temp_directory_path() / ("hostsim-proxy-" + std::to_string(getpid()));
  SimOptions options = TestOptions();
  options.state_file = state;
  Start(options);
  const std::string vm = AddVm("web", "linux", "running");
  const int port = FreePort();
  AddProxyHost(vm, port);
  sim_->Stop();
  Start(options);
  const int fd = Connect(port);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(RoundTrip(fd, "back"), "back");
  ::close(fd);
  sim_->Stop();
  std::filesystem::remove(state);
}

TEST(HostsimGuestPortTest, Parses) {
  int port = 0;
  std::string address;
  ASSERT_TRUE(ParseGuestPort("22=127.0.0.1:2222", &port, &address).ok());
  EXPECT_EQ(port, 22);
  EXPECT_EQ(address, "127.0.0.1:2222");
  EXPECT_FALSE(ParseGuestPort("22", &port, &address).ok());
  EXPECT_FALSE(ParseGuestPort("0=127.0.0.1:1", &port, &address).ok());
  EXPECT_FALSE(ParseGuestPort("22=127.0.0.1", &port, &address).ok());
}

}  // namespace
}  // namespace flotilla::hostsim::testing
