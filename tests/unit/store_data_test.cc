// The SQLite store against real files in a scratch folder (store.h): host observations,
// events, retention, and the store's lifetime and threads. store_test.cc has the rest.

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "reconciler/store/host_snapshot.h"
#include "reconciler/store/schema.h"
#include "reconciler/store/store.h"
#include "tests/support/status.h"
#include "tests/unit/store_fixture.h"

namespace flotilla::store::store_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;

// --- hosts ---

ObservedHost OnlineHost() {
  ObservedHost host{
      .name = "mini-01",
      .pool = "macs",
      .online = true,
      .last_seen = kT0,
      .facts = HostFacts{
          .arch = Arch::kArm64,
          .os_name = "macOS",
          .os_version = "15.5",
          .agent_version = "1.0.5",
          .hypervisor_version = "20.2.1",
          .total = {.cpu = 12, .memory_bytes = uint64_t{32} << 30, .disk_bytes = 1'000'000'000'123},
          .system_reserved = {.cpu = 2, .memory_bytes = uint64_t{4} << 30},
          .available = {.cpu = 6,
                        .memory_bytes = uint64_t{20} << 30,
                        .disk_bytes = uint64_t{500} << 30},
          .running_macos_vms = 1,
          .cached_images = {"catalog://BASE/v1", "catalog://BASE/v2"}}};
  host.vms = {
      VmInfo{.id = "uuid-1",
             .name = "ios-0",
             .state = VmState::kRunning,
             .raw_state = "running",
             .os = GuestOs::kMacos,
             .os_raw = "macosx",
             .type = "APPLE_VZ_VM",
             .cpu = 4,
             .memory_bytes = uint64_t{8} << 30,
             .disk_bytes = uint64_t{100} << 30,
             .ip = "10.0.0.7"},
      VmInfo{.id = "uuid-2",
             .name = "ios-1.flotilla-3fa9",
             .state = VmState::kTransitional,
             .raw_state = "cloning",
             .os = GuestOs::kMacos,
             .os_raw = "macosx",
             .type = "APPLE_VZ_VM",
             .pending_create_for = "ios-1"},
      VmInfo{.id = "uuid-3",
             .name = "other",
             .state = VmState::kStopped,
             .raw_state = "stopped",
             .os_raw = "windows",
             .type = "VM",
             .cpu = 2},
  };
  return host;
}

ObservedHost OfflineHost() {
  return ObservedHost{.name = "mini-02",
                      .pool = "macs",
                      .online = false,
                      .last_seen = kT0 - minutes(20),
                      .error = "connect: connection refused",
                      .facts = HostFacts{.arch = Arch::kX86_64, .total = {.cpu = 8}},
                      .failures = 3,
                      .failing_since = std::chrono::floor<std::chrono::seconds>(kT0) -
                                       minutes(1),  // stored in seconds
                      .error_rate = 0.25,
                      .degraded = true};
}

TEST_F(StoreTest, HostObservationsRoundTrip) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Observed observed;
  observed.hosts["mini-01"] = OnlineHost();
  observed.hosts["mini-02"] = OfflineHost();
  observed.hosts["never"] = ObservedHost{.name = "never", .pool = "linux", .error = "no route"};
  ASSERT_OK(store->SaveHosts(observed));

  Result<Observed> loaded = store->LoadHosts();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->hosts.size(), 3U);
  for (const auto& [name, host] : observed.hosts) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(loaded->hosts.contains(name));
    const ObservedHost& got = loaded->hosts.at(name);
    EXPECT_EQ(got.facts, host.facts);
    EXPECT_EQ(got.vms, host.vms);
    EXPECT_EQ(got.last_seen, host.last_seen);  // to the millisecond
    EXPECT_EQ(got, host);
  }
}

TEST_F(StoreTest, SaveHostsReplacesNamedHostsAndKeepsOthers) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Observed first;
  first.hosts["mini-01"] = OnlineHost();
  first.hosts["mini-02"] = OfflineHost();
  ASSERT_OK(store->SaveHosts(first));

  Observed second;
  ObservedHost gone = OnlineHost();
  gone.online = false;
  gone.error = "timeout";
  gone.vms.clear();
  second.hosts["mini-01"] = gone;
  ASSERT_OK(store->SaveHosts(second));

  Result<Observed> loaded = store->LoadHosts();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->hosts.size(), 2U);
  EXPECT_EQ(loaded->hosts.at("mini-01"), gone);
  EXPECT_EQ(loaded->hosts.at("mini-02"), OfflineHost());
}

