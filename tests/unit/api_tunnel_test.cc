// The API's tunnels (reconciler/api/tunnel.h) through a real server, with the CLI's own client
// (reconciler/cli/tunnel_client.h): a loop whose "VM port" is an echo server on loopback.

#include <netinet/in.h>
#include <spdlog/sinks/null_sink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include "reconciler/api/server.h"
#include "reconciler/cli/tunnel_client.h"
#include "tests/support/process.h"
#include "tests/support/raw_connection.h"
#include "tests/support/shell.h"
#include "tests/support/tunnel_fixture.h"
#include "tests/support/wait_until.h"

namespace flotilla {
namespace {

using api::Role;
using api::Roles;
using api::Server;
using api::ServerOptions;
using cli::Tunnel;
using cli::TunnelTarget;
using testing::EchoServer;
using testing::TunnelBackend;

constexpr const char* kOps = "ops-secret-1";
constexpr const char* kReader = "reader-secret-2";

Roles Of(std::initializer_list<Role> roles) {
  Roles set;
  for (Role role : roles) {
    set.Add(role);
  }
  return set;
}

// Sends `data` into one end of a tunnel and reads back what the echo returns, through a
// socketpair the tunnel relays; the tunnel's relay runs on its own thread.
std::string RoundTrip(Tunnel& tunnel, const std::string& data) {
  int pair[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  std::atomic<bool> stopping{false};
  std::thread relay([&] { (void)tunnel.Relay(pair[1], pair[1], stopping); });
  std::thread writer([&] {
    for (size_t sent = 0; sent < data.size();) {
      const ssize_t n = write(pair[0], data.data() + sent, data.size() - sent);
      if (n <= 0) {
        break;
      }
      sent += static_cast<size_t>(n);
    }
    shutdown(pair[0], SHUT_WR);
  });
  std::string back;
  std::vector<char> buffer(65536);
  for (;;) {
    const ssize_t n = read(pair[0], buffer.data(), buffer.size());
    if (n <= 0) {
      break;
    }
    back.append(buffer.data(), static_cast<size_t>(n));
  }
  writer.join();
  relay.join();
  close(pair[0]);
  close(pair[1]);
  return back;
}

std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937_64 random(seed);
  std::string data(size, '\0');
  for (size_t at = 0; at < size; at += 8) {
    const uint64_t word = random();
    std::memcpy(data.data() + at, &word, std::min<size_t>(8, size - at));
  }
  return data;
}

class ApiTunnelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<store::Store>> opened =
        store::Store::Open((scratch_.path() / "flotilla.db").string());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(*opened);
    backend_ = std::make_unique<TunnelBackend>(echo_.port());
  }

  std::unique_ptr<Server> Start(ServerOptions options = {}) {
    auto logger =
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    options.listen = "127.0.0.1:0";
    options.tokens = {{.name = "ops", .secret = kOps, .roles = Of({Role::kAccess})},
                      {.name = "reader", .secret = kReader, .roles = Of({Role::kRead})}};
    Result<std::unique_ptr<Server>> server =
        Server::Start(options, *backend_, *store_, telemetry_, logger);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(*server) : nullptr;
  }

  static TunnelTarget To(const Server& server, const std::string& vm, uint16_t port,
                         const std::string& token = kOps) {
    return TunnelTarget{.server = server.url(), .token = token, .vm = vm, .port = port};
  }

  std::vector<store::EventRecord> TunnelEvents() {
    Result<std::vector<store::EventRecord>> events = store_->Events(100);
    EXPECT_TRUE(events.ok());
    std::vector<store::EventRecord> tunnels;
    for (const store::EventRecord& e : events.ok() ? *events : std::vector<store::EventRecord>{}) {
      if (e.kind == "tunnel") {
        tunnels.push_back(e);
      }
    }
    std::reverse(tunnels.begin(), tunnels.end());  // oldest first
    return tunnels;
  }

  testing::ScratchDir scratch_;
  EchoServer echo_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<TunnelBackend> backend_;
  api::Telemetry telemetry_;
};

