// The server side of the web dashboard (issue 21), with a fake loop and a real store: its files
// without a token and its data never without one, the security headers on every answer, the
// events and changes endpoints, the live stream (its changes, its token, its own workers), and
// what /api/v1/status says of the commit in force and of a rejected revision.

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "reconciler/api/server.h"
#include "tests/support/process.h"
#include "tests/support/raw_connection.h"
#include "tests/support/snapshot_backend.h"

namespace flotilla::api {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kToken = "dashboard-test-token";

using testing::SnapshotBackend;

class DashboardServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<store::Store>> opened =
        store::Store::Open((scratch_.path() / "flotilla.db").string());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(*opened);
  }

  std::unique_ptr<Server> Start(ServerOptions options = {}) {
    options.listen = "127.0.0.1:0";
    options.token = kToken;
    auto logger =
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    Result<std::unique_ptr<Server>> server =
        Server::Start(std::move(options), backend_, *store_, telemetry_, logger);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(*server) : nullptr;
  }

  static httplib::Result Get(const Server& server, const std::string& path, bool token = true) {
    httplib::Client client("127.0.0.1", server.port());
    client.set_read_timeout(seconds{20});
    httplib::Headers headers;
    if (token) {
      headers.emplace("Authorization", std::string("Bearer ") + kToken);
    }
    return client.Get(path, headers);
  }

  void AddEvent(const std::string& level, const std::string& subject, const std::string& message) {
    ASSERT_TRUE(store_
                    ->AddEvent(store::EventRecord{.at = std::chrono::system_clock::now(),
                                                  .level = level,
                                                  .kind = "test",
                                                  .subject = subject,
                                                  .message = message})
                    .ok());
  }

  static std::string StreamRequest(const std::string& token) {
    return "GET /api/v1/events/stream HTTP/1.1\r\nHost: x\r\n" +
           (token.empty() ? std::string() : "Authorization: Bearer " + token + "\r\n") + "\r\n";
  }

  testing::ScratchDir scratch_;
  std::unique_ptr<store::Store> store_;
  SnapshotBackend backend_;
  Telemetry telemetry_;
};

TEST_F(DashboardServerTest, TheFilesNeedNoTokenAndTheDataAlwaysDoes) {
  auto server = Start();
  ASSERT_NE(server, nullptr);
  for (const char* page : {"/", "/hosts", "/vms", "/plan", "/runs", "/runs/42", "/events"}) {
    httplib::Result res = Get(*server, page, false);
    ASSERT_TRUE(res) << page;
    EXPECT_EQ(res->status, 200) << page;
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8") << page;
    EXPECT_NE(res->body.find("<script type=\"module\" src=\"/assets/"), std::string::npos);
  }
  httplib::Result script = Get(*server, "/assets/app.js", false);
  ASSERT_TRUE(script);
  EXPECT_EQ(script->status, 200);
  EXPECT_EQ(script->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(Get(*server, "/assets/no-such.js", false)->status, 404);
  EXPECT_EQ(Get(*server, "/assets/.hidden", false)->status, 404);
  EXPECT_EQ(Get(*server, "/runs/x", false)->status, 401);  // not a page: no free pass
  for (const char* data :
       {"/api/v1/events", "/api/v1/changes", "/api/v1/status", "/api/v1/events/stream"}) {
    httplib::Result res = Get(*server, data, false);
    ASSERT_TRUE(res) << data;
    EXPECT_EQ(res->status, 401) << data;
    EXPECT_EQ(res->body.find("generation"), std::string::npos) << data;
  }
}

TEST_F(DashboardServerTest, EveryAnswerCarriesTheSecurityHeaders) {
  auto server = Start();
  ASSERT_NE(server, nullptr);
  for (const auto& [path, token] : {std::pair{"/", false},
                                    {"/assets/app.css", false},
                                    {"/api/v1/events", true},
                                    {"/api/v1/events", false},
                                    {"/api/v1/nothing", true}}) {
    httplib::Result res = Get(*server, path, token);
    ASSERT_TRUE(res) << path;
    const std::string csp = res->get_header_value("Content-Security-Policy");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << path;
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << path;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << path;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << path;
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(res->get_header_value("Referrer-Policy"), "no-referrer") << path;
    EXPECT_EQ(res->get_header_value("X-Frame-Options"), "DENY") << path;
  }
  EXPECT_EQ(Get(*server, "/api/v1/events")->get_header_value("Cache-Control"), "no-store");
  EXPECT_EQ(Get(*server, "/", false)->get_header_value("Cache-Control"), "no-cache");
}

// A browser offers "gzip, deflate, br": the answer is gzip (Brotli at cpp-httplib's quality
// takes seconds for the VM list of a large fleet).
TEST_F(DashboardServerTest, AnswersAreGzipNotBrotli) {
  auto server = Start();
  ASSERT_NE(server, nullptr);
  httplib::Client client("127.0.0.1", server->port());
  client.set_decompress(false);
  for (const auto& [offer, expected] :
       {std::pair{"gzip, deflate, br", "gzip"}, {"br", ""}, {"gzip", "gzip"}}) {
    httplib::Result res = client.Get(
        "/assets/app.js",
        {{"Accept-Encoding", offer}, {"Authorization", std::string("Bearer ") + kToken}});
    ASSERT_TRUE(res) << offer;
    EXPECT_EQ(res->get_header_value("Content-Encoding"), expected) << offer;
  }
}

TEST_F(DashboardServerTest, ADashboardFolderIsServedInsteadOfTheBinarysFiles) {
  const auto web = scratch_.path() / "web";
  std::filesystem::create_directories(web / "assets");
  std::ofstream(web / "index.html") << "<p>from the folder</p>";
  std::ofstream(web / "assets" / "extra.js") << "export const x = 1;";
  auto server = Start(ServerOptions{.dashboard_dir = web.string()});
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Get(*server, "/vms", false)->body, "<p>from the folder</p>");
  EXPECT_EQ(Get(*server, "/assets/extra.js", false)->body, "export const x = 1;");
  EXPECT_EQ(Get(*server, "/assets/app.js", false)->status, 404);
}

