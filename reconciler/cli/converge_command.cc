#include "reconciler/cli/converge_command.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "reconciler/controller/controller.h"
#include "reconciler/controller/git_desired_source.h"
#include "reconciler/controller/loop.h"
#include "reconciler/manifest/config.h"
#include "reconciler/manifest/loader.h"
#include "reconciler/model/clock.h"
#include "reconciler/render/plan_render.h"
#include "reconciler/store/owner_lock.h"
#include "reconciler/store/store.h"

namespace flotilla::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void AddLocationFlags(CLI::App& cmd, StoreLocation& where) {
  cmd.add_option("--config", where.config,
                 "Reconciler configuration (default: $FLOTILLA_CONFIG, else ./flotilla.yaml)");
  cmd.add_option("--state-dir", where.state_dir,
                 "Folder of the store (flotilla.db), its lock and the Git mirror; overrides "
                 "the configuration's stateDir");
  cmd.add_option("--secrets-dir", where.secrets_dir,
                 "Folder of host credentials (<dir>/<credentialsRef>/apiKey, ...); overrides "
                 "the configuration's secretsDir");
}

// The configuration named by `where`, with the command-line overrides applied.
Result<manifest::ReconcilerConfig> LoadConfig(const StoreLocation& where,
                                              const manifest::SchemaValidator& validator,
                                              const Context& context) {
  std::string path = where.config;
  if (path.empty()) {
    // Read once at start-up; nothing in the process sets it.
    if (const char* env = std::getenv("FLOTILLA_CONFIG")) {  // NOLINT(concurrency-mt-unsafe)
      path = env;
    } else if (fs::exists("flotilla.yaml")) {
      path = "flotilla.yaml";
    }
  }
  manifest::ReconcilerConfig config;
  if (!path.empty()) {
    manifest::Diagnostics diagnostics;
    Result<manifest::ReconcilerConfig> loaded =
        manifest::LoadConfigFile(path, validator, diagnostics);
    if (!loaded.ok()) {
      for (const manifest::Diagnostic& d : diagnostics.Sorted()) {
        context.err << d.ToString() << "\n";
      }
      return loaded.status();
    }
    config = std::move(*loaded);
  }
  if (!where.state_dir.empty()) {
    config.state_dir = where.state_dir;
  }
  if (!where.secrets_dir.empty()) {
    config.secrets_dir = where.secrets_dir;
  }
  return config;
}

std::string StorePath(const manifest::ReconcilerConfig& config) {
  return (fs::path(config.state_dir) / "flotilla.db").string();
}

