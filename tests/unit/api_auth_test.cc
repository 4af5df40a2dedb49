// API tokens with roles (auth.h, routes.h Admit): the role check, the failed-authentication
// limiter with a clock the test moves, and api::Server over real HTTP with named tokens: 403 for
// a known token without the role, 401 for an unknown one, 429 after a burst of wrong tokens, and
// approvals recorded with the name of the token that gave them.

#include "reconciler/api/auth.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "reconciler/api/server.h"
#include "tests/support/process.h"
#include "tests/support/raw_connection.h"

namespace flotilla::api {
namespace {

using nlohmann::json;
using std::chrono::seconds;

Roles Of(std::initializer_list<Role> roles) {
  Roles set;
  for (Role role : roles) {
    set.Add(role);
  }
  return set;
}

TEST(RolesTest, AdminHoldsEveryRoleAndOthersOnlyTheirOwn) {
  const Roles admin = Of({Role::kAdmin});
  for (Role role : {Role::kRead, Role::kReconcile, Role::kApprove, Role::kAdmin}) {
    EXPECT_TRUE(admin.Has(role)) << ToString(role);
  }
  const Roles reader = Of({Role::kRead});
  EXPECT_TRUE(reader.Has(Role::kRead));
  EXPECT_FALSE(reader.Has(Role::kReconcile));
  EXPECT_FALSE(reader.Has(Role::kApprove));
  EXPECT_FALSE(reader.Has(Role::kAdmin));
  const Roles approver = Of({Role::kApprove});
  EXPECT_FALSE(approver.Has(Role::kRead)) << "approve implies nothing else";
  EXPECT_FALSE(approver.Has(Role::kReconcile));
  EXPECT_EQ(Of({Role::kApprove, Role::kRead}).ToString(), "read, approve");
  EXPECT_EQ(Roles::All().ToString(), "admin");
  EXPECT_TRUE(Roles().empty());
  EXPECT_EQ(ParseRole("approve"), Role::kApprove);
  EXPECT_FALSE(ParseRole("write").has_value());
}

TEST(TokenSetTest, IdentifiesEveryConfiguredTokenAndNothingElse) {
  const TokenSet tokens(
      {{.name = "reader", .secret = "r-secret", .roles = Of({Role::kRead})},
       {.name = "ci", .secret = "c-secret-longer", .roles = Of({Role::kReconcile})}});
  std::optional<Caller> ci = tokens.Identify("c-secret-longer");
  ASSERT_TRUE(ci.has_value());
  EXPECT_EQ(ci->name, "ci");
  EXPECT_EQ(ci->Describe(), "token ci");
  EXPECT_TRUE(ci->roles.Has(Role::kReconcile));
  EXPECT_EQ(tokens.Identify("r-secret")->name, "reader");
  EXPECT_FALSE(tokens.Identify("r-secre").has_value());
  EXPECT_FALSE(tokens.Identify("r-secretx").has_value());
  EXPECT_FALSE(tokens.Identify("").has_value());
  EXPECT_FALSE(tokens.open());
  EXPECT_TRUE(TokenSet().open());
  EXPECT_FALSE(
      TokenSet({{.name = "empty", .secret = "", .roles = Roles::All()}}).Identify("").has_value())
      << "an empty token never matches";
  EXPECT_EQ(Caller{}.Describe(), "api");
}

TEST(FailureLimiterTest, ABurstThenRefillsAtTheConfiguredRate) {
  ManualClock clock;
  FailureLimiter limiter({.burst = 3, .per_minute = 6}, clock);
  const std::string client = "10.0.0.7";
  EXPECT_FALSE(limiter.Refused(client).has_value());
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(limiter.Refused(client).has_value()) << i;
    limiter.Failed(client);
  }
  ASSERT_TRUE(limiter.Refused(client).has_value());
  EXPECT_EQ(*limiter.Refused(client), seconds{10}) << "one more failure a 10 s";
  EXPECT_FALSE(limiter.Refused("10.0.0.8").has_value()) << "other addresses are not held";
  clock.Advance(seconds{9});
  EXPECT_EQ(*limiter.Refused(client), seconds{1});
  clock.Advance(seconds{1});
  EXPECT_FALSE(limiter.Refused(client).has_value());
  limiter.Failed(client);
  EXPECT_TRUE(limiter.Refused(client).has_value()) << "the refill was one failure, now spent";
  // Fully refilled, the address is forgotten.
  clock.Advance(seconds{60});
  EXPECT_FALSE(limiter.Refused(client).has_value());
  EXPECT_EQ(limiter.tracked(), 0u);
}

TEST(FailureLimiterTest, MemoryIsBoundedByForgettingTheOldestAddress) {
  ManualClock clock;
  FailureLimiter limiter({.burst = 1, .per_minute = 1, .max_clients = 2}, clock);
  limiter.Failed("10.0.0.1");
  clock.Advance(seconds{1});
  limiter.Failed("10.0.0.2");
  clock.Advance(seconds{1});
  limiter.Failed("10.0.0.3");
  EXPECT_EQ(limiter.tracked(), 2u);
  EXPECT_FALSE(limiter.Refused("10.0.0.1").has_value()) << "the oldest was forgotten";
  EXPECT_TRUE(limiter.Refused("10.0.0.2").has_value());
  EXPECT_TRUE(limiter.Refused("10.0.0.3").has_value());
}

TEST(FailureLimiterTest, AnIpv6ClientIsCountedByItsSlash64) {
  ManualClock clock;
  FailureLimiter limiter({.burst = 1, .per_minute = 1}, clock);
  limiter.Failed("2001:db8:1:2::1");
  EXPECT_TRUE(limiter.Refused("2001:db8:1:2::ffff").has_value());
  EXPECT_FALSE(limiter.Refused("2001:db8:1:3::1").has_value());
  // IPv4 clients of a dual-stack socket are counted each on its own, not as one /64.
  limiter.Failed("::ffff:10.0.0.1");
  EXPECT_TRUE(limiter.Refused("::ffff:10.0.0.1").has_value());
  EXPECT_FALSE(limiter.Refused("::ffff:10.0.0.2").has_value());
}

// A loop that records each asked-for pass as a run, as the controller does: the trigger, the
// approval (PassApproval::Describe) and the token's name.
class RecordingBackend final : public Backend {
 public:
  explicit RecordingBackend(store::Store& store) : store_(store) {}
  std::shared_ptr<const Snapshot> Latest() const override { return nullptr; }
  std::shared_future<int64_t> Reconcile(std::string reason, std::optional<PassApproval> approval,
                                        std::string actor) override {
    std::lock_guard lock(mu_);
    Result<int64_t> run = store_.BeginRun(reason, "abc", std::chrono::system_clock::now());
    EXPECT_TRUE(run.ok());
    if (approval) {
      EXPECT_TRUE(store_.SetRunApproval(*run, approval->Describe()).ok());
    }
    if (!actor.empty()) {
      EXPECT_TRUE(store_.SetRunActor(*run, actor).ok());
    }
    ++calls_;
    std::promise<int64_t> told;
    told.set_value(*run);
    return told.get_future().share();
  }
  int calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  store::Store& store_;
  mutable std::mutex mu_;
  int calls_ = 0;
};

constexpr const char* kDefault = "default-secret-1";
constexpr const char* kReader = "reader-secret-2";
constexpr const char* kCi = "ci-secret-3";
constexpr const char* kApprover = "approver-secret-4";

class ApiTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<store::Store>> opened =
        store::Store::Open((scratch_.path() / "flotilla.db").string());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(*opened);
    backend_ = std::make_unique<RecordingBackend>(*store_);
  }

  std::unique_ptr<Server> Start(FailureLimit limit = {}) {
    auto logger =
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    Result<std::unique_ptr<Server>> server = Server::Start(
        ServerOptions{
            .listen = "127.0.0.1:0",
            .token = kDefault,
            .tokens = {{.name = "reader", .secret = kReader, .roles = Of({Role::kRead})},
                       {.name = "ci", .secret = kCi, .roles = Of({Role::kReconcile})},
                       {.name = "approver", .secret = kApprover, .roles = Of({Role::kApprove})}},
            .auth_failures = limit,
            .clock = &clock_},
        *backend_, *store_, telemetry_, logger);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(*server) : nullptr;
  }

  static httplib::Result Get(const Server& server, const std::string& path,
                             const std::string& token) {
    httplib::Client client("127.0.0.1", server.port());
    return client.Get(path, {{"Authorization", "Bearer " + token}});
  }
  static httplib::Result Post(const Server& server, const std::string& token,
                              const std::string& body = "") {
    httplib::Client client("127.0.0.1", server.port());
    return client.Post("/api/v1/reconcile", {{"Authorization", "Bearer " + token}}, body,
                       "application/json");
  }
  // GET `path` from `source` (a loopback address) with `token`: the raw answer.
  static std::string GetFrom(const Server& server, const std::string& source,
                             const std::string& path, const std::string& token) {
    testing::RawConnection connection(source, server.port(),
                                      "GET " + path +
                                          " HTTP/1.1\r\nHost: f\r\nAuthorization: Bearer " + token +
                                          "\r\nConnection: close\r\n\r\n");
    return connection.ReadAll(std::chrono::seconds{20});
  }

  testing::ScratchDir scratch_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<RecordingBackend> backend_;
  Telemetry telemetry_;
  ManualClock clock_;
};

