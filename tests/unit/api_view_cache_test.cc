// The snapshot views' ETags and cache (view_cache.h) through the real server: an ETag per view
// and snapshot, 304 for If-None-Match, authorization before either, cached bodies equal to fresh
// renderings, and requests racing snapshot swaps.

#include <gtest/gtest.h>
#include <httplib.h>

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "reconciler/api/routes.h"
#include "reconciler/api/server.h"
#include "reconciler/api/view_cache.h"
#include "reconciler/api/views.h"
#include "reconciler/model/normalize.h"
#include "tests/support/fleet_values.h"
#include "tests/support/gunzip.h"
#include "tests/support/process.h"
#include "tests/support/snapshot_backend.h"
#include "tests/support/wait_until.h"

namespace flotilla::api {
namespace {

using PublishingBackend = testing::SnapshotBackend;

// Two pools of three hosts, a VM set each; `seconds` makes each snapshot's observed_at differ.
std::shared_ptr<const Snapshot> SmallFleet(int seconds) {
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->observed_at = testing::kNow + std::chrono::seconds{seconds};
  snapshot->sha = std::string(40, 'b');
  for (const std::string pool_name : {"red", "blue"}) {
    HostPool pool;
    pool.meta.name = pool_name;
    pool.provider = "parallels";
    VMSet set;
    set.meta.name = pool_name + "-runners";
    set.pool = pool_name;
    set.replicas = 3;
    set.templ = testing::Template("catalog://img", GuestOs::kLinux, 2, 4, 40);
    for (int h = 0; h < 3; ++h) {
      const std::string host = pool_name + "-" + std::to_string(h);
      pool.hosts.push_back(testing::Host(host));
      ObservedHost& observed = snapshot->observed.hosts[host];
      observed = testing::Online(host, pool_name);
      const std::string vm = set.VMName(static_cast<uint32_t>(h));
      observed.vms.push_back(VmInfo{.id = "id-" + vm,
                                    .name = vm,
                                    .state = h == 0 ? VmState::kStopped : VmState::kRunning,
                                    .os = GuestOs::kLinux,
                                    .cpu = 2,
                                    .memory_bytes = 4 * testing::kGi});
      snapshot->ledger.entries.push_back(
          LedgerEntry{.vm = vm, .vmset = set.meta.name, .pool = pool_name, .host = host});
    }
    snapshot->desired.pools.push_back(pool);
    snapshot->desired.sets.push_back(set);
  }
  Normalize(snapshot->desired);
  return snapshot;
}

constexpr const char* kViewToken = "r3ad-token";

class ApiViewCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<store::Store>> opened =
        store::Store::Open((scratch_.path() / "flotilla.db").string());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(*opened);
    backend_.Publish(SmallFleet(0));
    auto logger =
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    Result<std::unique_ptr<Server>> server = Server::Start(
        ServerOptions{
            .listen = "127.0.0.1:0",
            .token = kViewToken,
            .tokens = {ApiToken{
                .name = "ci", .secret = "ci-token", .roles = Roles().Add(Role::kReconcile)}}},
        backend_, *store_, telemetry_, logger);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }

  httplib::Result Get(const std::string& path, const std::string& etag = "",
                      const std::string& token = kViewToken) {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(std::chrono::seconds{60});
    httplib::Headers headers;
    if (!token.empty()) {
      headers.emplace("Authorization", "Bearer " + token);
    }
    if (!etag.empty()) {
      headers.emplace("If-None-Match", etag);
    }
    return client.Get(path.c_str(), headers);
  }

  testing::ScratchDir scratch_;
  std::unique_ptr<store::Store> store_;
  PublishingBackend backend_;
  Telemetry telemetry_;
  std::unique_ptr<Server> server_;
};

constexpr std::array kViews = {"/api/v1/hosts",
                               "/api/v1/vms",
                               "/api/v1/vms?pool=red&state=running",
                               "/api/v1/overview/resources",
                               "/api/v1/plan?format=text",
                               "/api/v1/inventory",
                               "/api/v1/orchestrator/hosts",
                               "/api/v1/orchestrator/overview/resources",
                               "/api/v1/orchestrator/machines"};