TEST_F(StoreTest, SaveHostsKeepsTextThatIsNotUtf8AsReplacementCharacters) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Observed observed;
  observed.hosts["mini-01"] = OnlineHost();
  ObservedHost bad = OfflineHost();
  bad.error = "garbled \xff\xfe reply";
  observed.hosts["mini-02"] = bad;
  ASSERT_OK(store->SaveHosts(observed));
  Result<Observed> loaded = store->LoadHosts();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->hosts.size(), 2U);
  EXPECT_EQ(loaded->hosts.at("mini-02").error, "garbled \xef\xbf\xbd\xef\xbf\xbd reply");
}

TEST_F(StoreTest, SameApartFromLastSeenComparesEveryOtherField) {
  const ObservedHost a = OnlineHost();
  ObservedHost b = a;
  b.last_seen = *a.last_seen + minutes(1);
  EXPECT_TRUE(SameApartFromLastSeen(a, b));
  const std::vector<std::pair<std::string, void (*)(ObservedHost&)>> changes = {
      {"name", [](ObservedHost& h) { h.name += "x"; }},
      {"pool", [](ObservedHost& h) { h.pool += "x"; }},
      {"online", [](ObservedHost& h) { h.online = !h.online; }},
      {"error", [](ObservedHost& h) { h.error = "timeout"; }},
      {"facts", [](ObservedHost& h) { h.facts.available.cpu += 1; }},
      {"vms", [](ObservedHost& h) { h.vms[0].state = VmState::kStopped; }},
      {"vms_known", [](ObservedHost& h) { h.vms_known = !h.vms_known; }},
      {"failures", [](ObservedHost& h) { h.failures += 1; }},
      {"failing_since", [](ObservedHost& h) { h.failing_since = kT0; }},
      {"error_rate", [](ObservedHost& h) { h.error_rate = 0.05; }},
      {"degraded", [](ObservedHost& h) { h.degraded = !h.degraded; }},
  };
  for (const auto& [field, change] : changes) {
    SCOPED_TRACE(field);
    ObservedHost c = a;
    change(c);
    EXPECT_FALSE(SameApartFromLastSeen(a, c));
  }
}

// An idle pass saves the same hosts again with a later last_seen: given what the store holds,
// only the narrow last_seen rows are written, and a host whose observation changed is rewritten.
TEST_F(StoreTest, SaveHostsRewritesOnlyTheHostsWhoseObservationChanged) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Observed first;
  first.hosts["mini-01"] = OnlineHost();
  first.hosts["mini-02"] = OfflineHost();
  const int64_t empty = store->Writes();
  ASSERT_OK(store->SaveHosts(first, Observed{}));
  EXPECT_EQ(store->Writes() - empty, 4);  // each host's snapshot and last_seen

  // Nothing changed: nothing is written, not even a commit.
  int64_t writes = store->Writes();
  const int64_t commits = store->Commits();
  ASSERT_OK(store->SaveHosts(first, first));
  EXPECT_EQ(store->Writes(), writes);
  EXPECT_EQ(store->Commits(), commits);

  // mini-01 answered again, the same: its last_seen alone.
  Observed second = first;
  second.hosts["mini-01"].last_seen = *first.hosts["mini-01"].last_seen + minutes(1);
  writes = store->Writes();
  ASSERT_OK(store->SaveHosts(second, first));
  EXPECT_EQ(store->Writes() - writes, 1);
  EXPECT_EQ(store->Commits(), commits + 1);

  // mini-02 came back with a VM: its row is rewritten too.
  Observed third = second;
  third.hosts["mini-01"].last_seen = *second.hosts["mini-01"].last_seen + minutes(1);
  ObservedHost& back = third.hosts["mini-02"];
  back.online = true;
  back.error.clear();
  back.failures = 0;
  back.failing_since.reset();
  back.last_seen = third.hosts["mini-01"].last_seen;
  back.vms.push_back(VmInfo{.id = "uuid-9", .name = "ios-9", .state = VmState::kRunning});
  writes = store->Writes();
  ASSERT_OK(store->SaveHosts(third, second));
  EXPECT_EQ(store->Writes() - writes, 3);

  // What another process (or this one after a crash) reads is the latest of everything, to the
  // millisecond.
  auto reopened = Store::Open(DbPath());
  ASSERT_OK(reopened);
  Result<Observed> loaded = (*reopened)->LoadHosts();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->hosts.size(), 2U);
  EXPECT_EQ(loaded->hosts.at("mini-01"), third.hosts.at("mini-01"));
  EXPECT_EQ(loaded->hosts.at("mini-02"), third.hosts.at("mini-02"));
}