TEST_F(ApiTunnelTest, BytesGoBothWaysIntactAndTheTunnelIsRecordedOpenAndClosed) {
  std::unique_ptr<Server> server = Start();
  Result<std::unique_ptr<Tunnel>> tunnel = Tunnel::Open(To(*server, "ci-1", 22));
  ASSERT_TRUE(tunnel.ok()) << tunnel.status().ToString();
  const std::string data = RandomBytes(size_t{3} << 20, 7);
  EXPECT_TRUE(RoundTrip(**tunnel, data) == data);
  EXPECT_EQ(backend_->asked(), std::vector<std::string>{"macs/mac-1/ci-1:22"});
  ASSERT_TRUE(testing::WaitUntil([&] { return TunnelEvents().size() == 2; }));
  const std::vector<store::EventRecord> events = TunnelEvents();
  EXPECT_EQ(events[0].subject, "ci-1");
  EXPECT_NE(events[0].message.find("tunnel opened to port 22 of VM ci-1 on host mac-1 for "
                                   "token ops"),
            std::string::npos)
      << events[0].message;
  EXPECT_NE(events[1].message.find("closed (closed)"), std::string::npos) << events[1].message;
  EXPECT_NE(events[1].message.find("3072 KiB to the VM, 3072 KiB from it"), std::string::npos)
      << events[1].message;
  EXPECT_NE(events[1].message.find("opened 20"), std::string::npos) << events[1].message;
  for (const store::EventRecord& e : events) {
    EXPECT_EQ(e.message.find(kOps), std::string::npos);
  }
  const std::string metrics =
      telemetry_.Render(nullptr, std::nullopt, std::chrono::system_clock::now());
  EXPECT_NE(metrics.find("flotilla_api_tunnels_total{code=\"101\"} 1\n"), std::string::npos);
  EXPECT_NE(metrics.find("flotilla_api_tunnels_open 0\n"), std::string::npos);
  EXPECT_NE(metrics.find("flotilla_api_tunnel_bytes_total{direction=\"to_vm\"} 3145728\n"),
            std::string::npos);
}

// Over HTTPS the relay reads and writes through the front door's TLS session; the client checks
// the server's certificate against --ca-file.
TEST_F(ApiTunnelTest, ATunnelOverTlsCarriesBytesBothWaysAndAnUntrustedServerIsRefused) {
  const std::string cert = (scratch_.path() / "cert.pem").string();
  const std::string key = (scratch_.path() / "key.pem").string();
  testing::Sh(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=flotilla-tunnel-test -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " 2>/dev/null");
  std::unique_ptr<Server> server = Start({.tls_cert_file = cert, .tls_key_file = key});
  ASSERT_TRUE(server->url().starts_with("https://"));
  TunnelTarget target = To(*server, "ci-1", 22);
  Result<std::unique_ptr<Tunnel>> untrusted = Tunnel::Open(target);
  ASSERT_FALSE(untrusted.ok());
  EXPECT_NE(untrusted.status().message().find("not trusted"), std::string::npos)
      << untrusted.status().message();
  target.ca_file = cert;
  Result<std::unique_ptr<Tunnel>> tunnel = Tunnel::Open(target);
  ASSERT_TRUE(tunnel.ok()) << tunnel.status().ToString();
  const std::string data = RandomBytes(size_t{3} << 20, 11);
  EXPECT_TRUE(RoundTrip(**tunnel, data) == data);
}