// Issue: "a read token gets 403 on reconcile".
TEST_F(ApiTokensTest, EachRoleOpensItsEndpointsAndAKnownTokenWithoutTheRoleGets403) {
  std::unique_ptr<Server> server = Start();
  ASSERT_NE(server, nullptr);
  // read: every GET, no pass.
  httplib::Result runs = Get(*server, "/api/v1/runs", kReader);
  ASSERT_TRUE(runs);
  EXPECT_EQ(runs->status, 200) << runs->body;
  httplib::Result refused = Post(*server, kReader);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403) << refused->body;
  EXPECT_NE(json::parse(refused->body)["error"].get<std::string>().find("reconcile"),
            std::string::npos)
      << refused->body;
  EXPECT_EQ(refused->body.find(kReader), std::string::npos) << "the token is never echoed";
  EXPECT_FALSE(refused->has_header("WWW-Authenticate")) << "403 is not a call to sign in";
  EXPECT_EQ(backend_->calls(), 0);
  // reconcile: a pass, but no reads and no approval.
  httplib::Result metrics = Get(*server, "/metrics", kCi);
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 403);
  httplib::Result pass = Post(*server, kCi);
  ASSERT_TRUE(pass);
  EXPECT_EQ(pass->status, 202) << pass->body;
  httplib::Result unapproved = Post(*server, kCi, R"({"max_deletions": 2})");
  ASSERT_TRUE(unapproved);
  EXPECT_EQ(unapproved->status, 403) << unapproved->body;
  EXPECT_NE(unapproved->body.find("approve"), std::string::npos) << unapproved->body;
  // approve: a pass with an approval, not one without.
  httplib::Result bare = Post(*server, kApprover);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->status, 403) << bare->body;
  EXPECT_EQ(backend_->calls(), 1);
  // The default token (api.tokenFile) has every role.
  EXPECT_EQ(Get(*server, "/api/v1/runs", kDefault)->status, 200);
  EXPECT_EQ(Post(*server, kDefault)->status, 202);
  EXPECT_EQ(Post(*server, kDefault, R"({"allow_empty": true})")->status, 202);
  // An unknown token is a 401, as before; a path no route serves is a 404 only with a token.
  httplib::Result unknown = Get(*server, "/api/v1/runs", "nobody's");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 401);
  EXPECT_EQ(unknown->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(Get(*server, "/api/v1/nothing", "nobody's")->status, 401);
  EXPECT_EQ(Get(*server, "/api/v1/nothing", kCi)->status, 404);
  // The live stream needs read.
  testing::RawConnection stream("127.0.0.1", server->port(),
                                "GET /api/v1/events/stream HTTP/1.1\r\nHost: f\r\n"
                                "Authorization: Bearer " +
                                    std::string(kCi) + "\r\n\r\n");
  const std::string answer = stream.ReadAll(seconds{20});
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 403 Forbidden")) << answer;
  // Every refusal is counted.
  const std::string text = Get(*server, "/metrics", kReader)->body;
  EXPECT_NE(text.find("flotilla_api_auth_refusals_total{code=\"403\"} 5"), std::string::npos)
      << text;
  EXPECT_NE(text.find("flotilla_api_auth_refusals_total{code=\"401\"} 2"), std::string::npos)
      << text;
}