TEST_F(ApiViewCacheTest, EveryViewHasAStrongETagStableUntilTheSnapshotChanges) {
  std::map<std::string, std::string> first;
  for (const char* path : kViews) {
    httplib::Result a = Get(path);
    httplib::Result b = Get(path);
    ASSERT_TRUE(a && b) << path;
    EXPECT_EQ(a->status / 100, 2) << path << ": " << a->body;
    const std::string etag = a->get_header_value("ETag");
    EXPECT_TRUE(etag.size() > 2 && etag.front() == '"' && etag.back() == '"') << path << etag;
    EXPECT_EQ(b->get_header_value("ETag"), etag) << path;
    EXPECT_EQ(b->body, a->body) << path;
    EXPECT_EQ(a->get_header_value("Cache-Control"), "no-store") << path;
    first[path] = etag;
  }
  // Each view (and each filter of one) has its own.
  EXPECT_NE(first["/api/v1/vms"], first["/api/v1/vms?pool=red&state=running"]);
  EXPECT_NE(first["/api/v1/vms"], first["/api/v1/hosts"]);
  // Parameters the view does not read change neither the ETag nor the body.
  httplib::Result busted = Get("/api/v1/hosts?_=12345");
  ASSERT_TRUE(busted);
  EXPECT_EQ(busted->get_header_value("ETag"), first["/api/v1/hosts"]);

  backend_.Publish(SmallFleet(1));
  for (const char* path : kViews) {
    httplib::Result after = Get(path);
    ASSERT_TRUE(after) << path;
    EXPECT_NE(after->get_header_value("ETag"), first[path]) << path;
  }
}

TEST_F(ApiViewCacheTest, IfNoneMatchAnswers304WithoutABodyAndAnOldETagGetsTheBody) {
  for (const char* path : kViews) {
    httplib::Result full = Get(path);
    ASSERT_TRUE(full) << path;
    const std::string etag = full->get_header_value("ETag");
    httplib::Result same = Get(path, etag);
    ASSERT_TRUE(same) << path;
    EXPECT_EQ(same->status, 304) << path;
    EXPECT_TRUE(same->body.empty()) << path;
    EXPECT_EQ(same->get_header_value("ETag"), etag) << path;
    // A list, and the weak form, match too.
    httplib::Result listed = Get(path, "\"nope\", W/" + etag);
    ASSERT_TRUE(listed) << path;
    EXPECT_EQ(listed->status, 304) << path;
    httplib::Result wrong = Get(path, "\"not-an-etag-of-ours\"");
    ASSERT_TRUE(wrong) << path;
    EXPECT_EQ(wrong->status, full->status) << path;
    EXPECT_EQ(wrong->body, full->body) << path;
  }
  const std::string old = Get("/api/v1/vms")->get_header_value("ETag");
  backend_.Publish(SmallFleet(2));
  httplib::Result changed = Get("/api/v1/vms", old);
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->status, 200);
  EXPECT_FALSE(changed->body.empty());
  EXPECT_NE(changed->get_header_value("ETag"), old);
}

TEST_F(ApiViewCacheTest, AValidETagNeverGetsPastAuthorization) {
  httplib::Result full = Get("/api/v1/vms");
  ASSERT_TRUE(full);
  const std::string etag = full->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());
  httplib::Result missing = Get("/api/v1/vms", etag, "");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 401);
  EXPECT_EQ(missing->get_header_value("ETag"), "");
  EXPECT_EQ(missing->body.find("vms"), std::string::npos);
  httplib::Result wrong = Get("/api/v1/vms", etag, "not-the-token");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(wrong->get_header_value("ETag"), "");
  // A configured token without the read role.
  httplib::Result no_role = Get("/api/v1/vms", etag, "ci-token");
  ASSERT_TRUE(no_role);
  EXPECT_EQ(no_role->status, 403);
  httplib::Result no_role_full = Get("/api/v1/vms", "", "ci-token");
  ASSERT_TRUE(no_role_full);
  EXPECT_EQ(no_role_full->status, 403);
  EXPECT_EQ(no_role_full->body.find("red-runners"), std::string::npos);
}