std::string FormatTime(store::Time t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

std::string Short(const std::string& sha) { return sha.substr(0, 7); }

// Everything apply and run share: the configuration, the owner lock, the store, the source and
// the controller, in the order they must be destroyed (reverse).
struct Engine {
  manifest::ReconcilerConfig config;
  std::shared_ptr<const manifest::SchemaValidator> validator;
  std::unique_ptr<manifest::ManifestLoader> loader;
  std::unique_ptr<store::OwnerLock> lock;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<controller::GitDesiredSource> source;
  SystemClock clock;
  std::unique_ptr<controller::Controller> controller;
};

Result<std::unique_ptr<Engine>> OpenEngine(const StoreLocation& where,
                                           controller::ControllerOptions options,
                                           const Context& context) {
  auto engine = std::make_unique<Engine>();
  Result<std::shared_ptr<const manifest::SchemaValidator>> validator =
      manifest::SchemaValidator::Create();
  if (!validator.ok()) {
    return validator.status();
  }
  engine->validator = *validator;
  Result<manifest::ReconcilerConfig> config = LoadConfig(where, **validator, context);
  if (!config.ok()) {
    return config.status();
  }
  engine->config = std::move(*config);
  const manifest::ReconcilerConfig& c = engine->config;
  Result<std::unique_ptr<store::OwnerLock>> lock = store::OwnerLock::Acquire(c.state_dir);
  if (!lock.ok()) {
    return lock.status();
  }
  engine->lock = std::move(*lock);
  Result<std::unique_ptr<store::Store>> store =
      store::Store::Open(StorePath(c), store::StoreOptions{.retain_runs = c.store.retain_runs,
                                                           .retain_events = c.store.retain_events});
  if (!store.ok()) {
    return store.status();
  }
  engine->store = std::move(*store);
  Result<int64_t> stale = engine->store->CloseStaleRuns(
      "the process running it stopped before it finished", engine->clock.Now());
  if (stale.ok() && *stale > 0) {
    context.log->warn(
        "{} run(s) of an earlier process did not finish; their unfinished "
        "actions are settled against the hosts",
        *stale);
  }
  engine->loader = std::make_unique<manifest::ManifestLoader>(*validator);
  Result<std::unique_ptr<controller::GitDesiredSource>> source =
      controller::GitDesiredSource::Open(c, *engine->loader);
  if (!source.ok()) {
    return source.status();
  }
  engine->source = std::move(*source);
  options.secrets_dir = c.secrets_dir;
  options.host_timeout = c.reconcile.host_timeout;
  options.planner.host_lost_after =
      std::chrono::duration_cast<std::chrono::seconds>(c.reconcile.host_lost_after);
  if (!options.planner.max_deletions) {
    options.planner.max_deletions = c.reconcile.max_deletions;
  }
  options.planner.max_deletions_percent = c.reconcile.max_deletions_percent;
  options.executor.concurrency = c.reconcile.concurrency;
  options.executor.per_host_concurrency = c.reconcile.per_host_concurrency;
  options.executor.create_timeout = c.reconcile.create_timeout;
  options.executor.action_timeout = c.reconcile.action_timeout;
  options.executor.max_attempts = c.reconcile.max_attempts;
  engine->controller =
      std::make_unique<controller::Controller>(std::move(options), *engine->store, *engine->source,
                                               context.providers, engine->clock, context.log);
  return engine;
}

// Progress for people: a live line on a terminal, one log line per action otherwise.
class ConsoleProgress : public executor::Progress {
 public:
  ConsoleProgress(const Context& context, bool live) : context_(context), live_(live) {}

  // Shows the how-manieth action this is ("[12/40] create ios-7 on mini-03 ...").
  void Started(const Action& action, int attempt, size_t /*done*/, size_t total) override {
    const size_t done = attempt == 1 ? ++started_ : started_;
    const std::string what = Describe(action);
    if (live_) {
      context_.err << "\r\033[K[" << done << "/" << total << "] " << what
                   << (attempt > 1 ? " (attempt " + std::to_string(attempt) + ")" : "") << " ..."
                   << std::flush;
    } else {
      context_.log->info("[{}/{}] {}{} ...", done, total, what,
                         attempt > 1 ? " (attempt " + std::to_string(attempt) + ")" : "");
    }
  }

  void Finished(const Action& action, executor::Outcome outcome, const Status& status,
                std::chrono::milliseconds elapsed, size_t done, size_t total) override {
    const std::string line = "[" + std::to_string(done) + "/" + std::to_string(total) + "] " +
                             Describe(action) + ": " + std::string(executor::ToString(outcome)) +
                             " in " + Seconds(elapsed) +
                             (status.ok() ? "" : " (" + status.message() + ")");
    if (live_) {
      // Failures stay on screen; successes are overwritten by the next line.
      context_.err << "\r\033[K" << line << (outcome == executor::Outcome::kSucceeded ? "" : "\n")
                   << std::flush;
    } else if (outcome == executor::Outcome::kSucceeded) {
      context_.log->info("{}", line);
    } else {
      context_.log->warn("{}", line);
    }
  }

  void End() {
    if (live_) {
      context_.err << "\r\033[K" << std::flush;
    }
  }

 private:
  static std::string Describe(const Action& action) {
    std::string text = std::string(ToString(action.kind)) + " " + action.vm + " on " + action.host;
    if (action.kind == ActionKind::kReplace && action.from_host != action.host) {
      text += " (from " + action.from_host + ")";
    }
    return text;
  }
  static std::string Seconds(std::chrono::milliseconds elapsed) {
    std::ostringstream out;
    out.precision(1);
    out << std::fixed << static_cast<double>(elapsed.count()) / 1000.0 << "s";
    return out.str();
  }

  const Context& context_;
  bool live_;
  size_t started_ = 0;  // calls come one at a time (executor::Progress)
};

// SIGINT and SIGTERM, turned into a call on a thread of ours: block them in every thread (call
// before starting any), then wait for them on one. `on_signal` runs for the first; a second
// one ends the process at once (exit 130), for a shutdown that takes too long.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int)> on_signal) : on_signal_(std::move(on_signal)) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &previous_);
    thread_ = std::thread([this] {
      const timespec slice{.tv_sec = 0, .tv_nsec = 200'000'000};
      while (!done_) {
        const int sig = sigtimedwait(&set_, nullptr, &slice);
        if (sig > 0 && !signalled_) {
          signalled_ = true;
          on_signal_(sig);
        } else if (sig > 0) {
          static constexpr char kMessage[] = "flotilla: second signal; exiting now\n";
          (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
          std::_Exit(130);
        }
      }
    });
  }
  ~SignalWatcher() {
    done_ = true;
    thread_.join();
    // A signal that arrived after the watcher stopped must not kill the process on unmasking.
    const timespec none{};
    while (sigtimedwait(&set_, nullptr, &none) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::function<void(int)> on_signal_;
  sigset_t set_{};
  sigset_t previous_{};
  std::atomic<bool> done_{false};
  bool signalled_ = false;  // only the watcher thread uses it
  std::thread thread_;
};

// The actions of a plan, as the JSON plan lists them: what a saved plan is compared by.
json ActionsOf(const Plan& plan) {
  json doc = json::parse(render::RenderPlanJson(plan), nullptr, false);
  return doc.is_object() && doc.contains("actions") ? doc["actions"] : json::array();
}

// Checks that the plan saved in `file` is the one about to run. Empty when it is; otherwise
// what changed.
std::string CompareSavedPlan(const std::string& file, const Plan& plan,
                             const std::string& revision) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return "cannot read " + file;
  }
  std::stringstream text;
  text << in.rdbuf();
  json saved = json::parse(text.str(), nullptr, false);
  if (!saved.is_object() || !saved.contains("actions")) {
    return file + " is not a plan written by 'flotilla plan --out' (no actions)";
  }
  if (saved.contains("revision") && saved["revision"].is_string() &&
      saved["revision"].get<std::string>() != revision) {
    return "the plan was made from revision " + saved["revision"].get<std::string>() +
           "; the revision in force is now " + revision;
  }
  const json now = ActionsOf(plan);
  if (saved["actions"] != now) {
    return "the hosts or the ledger changed since the plan was made: it had " +
           std::to_string(saved["actions"].size()) + " action(s), planning now gives " +
           std::to_string(now.size()) + " different ones";
  }
  return "";
}

