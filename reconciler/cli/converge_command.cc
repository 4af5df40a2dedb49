#include "reconciler/cli/converge_command.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "reconciler/api/server.h"
#include "reconciler/api/telemetry.h"
#include "reconciler/cli/api_secrets.h"
#include "reconciler/controller/controller.h"
#include "reconciler/controller/git_desired_source.h"
#include "reconciler/controller/loop.h"
#include "reconciler/manifest/config.h"
#include "reconciler/manifest/loader.h"
#include "reconciler/model/clock.h"
#include "reconciler/model/text.h"
#include "reconciler/render/plan_render.h"
#include "reconciler/store/owner_lock.h"
#include "reconciler/store/store.h"

namespace flotilla::cli {
namespace {

namespace fs = std::filesystem;

// The configuration named by `where`, with the command-line overrides applied.
Result<manifest::ReconcilerConfig> LoadConfig(const StoreLocation& where,
                                              const manifest::SchemaValidator& validator,
                                              const Context& context) {
  const std::string path = ConfigPath(where);
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

std::string Short(const std::string& sha) { return sha.substr(0, 7); }

// Everything apply and run share: the configuration, the owner lock, the store, the source and
// the controller, in the order they must be destroyed (reverse).
struct Engine {
  manifest::ReconcilerConfig config;
  std::unique_ptr<store::OwnerLock> lock;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<controller::GitDesiredSource> source;
  SystemClock clock;
  api::Telemetry telemetry;
  std::unique_ptr<controller::Controller> controller;
};

Result<std::unique_ptr<Engine>> OpenEngine(const StoreLocation& where,
                                           controller::ControllerOptions options,
                                           const Context& context) {
  auto engine = std::make_unique<Engine>();
  Result<manifest::ReconcilerConfig> config = LoadConfig(where, context.validator, context);
  if (!config.ok()) {
    return config.status();
  }
  engine->config = std::move(*config);
  const manifest::ReconcilerConfig& c = engine->config;
  // Before anything is created in the state directory.
  if (c.source.url.empty()) {
    const std::string path = ConfigPath(where);
    return Status::FailedPrecondition(
        path.empty() ? "no configuration file: give --config FILE, set $FLOTILLA_CONFIG, or run "
                       "in a folder that holds flotilla.yaml (its source.url names the fleet "
                       "repository)"
                     : "no fleet repository configured: set source.url in " + path);
  }
  Result<std::unique_ptr<store::OwnerLock>> lock = store::OwnerLock::Acquire(c.state_dir);
  if (!lock.ok()) {
    return lock.status();
  }
  engine->lock = std::move(*lock);
  Result<std::unique_ptr<store::Store>> store = store::Store::Open(
      StorePath(c),
      store::StoreOptions{.retain_runs = c.store.retain_runs,
                          .retain_events = c.store.retain_events,
                          .durability = c.store.durability == "normal" ? store::Durability::kNormal
                                                                       : store::Durability::kFull});
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
  Result<std::unique_ptr<controller::GitDesiredSource>> source =
      controller::GitDesiredSource::Open(c, context.loader);
  if (!source.ok()) {
    return source.status();
  }
  engine->source = std::move(*source);
  options = controller::ConfiguredOptions(c, std::move(options));
  options.observer = &engine->telemetry;
  options.requests = &engine->telemetry;
  engine->controller =
      std::make_unique<controller::Controller>(std::move(options), *engine->store, *engine->source,
                                               context.providers, engine->clock, context.log);
  return engine;
}

// Progress for people: a live line on a terminal, one log line per action otherwise.
class ConsoleProgress : public executor::Progress {
 public:
  ConsoleProgress(const Context& context, bool live) : context_(context), live_(live) {}

  // Shows the how-manieth action this is ("[12/40] create ios-7 on mini-03 ..."), in this run.
  void Started(const Action& action, int attempt, size_t ordinal, size_t total) override {
    const size_t done = ordinal;
    last_step_.erase(action.id);  // plan ids repeat from one pass to the next
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

  // A running create's progress: on the live line, and in the log when its step changes.
  void Doing(const Action& action, std::string_view what) override {
    const std::string line = Describe(action) + ": " + std::string(what);
    if (live_) {
      context_.err << "\r\033[K" << line << std::flush;
      return;
    }
    std::string& last = last_step_[action.id];
    const std::string step(what.substr(0, what.find_first_of("0123456789(")));
    if (step != last) {
      last = step;
      context_.log->info("{}", line);
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
  std::map<int, std::string> last_step_;  // by action id: the step last logged
};

// SIGINT and SIGTERM, turned into a call on a thread of ours: block them in every thread (call
// before starting any), then wait for them on one. `on_signal` runs for the first; a second
// one ends the process at once (exit 130), for a shutdown that takes too long.
class SignalWatcher {
 public:
  // `on_hangup`, if set, is called on every SIGHUP (which then ends nothing).
  explicit SignalWatcher(std::function<void(int)> on_signal, std::function<void()> on_hangup = {})
      : on_signal_(std::move(on_signal)), on_hangup_(std::move(on_hangup)) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    if (on_hangup_) {
      sigaddset(&set_, SIGHUP);
    }
    pthread_sigmask(SIG_BLOCK, &set_, &previous_);
    thread_ = std::thread([this] {
      const timespec slice{.tv_sec = 0, .tv_nsec = 200'000'000};
      while (!done_) {
        const int sig = sigtimedwait(&set_, nullptr, &slice);
        if (sig == SIGHUP) {
          on_hangup_();
        } else if (sig > 0 && !signalled_) {
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
  std::function<void()> on_hangup_;
  sigset_t set_{};
  sigset_t previous_{};
  std::atomic<bool> done_{false};
  bool signalled_ = false;  // only the watcher thread uses it
  std::thread thread_;
};

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
  return render::CompareSavedPlan(text.str(), file, plan, revision);
}

// What the plan held back that a person must act on (refused deletions, names held by VMs
// Flotilla does not own), each with what to do; true when there was any.
bool ReportHeldBack(const Plan& plan, std::ostream& err) {
  const std::map<std::string, size_t> refused = plan.CountByPool(FindingKind::kRefused);
  std::vector<std::string> conflicts;
  for (const Finding& f : plan.findings) {
    if (f.kind == FindingKind::kConflict) {
      conflicts.push_back(f.vm + " on " + f.host);
    }
  }
  for (const auto& [pool, count] : refused) {
    err << "flotilla: " << count << (count == 1 ? " deletion" : " deletions") << " in pool " << pool
        << " refused: the revision would delete every managed VM of the pool. If that is meant, "
           "run 'flotilla apply --allow-empty'; otherwise revert the commit.\n";
  }
  if (!conflicts.empty()) {
    std::string list;
    for (const std::string& c : conflicts) {
      list += (list.empty() ? "" : ", ") + c;
    }
    err << "flotilla: " << conflicts.size()
        << (conflicts.size() == 1 ? " desired name is" : " desired names are")
        << " held by VMs Flotilla does not own (" << list
        << "), so their sets stay short. Rename or remove those VMs, or take them over: "
           "'flotilla plan --adopt' to review, then 'flotilla apply --adopt'.\n";
  }
  return !refused.empty() || !conflicts.empty();
}

}  // namespace

std::string ConfigPath(const StoreLocation& where) {
  std::string path = where.config;
  if (path.empty()) {
    // Read once at start-up; nothing in the process sets it.
    if (const char* env = std::getenv("FLOTILLA_CONFIG")) {  // NOLINT(concurrency-mt-unsafe)
      path = env;
    } else if (fs::exists("flotilla.yaml")) {
      path = "flotilla.yaml";
    }
  }
  return path;
}

manifest::ReconcilerConfig::Log ConfiguredLog(const StoreLocation& where,
                                              const manifest::SchemaValidator& validator) {
  const std::string path = ConfigPath(where);
  if (path.empty()) {
    return {};
  }
  manifest::Diagnostics diagnostics;  // reported when the command loads the file
  Result<manifest::ReconcilerConfig> config =
      manifest::LoadConfigFile(path, validator, diagnostics);
  return config.ok() ? config->log : manifest::ReconcilerConfig::Log{};
}

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

// The store named by `where`, opened read-only for the commands that only read it (no lock: a
// loop may be running). NotFound when nothing has been applied from that state directory yet.
std::string StorePath(const manifest::ReconcilerConfig& config) {
  return (fs::path(config.state_dir) / "flotilla.db").string();
}

Result<std::unique_ptr<store::Store>> OpenExistingStore(const StoreLocation& where,
                                                        const Context& context) {
  Result<manifest::ReconcilerConfig> config = LoadConfig(where, context.validator, context);
  if (!config.ok()) {
    return config.status();
  }
  const std::string path = StorePath(*config);
  if (!fs::exists(path)) {
    return Status::NotFound("no store at " + path +
                            ": nothing has been applied from this state directory yet");
  }
  // Read-only: it never migrates (or writes) a store an older running loop owns.
  return store::Store::Open(path, store::StoreOptions{.read_only = true});
}

int Fail(const Context& context, const Status& status) {
  context.err << "flotilla: " << status.message() << "\n";
  return 1;
}

Result<manifest::ReconcilerConfig> LoadReconcilerConfig(const StoreLocation& where,
                                                        const Context& context) {
  return LoadConfig(where, context.validator, context);
}

// The value of a secret from a file (trailing whitespace dropped) or, without a file, from an
// environment variable; empty when neither is configured. Never logged.
Result<std::string> ReadSecretSetting(const std::string& file, const std::string& env,
                                      std::string_view what) {
  std::string value;
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      return Status::FailedPrecondition("cannot read the " + std::string(what) + " file " + file);
    }
    std::stringstream text;
    text << in.rdbuf();
    value = text.str();
  } else if (!env.empty()) {
    // Read once at start-up; nothing in the process sets it.
    const char* set = std::getenv(env.c_str());  // NOLINT(concurrency-mt-unsafe)
    if (set == nullptr) {
      return Status::FailedPrecondition("the " + std::string(what) + " variable " + env +
                                        " is not set");
    }
    value = set;
  }
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())) != 0) {
    value.pop_back();
  }
  if ((!file.empty() || !env.empty()) && value.empty()) {
    return Status::FailedPrecondition("the " + std::string(what) +
                                      (file.empty() ? " variable " + env : " file " + file) +
                                      " is empty");
  }
  return value;
}

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
  AddAdoptFlag(*cmd, options.adopt);
  cmd->add_option("--pools", options.pools,
                  "Only these pools (comma-separated) and their VM sets, as a sharded loop "
                  "(run --pools) would; a name the revision lacks is an error");
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
      "reconcile.shutdownTimeout to finish; exit 0. Secrets are read again before every pass;\n"
      "SIGHUP asks for a pass now. One loop per state directory.");
  AddLocationFlags(*cmd, options.where);
  cmd->add_option("--pools", options.pools,
                  "Only these pools (comma-separated) and their VM sets: run one loop per "
                  "shard, each with its own --state-dir");
  cmd->add_option("--listen", options.listen,
                  "Address of the HTTP API and /metrics (host:port; port 0 picks a free one); "
                  "overrides api.listen (default 127.0.0.1:8080)");
  return cmd;
}

int RunApply(const ApplyOptions& options, const Context& context) {
  controller::ControllerOptions controller_options;
  controller_options.pools = SplitPools(options.pools);
  controller_options.adopt = options.adopt;
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
  if (options.max_deletions || options.allow_empty) {
    controller.Approve(PassApproval{
        .max_deletions = options.max_deletions, .allow_empty = options.allow_empty, .by = "local"});
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
    const bool held_back = ReportHeldBack(prepared->plan, context.err);
    return result.outcome == store::RunOutcome::kFailed || sync.fail_static || held_back ? 1 : 0;
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
  const bool held_back = ReportHeldBack(prepared->plan, context.err);
  if (sync.fail_static) {
    context.err << "flotilla: the newest revision was not applied: " << sync.problem << "\n";
    return 1;
  }
  return report.failed + report.abandoned == 0 && !held_back ? 0 : 1;
}

namespace {

// The API's view of a running loop.
class LoopBackend final : public api::Backend {
 public:
  LoopBackend(controller::Controller& controller, controller::Loop& loop)
      : controller_(controller), loop_(loop) {}
  std::shared_ptr<const api::Snapshot> Latest() const override { return controller_.snapshot(); }
  std::shared_future<int64_t> Reconcile(std::string reason, std::optional<PassApproval> approval,
                                        std::string actor) override {
    if (approval) {
      controller_.Approve(std::move(*approval));  // spent by the pass this asks for
    }
    return loop_.Trigger(std::move(reason), std::move(actor));
  }
  Result<KeptFd> OpenTunnel(const std::string& pool, const std::string& host, const VmInfo& vm,
                            uint16_t port,
                            std::chrono::steady_clock::time_point deadline) override {
    return controller_.OpenTunnel(pool, host, vm, port, deadline);
  }

 private:
  controller::Controller& controller_;
  controller::Loop& loop_;
};

// Before each pass: the API's tokens and webhook secret read again (api_secrets.h); a change
// takes effect for the requests that follow. A file that cannot be read (or is empty) keeps the
// old values, said once.
class ApiSecretsReloader {
 public:
  ApiSecretsReloader(const manifest::ReconcilerConfig& config, const Context& context)
      : config_(config), context_(context) {}

  void operator()(api::Server* server) {
    if (server == nullptr) {
      return;
    }
    Result<ApiSecrets> secrets = ReadApiSecrets(config_.api);
    Status problem = secrets.status();
    if (problem.ok() && (!read_ || *secrets != secrets_)) {
      problem = server->SetSecrets(secrets->token, secrets->tokens, secrets->webhook_secret);
      if (problem.ok() && read_) {
        context_.log->info(
            "the API tokens or webhook secret changed; requests are now checked against the "
            "new values");
      }
      if (problem.ok()) {
        read_ = true;
        secrets_ = std::move(*secrets);
      }
    }
    if (!problem.ok() && problem.message() != last_problem_) {
      context_.log->error("{}; the API keeps the values it has", problem.message());
    }
    last_problem_ = problem.ok() ? "" : problem.message();
  }

 private:
  const manifest::ReconcilerConfig& config_;
  const Context& context_;
  bool read_ = false;  // secrets_ is what the server was given
  ApiSecrets secrets_;
  std::string last_problem_;
};

// FLOTILLA_DASHBOARD_DIR: for work on the dashboard, its files are served from that folder (a
// checkout's web/), read again on every request, instead of from the binary.
std::string DashboardDir() {
  const char* dir = std::getenv("FLOTILLA_DASHBOARD_DIR");  // NOLINT(concurrency-mt-unsafe)
  return dir != nullptr ? std::string(dir) : std::string();
}

Result<std::unique_ptr<api::Server>> StartApi(const RunOptions& options, Engine& engine,
                                              api::Backend& backend, const Context& context) {
  const manifest::ReconcilerConfig& c = engine.config;
  Result<ApiSecrets> secrets = ReadApiSecrets(c.api);
  if (!secrets.ok()) {
    return secrets.status();
  }
  return api::Server::Start(
      api::ServerOptions{.listen = options.listen.empty() ? c.api.listen : options.listen,
                         .token = secrets->token,
                         .tokens = secrets->tokens,
                         .auth_failures = {.burst = c.api.auth_failure_burst,
                                           .per_minute = c.api.auth_failures_per_minute},
                         .webhook_secret = secrets->webhook_secret,
                         .branch = c.source.revision.empty() ? c.source.branch : std::string(),
                         .tls_cert_file = c.api.tls_cert_file,
                         .tls_key_file = c.api.tls_key_file,
                         .threads = c.api.threads,
                         .dashboard_dir = DashboardDir(),
                         .tunnels_max = c.api.tunnels_max,
                         .tunnels_per_token = c.api.tunnels_per_token,
                         .tunnel_idle_timeout = c.api.tunnel_idle_timeout,
                         .clock = &engine.clock},
      backend, *engine.store, engine.telemetry, context.log);
}

}  // namespace

int RunLoop(const RunOptions& options, const Context& context,
            const std::function<void(const std::string& url)>& ready) {
  controller::ControllerOptions controller_options;
  controller_options.pools = SplitPools(options.pools);
  // Signals are blocked before any thread starts, so that only the watcher receives them.
  std::unique_ptr<controller::Loop> loop;
  std::mutex loop_mu;
  bool stop_early = false;
  SignalWatcher signals(
      [&](int sig) {
        context.log->info("{}: shutting down", sig == SIGINT ? "interrupted" : "terminated");
        std::lock_guard lock(loop_mu);
        stop_early = true;
        if (loop) {
          loop->Stop();
        }
      },
      [&] {
        // Re-read the secrets (they are checked before every pass) and reconcile now.
        context.log->info("SIGHUP: reading the secrets again and reconciling");
        std::lock_guard lock(loop_mu);
        if (loop) {
          (void)loop->Trigger("sighup");
        }
      });
  Result<std::unique_ptr<Engine>> engine = OpenEngine(options.where, controller_options, context);
  if (!engine.ok()) {
    return Fail(context, engine.status());
  }
  const manifest::ReconcilerConfig& config = (*engine)->config;
  ConsoleProgress progress(context, false);
  api::Server* api = nullptr;  // set once it serves; passes start after that
  ApiSecretsReloader reload_api(config, context);
  {
    std::lock_guard lock(loop_mu);
    loop = std::make_unique<controller::Loop>(
        *(*engine)->controller,
        controller::LoopOptions{.interval = config.source.interval,
                                .resync_interval = config.reconcile.resync_interval,
                                .shutdown_timeout = config.reconcile.shutdown_timeout,
                                .before_pass = [&] { reload_api(api); },
                                .published =
                                    [&] {
                                      if (api != nullptr) {
                                        api->SnapshotPublished();
                                      }
                                    }},
        context.log, &progress);
    if (stop_early) {
      loop->Stop();
    }
  }
  LoopBackend backend(*(*engine)->controller, *loop);
  Result<std::unique_ptr<api::Server>> server = StartApi(options, **engine, backend, context);
  if (!server.ok()) {
    return Fail(context, server.status().WithContext("API"));
  }
  api = server->get();
  context.log->info(
      "flotilla run: {} every {} s, hosts every {} s, store {}, API {}",
      (*engine)->source->Describe(),
      std::chrono::duration_cast<std::chrono::seconds>(config.source.interval).count(),
      std::chrono::duration_cast<std::chrono::seconds>(config.reconcile.resync_interval).count(),
      StorePath(config), (*server)->url());
  if (config.api.token_file.empty() && config.api.token_env.empty() && config.api.tokens.empty()) {
    context.log->warn(
        "the API needs no token (api.tokenFile is not set): anyone on this machine "
        "can read it and trigger reconciles");
  }
  if (ready) {
    ready((*server)->url());
  }
  const bool drained = loop->Run();
  (*server)->Stop();
  if (!drained) {
    // Threads are still inside provider calls; their rows stay `running` and the next start
    // settles them against the hosts. Leave without running destructors under their feet.
    context.log->flush();
    std::_Exit(0);
  }
  context.log->info("stopped");
  return 0;
}

}  // namespace flotilla::cli
