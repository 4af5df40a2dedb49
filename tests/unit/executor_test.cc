// The executor against the in-memory FakeProvider: ordering, journalling, retries, limits and
// cancellation. The same executor runs against flotilla-hostsim in the converge tests.

#include "reconciler/executor/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "providers/fake_provider.h"
#include "tests/support/forwarding_provider.h"
#include "tests/support/wait_until.h"

namespace flotilla::executor {
namespace {

using providers::FakeProvider;

// Records every journal call as a line, and the ledger it implies.
class RecordingJournal : public Journal {
 public:
  Result<int64_t> Intend(const Attempt& attempt) override {
    std::lock_guard lock(mu_);
    if (fail_intend) {
      return Status::Unavailable("disk full");
    }
    const int64_t id = ++next_;
    what_[id] = std::string(ToString(attempt.action->kind)) + " " + attempt.action->vm;
    lines.push_back("intend " + what_[id] + " #" + std::to_string(attempt.attempt));
    return id;
  }
  Status Running(int64_t id) override { return Add("running " + Name(id)); }
  Status Pending(int64_t id, const providers::PendingCreate& pending) override {
    if (fail_pending) {
      return Status::ResourceExhausted("database or disk is full");
    }
    return Add("pending " + Name(id) + " " + pending.temp_name);
  }
  Status Doing(int64_t id, std::string_view what) override {
    return Add("doing " + Name(id) + ": " + std::string(what));
  }
  Status Finished(int64_t id, Outcome outcome, std::string_view /*error*/) override {
    return Add(std::string(ToString(outcome)) + " " + Name(id));
  }
  Status VmCreated(const LedgerEntry& entry) override {
    std::lock_guard lock(mu_);
    if (fail_created) {
      return Status::ResourceExhausted("database or disk is full");
    }
    ledger[entry.vm] = entry;
    lines.push_back("created " + entry.vm + " on " + entry.host);
    return Status::Ok();
  }
  Status VmDeleted(std::string_view vm, std::string_view host) override {
    std::lock_guard lock(mu_);
    auto it = ledger.find(std::string(vm));
    if (it != ledger.end() && it->second.host == host) {
      ledger.erase(it);
    }
    lines.push_back("deleted " + std::string(vm) + " on " + std::string(host));
    return Status::Ok();
  }

  size_t Count(const std::string& line) {
    std::lock_guard lock(mu_);
    return static_cast<size_t>(std::count(lines.begin(), lines.end(), line));
  }
  // Position of the first `line`, or -1.
  int IndexOf(const std::string& line) {
    std::lock_guard lock(mu_);
    auto it = std::find(lines.begin(), lines.end(), line);
    return it == lines.end() ? -1 : static_cast<int>(it - lines.begin());
  }

  std::vector<std::string> lines;
  std::map<std::string, LedgerEntry> ledger;
  bool fail_intend = false;
  bool fail_pending = false;  // set before Run: read by worker threads
  bool fail_created = false;

 private:
  Status Add(std::string line) {
    std::lock_guard lock(mu_);
    lines.push_back(std::move(line));
    return Status::Ok();
  }
  std::string Name(int64_t id) { return what_[id]; }

  std::mutex mu_;
  int64_t next_ = 0;
  std::map<int64_t, std::string> what_;
};

// Wraps the fake: slows creates down and measures how many calls overlap, in all and per host;
// remembers what Create was asked to resume.
class MeasuringProvider : public testing::ForwardingProvider {
 public:
  explicit MeasuringProvider(FakeProvider& fake) : ForwardingProvider(fake) {}

  std::string_view name() const override { return "measuring"; }
  Result<providers::ExecResult> Exec(const providers::HostRef& host, std::string_view vm,
                                     std::string_view script,
                                     const std::map<std::string, std::string>& env,
                                     providers::Deadline deadline) override {
    Result<providers::ExecResult> result = target().Exec(host, vm, script, env, deadline);
    if (result.ok() && script.starts_with("exit ")) {  // "exit N" exits with N
      result->exit_code = std::stoi(std::string(script.substr(5)));
      result->stderr_text = "boom";
    }
    return result;
  }