TEST_F(ApiViewCacheTest, CachedBodiesEqualFreshRenderings) {
  std::shared_ptr<const Snapshot> snapshot = backend_.Latest();
  for (int i = 0; i < 2; ++i) {  // the first renders, the second comes from the cache
    EXPECT_EQ(Get("/api/v1/hosts")->body, JsonReply(200, HostsJson(*snapshot)).body);
    EXPECT_EQ(Get("/api/v1/vms")->body, JsonReply(200, VmsJson(*snapshot, {})).body);
    EXPECT_EQ(Get("/api/v1/vms?pool=red&managed=true")->body,
              JsonReply(200, VmsJson(*snapshot, {.pool = "red", .managed = true})).body);
    EXPECT_EQ(Get("/api/v1/vms?state=stopped")->body,
              JsonReply(200, VmsJson(*snapshot, {.state = "stopped"})).body);
    EXPECT_EQ(Get("/api/v1/orchestrator/machines")->body,
              JsonReply(202, OrchestratorMachinesJson(*snapshot)).body);
  }
  // A refused filter is answered as before, without an ETag, every time.
  for (int i = 0; i < 2; ++i) {
    httplib::Result bad = Get("/api/v1/vms?managed=maybe");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    EXPECT_EQ(bad->get_header_value("ETag"), "");
  }
}

// Under ASan/TSan-like load: requests with and without If-None-Match while snapshots are
// swapped. An ETag always stands for the same bytes, and every body is one snapshot's rendering.
TEST_F(ApiViewCacheTest, ConcurrentRequestsDuringSnapshotSwapsAreConsistent) {
  constexpr int kSnapshots = 40;
  std::vector<std::shared_ptr<const Snapshot>> snapshots;
  std::set<std::string> renderings = {JsonReply(200, VmsJson(*backend_.Latest(), {})).body};
  for (int i = 0; i < kSnapshots; ++i) {
    snapshots.push_back(SmallFleet(100 + i));
    renderings.insert(JsonReply(200, VmsJson(*snapshots.back(), {})).body);
  }
  std::mutex mu;
  std::map<std::string, std::string> body_of;  // ETag -> body
  std::atomic<bool> done{false};
  std::atomic<int> answers{0};
  std::atomic<int> problems{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      httplib::Client client("127.0.0.1", server_->port());
      std::string etag;
      while (!done) {
        httplib::Headers headers{{"Authorization", std::string("Bearer ") + kViewToken}};
        if (t % 2 == 1 && !etag.empty()) {
          headers.emplace("If-None-Match", etag);
        }
        httplib::Result r = client.Get("/api/v1/vms", headers);
        if (!r || (r->status != 200 && r->status != 304)) {
          ++problems;
          continue;
        }
        ++answers;
        if (r->status == 304) {
          continue;
        }
        etag = r->get_header_value("ETag");
        std::lock_guard lock(mu);
        if (!renderings.contains(r->body)) {
          ++problems;
        }
        auto [it, added] = body_of.emplace(etag, r->body);
        if (!added && it->second != r->body) {
          ++problems;
        }
      }
    });
  }
  for (const auto& snapshot : snapshots) {
    backend_.Publish(snapshot);
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  ASSERT_TRUE(testing::WaitUntil([&] { return answers > 200; }));
  done = true;
  for (std::thread& client : clients) {
    client.join();
  }
  EXPECT_EQ(problems, 0);
  EXPECT_GT(body_of.size(), 1u);
}

// What /metrics says of the views' renderings, `when` "request" or "ahead" (0 before any).
std::string RendersLine(const std::string& metrics, const std::string& when) {
  const std::string name = "flotilla_api_view_renders_total{when=\"" + when + "\"} ";
  const size_t at = metrics.find(name);
  return at == std::string::npos
             ? "0"
             : metrics.substr(at + name.size(), metrics.find('\n', at) - at - name.size());
}