TEST_F(DashboardServerTest, EventsAreNewestFirstAndFiltered) {
  AddEvent("info", "mac-a", "first");
  AddEvent("warn", "mac-a", "second");
  AddEvent("warn", "linux-b", "third");
  AddEvent("error", "mac-ab", "fourth");
  auto server = Start();
  ASSERT_NE(server, nullptr);
  auto messages = [&](const std::string& query) {
    httplib::Result res = Get(*server, "/api/v1/events" + query);
    EXPECT_TRUE(res && res->status == 200) << query;
    std::vector<std::string> out;
    const json body = json::parse(res->body);
    for (const json& e : body["events"]) {
      out.push_back(e["message"].get<std::string>());
      EXPECT_TRUE(e.contains("id") && e.contains("at") && e.contains("kind")) << e.dump();
    }
    return out;
  };
  EXPECT_EQ(messages(""), (std::vector<std::string>{"fourth", "third", "second", "first"}));
  EXPECT_EQ(messages("?limit=2"), (std::vector<std::string>{"fourth", "third"}));
  EXPECT_EQ(messages("?level=warn"), (std::vector<std::string>{"third", "second"}));
  EXPECT_EQ(messages("?subject=mac-a"), (std::vector<std::string>{"fourth", "second", "first"}));
  EXPECT_EQ(messages("?level=warn&subject=mac&limit=1"), (std::vector<std::string>{"second"}));
  EXPECT_EQ(Get(*server, "/api/v1/events?limit=x")->status, 400);
}

TEST_F(DashboardServerTest, TheGenerationMovesWithTheStoreAndTheSnapshot) {
  auto server = Start();
  ASSERT_NE(server, nullptr);
  auto generation = [&] {
    return json::parse(Get(*server, "/api/v1/changes")->body)["generation"].get<std::string>();
  };
  const std::string first = generation();
  EXPECT_EQ(generation(), first);
  AddEvent("info", "", "something happened");
  const std::string second = generation();
  EXPECT_NE(second, first);
  backend_.Publish(Snapshot{.observed_at = std::chrono::system_clock::now()});
  EXPECT_NE(generation(), second);
}