// The store named by `where`, for the commands that only read it (no lock: a loop may be
// running). NotFound when nothing has been applied from that state directory yet.
Result<std::unique_ptr<store::Store>> OpenExistingStore(const StoreLocation& where,
                                                        const Context& context) {
  Result<std::shared_ptr<const manifest::SchemaValidator>> validator =
      manifest::SchemaValidator::Create();
  if (!validator.ok()) {
    return validator.status();
  }
  Result<manifest::ReconcilerConfig> config = LoadConfig(where, **validator, context);
  if (!config.ok()) {
    return config.status();
  }
  const std::string path = StorePath(*config);
  if (!fs::exists(path)) {
    return Status::NotFound("no store at " + path +
                            ": nothing has been applied from this state directory yet");
  }
  return store::Store::Open(path);
}

int Fail(const Context& context, const Status& status) {
  context.err << "flotilla: " << status.message() << "\n";
  return 1;
}

}  // namespace

CLI::App* AddApplyCommand(CLI::App& app, ApplyOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "apply",
      "One reconcile: fetch the fleet repository, observe the hosts, show the plan, ask for\n"
      "confirmation, then create, replace, start, stop and delete VMs until the hosts match.\n"
      "Every action is journalled in the store (<stateDir>/flotilla.db) before it runs.\n"
      "Exit status: 0 applied or nothing to do; 1 error, refused, cancelled or an action "
      "failed.");
  AddLocationFlags(*cmd, options.where);
  cmd->add_flag("--yes,-y", options.yes,
                "Apply without asking (required when stdin is not a terminal)");
  cmd->add_option("--plan", options.plan_file,
                  "Apply exactly this saved plan (flotilla plan --config ... --out FILE); "
                  "refused if the revision, the hosts or the ledger changed since")
      ->check(CLI::ExistingFile);
  AddDeletionSafetyFlags(*cmd, options.max_deletions, options.allow_empty);
  AddPlanFormatFlag(*cmd, options.format);
  return cmd;
}

CLI::App* AddRunCommand(CLI::App& app, RunOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "run",
      "The control loop: fetch the fleet repository every source.interval, observe the hosts\n"
      "every reconcile.resyncInterval, and converge whenever either changed. A revision that\n"
      "cannot be fetched or fails validation is recorded and the last applied one stays in\n"
      "force, without deletions. SIGTERM or SIGINT: no new actions; those under way get\n"
      "reconcile.shutdownTimeout to finish; exit 0. One loop per state directory.");
  AddLocationFlags(*cmd, options.where);
  cmd->add_option("--pools", options.pools,
                  "Only these pools (comma-separated) and their VM sets: run one loop per "
                  "shard, each with its own --state-dir");
  return cmd;
}