  Result<providers::CreateResult> Create(const providers::HostRef& host,
                                         const providers::CreateRequest& request,
                                         providers::Deadline deadline) override {
    Enter(host.name);
    {
      std::lock_guard lock(mu_);
      if (request.resume) {
        resumed.push_back(request.name + " from " + request.resume->temp_name);
      }
    }
    if (request.on_progress) {
      request.on_progress(providers::PendingCreate{.temp_name = request.name + ".flotilla-t"});
    }
    std::this_thread::sleep_for(create_delay);  // the work itself, so that calls overlap
    if (hang) {
      hanging = true;  // the pending create is reported and the create hangs
    }
    while (hang && !(request.cancelled && request.cancelled())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Leave(host.name);
    if (hang) {
      return Status::Cancelled("create cancelled");
    }
    return target().Create(host, request, deadline);
  }

  std::chrono::milliseconds create_delay{0};
  std::atomic<bool> hang{false};     // creates hang until cancelled
  std::atomic<bool> hanging{false};  // a create is hanging now
  int max_total = 0;
  std::map<std::string, int> max_per_host;
  std::vector<std::string> resumed;

 private:
  void Enter(const std::string& host) {
    std::lock_guard lock(mu_);
    max_total = std::max(max_total, ++total_);
    max_per_host[host] = std::max(max_per_host[host], ++per_host_[host]);
  }
  void Leave(const std::string& host) {
    std::lock_guard lock(mu_);
    --total_;
    --per_host_[host];
  }
  std::mutex mu_;
  int total_ = 0;
  std::map<std::string, int> per_host_;
};

VMTemplate Template(std::string script = "") {
  VMTemplate t;
  t.image = "catalog://BASE/v1";
  t.os = GuestOs::kLinux;
  t.arch = Arch::kArm64;
  t.cpu = 2;
  t.memory = Quantity::FromBytes(uint64_t{2} << 30);
  t.startup_script = std::move(script);
  return t;
}

class ExecutorTest : public ::testing::Test {
 protected:
  ExecutorTest() {
    for (const char* name : {"h1", "h2", "h3"}) {
      fake_.AddHost(name);
      fleet_.hosts[name] = providers::HostRef{.pool = "p", .name = name, .address = name};
    }
    fleet_.providers["p"] = &provider_;
    options_.initial_backoff = std::chrono::milliseconds(1);
    options_.max_backoff = std::chrono::milliseconds(4);
    options_.jitter_seed = 7;
  }

  Action Create(int id, const std::string& vm, const std::string& host,
                const std::string& script = "") {
    return Action{.id = id,
                  .kind = ActionKind::kCreate,
                  .vm = vm,
                  .vmset = "set",
                  .pool = "p",
                  .host = host,
                  .templ = Template(script),
                  .template_hash = "hash-1"};
  }
  static Action Simple(int id, ActionKind kind, const std::string& vm, const std::string& host,
                       std::vector<int> deps = {}) {
    return Action{.id = id,
                  .kind = kind,
                  .vm = vm,
                  .vmset = "set",
                  .pool = "p",
                  .host = host,
                  .depends_on = std::move(deps)};
  }

  Report Run(const Plan& plan, std::stop_token stop = {}) {
    Context context{.fleet = &fleet_, .journal = &journal_, .ledger = &ledger_};
    context.resume = resume_;
    return Executor(options_).Run(plan, context, std::move(stop));
  }

  std::optional<VmInfo> Vm(const std::string& host, const std::string& name) {
    for (const VmInfo& vm : fake_.Vms(host)) {
      if (vm.name == name) {
        return vm;
      }
    }
    return std::nullopt;
  }