// What `flotilla ssh` asks first: the VM's host and pool, and whom to log in as.
TEST_F(ApiTunnelTest, TheAccessOfAVmNamesItsHostPoolPortsAndSshUser) {
  std::unique_ptr<Server> server = Start();
  httplib::Client client("127.0.0.1", server->port());
  httplib::Result managed =
      client.Get("/api/v1/vms/ci-1/access", {{"Authorization", std::string("Bearer ") + kOps}});
  ASSERT_TRUE(managed);
  ASSERT_EQ(managed->status, 200) << managed->body;
  const nlohmann::json doc = nlohmann::json::parse(managed->body);
  EXPECT_EQ(doc["host"], "mac-1");
  EXPECT_EQ(doc["pool"], "macs");
  EXPECT_EQ(doc["vmset"], "ios");
  EXPECT_EQ(doc["ssh_user"], "admin");
  EXPECT_EQ(doc["allowed_ports"], nlohmann::json::array({22, 5900}));
  httplib::Result unmanaged =
      client.Get("/api/v1/vms/ci-2/access", {{"Authorization", std::string("Bearer ") + kOps}});
  ASSERT_TRUE(unmanaged);
  EXPECT_EQ(nlohmann::json::parse(unmanaged->body)["vmset"], nullptr) << unmanaged->body;
  EXPECT_EQ(nlohmann::json::parse(unmanaged->body)["ssh_user"], "");
  httplib::Result reader =
      client.Get("/api/v1/vms/ci-1/access", {{"Authorization", std::string("Bearer ") + kReader}});
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->status, 403);
}

TEST_F(ApiTunnelTest, AWrongTokenGets401AndATokenWithoutTheAccessRole403) {
  std::unique_ptr<Server> server = Start();
  Result<std::unique_ptr<Tunnel>> wrong = Tunnel::Open(To(*server, "ci-1", 22, "nope"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Status::Code::kPermissionDenied);
  EXPECT_NE(wrong.status().message().find("refused the token"), std::string::npos)
      << wrong.status().message();
  EXPECT_EQ(wrong.status().message().find("nope"), std::string::npos);
  Result<std::unique_ptr<Tunnel>> reader = Tunnel::Open(To(*server, "ci-1", 22, kReader));
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("access"), std::string::npos)
      << reader.status().message();
  EXPECT_TRUE(backend_->asked().empty());
  EXPECT_TRUE(TunnelEvents().empty());
}

TEST_F(ApiTunnelTest, APortThePoolDoesNotAllowIsRefused) {
  std::unique_ptr<Server> server = Start();
  Result<std::unique_ptr<Tunnel>> refused = Tunnel::Open(To(*server, "ci-1", 8080));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(telemetry_.Render(nullptr, std::nullopt, std::chrono::system_clock::now())
                .find("flotilla_api_tunnels_total{code=\"403\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(refused.status().code(), Status::Code::kPermissionDenied);
  EXPECT_NE(refused.status().message().find(
                "pool macs allows tunnels to ports 22, 5900 (its spec.access.allowedPorts), "
                "not to 8080"),
            std::string::npos)
      << refused.status().message();
  Result<std::unique_ptr<Tunnel>> vnc = Tunnel::Open(To(*server, "ci-1", 5900));
  EXPECT_TRUE(vnc.ok()) << vnc.status().ToString();
  EXPECT_EQ(backend_->asked(), std::vector<std::string>{"macs/mac-1/ci-1:5900"});
}

TEST_F(ApiTunnelTest, UnknownStoppedAndMalformedRequestsAreRefusedBeforeAnyUpgrade) {
  std::unique_ptr<Server> server = Start();
  Result<std::unique_ptr<Tunnel>> unknown = Tunnel::Open(To(*server, "ci-9", 22));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Status::Code::kNotFound) << unknown.status().ToString();
  Result<std::unique_ptr<Tunnel>> stopped = Tunnel::Open(To(*server, "ci-2", 22));
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(stopped.status().message().find("is stopped, not running"), std::string::npos)
      << stopped.status().message();
  httplib::Client client("127.0.0.1", server->port());
  const httplib::Headers auth = {{"Authorization", std::string("Bearer ") + kOps}};
  httplib::Result plain = client.Get("/api/v1/vms/ci-1/port-forward?port=22", auth);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 426) << plain->body;
  EXPECT_EQ(plain->get_header_value("Upgrade"), "flotilla-tunnel");
  httplib::Result no_port = client.Get("/api/v1/vms/ci-1/port-forward?port=0", auth);
  ASSERT_TRUE(no_port);
  EXPECT_EQ(no_port->status, 400) << no_port->body;
  // A head two readers could read differently (whitespace before a colon: RFC 9112 5.1).
  testing::RawConnection raw("127.0.0.1", server->port(),
                             "GET /api/v1/vms/ci-1/port-forward?port=22 HTTP/1.1\r\n"
                             "Host: h\r\nAuthorization: Bearer " +
                                 std::string(kOps) +
                                 "\r\nConnection: Upgrade\r\nUpgrade : flotilla-tunnel\r\n\r\n");
  const std::string refused = raw.ReadAll(std::chrono::seconds{30});
  EXPECT_TRUE(refused.starts_with("HTTP/1.1 400 ")) << refused;
  EXPECT_NE(refused.find("not HTTP/1.1"), std::string::npos) << refused;
  EXPECT_TRUE(backend_->asked().empty());
}