// Issue: "an approve approval is recorded with the token's name".
TEST_F(ApiTokensTest, AnApprovalIsRecordedWithTheNameOfTheTokenThatGaveIt) {
  std::unique_ptr<Server> server = Start();
  ASSERT_NE(server, nullptr);
  httplib::Result approved =
      Post(*server, kApprover, R"({"reason": "drop-b", "max_deletions": 2})");
  ASSERT_TRUE(approved);
  EXPECT_EQ(approved->status, 202) << approved->body;
  httplib::Result asked = Post(*server, kCi, R"({"reason": "nightly"})");
  ASSERT_TRUE(asked);
  EXPECT_EQ(asked->status, 202) << asked->body;
  httplib::Result runs = Get(*server, "/api/v1/runs", kReader);
  ASSERT_TRUE(runs);
  const json listed = json::parse(runs->body)["runs"];
  ASSERT_EQ(listed.size(), 2u) << runs->body;
  EXPECT_EQ(listed[1]["trigger"], "drop-b");
  EXPECT_EQ(listed[1]["approval"], "token approver: up to 2 deletions");
  EXPECT_EQ(listed[1]["actor"], "approver");
  EXPECT_EQ(listed[0]["trigger"], "nightly");
  EXPECT_EQ(listed[0]["approval"], "");
  EXPECT_EQ(listed[0]["actor"], "ci");
  EXPECT_EQ(runs->body.find(kApprover), std::string::npos);
  EXPECT_EQ(runs->body.find(kCi), std::string::npos);
}

