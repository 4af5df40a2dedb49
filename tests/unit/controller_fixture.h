#pragma once

// What the controller's tests share (controller_test.cc, controller_source_test.cc): a scripted
// source, a fleet of VM sets, and a controller with a real SQLite store and the in-memory
// FakeProvider. A named namespace: the unity build compiles those files together.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "providers/fake_provider.h"
#include "reconciler/controller/controller.h"
#include "reconciler/model/template_hash.h"
#include "tests/support/fake_factory.h"
#include "tests/support/process.h"
#include "tests/support/status.h"

namespace flotilla::controller::controller_test {

using providers::FakeProvider;

// Revisions by SHA; Poll answers `tip` (or `poll_error`).
class ScriptedSource : public DesiredSource {
 public:
  Result<std::string> Poll() override {
    if (!poll_error.ok()) {
      return poll_error;
    }
    return tip;
  }
  Result<manifest::LoadResult> Load(const std::string& sha) override {
    auto it = revisions.find(sha);
    if (it == revisions.end()) {
      return Status::NotFound("no revision " + sha);
    }
    return it->second;
  }
  std::string Describe() const override { return "scripted"; }
  std::vector<std::string> TakeWarnings() override { return warnings; }
  std::optional<CommitSummary> Commit(const std::string& sha) override {
    ++commits_asked;
    return CommitSummary{.sha = sha, .subject = "subject of " + sha, .author = "A", .time = 7};
  }

  std::string tip;
  int commits_asked = 0;
  std::vector<std::string> warnings;  // said by every poll
  Status poll_error;
  std::map<std::string, manifest::LoadResult> revisions;
};

inline manifest::LoadResult Fleet(uint32_t replicas, bool prune = true,
                                  std::string image = "catalog://L/1") {
  manifest::LoadResult result;
  HostPool pool;
  pool.meta.name = "p";
  pool.provider = "fake";
  for (const char* name : {"h1", "h2"}) {
    HostSpec host;
    host.name = name;
    host.address = name;
    host.max_vms = 4;
    pool.hosts.push_back(host);
  }
  VMSet set;
  set.meta.name = "set";
  set.pool = "p";
  set.replicas = replicas;
  set.prune = prune;
  set.templ.image = std::move(image);
  set.templ.os = GuestOs::kLinux;
  set.templ.cpu = 2;
  set.templ.memory = Quantity::FromBytes(uint64_t{2} << 30);
  set.templ.state = PowerState::kStopped;
  result.desired.pools.push_back(pool);
  result.desired.sets.push_back(set);
  result.documents = 2;
  result.files = 1;
  return result;
}

class ControllerTest : public ::testing::Test {
 protected:
  ControllerTest() {
    fake_.AddHost("h1");
    fake_.AddHost("h2");
    EXPECT_TRUE(registry_.Register(std::make_unique<testing::FakeForwarderFactory>(fake_)).ok());
    store_ = std::move(*store::Store::Open((dir_.path() / "flotilla.db").string()));
    options_.executor.initial_backoff = std::chrono::milliseconds(1);
    options_.planner.host_lost_after = std::chrono::minutes(10);
    logger_ = std::make_shared<spdlog::logger>("test");
  }

  Controller& Make() {
    controller_ =
        std::make_unique<Controller>(options_, *store_, source_, registry_, clock_, logger_);
    return *controller_;
  }

  // One pass; the plan it ran.
  Plan Pass(Controller& c) {
    Result<Prepared> prepared = c.Prepare();
    EXPECT_TRUE(prepared.ok()) << prepared.status().ToString();
    if (!prepared.ok()) {
      return {};
    }
    c.Execute(*prepared, "test", nullptr, {});
    return prepared->plan;
  }

  std::vector<std::string> Names(const std::string& host) {
    std::vector<std::string> names;
    for (const VmInfo& vm : fake_.Vms(host)) {
      names.push_back(vm.name);
    }
    return names;
  }

  // A ledger entry of the set "set": Flotilla owns `vm` on `host`, with the host's id `id`.
  void Own(const std::string& vm, const std::string& host, const std::string& id,
           const std::string& template_hash = "") {
    EXPECT_OK(store_->UpsertLedger(
        LedgerEntry{.vm = vm,
                    .vmset = "set",
                    .pool = "p",
                    .host = host,
                    .provider_id = id,
                    .template_hash = template_hash.empty() ? hash_ : template_hash},
        clock_.Now()));
  }

  store::ActionRecord Journalled(ActionKind kind, const std::string& vm, const std::string& host) {
    const int64_t run = *store_->BeginRun("apply", "sha1", clock_.Now());
    store::ActionRecord a{.run_id = run,
                          .plan_action_id = 1,
                          .kind = kind,
                          .vm = vm,
                          .vmset = "set",
                          .pool = "p",
                          .host = host,
                          .template_hash = hash_,
                          .state = store::ActionState::kRunning,
                          .started_at = clock_.Now()};
    return a;
  }

  // A create-first replace of set-0 from h1 (id "old") to h2 that reached h2 and was cut short.
  store::ActionRecord JournalledCreateFirstReplace() {
    store::ActionRecord a = Journalled(ActionKind::kReplace, "set-0", "h2");
    a.from_host = "h1";
    a.create_first = true;
    a.predecessor_id = "old";
    a.pending_temp_name = "set-0.flotilla-2";
    return a;
  }

  testing::ScratchDir dir_;
  FakeProvider fake_;
  providers::ProviderRegistry registry_;
  std::unique_ptr<store::Store> store_;
  ScriptedSource source_;
  ManualClock clock_;
  ControllerOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<Controller> controller_;
  std::string hash_ = TemplateHash(Fleet(1).desired.sets[0].templ);
};

}  // namespace flotilla::controller::controller_test
