// flotilla-tartsim's guest network: a running VM's leased address has real listeners (echo on
// 22 and 5900, or relays configured by guest_ports), gone when the VM stops; `tart ip`'s
// options by version.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "tests/unit/tartsim_fixture.h"

namespace flotilla::tartsim::testing {
namespace guest_net_test {

// A connected socket to ip:port, or -1 when refused.
int Dial(const std::string& ip, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &address.sin_addr);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  timeval timeout{.tv_sec = 20, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

// Sends `text`, half-closes, and reads until the peer closes.
std::string Exchange(int fd, const std::string& text) {
  EXPECT_EQ(send(fd, text.data(), text.size(), MSG_NOSIGNAL), static_cast<ssize_t>(text.size()));
  shutdown(fd, SHUT_WR);
  std::string got;
  char buffer[4096];
  for (ssize_t n = 0; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) {
    got.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return got;
}

// A one-shot server on 127.0.0.1 standing in for a guest's service: answers "relayed:" and
// what it read.
class Upstream {
 public:
  Upstream() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    // NOLINTBEGIN(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    // NOLINTEND(cppcoreguidelines-pro-type-reinterpret-cast)
    EXPECT_EQ(listen(fd_, 4), 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] {
      const int client = accept(fd_, nullptr, nullptr);
      if (client < 0) {
        return;
      }
      std::string got;
      char buffer[4096];
      for (ssize_t n = 0; (n = recv(client, buffer, sizeof(buffer), 0)) > 0;) {
        got.append(buffer, static_cast<size_t>(n));
      }
      const std::string answer = "relayed:" + got;
      (void)!send(client, answer.data(), answer.size(), MSG_NOSIGNAL);
      close(client);
    });
  }
  ~Upstream() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

using TartsimNetTest = TartsimTest;

TEST_F(TartsimNetTest, ARunningGuestEchoesOnItsAddressUntilItStops) {
  Clone("vm");
  const pid_t run = Boot("vm");
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(Fake("vmstate/vm/listeners")); }));
  EXPECT_EQ(ReadText(Fake("vmstate/vm/listeners")), "22 echo\n5900 echo\n");
  Outcome ip = Run({"ip", "--wait", "5", "vm"});
  ASSERT_EQ(ip.code, 0) << ip.err;
  const std::string address = ip.out.substr(0, ip.out.find('\n'));
  // Its own loopback /24 (127.X.Y.0, X not 0), the first lease .2.
  EXPECT_TRUE(address.starts_with("127.") && !address.starts_with("127.0.") &&
              address.ends_with(".2"))
      << address;
  const int ssh = Dial(address, 22);
  ASSERT_GE(ssh, 0);
  EXPECT_EQ(Exchange(ssh, "SSH-2.0-test\r\n"), "SSH-2.0-test\r\n");
  const int vnc = Dial(address, 5900);
  ASSERT_GE(vnc, 0);
  EXPECT_EQ(Exchange(vnc, std::string(100000, 'v')), std::string(100000, 'v'));
  EXPECT_EQ(Dial(address, 80), -1);  // nothing else listens
  // A connection open when the VM stops ends with it.
  const int open = Dial(address, 22);
  ASSERT_GE(open, 0);
  kill(run, SIGINT);
  EXPECT_EQ(WaitExit(run), 0);
  char byte = 0;
  EXPECT_LE(recv(open, &byte, 1, 0), 0);
  close(open);
  EXPECT_EQ(Dial(address, 22), -1);
  EXPECT_FALSE(std::filesystem::exists(Fake("vmstate/vm/listeners")));
  // The lease outlives the VM (bootpd's), so `tart ip` still answers: nothing listens there.
  EXPECT_EQ(Run({"ip", "vm"}).out, address + "\n");
}

TEST_F(TartsimNetTest, EachGuestHasItsOwnAddress) {
  Clone("a");
  Clone("b");
  const pid_t a = Boot("a");
  const pid_t b = Boot("b");
  const std::string ip_a = Run({"ip", "a"}).out;
  const std::string ip_b = Run({"ip", "b"}).out;
  EXPECT_NE(ip_a, ip_b);
  for (const char* vm : {"a", "b"}) {
    ASSERT_TRUE(Eventually([&] {
      return std::filesystem::exists(Fake(std::string("vmstate/") + vm + "/listeners"));
    }));
    EXPECT_EQ(ReadText(Fake(std::string("vmstate/") + vm + "/listeners")), "22 echo\n5900 echo\n");
  }
  for (pid_t pid : {a, b}) {
    kill(pid, SIGINT);
    EXPECT_EQ(WaitExit(pid), 0);
  }
}