// Issue: "repeated wrong tokens get 429 and the right token still works afterwards".
TEST_F(ApiTokensTest, WrongTokensGet429AfterABurstAndTheRightTokenWorksOnceItRefills) {
  std::unique_ptr<Server> server = Start({.burst = 3, .per_minute = 6});
  ASSERT_NE(server, nullptr);
  const std::string guesser = "127.0.0.9";
  for (int i = 0; i < 3; ++i) {
    const std::string answer =
        GetFrom(*server, guesser, "/api/v1/runs", "guess-" + std::to_string(i));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 401 ")) << i << ": " << answer;
  }
  const std::string limited = GetFrom(*server, guesser, "/api/v1/runs", "guess-3");
  EXPECT_TRUE(limited.starts_with("HTTP/1.1 429 ")) << limited;
  EXPECT_NE(limited.find("Retry-After: 10\r\n"), std::string::npos) << limited;
  // Held back before the token is compared: the right one is refused too, so guessing goes no
  // faster whatever is sent.
  const std::string right = GetFrom(*server, guesser, "/api/v1/runs", kReader);
  EXPECT_TRUE(right.starts_with("HTTP/1.1 429 ")) << right;
  // Other addresses are not held back.
  EXPECT_TRUE(GetFrom(*server, "127.0.0.10", "/api/v1/runs", kReader).starts_with("HTTP/1.1 200 "));
  // A missing token is no guess: it does not count.
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(GetFrom(*server, "127.0.0.11", "/api/v1/runs", "").starts_with("HTTP/1.1 401 "))
        << i;
  }
  clock_.Advance(seconds{10});
  const std::string again = GetFrom(*server, guesser, "/api/v1/runs", kReader);
  EXPECT_TRUE(again.starts_with("HTTP/1.1 200 ")) << again;
  const std::string text = Get(*server, "/metrics", kDefault)->body;
  EXPECT_NE(text.find("flotilla_api_auth_refusals_total{code=\"429\"} 2"), std::string::npos)
      << text;
}

TEST_F(ApiTokensTest, RotatedTokensReplaceTheOldOnes) {
  std::unique_ptr<Server> server = Start();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(
      server
          ->SetSecrets(kDefault,
                       {{.name = "reader", .secret = "new-reader", .roles = Of({Role::kRead})}}, "")
          .ok());
  EXPECT_EQ(Get(*server, "/api/v1/runs", kReader)->status, 401);
  EXPECT_EQ(Get(*server, "/api/v1/runs", "new-reader")->status, 200);
  EXPECT_EQ(Get(*server, "/api/v1/runs", kCi)->status, 401) << "a token removed is refused";
}

}  // namespace
}  // namespace flotilla::api