// Schema 5 moved last_seen out of the snapshot rows into host_seen.
TEST_F(StoreTest, UpgradeKeepsEachHostsLastSeen) {
  ASSERT_OK(MigrateForTesting(DbPath(), 4));
  const ObservedHost host = OnlineHost();
  Result<std::string> snapshot = RenderHostSnapshot(host);
  ASSERT_OK(snapshot);
  std::string quoted;
  for (char c : *snapshot) {
    quoted += c == '\'' ? "''" : std::string(1, c);
  }
  ASSERT_EQ(RawDb(DbPath()).Exec("INSERT INTO hosts (name, pool, last_seen, snapshot) VALUES "
                                 "('mini-01', 'macs', " +
                                 std::to_string(std::chrono::duration_cast<milliseconds>(
                                                    host.last_seen->time_since_epoch())
                                                    .count()) +
                                 ", '" + quoted + "')"),
            "");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<Observed> loaded = store->LoadHosts();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->hosts.size(), 1U);
  EXPECT_EQ(loaded->hosts.at("mini-01"), host);
}

// --- events ---

TEST_F(StoreTest, EventsAreListedNewestFirst) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->AddEvent({.at = kT0,
                             .level = "warn",
                             .kind = "host-offline",
                             .subject = "mini-02",
                             .message = "mini-02 stopped answering"}));
  ASSERT_OK(store->AddEvent({.at = kT0 + minutes(1),
                             .level = "error",
                             .kind = "revision-rejected",
                             .subject = "bbb",
                             .message = "invalid manifest"}));
  Result<std::vector<EventRecord>> events = store->Events(10);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 2U);
  EXPECT_EQ((*events)[0].kind, "revision-rejected");
  EXPECT_EQ((*events)[0].at, kT0 + minutes(1));
  EXPECT_EQ((*events)[0].level, "error");
  EXPECT_EQ((*events)[0].subject, "bbb");
  EXPECT_EQ((*events)[0].message, "invalid manifest");
  EXPECT_EQ((*events)[1].kind, "host-offline");
  EXPECT_LT((*events)[1].id, (*events)[0].id);
  Result<std::vector<EventRecord>> one = store->Events(1);
  ASSERT_OK(one);
  EXPECT_EQ(one->size(), 1U);
}

// --- retention ---