  FakeProvider fake_;
  MeasuringProvider provider_{fake_};
  Fleet fleet_;
  RecordingJournal journal_;
  Ledger ledger_;
  std::map<std::string, providers::PendingCreate> resume_;
  ExecutorOptions options_;
};

TEST_F(ExecutorTest, CreatesThenStartsAndRunsTheStartupScript) {
  Plan plan;
  plan.actions = {Create(1, "set-0", "h1", "echo ready"),
                  Simple(2, ActionKind::kStart, "set-0", "h1", {1})};
  const Report report = Run(plan);
  EXPECT_EQ(report.succeeded, 2U);
  ASSERT_TRUE(Vm("h1", "set-0"));
  EXPECT_EQ(Vm("h1", "set-0")->state, VmState::kRunning);
  EXPECT_EQ(fake_.Executions("h1", "set-0"), std::vector<std::string>{"echo ready"});
  // Journal first, and the ledger row as soon as the host confirmed the VM, before the start.
  EXPECT_LT(journal_.IndexOf("intend create set-0 #1"), journal_.IndexOf("running create set-0"));
  EXPECT_LT(journal_.IndexOf("pending create set-0 set-0.flotilla-t"),
            journal_.IndexOf("created set-0 on h1"));
  EXPECT_LT(journal_.IndexOf("created set-0 on h1"), journal_.IndexOf("intend start set-0 #1"));
  // What the provider said it was doing reached the journal (for the API) on the way.
  EXPECT_TRUE(std::any_of(journal_.lines.begin(), journal_.lines.end(), [](const std::string& l) {
    return l.starts_with("doing create set-0: copying ");
  }));
  EXPECT_EQ(journal_.ledger.at("set-0").template_hash, "hash-1");
  EXPECT_EQ(journal_.ledger.at("set-0").provider_id, Vm("h1", "set-0")->id);
}

// A prepull stages the image on its host before the replacement that depends on it; a failed
// one holds that replacement back.
TEST_F(ExecutorTest, PrepullsRunBeforeTheCreatesThatWaitForThem) {
  Plan plan;
  Action prepull = Simple(1, ActionKind::kPrepull, "", "h1");
  prepull.templ = Template("");
  plan.actions = {prepull, Create(2, "set-0", "h1")};
  plan.actions[1].depends_on = {1};
  Report report = Run(plan);
  EXPECT_EQ(report.succeeded, 2U);
  EXPECT_EQ(fake_.Observe(fleet_.hosts.at("h1"), {}).facts.cached_images,
            std::vector<std::string>{Template("").image});
  EXPECT_LT(journal_.IndexOf("succeeded prepull "), journal_.IndexOf("intend create set-0 #1"));

  fake_.FailNext("prepull", Status::FailedPrecondition("no disk"), 1);
  plan.actions[1].vm = "set-1";
  report = Run(plan);
  EXPECT_EQ(report.failed, 1U);
  EXPECT_FALSE(Vm("h1", "set-1").has_value()) << "the create waits for its prepull";
}

TEST_F(ExecutorTest, RetriesRetryableErrorsWithANewJournalRowPerAttempt) {
  fake_.FailNext("create", Status::Unavailable("503"), 2);
  Plan plan;
  plan.actions = {Create(1, "set-0", "h1")};
  const Report report = Run(plan);
  ASSERT_EQ(report.succeeded, 1U);
  EXPECT_EQ(report.actions[0].attempts, 3);
  EXPECT_EQ(journal_.Count("failed create set-0"), 2U);
  EXPECT_EQ(journal_.Count("succeeded create set-0"), 1U);
  EXPECT_EQ(journal_.Count("intend create set-0 #3"), 1U);
}

TEST_F(ExecutorTest, GivesUpAfterMaxAttempts) {
  options_.max_attempts = 3;
  fake_.FailNext("create", Status::DeadlineExceeded("slow"), 10);
  Plan plan;
  plan.actions = {Create(1, "set-0", "h1")};
  const Report report = Run(plan);
  EXPECT_EQ(report.failed, 1U);
  EXPECT_EQ(report.actions[0].attempts, 3);
  EXPECT_EQ(fake_.Calls("create"), 3);
}

TEST_F(ExecutorTest, TerminalErrorsAreNotRetriedAndDependentsAreSkipped) {
  fake_.FailNext("create", Status::FailedPrecondition("image not found"));
  Plan plan;
  plan.actions = {Create(1, "set-0", "h1"), Simple(2, ActionKind::kStart, "set-0", "h1", {1})};
  const Report report = Run(plan);
  EXPECT_EQ(report.failed, 1U);
  EXPECT_EQ(report.abandoned, 1U);
  EXPECT_EQ(report.actions[0].attempts, 1);
  EXPECT_EQ(fake_.Calls("start"), 0);
  EXPECT_EQ(journal_.Count("abandoned start set-0"), 1U);
}

TEST_F(ExecutorTest, FailingStartupScriptFailsTheStart) {
  Plan plan;
  plan.actions = {Create(1, "set-0", "h1", "exit 3"),
                  Simple(2, ActionKind::kStart, "set-0", "h1", {1})};
  const Report report = Run(plan);
  EXPECT_EQ(report.actions[1].outcome, Outcome::kFailed);
  EXPECT_NE(report.actions[1].status.message().find("exited with 3"), std::string::npos)
      << report.actions[1].status.ToString();
}

TEST_F(ExecutorTest, WithoutAJournalRecordTheProviderIsNotCalled) {
  journal_.fail_intend = true;
  Plan plan;
  plan.actions = {Create(1, "set-0", "h1")};
  const Report report = Run(plan);
  EXPECT_EQ(report.failed, 1U);
  EXPECT_EQ(fake_.Calls("create"), 0);
}

TEST_F(ExecutorTest, AfterAJournalWriteFailsNoHostIsCalledAgain) {
  options_.concurrency = 1;  // one action after another
  journal_.fail_created = true;
  Plan plan;
  for (int i = 0; i < 4; ++i) {
    plan.actions.push_back(Create(i + 1, "set-" + std::to_string(i), "h1"));
  }
  const Report report = Run(plan);
  // The first create reached its host; its ledger row could not be written, and from then on
  // nothing is asked of any host: no retry, no other action.
  EXPECT_EQ(fake_.Calls("create"), 1);
  EXPECT_EQ(report.succeeded, 0U);
  EXPECT_EQ(report.failed + report.abandoned, 4U);
  EXPECT_TRUE(report.actions[3].status.message().find("journal") != std::string::npos)
      << report.actions[3].status.ToString();
}

TEST_F(ExecutorTest, ACreateWhoseTemporaryNameCannotBeJournalledNeverReachesItsHost) {
  journal_.fail_pending = true;
  Plan plan;
  plan.actions = {Create(1, "set-0", "h1")};
  const Report report = Run(plan);
  EXPECT_EQ(report.succeeded, 0U);
  EXPECT_FALSE(Vm("h1", "set-0").has_value()) << "the VM was made under an unrecorded name";
  EXPECT_TRUE(fake_.Vms("h1").empty());
}

TEST_F(ExecutorTest, HonoursGlobalAndPerHostConcurrency) {
  options_.concurrency = 4;
  options_.per_host_concurrency = 2;
  provider_.create_delay = std::chrono::milliseconds(30);
  Plan plan;
  for (int i = 0; i < 18; ++i) {
    plan.actions.push_back(
        Create(i + 1, "set-" + std::to_string(i), i % 3 == 0 ? "h1" : (i % 3 == 1 ? "h2" : "h3")));
  }
  const Report report = Run(plan);
  EXPECT_EQ(report.succeeded, 18U);
  EXPECT_LE(provider_.max_total, 4);
  EXPECT_GE(provider_.max_total, 2);  // it did run things at once
  for (const auto& [host, most] : provider_.max_per_host) {
    EXPECT_LE(most, 2) << host;
  }
}

TEST_F(ExecutorTest, ReplaceCreateFirstBuildsTheNewVmBeforeDeletingTheOld) {
  (void)fake_.Create(fleet_.hosts["h1"],
                     providers::CreateRequest{.name = "set-0", .templ = Template()},
                     providers::DeadlineIn(std::chrono::seconds(1)));
  ledger_.entries.push_back(LedgerEntry{.vm = "set-0",
                                        .vmset = "set",
                                        .pool = "p",
                                        .host = "h1",
                                        .provider_id = Vm("h1", "set-0")->id,
                                        .template_hash = "hash-0"});
  Action replace = Create(1, "set-0", "h2");
  replace.kind = ActionKind::kReplace;
  replace.from_host = "h1";
  replace.create_first = true;
  Plan plan;
  plan.actions = {replace};
  const Report report = Run(plan);
  ASSERT_EQ(report.succeeded, 1U) << report.actions[0].status.ToString();
  EXPECT_FALSE(Vm("h1", "set-0"));
  ASSERT_TRUE(Vm("h2", "set-0"));
  EXPECT_EQ(journal_.ledger.at("set-0").host, "h2");
}

TEST_F(ExecutorTest, ReplaceDeleteFirstOnTheSameHost) {
  (void)fake_.Create(fleet_.hosts["h1"],
                     providers::CreateRequest{.name = "set-0", .templ = Template()},
                     providers::DeadlineIn(std::chrono::seconds(1)));
  const std::string old_id = Vm("h1", "set-0")->id;
  ledger_.entries.push_back(
      LedgerEntry{.vm = "set-0", .vmset = "set", .pool = "p", .host = "h1", .provider_id = old_id});
  Action replace = Create(1, "set-0", "h1");
  replace.kind = ActionKind::kReplace;
  replace.from_host = "h1";
  Plan plan;
  plan.actions = {replace};
  const Report report = Run(plan);
  ASSERT_EQ(report.succeeded, 1U) << report.actions[0].status.ToString();
  ASSERT_TRUE(Vm("h1", "set-0"));
  EXPECT_NE(Vm("h1", "set-0")->id, old_id);
  EXPECT_LT(journal_.IndexOf("deleted set-0 on h1"), journal_.IndexOf("created set-0 on h1"));
}

TEST_F(ExecutorTest, ARetriedReplaceDoesNotCreateTwice) {
  (void)fake_.Create(fleet_.hosts["h1"],
                     providers::CreateRequest{.name = "set-0", .templ = Template()},
                     providers::DeadlineIn(std::chrono::seconds(1)));
  Action replace = Create(1, "set-0", "h2");
  replace.kind = ActionKind::kReplace;
  replace.from_host = "h1";
  replace.create_first = true;
  fake_.FailNext("delete", Status::Unavailable("503"));
  Plan plan;
  plan.actions = {replace};
  const int seeded = fake_.Calls("create");
  const Report report = Run(plan);
  ASSERT_EQ(report.succeeded, 1U);
  EXPECT_EQ(fake_.Calls("create") - seeded, 1);
  EXPECT_EQ(fake_.Calls("delete"), 2);
}

TEST_F(ExecutorTest, NeverAdoptsAVmItDidNotStartToCreate) {
  fake_.PutVm("h1", VmInfo{.id = "theirs", .name = "set-0", .state = VmState::kStopped});
  Plan plan;
  plan.actions = {Create(1, "set-0", "h1")};
  options_.max_attempts = 1;
  // MeasuringProvider reports progress before creating, like the real provider; use the fake
  // directly so that nothing was reported when the existing VM is found.
  fleet_.providers["p"] = &fake_;
  const Report report = Run(plan);
  EXPECT_EQ(report.failed, 1U);
  EXPECT_EQ(report.actions[0].status.code(), Status::Code::kConflict);
  EXPECT_FALSE(journal_.ledger.contains("set-0"));
}

TEST_F(ExecutorTest, AReplaceWhosePredecessorCannotBeDeletedLeavesItsDeleteJournalled) {
  (void)fake_.Create(fleet_.hosts["h1"],
                     providers::CreateRequest{.name = "set-0", .templ = Template()},
                     providers::DeadlineIn(std::chrono::seconds(1)));
  const std::string old_id = Vm("h1", "set-0")->id;
  ledger_.entries.push_back(
      LedgerEntry{.vm = "set-0", .vmset = "set", .pool = "p", .host = "h1", .provider_id = old_id});
  Action replace = Create(1, "set-0", "h2");
  replace.kind = ActionKind::kReplace;
  replace.from_host = "h1";
  replace.create_first = true;
  options_.max_attempts = 2;
  fake_.FailNext("delete", Status::Unavailable("host gone"), 5);
  Plan plan;
  plan.actions = {replace};
  const Report report = Run(plan);
  EXPECT_EQ(report.failed, 1U);
  EXPECT_EQ(journal_.ledger.at("set-0").host, "h2");
  // An intended delete of the predecessor stays behind for recovery.
  EXPECT_EQ(journal_.Count("intend delete set-0 #1"), 1U);
  EXPECT_EQ(journal_.Count("succeeded delete set-0") + journal_.Count("failed delete set-0"), 0U);
}

TEST_F(ExecutorTest, DeleteRemovesTheLedgerRow) {
  (void)fake_.Create(fleet_.hosts["h3"],
                     providers::CreateRequest{.name = "set-9", .templ = Template()},
                     providers::DeadlineIn(std::chrono::seconds(1)));
  journal_.ledger["set-9"] = LedgerEntry{.vm = "set-9", .host = "h3"};
  Plan plan;
  plan.actions = {Simple(1, ActionKind::kDelete, "set-9", "h3")};
  EXPECT_EQ(Run(plan).succeeded, 1U);
  EXPECT_FALSE(Vm("h3", "set-9"));
  EXPECT_FALSE(journal_.ledger.contains("set-9"));
}

TEST_F(ExecutorTest, PassesAJournalledPendingCreateBackToTheProvider) {
  resume_["set-0@h1"] = providers::PendingCreate{.temp_name = "set-0.flotilla-old"};
  Plan plan;
  plan.actions = {Create(1, "set-0", "h1"), Create(2, "set-1", "h2")};
  EXPECT_EQ(Run(plan).succeeded, 2U);
  EXPECT_EQ(provider_.resumed, std::vector<std::string>{"set-0 from set-0.flotilla-old"});
}

TEST_F(ExecutorTest, StoppedBeforeRunningAbandonsEverything) {
  std::stop_source stop;
  stop.request_stop();
  Plan plan;
  plan.actions = {Create(1, "set-0", "h1"), Simple(2, ActionKind::kStart, "set-0", "h1", {1})};
  const Report report = Run(plan, stop.get_token());
  EXPECT_EQ(report.abandoned, 2U);
  EXPECT_TRUE(report.cancelled);
  EXPECT_EQ(fake_.Calls("create"), 0);
}

TEST_F(ExecutorTest, CancellationReleasesAHangingCreateAndAbandonsTheRest) {
  provider_.hang = true;
  options_.concurrency = 1;
  Plan plan;
  plan.actions = {Create(1, "set-0", "h1"), Create(2, "set-1", "h1")};
  std::stop_source stop;
  // Cancels once the first create hangs (it has reported its pending create by then); the
  // deadline only keeps a broken executor from hanging the test.
  std::thread canceller([&] {
    testing::WaitUntil([&] { return provider_.hanging.load(); }, std::chrono::seconds(60));
    stop.request_stop();
  });
  const Report report = Run(plan, stop.get_token());
  canceller.join();
  EXPECT_TRUE(provider_.hanging) << "the create never hung";
  EXPECT_EQ(report.abandoned, 2U);
  EXPECT_EQ(journal_.Count("abandoned create set-0"), 1U);
  // What the create reported stays journalled for the next run to resume.
  EXPECT_EQ(journal_.Count("pending create set-0 set-0.flotilla-t"), 1U);
}

}  // namespace
}  // namespace flotilla::executor
