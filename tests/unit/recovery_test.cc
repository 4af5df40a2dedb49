// Decide (reconciler/controller/recovery.h): one test per row of the recovery table in
// docs/converge.md.

#include "reconciler/controller/recovery.h"

#include <gtest/gtest.h>

namespace flotilla::controller {
namespace {

using Row = RecoveryDecision::Row;

store::ActionRecord Record(ActionKind kind, const std::string& host) {
  return store::ActionRecord{.id = 1,
                             .kind = kind,
                             .vm = "set-0",
                             .vmset = "set",
                             .pool = "p",
                             .host = host,
                             .template_hash = "h-new",
                             .state = store::ActionState::kRunning};
}

ObservedHost Host(const std::string& name, std::vector<VmInfo> vms, bool online = true) {
  return ObservedHost{.name = name, .pool = "p", .online = online, .vms = std::move(vms)};
}

Ledger With(const std::string& host, const std::string& id) {
  Ledger ledger;
  ledger.entries.push_back(
      LedgerEntry{.vm = "set-0", .vmset = "set", .pool = "p", .host = host, .provider_id = id});
  return ledger;
}

TEST(RecoveryTest, ACreateThatReachedTheHostAndFinishedIsAdopted) {
  store::ActionRecord a = Record(ActionKind::kCreate, "h1");
  a.pending_temp_name = "set-0.flotilla-1";
  const ObservedHost h1 = Host("h1", {VmInfo{.id = "made", .name = "set-0"}});
  RecoveryDecision d = Decide(a, &h1, nullptr, Ledger{});
  EXPECT_EQ(d.row, Row::kSucceeded);
  ASSERT_TRUE(d.adopt.has_value());
  EXPECT_EQ(d.adopt->provider_id, "made");
  EXPECT_EQ(d.adopt->template_hash, "h-new");
  EXPECT_FALSE(d.finish.has_value());
  // A ledger row for that name there with the id of a VM since gone takes the id seen now.
  d = Decide(a, &h1, nullptr, With("h1", "gone"));
  ASSERT_TRUE(d.adopt.has_value());
  EXPECT_EQ(d.adopt->provider_id, "made");
  // One that already names it needs nothing.
  d = Decide(a, &h1, nullptr, With("h1", "made"));
  EXPECT_EQ(d.row, Row::kSucceeded);
  EXPECT_FALSE(d.adopt.has_value());
}

TEST(RecoveryTest, ACreateThatNeverReachedTheHostAdoptsNothing) {
  const store::ActionRecord a = Record(ActionKind::kCreate, "h1");
  const ObservedHost h1 = Host("h1", {VmInfo{.id = "theirs", .name = "set-0"}});
  const RecoveryDecision d = Decide(a, &h1, nullptr, Ledger{});
  EXPECT_EQ(d.row, Row::kAbandoned);
  EXPECT_FALSE(d.adopt.has_value());
  EXPECT_FALSE(d.resumable);
}

TEST(RecoveryTest, ACreateWithoutItsVmIsResumedIfItReachedTheHost) {
  store::ActionRecord a = Record(ActionKind::kReplace, "h1");
  const ObservedHost h1 = Host("h1", {});
  RecoveryDecision d = Decide(a, &h1, nullptr, Ledger{});
  EXPECT_EQ(d.row, Row::kAbandoned);
  EXPECT_FALSE(d.resumable);
  a.pending_temp_name = "set-0.flotilla-1";
  d = Decide(a, &h1, nullptr, Ledger{});
  EXPECT_EQ(d.row, Row::kAbandoned);
  EXPECT_TRUE(d.resumable);
}

TEST(RecoveryTest, AFinishedCreateFirstReplaceDeletesItsPredecessorThroughThePlan) {
  store::ActionRecord a = Record(ActionKind::kReplace, "h2");
  a.from_host = "h1";
  a.create_first = true;
  a.predecessor_id = "old";
  a.pending_temp_name = "set-0.flotilla-1";
  const ObservedHost h2 = Host("h2", {VmInfo{.id = "new", .name = "set-0"}});
  const ObservedHost h1 = Host("h1", {VmInfo{.id = "old", .name = "set-0"}});
  RecoveryDecision d = Decide(a, &h2, &h1, With("h1", "old"));
  EXPECT_EQ(d.row, Row::kOpen) << "open until the predecessor is gone";
  ASSERT_TRUE(d.adopt.has_value());
  EXPECT_EQ(d.adopt->host, "h2");
  ASSERT_TRUE(d.finish.has_value());
  EXPECT_EQ(d.finish->host, "h1");
  EXPECT_EQ(d.finish->vm_id, "old");
  // Gone: done.
  const ObservedHost empty = Host("h1", {});
  d = Decide(a, &h2, &empty, With("h2", "new"));
  EXPECT_EQ(d.row, Row::kSucceeded);
  EXPECT_FALSE(d.finish.has_value());
  // The predecessor's host does not answer: adopt, and wait for it.
  const ObservedHost offline = Host("h1", {}, /*online=*/false);
  d = Decide(a, &h2, &offline, With("h1", "old"));
  EXPECT_EQ(d.row, Row::kOpen);
  EXPECT_TRUE(d.adopt.has_value());
  EXPECT_FALSE(d.finish.has_value());
}

TEST(RecoveryTest, ADeleteByIdOfACopyTheLedgerDoesNotNameIsFinishedThroughThePlan) {
  store::ActionRecord a = Record(ActionKind::kDelete, "h1");
  a.predecessor_id = "old";
  const ObservedHost h1 = Host("h1", {VmInfo{.id = "old", .name = "set-0"}});
  RecoveryDecision d = Decide(a, &h1, nullptr, With("h2", "new"));
  EXPECT_EQ(d.row, Row::kOpen);
  ASSERT_TRUE(d.finish.has_value());
  EXPECT_EQ(d.finish->vm_id, "old");
  // The ledger says that copy is the managed VM: never deleted on the journal's word.
  d = Decide(a, &h1, nullptr, With("h1", "old"));
  EXPECT_EQ(d.row, Row::kAbandoned);
  EXPECT_FALSE(d.finish.has_value());
  // Its id is gone while another VM carries the name: the delete happened.
  const ObservedHost other = Host("h1", {VmInfo{.id = "another", .name = "set-0"}});
  d = Decide(a, &other, nullptr, With("h2", "new"));
  EXPECT_EQ(d.row, Row::kSucceeded);
  EXPECT_FALSE(d.drop_ledger);
}

TEST(RecoveryTest, ADeleteWhoseVmIsGoneDropsItsLedgerRow) {
  const store::ActionRecord a = Record(ActionKind::kDelete, "h1");
  const ObservedHost h1 = Host("h1", {});
  RecoveryDecision d = Decide(a, &h1, nullptr, With("h1", "x"));
  EXPECT_EQ(d.row, Row::kSucceeded);
  EXPECT_TRUE(d.drop_ledger);
  d = Decide(a, &h1, nullptr, With("h2", "x"));  // the ledger's VM is elsewhere: kept
  EXPECT_FALSE(d.drop_ledger);
}

TEST(RecoveryTest, AnythingElseIsPlannedAgain) {
  const ObservedHost h1 = Host("h1", {VmInfo{.id = "x", .name = "set-0"}});
  for (ActionKind kind : {ActionKind::kStart, ActionKind::kStop, ActionKind::kPrepull,
                          ActionKind::kAdopt, ActionKind::kDelete}) {
    const RecoveryDecision d = Decide(Record(kind, "h1"), &h1, nullptr, With("h1", "x"));
    EXPECT_EQ(d.row, Row::kAbandoned) << ToString(kind);
    EXPECT_FALSE(d.finish.has_value());
    EXPECT_FALSE(d.adopt.has_value());
  }
}

TEST(RecoveryTest, AnyActionOnAHostThatDoesNotAnswerWaits) {
  const ObservedHost offline = Host("h1", {}, /*online=*/false);
  for (ActionKind kind :
       {ActionKind::kCreate, ActionKind::kReplace, ActionKind::kDelete, ActionKind::kStart}) {
    store::ActionRecord a = Record(kind, "h1");
    a.pending_temp_name = "set-0.flotilla-1";
    a.predecessor_id = "old";
    for (const ObservedHost* host : {&offline, static_cast<const ObservedHost*>(nullptr)}) {
      const RecoveryDecision d = Decide(a, host, nullptr, With("h1", "old"));
      EXPECT_EQ(d.row, Row::kOpen) << ToString(kind);
      EXPECT_FALSE(d.finish || d.adopt || d.drop_ledger || d.resumable) << ToString(kind);
    }
  }
}

}  // namespace
}  // namespace flotilla::controller
