// The controller with a real SQLite store, the in-memory FakeProvider and a scripted source:
// invalid and unreachable revisions (fail static), hosts lost, offline and rewritten, and
// sharding. controller_test.cc has converging and recovery.

#include <gtest/gtest.h>

#include <sstream>

#include <spdlog/sinks/ostream_sink.h>

#include "reconciler/controller/controller.h"
#include "tests/support/raw_db.h"
#include "tests/unit/controller_fixture.h"

namespace flotilla::controller::controller_test {
namespace {

using std::chrono::minutes;

TEST_F(ControllerTest, AnInvalidRevisionKeepsTheLastGoodOneWithoutDeletions) {
  source_.revisions["sha1"] = Fleet(3);
  source_.tip = "sha1";
  Controller& c = Make();
  c.Sync();
  Pass(c);
  source_.revisions["sha2"] = Fleet(1);  // valid: wants 2 deletions...
  manifest::LoadResult bad = Fleet(0);
  bad.diagnostics.Add(
      manifest::Diagnostic{.severity = manifest::Severity::kError,
                           .location = {.file = "vmsets/a.yaml", .line = 4, .column = 3},
                           .message = "replicas: must be a number"});
  bad.diagnostics.Add(manifest::Diagnostic{.severity = manifest::Severity::kError,
                                           .location = {.file = "vmsets/b.yaml"},
                                           .message = "no such pool"});
  source_.revisions["sha3"] = bad;
  source_.tip = "sha2";
  c.Sync();
  source_.tip = "sha3";  // ...then a broken commit arrives before the deletions ran
  const SyncResult sync = c.Sync();
  EXPECT_TRUE(sync.fail_static);
  EXPECT_EQ(sync.sha, "sha2");
  Result<Prepared> prepared = c.Prepare();
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(prepared->plan.Count(ActionKind::kDelete), 0U);
  EXPECT_GE(prepared->plan.Count(FindingKind::kDeferred), 1U);
  const auto revisions = *store_->Revisions(0);
  ASSERT_FALSE(revisions.empty());
  EXPECT_EQ(revisions.front().sha, "sha3");
  EXPECT_EQ(revisions.front().outcome, store::RevisionOutcome::kRejected);
  EXPECT_NE(revisions.front().reason.find("replicas"), std::string::npos);
  // The snapshot names the commit in force and the rejected one, with every diagnostic.
  std::shared_ptr<const Snapshot> snapshot = c.snapshot();
  ASSERT_NE(snapshot, nullptr);
  ASSERT_TRUE(snapshot->commit.has_value());
  EXPECT_EQ(snapshot->commit->subject, "subject of sha2");
  ASSERT_TRUE(snapshot->rejected.has_value());
  EXPECT_EQ(snapshot->rejected->sha, "sha3");
  EXPECT_EQ(snapshot->rejected->commit->subject, "subject of sha3");
  ASSERT_EQ(snapshot->rejected->diagnostics.size(), 2U);
  EXPECT_EQ(snapshot->rejected->diagnostics[0].text,
            "vmsets/a.yaml:4:3: error: replicas: must be a number");
  EXPECT_EQ(snapshot->rejected->diagnostics[0].line, 4);
  EXPECT_EQ(snapshot->rejected->diagnostics[1].file, "vmsets/b.yaml");
  // Polling the same broken tip again records nothing new, and still says why.
  c.Sync();
  EXPECT_EQ(store_->Revisions(0)->size(), revisions.size());
  ASSERT_TRUE(c.Prepare().ok());
  ASSERT_TRUE(c.snapshot()->rejected.has_value());
  EXPECT_EQ(c.snapshot()->rejected->diagnostics.size(), 2U);
  EXPECT_LE(source_.commits_asked, 3);  // each commit described once
}

TEST_F(ControllerTest, ARestartOnARejectedHeadNamesTheRevisionInForceAndRecordsNothingTwice) {
  source_.revisions["sha1"] = Fleet(2);
  source_.tip = "sha1";
  Make().Sync();
  Pass(*controller_);
  manifest::LoadResult bad = Fleet(0);
  bad.diagnostics.Add(manifest::Diagnostic{.severity = manifest::Severity::kError,
                                           .message = "replicas: must be a number"});
  source_.revisions["sha3"] = bad;
  source_.tip = "sha3";
  EXPECT_TRUE(controller_->Sync().fail_static);
  const size_t recorded = store_->Revisions(0)->size();

  // A new process: the last applied revision is in force before the rejection is reported.
  std::ostringstream log;
  logger_ = std::make_shared<spdlog::logger>("restart",
                                             std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  const SyncResult sync = Make().Sync();
  EXPECT_TRUE(sync.fail_static);
  EXPECT_EQ(sync.sha, "sha1");
  EXPECT_EQ(log.str().find("no revision in force"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("keeping revision sha1 in force"), std::string::npos) << log.str();
  EXPECT_EQ(store_->Revisions(0)->size(), recorded);
}

TEST_F(ControllerTest, TheSourcesWarningsAreLoggedOncePerProcess) {
  source_.revisions["sha1"] = Fleet(1);
  source_.tip = "sha1";
  source_.warnings = {"accepted the SSH host key of git.example without checking it"};
  std::ostringstream log;
  logger_ = std::make_shared<spdlog::logger>("warn",
                                             std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  Controller& c = Make();
  c.Sync();
  c.Sync();
  const std::string text = log.str();
  const size_t first = text.find("accepted the SSH host key of git.example");
  ASSERT_NE(first, std::string::npos) << text;
  EXPECT_EQ(text.find("accepted the SSH host key", first + 1), std::string::npos) << text;
}

TEST_F(ControllerTest, AnUnreachableSourceIsRecordedOnceAndNothingIsDeleted) {
  source_.revisions["sha1"] = Fleet(2);
  source_.tip = "sha1";
  Controller& c = Make();
  c.Sync();
  Pass(c);
  source_.poll_error = Status::Unavailable("connection refused");
  EXPECT_TRUE(c.Sync().fail_static);
  EXPECT_TRUE(c.Sync().fail_static);
  const auto revisions = *store_->Revisions(0);
  EXPECT_EQ(std::count_if(revisions.begin(), revisions.end(),
                          [](auto& r) { return r.outcome == store::RevisionOutcome::kFailed; }),
            1);
  EXPECT_TRUE(Pass(c).Empty());
}

TEST_F(ControllerTest, ARevisionWithoutManifestsIsRejected) {
  source_.revisions["sha1"] = Fleet(2);
  source_.revisions["empty"] = manifest::LoadResult{};
  source_.tip = "sha1";
  Controller& c = Make();
  c.Sync();
  Pass(c);
  source_.tip = "empty";
  const SyncResult sync = c.Sync();
  EXPECT_TRUE(sync.fail_static);
  EXPECT_NE(sync.problem.find("no manifests"), std::string::npos);
  EXPECT_TRUE(Pass(c).Empty());
  EXPECT_EQ(Names("h1").size() + Names("h2").size(), 2U);
}

TEST_F(ControllerTest, AHostIsNotLostBeforeThisProcessHasWatchedItForHostLostAfter) {
  source_.revisions["sha1"] = Fleet(1);
  source_.tip = "sha1";
  {
    Controller& c = Make();
    c.Sync();
    Pass(c);
  }
  const std::string host = store_->LoadLedger()->entries.at(0).host;
  fake_.SetOnline(host, false);
  clock_.Advance(minutes(60));  // long after the host was last seen by the previous process
  Controller& c = Make();       // a restart
  c.Sync();
  Result<Prepared> first = c.Prepare();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->plan.Count(ActionKind::kReplace), 0U);
  EXPECT_EQ(first->plan.Count(FindingKind::kUnknown), 1U);
  clock_.Advance(minutes(11));
  Result<Prepared> later = c.Prepare();
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->plan.Count(ActionKind::kReplace), 1U);
}

// Each pass compares with the observation it saved last (the store is read at the first pass
// only) and writes a host's row again only when its observation changed; when it was last seen
// is written at every pass it answers, so that another process, or this one after a crash, reads
// the latest of both.
TEST_F(ControllerTest, APassRewritesOnlyTheHostsWhoseObservationChanged) {
  source_.revisions["sha1"] = Fleet(1);
  source_.tip = "sha1";
  Controller& c = Make();
  c.Sync();
  Pass(c);  // creates set-0
  ASSERT_TRUE(c.Prepare().ok());
  // The clock stands still: the same observation, nothing written.
  int64_t writes = store_->Writes();
  ASSERT_TRUE(c.Prepare().ok());
  EXPECT_EQ(store_->Writes(), writes);
  // A minute later both hosts answer the same: when they were seen, two narrow rows.
  clock_.Advance(minutes(1));
  writes = store_->Writes();
  ASSERT_TRUE(c.Prepare().ok());
  EXPECT_EQ(store_->Writes() - writes, 2);
  // A VM appears on h2: its observation is written again too.
  clock_.Advance(minutes(1));
  fake_.PutVm("h2", VmInfo{.id = "other-id", .name = "other", .state = VmState::kStopped});
  writes = store_->Writes();
  ASSERT_TRUE(c.Prepare().ok());
  EXPECT_EQ(store_->Writes() - writes, 3);
  // What a restart reads.
  auto reopened = store::Store::Open((dir_.path() / "flotilla.db").string());
  ASSERT_TRUE(reopened.ok());
  Result<Observed> loaded = (*reopened)->LoadHosts();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->hosts.size(), 2U);
  for (const auto& [name, host] : loaded->hosts) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(host.online);
    EXPECT_EQ(host.last_seen, clock_.Now());
  }
  EXPECT_TRUE(loaded->hosts.at("h2").HasVm("other"));
}

// A save that fails (the disk full, say) leaves what the store holds as it was: the next pass
// compares with that, not with the observation it could not save, and writes it.
TEST_F(ControllerTest, AnObservationWhoseSaveFailedIsWrittenByTheNextPass) {
  source_.revisions["sha1"] = Fleet(1);
  source_.tip = "sha1";
  Controller& c = Make();
  c.Sync();
  Pass(c);
  ASSERT_TRUE(c.Prepare().ok());
  testing::RawDb raw((dir_.path() / "flotilla.db").string());
  ASSERT_EQ(raw.Exec("CREATE TRIGGER refuse BEFORE INSERT ON hosts BEGIN SELECT RAISE(ABORT, 'disk "
                     "full'); END"),
            "");
  clock_.Advance(minutes(1));
  fake_.PutVm("h2", VmInfo{.id = "other-id", .name = "other", .state = VmState::kStopped});
  Result<Prepared> refused = c.Prepare();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("disk full"), std::string::npos)
      << refused.status().ToString();
  ASSERT_EQ(raw.Exec("DROP TRIGGER refuse"), "");
  ASSERT_TRUE(c.Prepare().ok());  // the same observation as the failed pass
  auto reopened = store::Store::Open((dir_.path() / "flotilla.db").string());
  ASSERT_TRUE(reopened.ok());
  Result<Observed> loaded = (*reopened)->LoadHosts();
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->hosts.at("h2").HasVm("other"));
}

