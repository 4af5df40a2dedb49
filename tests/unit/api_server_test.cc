// api::Server with a fake loop (Backend) and a real store: what the server decides by itself,
// without a `flotilla run` around it. (api_test covers the endpoints end to end.)

#include "reconciler/api/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "reconciler/api/webhook.h"
#include "tests/support/process.h"
#include "tests/support/raw_connection.h"
#include "tests/support/wait_until.h"

namespace flotilla::api {
namespace {

using nlohmann::json;

// A loop whose pass is never recorded until Release(): the state of a long pass under way.
class StuckBackend final : public Backend {
 public:
  std::shared_ptr<const Snapshot> Latest() const override { return nullptr; }
  std::shared_future<int64_t> Reconcile(std::string reason,
                                        std::optional<PassApproval> /*approval*/,
                                        std::string /*actor*/) override {
    std::lock_guard lock(mu_);
    reasons_.push_back(std::move(reason));
    return future_;
  }
  void Release(int64_t run) { promise_.set_value(run); }
  size_t calls() const {
    std::lock_guard lock(mu_);
    return reasons_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> reasons_;
  std::promise<int64_t> promise_;
  std::shared_future<int64_t> future_ = promise_.get_future().share();
};

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<store::Store>> opened =
        store::Store::Open((scratch_.path() / "flotilla.db").string());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(*opened);
  }

  std::unique_ptr<Server> Start(ServerOptions options) {
    auto logger =
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    Result<std::unique_ptr<Server>> server =
        Server::Start(std::move(options), backend_, *store_, telemetry_, logger);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(*server) : nullptr;
  }

  testing::ScratchDir scratch_;
  std::unique_ptr<store::Store> store_;
  StuckBackend backend_;
  Telemetry telemetry_;
};

TEST_F(ApiServerTest, ReconcileRequestsBehindALongPassNeverTakeEveryWorker) {
  // Two workers: one reconcile request may wait for the pass; the next answers at once.
  std::unique_ptr<Server> server = Start(ServerOptions{.listen = "127.0.0.1:0",
                                                       .token = "t0ken",
                                                       .threads = 2,
                                                       .reconcile_wait = std::chrono::hours{1}});
  ASSERT_NE(server, nullptr);
  const httplib::Headers auth{{"Authorization", "Bearer t0ken"}};
  std::thread waiting([&] {
    httplib::Client client("127.0.0.1", server->port());
    client.set_read_timeout(std::chrono::seconds{120});
    httplib::Result r = client.Post("/api/v1/reconcile", auth, "", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 202);
    EXPECT_EQ(json::parse(r->body)["run_id"], 7) << r->body;
  });
  ASSERT_TRUE(testing::WaitUntil([&] { return backend_.calls() == 1; }));

  httplib::Client client("127.0.0.1", server->port());
  client.set_read_timeout(std::chrono::seconds{120});
  httplib::Result queued = client.Post("/api/v1/reconcile", auth, "", "application/json");
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->status, 202);
  const json answer = json::parse(queued->body);
  EXPECT_TRUE(answer["run_id"].is_null()) << queued->body;
  EXPECT_EQ(answer["status"], "queued");
  // The other worker is still free for health checks.
  httplib::Result health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  backend_.Release(7);
  waiting.join();
  EXPECT_EQ(backend_.calls(), 2u);
}

// The nice value of one of this process's threads (its stat's field 19); nullopt when the
// thread is gone.
std::optional<int> ThreadNice(const std::filesystem::path& task) {
  const std::vector<std::string> fields = testing::ProcStatFields(task / "stat");
  return fields.size() > 16 ? std::optional<int>(std::stoi(fields[16])) : std::nullopt;
}

// The thread that renders views ahead (SnapshotPublished) competes with the loop's pass for the
// cores: it runs niced, and only it.
TEST_F(ApiServerTest, TheViewWarmerRunsNiced) {
  auto server = Start(ServerOptions{.listen = "127.0.0.1:0"});
  ASSERT_NE(server, nullptr);
  std::optional<int> warmer;
  ASSERT_TRUE(testing::WaitUntil([&] {
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      if (std::getline(comm, name) && name == "flotilla-warm") {
        warmer = ThreadNice(task.path());
        return warmer.has_value();
      }
    }
    return false;
  }));
  const std::optional<int> self = ThreadNice("/proc/thread-self");
  ASSERT_TRUE(self.has_value());
  EXPECT_EQ(*warmer, std::max(*self, 10));
}

TEST_F(ApiServerTest, StartRefusesBadOptions) {
  auto logger =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  Result<std::unique_ptr<Server>> no_token =
      Server::Start(ServerOptions{.listen = "0.0.0.0:0"}, backend_, *store_, telemetry_, logger);
  EXPECT_EQ(no_token.status().code(), Status::Code::kFailedPrecondition);
  Result<std::unique_ptr<Server>> bad_listen =
      Server::Start(ServerOptions{.listen = "127.0.0.1"}, backend_, *store_, telemetry_, logger);
  EXPECT_EQ(bad_listen.status().code(), Status::Code::kInvalidArgument);
  Result<std::unique_ptr<Server>> half_tls =
      Server::Start(ServerOptions{.listen = "127.0.0.1:0", .tls_cert_file = "/nonexistent.pem"},
                    backend_, *store_, telemetry_, logger);
  EXPECT_EQ(half_tls.status().code(), Status::Code::kInvalidArgument);
  // Taken port.
  std::unique_ptr<Server> first = Start(ServerOptions{.listen = "127.0.0.1:0"});
  ASSERT_NE(first, nullptr);
  Result<std::unique_ptr<Server>> taken =
      Server::Start(ServerOptions{.listen = "127.0.0.1:" + std::to_string(first->port())}, backend_,
                    *store_, telemetry_, logger);
  EXPECT_EQ(taken.status().code(), Status::Code::kUnavailable);
}