TEST_F(StoreTest, FinishRunPrunesOldRunsWithTheirActionsButKeepsUnfinishedOnes) {
  auto store = OpenStore({.retain_runs = 2, .retain_events = 100});
  ASSERT_NE(store, nullptr);
  // Run 1 is left with an intended action (its process died); it must survive pruning.
  Result<int64_t> interrupted = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(interrupted);
  ASSERT_OK(store->InsertAction(Action(*interrupted, "ios-0", ActionState::kIntended)));
  Result<int64_t> closed = store->CloseStaleRuns("stale", kT0);
  ASSERT_OK(closed);

  std::vector<int64_t> runs;
  for (int i = 0; i < 4; ++i) {
    Result<int64_t> run = store->BeginRun("timer", "aaa", kT0 + minutes(i));
    ASSERT_OK(run);
    ASSERT_OK(
        store->InsertAction(Action(*run, "ios-" + std::to_string(i), ActionState::kSucceeded)));
    ASSERT_OK(store->FinishRun(*run, RunOutcome::kSucceeded, {}, "", kT0 + minutes(i)));
    runs.push_back(*run);
  }

  Result<std::vector<RunRecord>> kept = store->Runs(0);
  ASSERT_OK(kept);
  std::vector<int64_t> ids;
  for (const RunRecord& r : *kept) {
    ids.push_back(r.id);
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{runs[3], runs[2], *interrupted}));
  RawDb raw(DbPath());
  EXPECT_EQ(raw.Int("SELECT count(*) FROM actions"), 3);  // the pruned runs' actions went too
  for (int64_t pruned : {runs[0], runs[1]}) {
    Result<std::vector<ActionRecord>> actions = store->Actions(pruned);
    ASSERT_OK(actions);
    EXPECT_TRUE(actions->empty());
  }
  Result<std::vector<ActionRecord>> unfinished = store->UnfinishedActions();
  ASSERT_OK(unfinished);
  ASSERT_EQ(unfinished->size(), 1U);
  EXPECT_EQ((*unfinished)[0].run_id, *interrupted);

  // Once its action is finished, the old run goes at the next prune.
  ASSERT_OK(store->UpdateActionState((*unfinished)[0].id, ActionState::kAbandoned, "", kT0));
  ASSERT_OK(store->Prune());
  kept = store->Runs(0);
  ASSERT_OK(kept);
  EXPECT_EQ(kept->size(), 2U);
}

TEST_F(StoreTest, PruneKeepsTheNewestEvents) {
  auto store = OpenStore({.retain_runs = 10, .retain_events = 3});
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(
        store->AddEvent({.at = kT0, .level = "info", .kind = "k", .message = std::to_string(i)}));
  }
  ASSERT_OK(store->Prune());
  Result<std::vector<EventRecord>> events = store->Events(0);
  ASSERT_OK(events);
  std::vector<std::string> messages;
  for (const EventRecord& e : *events) {
    messages.push_back(e.message);
  }
  EXPECT_EQ(messages, (std::vector<std::string>{"4", "3", "2"}));
}

TEST_F(StoreTest, PruneKeepsAsManyRevisionsAsRunsAndTheOneInForce) {
  auto store = OpenStore({.retain_runs = 2});
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->RecordRevision(
      {.sha = "old", .attempted_at = kT0, .outcome = RevisionOutcome::kApplied}));
  ASSERT_OK(store->RecordRevision(
      {.sha = "good", .attempted_at = kT0, .outcome = RevisionOutcome::kApplied}));
  for (const char* sha : {"bad1", "bad2", "bad3"}) {
    ASSERT_OK(store->RecordRevision(
        {.sha = sha, .attempted_at = kT0, .outcome = RevisionOutcome::kRejected}));
  }
  ASSERT_OK(store->Prune());
  Result<std::vector<RevisionRecord>> revisions = store->Revisions(0);
  ASSERT_OK(revisions);
  std::vector<std::string> shas;
  for (const RevisionRecord& r : *revisions) {
    shas.push_back(r.sha);
  }
  EXPECT_EQ(shas, (std::vector<std::string>{"bad3", "bad2", "good"}));
  Result<std::optional<RevisionRecord>> applied = store->LastApplied();
  ASSERT_OK(applied);
  EXPECT_EQ((*applied)->sha, "good");
}

TEST_F(StoreTest, RetentionZeroKeepsEverything) {
  auto store = OpenStore({.retain_runs = 0, .retain_events = 0});
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 5; ++i) {
    Result<int64_t> run = store->BeginRun("timer", "aaa", kT0);
    ASSERT_OK(run);
    ASSERT_OK(store->FinishRun(*run, RunOutcome::kSucceeded, {}, "", kT0));
    ASSERT_OK(store->AddEvent({.at = kT0, .level = "info", .kind = "k", .message = "m"}));
    ASSERT_OK(store->RecordRevision(
        {.sha = "s", .attempted_at = kT0, .outcome = RevisionOutcome::kRejected}));
  }
  ASSERT_OK(store->Prune());
  EXPECT_EQ(store->Runs(0)->size(), 5U);
  EXPECT_EQ(store->Events(0)->size(), 5U);
  EXPECT_EQ(store->Revisions(0)->size(), 5U);
}

// --- lifetime and threads ---