TEST_F(ApiTunnelTest, ATokenHoldsAtMostItsLimitOfTunnelsAtOnce) {
  std::unique_ptr<Server> server = Start({.tunnels_per_token = 2});
  Result<std::unique_ptr<Tunnel>> first = Tunnel::Open(To(*server, "ci-1", 22));
  Result<std::unique_ptr<Tunnel>> second = Tunnel::Open(To(*server, "ci-1", 22));
  ASSERT_TRUE(first.ok() && second.ok());
  Result<std::unique_ptr<Tunnel>> third = Tunnel::Open(To(*server, "ci-1", 22));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(third.status().message().find("api.tunnels.perToken"), std::string::npos)
      << third.status().message();
  // Closing one makes room (the server sees the end within its poll).
  first->reset();
  ASSERT_TRUE(testing::WaitUntil([&] { return Tunnel::Open(To(*server, "ci-1", 22)).ok(); }));
}

TEST_F(ApiTunnelTest, AnIdleTunnelIsClosedAndRecordedSo) {
  std::unique_ptr<Server> server = Start({.tunnel_idle_timeout = std::chrono::milliseconds{300}});
  Result<std::unique_ptr<Tunnel>> tunnel = Tunnel::Open(To(*server, "ci-1", 22));
  ASSERT_TRUE(tunnel.ok()) << tunnel.status().ToString();
  // Nothing is sent either way: the server ends the tunnel, and the client's side sees the end.
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  std::atomic<bool> stopping{false};
  std::thread relay([&] { (void)(*tunnel)->Relay(pair[1], pair[1], stopping); });
  char c = 0;
  EXPECT_EQ(read(pair[0], &c, 1), 0);  // the end, once the server closed the tunnel
  shutdown(pair[0], SHUT_WR);
  relay.join();
  close(pair[0]);
  close(pair[1]);
  ASSERT_TRUE(testing::WaitUntil([&] { return TunnelEvents().size() == 2; }));
  EXPECT_NE(TunnelEvents()[1].message.find("closed (idle for 300ms)"), std::string::npos)
      << TunnelEvents()[1].message;
}

TEST_F(ApiTunnelTest, FiftyTunnelsAtOnceEachCarryTenMebibytesIntact) {
  std::unique_ptr<Server> server = Start({.tunnels_per_token = 64});
  constexpr int kTunnels = 50;
  std::vector<std::future<bool>> done;
  for (int i = 0; i < kTunnels; ++i) {
    done.push_back(std::async(std::launch::async, [&, i] {
      Result<std::unique_ptr<Tunnel>> tunnel = Tunnel::Open(To(*server, "ci-1", 22));
      if (!tunnel.ok()) {
        ADD_FAILURE() << tunnel.status().ToString();
        return false;
      }
      const std::string data = RandomBytes(size_t{10} << 20, static_cast<uint32_t>(i));
      return RoundTrip(**tunnel, data) == data;
    }));
  }
  int intact = 0;
  for (auto& d : done) {
    intact += d.get() ? 1 : 0;
  }
  EXPECT_EQ(intact, kTunnels);
}

}  // namespace
}  // namespace flotilla