TEST_F(ApiViewCacheTest, APublishedSnapshotsViewsAreRenderedAheadOfTheirRequests) {
  const std::array<std::string, 3> read = {"/api/v1/vms", "/api/v1/vms?pool=red&state=running",
                                           "/api/v1/hosts"};
  std::map<std::string, std::string> before;
  for (const std::string& path : read) {
    httplib::Result got = Get(path);
    ASSERT_TRUE(got && got->status == 200) << path;
    before[path] = got->get_header_value("ETag");
  }
  auto renders = [&](const std::string& when) {
    httplib::Result metrics = Get("/metrics");
    return metrics ? RendersLine(metrics->body, when) : std::string("?");
  };
  EXPECT_EQ(renders("request"), "3");
  EXPECT_EQ(renders("ahead"), "0");

  backend_.Publish(SmallFleet(7));
  server_->SnapshotPublished();
  ASSERT_TRUE(testing::WaitUntil([&] { return renders("ahead") == "3"; })) << renders("ahead");
  for (const std::string& path : read) {
    httplib::Result got = Get(path);
    ASSERT_TRUE(got && got->status == 200) << path;
    EXPECT_NE(got->get_header_value("ETag"), before[path]) << path;
  }
  EXPECT_EQ(renders("request"), "3") << "the views read after the pass were rendered ahead";
  httplib::Result hosts = Get("/api/v1/hosts");
  ASSERT_TRUE(hosts);
  EXPECT_EQ(hosts->body, HostsText(*backend_.Latest())) << "a view rendered ahead is the new one";

  // Views nobody asked of a snapshot are not rendered ahead for the next one.
  backend_.Publish(SmallFleet(8));
  server_->SnapshotPublished();
  ASSERT_TRUE(testing::WaitUntil([&] { return renders("ahead") == "6"; })) << renders("ahead");
  backend_.Publish(SmallFleet(9));
  server_->SnapshotPublished();
  ASSERT_TRUE(Get("/api/v1/vms"));
  EXPECT_EQ(renders("request"), "4");
  EXPECT_EQ(renders("ahead"), "6");
}

TEST(ApiIfNoneMatchTest, ListsWeakTagsAndTheWildcard) {
  EXPECT_TRUE(IfNoneMatchHits("\"a\"", "\"a\""));
  EXPECT_TRUE(IfNoneMatchHits("\"x\", \"a\"", "\"a\""));
  EXPECT_TRUE(IfNoneMatchHits("W/\"a\"", "\"a\""));
  EXPECT_TRUE(IfNoneMatchHits(" * ", "\"a\""));
  EXPECT_FALSE(IfNoneMatchHits("\"ab\"", "\"a\""));
  EXPECT_FALSE(IfNoneMatchHits("a", "\"a\""));
  EXPECT_FALSE(IfNoneMatchHits("", "\"a\""));
  EXPECT_FALSE(IfNoneMatchHits(",,", "\"a\""));
}