TEST_F(StoreTest, DataSurvivesCloseAndReopen) {
  int64_t run_id = 0;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->UpsertLedger(Entry("ios-0"), kT0));
    ASSERT_OK(store->SetVmsetPrune({{"ios", true}}));
    Result<int64_t> run = store->BeginRun("apply", "aaa", kT0);
    ASSERT_OK(run);
    run_id = *run;
    ASSERT_OK(store->InsertAction(Action(run_id, "ios-0", ActionState::kRunning)));
    Observed observed;
    observed.hosts["mini-01"] = OnlineHost();
    ASSERT_OK(store->SaveHosts(observed));
    ASSERT_OK(store->AddEvent({.at = kT0, .level = "info", .kind = "k", .message = "m"}));
    ASSERT_OK(store->RecordRevision(
        {.sha = "aaa", .attempted_at = kT0, .outcome = RevisionOutcome::kApplied}));
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<Ledger> ledger = store->LoadLedger();
  ASSERT_OK(ledger);
  EXPECT_EQ(ledger->entries, std::vector<LedgerEntry>{Entry("ios-0")});
  EXPECT_EQ(ledger->vmset_prune, (std::map<std::string, bool>{{"ios", true}}));
  Result<std::vector<ActionRecord>> unfinished = store->UnfinishedActions();
  ASSERT_OK(unfinished);
  ASSERT_EQ(unfinished->size(), 1U);
  EXPECT_EQ((*unfinished)[0].run_id, run_id);
  Result<Observed> hosts = store->LoadHosts();
  ASSERT_OK(hosts);
  EXPECT_EQ(hosts->hosts.at("mini-01"), OnlineHost());
  EXPECT_EQ(store->Events(0)->size(), 1U);
  EXPECT_EQ((*store->LastApplied())->sha, "aaa");
}

TEST_F(StoreTest, ManyThreadsShareOneStore) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<int64_t> run = store->BeginRun("apply", "aaa", kT0);
  ASSERT_OK(run);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string vm = "vm-" + std::to_string(t) + "-" + std::to_string(i);
        Result<int64_t> id = store->InsertAction(Action(*run, vm));
        if (!id.ok()) {
          errors[t] = id.status().ToString();
          return;
        }
        ids[t].push_back(*id);
        Status s = store->UpdateActionState(*id, ActionState::kSucceeded, "", kT0);
        Result<std::vector<ActionRecord>> unfinished = store->UnfinishedActions();
        if (!s.ok() || !unfinished.ok()) {
          errors[t] = s.ok() ? unfinished.status().ToString() : s.ToString();
          return;
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  std::set<int64_t> unique;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << "thread " << t;
    unique.insert(ids[t].begin(), ids[t].end());
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));
  Result<std::vector<ActionRecord>> actions = store->Actions(*run);
  ASSERT_OK(actions);
  EXPECT_EQ(actions->size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_TRUE(std::all_of(actions->begin(), actions->end(), [](const ActionRecord& a) {
    return a.state == ActionState::kSucceeded;
  }));
}

// Two connections (as with `flotilla history` reading while the loop writes) wait for each
// other instead of failing.
TEST_F(StoreTest, TwoStoresOnOneFileTakeTurns) {
  auto a = OpenStore();
  auto b = OpenStore();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::string error_a;
  std::string error_b;
  auto write = [](Store& store, const std::string& prefix, std::string& error) {
    for (int i = 0; i < 50 && error.empty(); ++i) {
      Observed observed;
      ObservedHost host = OfflineHost();
      host.name = prefix + std::to_string(i);
      observed.hosts[host.name] = host;
      Status s = store.SaveHosts(observed);
      if (s.ok()) {
        s = store.UpsertLedger(Entry(prefix + std::to_string(i)), kT0);
      }
      if (!s.ok()) {
        error = s.ToString();
      }
    }
  };
  std::thread ta([&] { write(*a, "a-", error_a); });
  std::thread tb([&] { write(*b, "b-", error_b); });
  ta.join();
  tb.join();
  EXPECT_EQ(error_a, "");
  EXPECT_EQ(error_b, "");
  Result<Ledger> ledger = a->LoadLedger();
  ASSERT_OK(ledger);
  EXPECT_EQ(ledger->entries.size(), 100U);
}

}  // namespace
}  // namespace flotilla::store::store_test