TEST(ParseListenTest, HostsPortsAndLoopback) {
  Result<std::pair<std::string, int>> v4 = ParseListen("127.0.0.1:8080");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->first, "127.0.0.1");
  EXPECT_EQ(v4->second, 8080);
  Result<std::pair<std::string, int>> v6 = ParseListen("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
  EXPECT_EQ(v6->second, 0);
  EXPECT_FALSE(ParseListen("8080").ok());
  EXPECT_FALSE(ParseListen(":8080").ok());
  EXPECT_FALSE(ParseListen("host:70000").ok());
  EXPECT_FALSE(ParseListen("host:80x").ok());
  EXPECT_TRUE(IsLoopback("127.0.0.1"));
  EXPECT_TRUE(IsLoopback("127.1.2.3"));
  EXPECT_TRUE(IsLoopback("::1"));
  EXPECT_TRUE(IsLoopback("localhost"));
  EXPECT_FALSE(IsLoopback("0.0.0.0"));
  EXPECT_FALSE(IsLoopback("10.0.0.1"));
}

}  // namespace
}  // namespace flotilla::api

namespace flotilla::api {
namespace {

// Issue 18, item 2: idle and half-sent connections hold no worker, so /healthz and a webhook
// are answered at once while they stay open; each client address gets a bounded number of
// connections, and a request must be complete within the header timeout.
TEST_F(ApiServerTest, IdleAndHalfSentConnectionsStarveNeitherHealthChecksNorWebhooks) {
  std::unique_ptr<Server> server = Start(ServerOptions{.listen = "127.0.0.1:0",
                                                       .token = "t0ken",
                                                       .webhook_secret = "hook-secret",
                                                       .branch = "main",
                                                       .header_timeout = std::chrono::seconds{20}});
  ASSERT_NE(server, nullptr);
  // 200 silent connections and 200 that stop half-way through a request, from 8 addresses.
  std::vector<std::unique_ptr<testing::RawConnection>> flood;
  for (int i = 0; i < 400; ++i) {
    const std::string source = "127.0.0." + std::to_string(2 + i % 8);
    flood.push_back(std::make_unique<testing::RawConnection>(
        source, server->port(),
        i < 200 ? "" : "POST /api/v1/reconcile HTTP/1.1\r\nHost: flotilla\r\nContent-Le"));
  }
  httplib::Client client("127.0.0.1", server->port());
  std::vector<int64_t> took;
  for (int i = 0; i < 5; ++i) {
    const auto started = std::chrono::steady_clock::now();
    httplib::Result health = client.Get("/healthz");
    took.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - started)
                       .count());
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
  }
  std::sort(took.begin(), took.end());
  EXPECT_LT(took[2], 100) << "median /healthz time with 400 idle connections open, ms";
  EXPECT_LT(took[4], 1000);
  // A webhook (GitHub's form) is accepted and triggers a pass.
  const std::string body = R"({"ref":"refs/heads/main","after":")" + std::string(40, 'a') + "\"}";
  httplib::Result hook =
      client.Post("/api/v1/webhooks/git",
                  {{"X-GitHub-Event", "push"},
                   {"X-Hub-Signature-256", "sha256=" + HmacSha256Hex("hook-secret", body)}},
                  body, "application/json");
  ASSERT_TRUE(hook);
  EXPECT_EQ(hook->status, 202) << hook->body;
  EXPECT_EQ(backend_.calls(), 1u);
  // Each address may hold 64 connections: the 65th is closed at once.
  std::vector<std::unique_ptr<testing::RawConnection>> one_client;
  for (int i = 0; i < 64; ++i) {
    one_client.push_back(
        std::make_unique<testing::RawConnection>("127.0.0.20", server->port(), ""));
  }
  testing::RawConnection extra("127.0.0.20", server->port(), "");
  EXPECT_TRUE(extra.ClosedWithin(std::chrono::seconds{5}));
  EXPECT_FALSE(one_client.front()->ClosedWithin(std::chrono::milliseconds{100}));
}

TEST_F(ApiServerTest, AConnectionThatNeverCompletesItsRequestIsClosed) {
  std::unique_ptr<Server> server = Start(ServerOptions{
      .listen = "127.0.0.1:0", .token = "t0ken", .header_timeout = std::chrono::seconds{1}});
  ASSERT_NE(server, nullptr);
  testing::RawConnection silent("127.0.0.1", server->port(), "");
  testing::RawConnection half("127.0.0.1", server->port(), "GET /api/v1/hosts HTTP/1.1\r\nHo");
  EXPECT_TRUE(silent.ClosedWithin(std::chrono::seconds{10}));
  EXPECT_TRUE(half.ClosedWithin(std::chrono::seconds{10}));
  // Bodies no worker should wait for are refused by the event thread, with an answer.
  testing::RawConnection chunked(
      "127.0.0.1", server->port(),
      "POST /api/v1/reconcile HTTP/1.1\r\nHost: f\r\nAuthorization: Bearer "
      "t0ken\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
  EXPECT_TRUE(chunked.ReadAll(std::chrono::seconds{10}).starts_with("HTTP/1.1 411 "));
  testing::RawConnection huge("127.0.0.1", server->port(),
                              "POST /api/v1/reconcile HTTP/1.1\r\nHost: f\r\nContent-Length: "
                              "1000000000000\r\n\r\n{");
  const std::string refused = huge.ReadAll(std::chrono::seconds{10});
  EXPECT_TRUE(refused.starts_with("HTTP/1.1 413 ")) << refused;
  EXPECT_TRUE(refused.find("the request body is too large") != std::string::npos) << refused;
}

}  // namespace
}  // namespace flotilla::api