CLI::App* AddHistoryCommand(CLI::App& app, HistoryOptions& options) {
  CLI::App* cmd =
      app.add_subcommand("history", "Recent runs and revisions, from the store (newest first).");
  AddLocationFlags(*cmd, options.where);
  cmd->add_option("--limit", options.limit, "How many runs and revisions")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_flag("--json", options.json, "Print JSON instead of a table");
  return cmd;
}

CLI::App* AddStatusCommand(CLI::App& app, StatusOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "status",
      "What the store knows now: the revision in force, the last run, hosts, owned VMs,\n"
      "unfinished actions and recent events.");
  AddLocationFlags(*cmd, options.where);
  cmd->add_flag("--json", options.json, "Print JSON instead of text");
  return cmd;
}

int RunApply(const ApplyOptions& options, const Context& context) {
  controller::ControllerOptions controller_options;
  controller_options.planner.max_deletions = options.max_deletions;
  controller_options.planner.allow_empty = options.allow_empty;
  Result<std::unique_ptr<Engine>> engine = OpenEngine(options.where, controller_options, context);
  if (!engine.ok()) {
    return Fail(context, engine.status());
  }
  controller::Controller& controller = *(*engine)->controller;
  const controller::SyncResult sync = controller.Sync();
  if (sync.sha.empty()) {
    return Fail(context, Status::FailedPrecondition(sync.problem));
  }
  if (sync.fail_static) {
    context.err << "flotilla: warning: " << sync.problem << "\nflotilla: applying revision "
                << Short(sync.sha) << " (the last applied) with deletions held back\n";
  }
  Result<controller::Prepared> prepared = controller.Prepare();
  if (!prepared.ok()) {
    controller.RecordFailedRun("apply", prepared.status().message());
    return Fail(context, prepared.status());
  }
  const std::string revision = (*engine)->config.source.branch + "@" + Short(prepared->sha);
  if (!options.plan_file.empty()) {
    const std::string changed = CompareSavedPlan(options.plan_file, prepared->plan, revision);
    if (!changed.empty()) {
      context.err << "flotilla: refusing to apply " << options.plan_file << ": " << changed
                  << "\nRun 'flotilla plan --out FILE' again and review it.\n";
      return 1;
    }
  }
  if (!EmitPlan(prepared->plan, options.format, "", revision, context)) {
    return 1;
  }
  if (prepared->plan.actions.empty()) {
    const controller::PassResult result = controller.Execute(*prepared, "apply", nullptr, {});
    context.err << "No changes to apply.\n";
    return result.outcome == store::RunOutcome::kFailed || sync.fail_static ? 1 : 0;
  }
  if (!options.yes && options.plan_file.empty()) {
    if (isatty(STDIN_FILENO) != 1) {
      context.err << "flotilla: refusing to apply without --yes: stdin is not a terminal\n";
      return 1;
    }
    context.err << "\nApply these changes? [y/N] " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") {
      context.err << "Apply cancelled.\n";
      return 1;
    }
  }
  std::stop_source stop;
  controller::PassResult result;
  {
    SignalWatcher signals([&](int sig) {
      context.log->warn("{}: no new actions; waiting for those under way",
                        sig == SIGINT ? "interrupted" : "terminated");
      stop.request_stop();
    });
    ConsoleProgress progress(context, isatty(STDERR_FILENO) == 1);
    result = controller.Execute(*prepared, "apply", &progress, stop.get_token());
    progress.End();
  }
  const executor::Report& report = result.report;
  context.err << "Apply " << (report.failed + report.abandoned == 0 ? "complete" : "incomplete")
              << " (run " << result.run_id << "): " << report.succeeded << " succeeded, "
              << report.failed << " failed, " << report.abandoned << " abandoned.\n";
  for (size_t i = 0; i < report.actions.size(); ++i) {
    const executor::ActionReport& r = report.actions[i];
    if (r.outcome == executor::Outcome::kFailed) {
      const Action& a = prepared->plan.actions[i];
      context.err << "  failed: " << ToString(a.kind) << " " << a.vm << " on " << a.host << ": "
                  << r.status.message() << "\n";
    }
  }
  if (result.outcome == store::RunOutcome::kFailed) {
    context.err << "flotilla: " << result.message << "\n";
    return 1;
  }
  if (sync.fail_static) {
    context.err << "flotilla: the newest revision was not applied: " << sync.problem << "\n";
    return 1;
  }
  return report.failed + report.abandoned == 0 ? 0 : 1;
}