TEST_F(TartsimNetTest, GuestPortsRelayToTheirAddresses) {
  Upstream sshd;
  Config({{"latency_ms", {{"limitcheck", 0}}},
          {"guest_ports", {{"22", "127.0.0.1:" + std::to_string(sshd.port())}}}});
  Clone("vm");
  const pid_t run = Boot("vm");
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(Fake("vmstate/vm/listeners")); }));
  EXPECT_EQ(ReadText(Fake("vmstate/vm/listeners")),
            "22 relay 127.0.0.1:" + std::to_string(sshd.port()) + "\n");
  const std::string ip = Run({"ip", "vm"}).out;
  const std::string address = ip.substr(0, ip.find('\n'));
  const int fd = Dial(address, 22);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(Exchange(fd, "hello"), "relayed:hello");
  EXPECT_EQ(Dial(address, 5900), -1);  // a mapping replaces the echo services
  kill(run, SIGINT);
  EXPECT_EQ(WaitExit(run), 0);
}

TEST_F(TartsimNetTest, ABadGuestPortsEntryIsTheFakesMisuse) {
  Config({{"guest_ports", {{"22", "localhost:2222"}}}});
  Outcome bad = Run({"list"});
  EXPECT_EQ(bad.code, 70);
  EXPECT_NE(bad.err.find("guest_ports.22"), std::string::npos) << bad.err;
  Config({{"guest_ports", {{"0", "127.0.0.1:2222"}}}});
  EXPECT_EQ(Run({"list"}).code, 70);
}

TEST_F(TartsimNetTest, ALeaseOutsideThisMachinesAddressesHasNoListeners) {
  // A Mac's own network: the addresses are right, but nothing here can listen on them.
  Config({{"host", {{"shared_net_address", "192.168.64.1"}}}, {"latency_ms", {{"limitcheck", 0}}}});
  Clone("vm");
  const pid_t run = Boot("vm");
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(Fake("vmstate/vm/listeners")); }));
  EXPECT_EQ(ReadText(Fake("vmstate/vm/listeners")),
            "! 22: Cannot assign requested address\n! 5900: Cannot assign requested address\n");
  EXPECT_EQ(Run({"ip", "vm"}).out, "192.168.64.2\n");
  kill(run, SIGINT);
  EXPECT_EQ(WaitExit(run), 0);
}

TEST_F(TartsimNetTest, IpOptionsFollowTheVersion) {
  Clone("vm");
  const pid_t run = Boot("vm");
  Config({{"version", "1.0.0"}, {"latency_ms", {{"limitcheck", 0}}}});
  Outcome old = Run({"ip", "--resolver", "dhcp", "vm"});
  EXPECT_EQ(old.code, 64);
  EXPECT_NE(old.err.find("Unknown option '--resolver'"), std::string::npos) << old.err;
  EXPECT_EQ(Run({"ip", "--wait", "1", "vm"}).code, 0);
  Config({{"version", "0.1.0"}, {"latency_ms", {{"limitcheck", 0}}}});
  EXPECT_EQ(Run({"ip", "--wait", "1", "vm"}).code, 64);
  Config({{"version", "2.27.0"}, {"latency_ms", {{"limitcheck", 0}}}});
  EXPECT_EQ(Run({"ip", "--resolver", "arp", "vm"}).code, 0);
  Outcome agent = Run({"ip", "--resolver", "agent", "vm"});
  EXPECT_EQ(agent.code, 64);
  EXPECT_NE(agent.err.find("The value 'agent' is invalid"), std::string::npos) << agent.err;
  Config({{"version", "2.28.0"}, {"latency_ms", {{"limitcheck", 0}}}});
  EXPECT_EQ(Run({"ip", "--resolver", "agent", "vm"}).code, 0);
  kill(run, SIGINT);
  EXPECT_EQ(WaitExit(run), 0);
}

}  // namespace guest_net_test
}  // namespace flotilla::tartsim::testing