// A client that takes gzip gets the kept view compressed, with its own strong ETag (the coding is
// part of the representation) and Vary; either ETag revalidates; a weight of zero or a client's
// copy of the server's internal header gets the identity body; a Range gets the whole answer
// (cpp-httplib used to slice it and still say 200).
TEST_F(ApiViewCacheTest, GzipAnswersHaveTheirOwnETagAndTheSameBytes) {
  httplib::Client client("127.0.0.1", server_->port());
  client.set_decompress(false);
  auto get = [&](const std::string& accept, httplib::Headers extra = {}) {
    extra.emplace("Authorization", std::string("Bearer ") + kViewToken);
    extra.emplace("Accept-Encoding", accept);
    return client.Get("/api/v1/vms", extra);
  };
  httplib::Result plain = get("identity");
  ASSERT_TRUE(plain && plain->status == 200);
  EXPECT_EQ(plain->get_header_value("Content-Encoding"), "");
  EXPECT_EQ(plain->get_header_value("Vary"), "Accept-Encoding");
  const std::string etag = plain->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());

  httplib::Result zipped = get("gzip, deflate, br");
  ASSERT_TRUE(zipped && zipped->status == 200);
  EXPECT_EQ(zipped->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(zipped->get_header_value("Vary"), "Accept-Encoding");
  const std::string gzip_etag = zipped->get_header_value("ETag");
  EXPECT_EQ(gzip_etag, etag.substr(0, etag.size() - 1) + "-gzip\"");
  httplib::Client reader("127.0.0.1", server_->port());  // decompresses
  httplib::Result decompressed = reader.Get(
      "/api/v1/vms",
      {{"Authorization", std::string("Bearer ") + kViewToken}, {"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(decompressed && decompressed->status == 200);
  EXPECT_EQ(decompressed->body, plain->body);

  for (const std::string& asked : {etag, gzip_etag}) {
    httplib::Result revalidated = get("gzip", {{"If-None-Match", asked}});
    ASSERT_TRUE(revalidated);
    EXPECT_EQ(revalidated->status, 304) << asked;
    EXPECT_EQ(revalidated->get_header_value("ETag"), gzip_etag) << asked;
    EXPECT_TRUE(revalidated->body.empty());
  }
  httplib::Result identity_304 = get("identity", {{"If-None-Match", gzip_etag}});
  ASSERT_TRUE(identity_304);
  EXPECT_EQ(identity_304->status, 304);
  EXPECT_EQ(identity_304->get_header_value("ETag"), etag);

  httplib::Result refused = get("gzip;q=0, identity");
  ASSERT_TRUE(refused && refused->status == 200);
  EXPECT_EQ(refused->get_header_value("Content-Encoding"), "");
  EXPECT_EQ(refused->body, plain->body);
  httplib::Result smuggled = get("identity", {{"Flotilla-Internal-Gzip-Offered", "1"}});
  ASSERT_TRUE(smuggled && smuggled->status == 200);
  EXPECT_EQ(smuggled->get_header_value("Content-Encoding"), "");
  httplib::Result part = get("gzip", {{"Range", "bytes=0-9"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 200);
  EXPECT_EQ(part->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(part->body, zipped->body);
}

TEST(ApiViewCacheUnitTest, OneRenderingPerViewAndSnapshotAndOnlyTheCurrentSnapshotsKept) {
  ViewCache cache(2);
  std::shared_ptr<const Snapshot> one = SmallFleet(1);
  int renders = 0;
  auto render = [&renders](const Snapshot& /*snapshot*/) {
    ++renders;
    return Reply{.body = "r" + std::to_string(renders), .content_type = "text/plain"};
  };
  const auto a = cache.Get(one, "a", render);
  EXPECT_EQ(cache.Get(one, "a", render)->reply.body, a->reply.body);
  EXPECT_EQ(renders, 1);
  EXPECT_EQ(a->etag, cache.ETag(one, "a"));
  EXPECT_NE(cache.ETag(one, "b"), a->etag);
  (void)cache.Get(one, "b", render);
  (void)cache.Get(one, "c", render);  // beyond max_views: rendered, not kept
  (void)cache.Get(one, "c", render);
  EXPECT_EQ(renders, 4);
  std::weak_ptr<const Snapshot> gone = one;
  std::shared_ptr<const Snapshot> two = SmallFleet(2);
  const auto a2 = cache.Get(two, "a", render);
  EXPECT_NE(a2->etag, a->etag);
  EXPECT_EQ(renders, 5);
  one.reset();
  EXPECT_TRUE(gone.expired()) << "the cache must not keep an old snapshot alive";
  // Another cache (another process) never gives the same ETag.
  ViewCache other;
  EXPECT_NE(other.ETag(two, "a"), cache.ETag(two, "a"));
}

// A rendering that tells which snapshot it was made of (SmallFleet's seconds) and counts calls.
struct CountingRender {
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  std::string tag;
  Reply operator()(const Snapshot& snapshot) const {
    ++*calls;
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(snapshot.observed_at - testing::kNow);
    return Reply{.body = tag + "@" + std::to_string(seconds.count()),
                 .content_type = "application/json"};
  }
};

TEST(ApiViewCacheUnitTest, WarmRendersForTheNewSnapshotTheViewsAskedOfThePreviousOne) {
  ViewCache cache;
  const std::atomic<bool> stop{false};
  const std::shared_ptr<const Snapshot> one = SmallFleet(1);
  CountingRender a{.tag = "a"};
  CountingRender b{.tag = "b"};
  (void)cache.Get(one, "a", a);
  (void)cache.Get(one, "b", b);
  (void)cache.Get(one, "b", b);
  ASSERT_EQ(*a.calls + *b.calls, 2);

  const std::shared_ptr<const Snapshot> two = SmallFleet(2);
  EXPECT_EQ(cache.Warm(two, stop), 2U);
  EXPECT_EQ(*a.calls + *b.calls, 4);
  // A request now finds the view of the new snapshot ready: its own rendering is not called.
  CountingRender unused{.tag = "x"};
  bool rendered = true;
  const auto got = cache.Get(two, "a", unused, &rendered);
  EXPECT_FALSE(rendered);
  EXPECT_EQ(*unused.calls, 0);
  EXPECT_EQ(got->reply.body, "a@2");
  EXPECT_EQ(got->etag, cache.ETag(two, "a"));
  // Warming the same snapshot again renders nothing.
  EXPECT_EQ(cache.Warm(two, stop), 0U);

  // Only "a" was asked of `two`: the next snapshot gets "a" ahead, not "b".
  const std::shared_ptr<const Snapshot> three = SmallFleet(3);
  EXPECT_EQ(cache.Warm(three, stop), 1U);
  (void)cache.Get(three, "b", unused, &rendered);
  EXPECT_TRUE(rendered) << "a view nobody asked during a snapshot must not be warmed again";
  EXPECT_EQ(*unused.calls, 1);
  // Nothing asked at all: nothing warmed.
  ViewCache idle;
  EXPECT_EQ(idle.Warm(three, stop), 0U);
}

TEST(ApiViewCacheUnitTest, WarmCompressesWhatClientsTookCompressed) {
  ViewCache cache;
  const std::atomic<bool> stop{false};
  CountingRender zipped{.tag = "zipped"};
  CountingRender plain{.tag = "plain"};
  const std::shared_ptr<const Snapshot> one = SmallFleet(1);
  (void)cache.Get(one, "zipped", zipped)->Gzipped();
  EXPECT_FALSE(cache.Get(one, "plain", plain)->WasGzipped());
  const std::shared_ptr<const Snapshot> two = SmallFleet(2);
  ASSERT_EQ(cache.Warm(two, stop), 2U);
  EXPECT_TRUE(cache.Get(two, "zipped", zipped)->WasGzipped());
  EXPECT_FALSE(cache.Get(two, "plain", plain)->WasGzipped());
}

TEST(ApiViewCacheUnitTest, ARequestDuringAWarmingWaitsForItInsteadOfRenderingAgain) {
  ViewCache cache;
  const std::atomic<bool> stop{false};
  std::promise<void> started;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto calls = std::make_shared<std::atomic<int>>(0);
  RenderView slow = [&started, released, calls](const Snapshot& /*snapshot*/) {
    if (++*calls == 2) {  // the warming's call (the first is the request of snapshot one)
      started.set_value();
      released.wait();
    }
    return Reply{.body = "slow", .content_type = "application/json"};
  };
  (void)cache.Get(SmallFleet(1), "v", slow);
  const std::shared_ptr<const Snapshot> two = SmallFleet(2);
  std::thread warming([&] { EXPECT_EQ(cache.Warm(two, stop), 1U); });
  started.get_future().wait();
  CountingRender own{.tag = "own"};
  std::shared_ptr<const CachedView> got;
  std::thread request([&] { got = cache.Get(two, "v", own); });
  release.set_value();
  request.join();
  warming.join();
  EXPECT_EQ(*own.calls, 0);
  EXPECT_EQ(got->reply.body, "slow");
  EXPECT_EQ(*calls, 2);
}

TEST(ApiViewCacheUnitTest, AStoppedWarmingLeavesItsViewsToTheRequests) {
  ViewCache cache;
  std::atomic<bool> stop{false};
  std::promise<void> started;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto calls = std::make_shared<std::atomic<int>>(0);
  RenderView first = [&started, released, calls](const Snapshot& /*snapshot*/) {
    if (++*calls == 2) {
      started.set_value();
      released.wait();
    }
    return Reply{.body = "first", .content_type = "application/json"};
  };
  CountingRender second{.tag = "second"};
  const std::shared_ptr<const Snapshot> one = SmallFleet(1);
  (void)cache.Get(one, "a", first);  // warmed first (keys in order), and held there
  (void)cache.Get(one, "b", second);
  const std::shared_ptr<const Snapshot> two = SmallFleet(2);
  std::thread warming([&] { EXPECT_EQ(cache.Warm(two, stop), 1U); });
  started.get_future().wait();
  CountingRender own{.tag = "own"};
  std::shared_ptr<const CachedView> got;
  bool rendered = false;
  std::thread request([&] { got = cache.Get(two, "b", own, &rendered); });
  stop = true;  // "b" is never warmed: the request renders it itself, whenever it came
  release.set_value();
  warming.join();
  request.join();
  EXPECT_TRUE(rendered);
  EXPECT_EQ(*own.calls, 1);
  EXPECT_EQ(*second.calls, 1);
  EXPECT_EQ(got->reply.body, "own@2");
}

// The whole VM list is written from its kept pieces (vms_pieces.h), identity and gzip, as one
// rendering writes it: with a piece larger than what one write hands over (1 MiB), and again
// after a pass that changed one VM.
TEST_F(ApiViewCacheTest, TheWholeVmListIsWrittenFromItsPiecesAsOneRenderingWritesIt) {
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->observed_at = testing::kNow;
  HostPool pool;
  pool.meta.name = "big";
  for (int h = 0; h < 20; ++h) {
    const std::string name = "big-" + std::to_string(h);
    pool.hosts.push_back(testing::Host(name));
    ObservedHost& host = snapshot->observed.hosts[name];
    host = testing::Online(name, "big");
    for (int v = 0; v < (h == 0 ? 3000 : 3); ++v) {
      host.vms.push_back(VmInfo{.id = name + "-" + std::to_string(v),
                                .name = name + "-vm-" + std::to_string(v),
                                .state = VmState::kRunning,
                                .cpu = 2});
    }
  }
  snapshot->desired.pools.push_back(pool);
  httplib::Client client("127.0.0.1", server_->port());
  // Far more than a loopback read of 1 MB takes: a body shorter than its Content-Length fails.
  client.set_read_timeout(std::chrono::seconds{10});
  client.set_decompress(false);
  const httplib::Headers identity{{"Authorization", std::string("Bearer ") + kViewToken},
                                  {"Accept-Encoding", "identity"}};
  const httplib::Headers gzip{{"Authorization", std::string("Bearer ") + kViewToken},
                              {"Accept-Encoding", "gzip"}};
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {
      auto next = std::make_shared<Snapshot>(*snapshot);
      next->observed_at += std::chrono::seconds{30};
      next->observed.hosts.at("big-17").vms[1].state = VmState::kStopped;
      snapshot = next;
    }
    backend_.Publish(snapshot);
    const std::string expected = VmsText(*snapshot, {});
    ASSERT_GT(expected.size(), size_t{1} << 20);
    httplib::Result plain = client.Get("/api/v1/vms", identity);
    ASSERT_TRUE(plain && plain->status == 200) << pass;
    EXPECT_EQ(plain->get_header_value("Content-Length"), std::to_string(expected.size()));
    EXPECT_EQ(plain->body, expected) << pass;
    httplib::Result zipped = client.Get("/api/v1/vms", gzip);
    ASSERT_TRUE(zipped && zipped->status == 200) << pass;
    EXPECT_EQ(zipped->get_header_value("Content-Encoding"), "gzip");
    EXPECT_EQ(testing::Gunzip(zipped->body), expected) << pass;
  }
}

}  // namespace
}  // namespace flotilla::api