int RunLoop(const RunOptions& options, const Context& context) {
  controller::ControllerOptions controller_options;
  std::stringstream pools(options.pools);
  for (std::string pool; std::getline(pools, pool, ',');) {
    if (!pool.empty()) {
      controller_options.pools.push_back(pool);
    }
  }
  // Signals are blocked before any thread starts, so that only the watcher receives them.
  std::unique_ptr<controller::Loop> loop;
  std::mutex loop_mu;
  bool stop_early = false;
  SignalWatcher signals([&](int sig) {
    context.log->info("{}: shutting down", sig == SIGINT ? "interrupted" : "terminated");
    std::lock_guard lock(loop_mu);
    stop_early = true;
    if (loop) {
      loop->Stop();
    }
  });
  Result<std::unique_ptr<Engine>> engine = OpenEngine(options.where, controller_options, context);
  if (!engine.ok()) {
    return Fail(context, engine.status());
  }
  const manifest::ReconcilerConfig& config = (*engine)->config;
  ConsoleProgress progress(context, false);
  {
    std::lock_guard lock(loop_mu);
    loop = std::make_unique<controller::Loop>(
        *(*engine)->controller,
        controller::LoopOptions{.interval = config.source.interval,
                                .resync_interval = config.reconcile.resync_interval,
                                .shutdown_timeout = config.reconcile.shutdown_timeout},
        context.log, &progress);
    if (stop_early) {
      loop->Stop();
    }
  }
  context.log->info(
      "flotilla run: {} every {} s, hosts every {} s, store {}", (*engine)->source->Describe(),
      std::chrono::duration_cast<std::chrono::seconds>(config.source.interval).count(),
      std::chrono::duration_cast<std::chrono::seconds>(config.reconcile.resync_interval).count(),
      StorePath(config));
  const bool drained = loop->Run();
  if (!drained) {
    // Threads are still inside provider calls; their rows stay `running` and the next start
    // settles them against the hosts. Leave without running destructors under their feet.
    context.log->flush();
    std::_Exit(0);
  }
  context.log->info("stopped");
  return 0;
}

int RunHistory(const HistoryOptions& options, const Context& context) {
  Result<std::unique_ptr<store::Store>> store = OpenExistingStore(options.where, context);
  if (!store.ok()) {
    return Fail(context, store.status());
  }
  Result<std::vector<store::RunRecord>> runs = (*store)->Runs(options.limit);
  Result<std::vector<store::RevisionRecord>> revisions = (*store)->Revisions(options.limit);
  if (!runs.ok() || !revisions.ok()) {
    return Fail(context, runs.ok() ? revisions.status() : runs.status());
  }
  if (options.json) {
    json doc = {{"runs", json::array()}, {"revisions", json::array()}};
    for (const store::RunRecord& r : *runs) {
      doc["runs"].push_back(
          {{"id", r.id},
           {"trigger", r.trigger},
           {"revision", r.revision},
           {"started_at", FormatTime(r.started_at)},
           {"finished_at", r.finished_at ? json(FormatTime(*r.finished_at)) : json(nullptr)},
           {"outcome", store::ToString(r.outcome)},
           {"planned", r.counts.planned},
           {"succeeded", r.counts.succeeded},
           {"failed", r.counts.failed},
           {"abandoned", r.counts.abandoned},
           {"findings", r.counts.findings},
           {"message", r.message}});
    }
    for (const store::RevisionRecord& r : *revisions) {
      doc["revisions"].push_back({{"sha", r.sha},
                                  {"attempted_at", FormatTime(r.attempted_at)},
                                  {"outcome", store::ToString(r.outcome)},
                                  {"reason", r.reason}});
    }
    context.out << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    return 0;
  }
  context.out << "RUN    STARTED               TRIGGER   REVISION  OUTCOME    ACTIONS  "
                 "MESSAGE\n";
  for (const store::RunRecord& r : *runs) {
    char line[160];
    std::snprintf(
        line, sizeof line, "%-6lld %-21s %-9s %-9s %-10s %-8s ", static_cast<long long>(r.id),
        FormatTime(r.started_at).c_str(), r.trigger.c_str(), Short(r.revision).c_str(),
        std::string(store::ToString(r.outcome)).c_str(),
        (std::to_string(r.counts.succeeded) + "/" + std::to_string(r.counts.planned)).c_str());
    context.out << line << r.message << "\n";
  }
  context.out << "\nREVISION  ATTEMPTED             OUTCOME   REASON\n";
  for (const store::RevisionRecord& r : *revisions) {
    char line[96];
    std::snprintf(line, sizeof line, "%-9s %-21s %-9s ",
                  (r.sha.empty() ? std::string("-") : Short(r.sha)).c_str(),
                  FormatTime(r.attempted_at).c_str(),
                  std::string(store::ToString(r.outcome)).c_str());
    context.out << line << r.reason << "\n";
  }
  return 0;
}

