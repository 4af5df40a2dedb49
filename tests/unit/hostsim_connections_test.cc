// flotilla-hostsim's connections: keep-alive like the real service (idle connections stay
// until the keep-alive timeout and hold no worker, any number of them), pipelined requests,
// "Connection: close".

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/raw_connection.h"
#include "tests/unit/hostsim_fixture.h"

namespace flotilla::hostsim {
namespace {

using flotilla::testing::RawConnection;
using std::chrono::milliseconds;
using testing::Base64;
using testing::HostsimTest;
using testing::TestOptions;

TEST_F(HostsimTest, KeepAliveConnectionsBeyondTheWorkerCountAreAllServed) {
  SimOptions options = TestOptions();
  options.threads = 2;  // far fewer workers than open connections
  Start(options);
  constexpr int kClients = 24;
  std::vector<std::unique_ptr<httplib::Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", sim_->port());
    client->set_keep_alive(true);
    client->set_read_timeout(std::chrono::seconds(10));
    clients.push_back(std::move(client));
  }
  const httplib::Headers key = {{"X-Api-Key", Base64("ci-key:ci-secret")}};
  // Every client keeps its connection open; none of them may wait for another's to close.
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kClients; ++i) {
      httplib::Result res = clients[static_cast<size_t>(i)]->Get("/api/v1/machines", key);
      ASSERT_TRUE(res) << "client " << i << ", round " << round << ": " << res.error();
      EXPECT_EQ(res->status, 200);
      EXPECT_TRUE(clients[static_cast<size_t>(i)]->is_socket_open()) << "client " << i;
    }
  }
  // And all at once, from as many threads.
  std::vector<int> statuses(kClients, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < 5; ++n) {
        httplib::Result res = clients[static_cast<size_t>(i)]->Get("/api/v1/config/hardware", key);
        statuses[static_cast<size_t>(i)] = res ? res->status : 0;
        if (!res || res->status != 200) {
          return;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(statuses[static_cast<size_t>(i)], 200) << "client " << i;
  }
}

TEST_F(HostsimTest, AnIdleKeepAliveConnectionStaysForRequestsThenClosesAfterTheTimeout) {
  SimOptions options = TestOptions();
  options.keep_alive = std::chrono::seconds(1);
  Start(options);
  const std::string probe = "GET /api/health/probe HTTP/1.1\r\nHost: sim\r\n\r\n";
  RawConnection conn("127.0.0.1", sim_->port(), probe);
  std::string got = conn.ReadUntil("\"OK\"", milliseconds(10000));
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_NE(got.find("Keep-Alive: timeout=1"), std::string::npos) << got;
  ASSERT_TRUE(conn.Send(probe));  // the same connection serves the next request
  got = conn.ReadUntil("\"OK\"", milliseconds(10000));
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_TRUE(conn.ClosedWithin(milliseconds(15000)));  // idle past the 1 s keep-alive
}

TEST_F(HostsimTest, PipelinedRequestsAreAnsweredInOrderAndConnectionCloseCloses) {
  Start();
  RawConnection conn("127.0.0.1", sim_->port(),
                     "GET /api/health/probe HTTP/1.1\r\nHost: sim\r\n\r\n"
                     "GET /api/v1/nothing-here HTTP/1.1\r\nHost: sim\r\n\r\n"
                     "GET /api/health/probe HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n");
  const std::string got = conn.ReadAll(milliseconds(10000));  // until the server closes
  const size_t first = got.find("HTTP/1.1 200");
  const size_t second = got.find("HTTP/1.1 404");
  const size_t third = got.find("HTTP/1.1 200", first + 1);
  ASSERT_NE(first, std::string::npos) << got;
  ASSERT_NE(second, std::string::npos) << got;
  ASSERT_NE(third, std::string::npos) << got;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
  EXPECT_NE(got.find("Connection: close", third), std::string::npos) << got;
  EXPECT_TRUE(conn.ClosedWithin(milliseconds(10000)));
}

}  // namespace
}  // namespace flotilla::hostsim