TEST_F(ControllerTest, OnlyItsOwnPoolsWhenSharded) {
  manifest::LoadResult fleet = Fleet(2);
  HostPool other = fleet.desired.pools[0];
  other.meta.name = "q";
  other.hosts.clear();
  fleet.desired.pools.push_back(other);
  VMSet set = fleet.desired.sets[0];
  set.meta.name = "qset";
  set.pool = "q";
  fleet.desired.sets.push_back(set);
  source_.revisions["sha1"] = fleet;
  source_.tip = "sha1";
  options_.pools = {"p"};
  Controller& c = Make();
  c.Sync();
  Result<Prepared> prepared = c.Prepare();
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(prepared->desired.sets.size(), 1U);
  for (const Action& a : prepared->plan.actions) {
    EXPECT_EQ(a.pool, "p");
  }
}

std::vector<std::string> EventKinds(store::Store& store, const std::string& subject) {
  std::vector<std::string> kinds;
  Result<std::vector<store::EventRecord>> events = store.Events(0);
  for (auto it = events->rbegin(); it != events->rend(); ++it) {
    if (it->subject == subject && it->kind.starts_with("host-")) {
      kinds.push_back(it->kind);
    }
  }
  return kinds;
}

// Issue 18, item 3: a failed request is tried again within the pass; a host that keeps failing
// is degraded until reconcile.hostOfflineAfter has passed (and two observations failed), then
// offline; events mark the transitions only.
TEST_F(ControllerTest, AHostTurnsOfflineOnlyAfterFailingForHostOfflineAfter) {
  source_.revisions["sha1"] = Fleet(0);
  source_.tip = "sha1";
  options_.host_offline_after = std::chrono::seconds(30);
  Controller& c = Make();
  c.Sync();
  // One failed attempt is retried: the host stays online, and one blip does not degrade it
  // (its error rate says it happened).
  fake_.FailNext("observe", Status::Unavailable("injected fault"));
  Result<Prepared> blip = c.Prepare();
  ASSERT_TRUE(blip.ok());
  int online = 0;
  double rate = 0.0;
  for (const auto& [name, host] : blip->observed.hosts) {
    online += host.online ? 1 : 0;
    EXPECT_FALSE(host.degraded) << name;
    rate += host.error_rate;
  }
  EXPECT_EQ(online, 2);
  EXPECT_GT(rate, 0.0);
  EXPECT_TRUE(EventKinds(*store_, "h1").empty());
  EXPECT_TRUE(EventKinds(*store_, "h2").empty());
  // h2 stops answering: degraded for 30 s, then offline; back: online again.
  fake_.SetOnline("h2", false);
  std::vector<std::string> states;
  for (int pass = 0; pass < 5; ++pass) {
    Result<Prepared> p = c.Prepare();
    ASSERT_TRUE(p.ok());
    const ObservedHost* h2 = p->observed.FindHost("h2");
    EXPECT_FALSE(h2->online);  // never planned on while it does not answer
    states.push_back(std::string(HostState(h2)) + "/" + std::to_string(h2->failures));
    clock_.Advance(std::chrono::seconds(10));
  }
  EXPECT_EQ(states, (std::vector<std::string>{"degraded/1", "degraded/2", "degraded/3", "offline/4",
                                              "offline/5"}));
  fake_.SetOnline("h2", true);
  ASSERT_TRUE(c.Prepare().ok());
  EXPECT_EQ(EventKinds(*store_, "h2"),
            (std::vector<std::string>{"host-degraded", "host-offline", "host-online"}));
}

// A refusal no retry changes (credentials) makes the host offline at once.
TEST_F(ControllerTest, AHostThatRefusesIsOfflineAtOnce) {
  source_.revisions["sha1"] = Fleet(0);
  source_.tip = "sha1";
  Controller& c = Make();
  c.Sync();
  fake_.FailNext("observe", Status::PermissionDenied("login refused"), 2);
  Result<Prepared> p = c.Prepare();
  ASSERT_TRUE(p.ok());
  size_t offline = 0;
  for (const auto& [name, host] : p->observed.hosts) {
    offline += HostState(&host) == "offline" ? 1 : 0;
  }
  EXPECT_EQ(offline, 2U);
}

}  // namespace
}  // namespace flotilla::controller::controller_test