int RunStatus(const StatusOptions& options, const Context& context) {
  Result<std::unique_ptr<store::Store>> opened = OpenExistingStore(options.where, context);
  if (!opened.ok()) {
    return Fail(context, opened.status());
  }
  store::Store& s = **opened;
  Result<std::optional<store::RevisionRecord>> applied = s.LastApplied();
  Result<std::optional<store::RevisionRecord>> attempted = s.LastAttempted();
  Result<std::vector<store::RunRecord>> runs = s.Runs(1);
  Result<Ledger> ledger = s.LoadLedger();
  Result<Observed> hosts = s.LoadHosts();
  Result<std::vector<store::ActionRecord>> unfinished = s.UnfinishedActions();
  Result<std::vector<store::EventRecord>> events = s.Events(5);
  if (!applied.ok() || !attempted.ok() || !runs.ok() || !ledger.ok() || !hosts.ok() ||
      !unfinished.ok() || !events.ok()) {
    return Fail(context, Status::Internal("cannot read the store " + s.path()));
  }
  size_t online = 0;
  for (const auto& [name, host] : hosts->hosts) {
    online += host.online ? 1 : 0;
  }
  const bool problem = *attempted && (*attempted)->outcome != store::RevisionOutcome::kApplied;
  if (options.json) {
    json doc = {
        {"applied", *applied ? json((*applied)->sha) : json(nullptr)},
        {"latest_problem", problem ? json({{"sha", (*attempted)->sha},
                                           {"outcome", store::ToString((*attempted)->outcome)},
                                           {"reason", (*attempted)->reason}})
                                   : json(nullptr)},
        {"hosts", {{"total", hosts->hosts.size()}, {"online", online}}},
        {"managed_vms", ledger->entries.size()},
        {"unfinished_actions", unfinished->size()},
        {"last_run", runs->empty() ? json(nullptr)
                                   : json({{"id", runs->front().id},
                                           {"outcome", store::ToString(runs->front().outcome)},
                                           {"started_at", FormatTime(runs->front().started_at)},
                                           {"message", runs->front().message}})}};
    context.out << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    return 0;
  }
  context.out << "Revision in force: "
              << (*applied ? Short((*applied)->sha) + " (applied " +
                                 FormatTime((*applied)->attempted_at) + ")"
                           : std::string("none yet"))
              << "\n";
  if (problem) {
    context.out << "Newest revision:   " << store::ToString((*attempted)->outcome) << " "
                << ((*attempted)->sha.empty() ? "" : Short((*attempted)->sha) + " ") << "- "
                << (*attempted)->reason << "\n";
  }
  if (!runs->empty()) {
    const store::RunRecord& r = runs->front();
    context.out << "Last run:          " << r.id << " (" << r.trigger << ", "
                << FormatTime(r.started_at) << "): " << store::ToString(r.outcome) << ", "
                << r.message << "\n";
  }
  context.out << "Hosts:             " << online << " of " << hosts->hosts.size() << " online\n";
  for (const auto& [name, host] : hosts->hosts) {
    if (!host.online) {
      context.out << "  offline: " << name << " (" << host.pool << "): " << host.error << "\n";
    }
  }
  context.out << "Managed VMs:       " << ledger->entries.size() << "\n";
  if (!unfinished->empty()) {
    context.out << "Unfinished:        " << unfinished->size()
                << " action(s), settled on the next run\n";
  }
  if (!events->empty()) {
    context.out << "Recent events:\n";
    for (const store::EventRecord& e : *events) {
      context.out << "  " << FormatTime(e.at) << " " << e.level << " " << e.kind
                  << (e.subject.empty() ? "" : " " + e.subject)
                  << (e.message.empty() ? "" : ": " + e.message) << "\n";
    }
  }
  return 0;
}

}  // namespace flotilla::cli