TEST_F(DashboardServerTest, TheLiveStreamSaysEachChangeOnWorkersOfItsOwn) {
  auto server = Start(ServerOptions{.live_streams = 2, .live_keepalive = milliseconds{300}});
  ASSERT_NE(server, nullptr);
  testing::RawConnection refused("127.0.0.1", server->port(), StreamRequest("wrong"));
  EXPECT_NE(refused.ReadAll(seconds{20}).find("401 Unauthorized"), std::string::npos);
  testing::RawConnection folded("127.0.0.1", server->port(),
                                "GET /api/v1/events/stream HTTP/1.1\r\nHost: x\r\n"
                                "Authorization: Bearer " +
                                    std::string(kToken) + "\r\n continued\r\n\r\n");
  EXPECT_TRUE(folded.ReadAll(seconds{20}).starts_with("HTTP/1.1 400 Bad Request"));

  testing::RawConnection live("127.0.0.1", server->port(), StreamRequest(kToken));
  std::string text = live.ReadUntil("event: change\ndata: {\"generation\":", seconds{20});
  ASSERT_NE(text.find("HTTP/1.1 200 OK"), std::string::npos) << text;
  EXPECT_NE(text.find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_NE(text.find("Content-Security-Policy: default-src 'self'"), std::string::npos);
  EXPECT_NE(text.find("retry: 2000"), std::string::npos);
  text = live.ReadUntil(": keepalive", seconds{20}, text);  // quiet: the connection is kept
  EXPECT_NE(text.find(": keepalive"), std::string::npos);
  const size_t changes = text.find("event: change", text.find("event: change") + 1);
  EXPECT_EQ(changes, std::string::npos) << "nothing changed yet: " << text;
  AddEvent("warn", "mac-a", "a change");
  const size_t before = text.size();
  text = live.ReadUntil("event: change", seconds{20}, text);
  EXPECT_NE(text.find("event: change", before), std::string::npos) << text;

  // A second stream takes the last stream worker; a third is refused at once, and a data
  // request is still answered meanwhile.
  std::optional<testing::RawConnection> second;
  second.emplace("127.0.0.1", server->port(), StreamRequest(kToken));
  EXPECT_NE(second->ReadUntil("event: change", seconds{20}).find("event: change"),
            std::string::npos);
  testing::RawConnection third("127.0.0.1", server->port(), StreamRequest(kToken));
  const std::string answer = third.ReadAll(seconds{20});
  EXPECT_NE(answer.find("503"), std::string::npos) << answer;
  EXPECT_NE(answer.find("/api/v1/changes"), std::string::npos) << answer;
  EXPECT_EQ(Get(*server, "/api/v1/events")->status, 200);

  // Stopping ends the open streams.
  const auto stop_started = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_TRUE(live.ClosedWithin(seconds{20}));
  EXPECT_LT(std::chrono::steady_clock::now() - stop_started, seconds{20});
}

// A page that goes away frees its stream worker at once, not at the next write (a keepalive a
// minute away here): another page's stream is served.
TEST_F(DashboardServerTest, APageThatLeavesFreesItsStreamWorker) {
  auto server = Start(ServerOptions{.live_streams = 1, .live_keepalive = seconds{60}});
  ASSERT_NE(server, nullptr);
  {
    testing::RawConnection first("127.0.0.1", server->port(), StreamRequest(kToken));
    ASSERT_NE(first.ReadUntil("event: change", seconds{20}).find("HTTP/1.1 200 OK"),
              std::string::npos);
  }
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {  // the check runs every 250 ms
    testing::RawConnection next("127.0.0.1", server->port(), StreamRequest(kToken));
    served =
        next.ReadUntil("event: change", seconds{20}).find("HTTP/1.1 200 OK") != std::string::npos;
    if (!served) {
      std::this_thread::sleep_for(milliseconds{100});
    }
  }
  EXPECT_TRUE(served);
}

TEST_F(DashboardServerTest, StatusSaysTheCommitInForceAndEveryDiagnosticOfARejectedOne) {
  controller::RejectedRevision rejected{
      .sha = "b2",
      .commit =
          controller::CommitSummary{.sha = "b2", .subject = "bad", .author = "Bo", .time = 60},
      .reason = "revision b2 is invalid: 2 error(s)",
      .diagnostics = {{.file = "vmsets/a.yaml",
                       .line = 3,
                       .column = 5,
                       .severity = "error",
                       .message = "replicas must be a number",
                       .text = "vmsets/a.yaml:3:5: error: replicas must be a number"},
                      {.file = "pools/b.yaml",
                       .severity = "error",
                       .message = "no such pool",
                       .text = "pools/b.yaml: error: no such pool"}}};
  backend_.Publish(Snapshot{
      .sha = "a1",
      .fail_static = true,
      .problem = rejected.reason,
      .commit =
          controller::CommitSummary{.sha = "a1", .subject = "good", .author = "Al", .time = 0},
      .rejected = rejected});
  auto server = Start();
  ASSERT_NE(server, nullptr);
  const json status = json::parse(Get(*server, "/api/v1/status")->body);
  EXPECT_EQ(status["revision"], json({{"sha", "a1"},
                                      {"subject", "good"},
                                      {"author", "Al"},
                                      {"time", "1970-01-01T00:00:00Z"}}));
  EXPECT_EQ(status["fail_static"], true);
  EXPECT_EQ(status["rejected"]["sha"], "b2");
  EXPECT_EQ(status["rejected"]["subject"], "bad");
  EXPECT_EQ(status["rejected"]["time"], "1970-01-01T00:01:00Z");
  ASSERT_EQ(status["rejected"]["diagnostics"].size(), 2u);
  EXPECT_EQ(status["rejected"]["diagnostics"][0]["text"],
            "vmsets/a.yaml:3:5: error: replicas must be a number");
  EXPECT_EQ(status["rejected"]["diagnostics"][0]["line"], 3);
  EXPECT_EQ(status["rejected"]["diagnostics"][1]["line"], 0);
}

}  // namespace
}  // namespace flotilla::api
