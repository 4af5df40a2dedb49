#include "reconciler/cli/plan_command.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "providers/secrets.h"
#include "reconciler/cli/plan_output.h"
#include "reconciler/manifest/config.h"
#include "reconciler/manifest/loader.h"
#include "reconciler/model/clock.h"
#include "reconciler/planner/planner.h"
#include "reconciler/store/store.h"

namespace flotilla::cli {
namespace {

constexpr size_t kObserveThreads = 32;

struct HostJob {
  const HostPool* pool;
  const HostSpec* host;
  providers::Provider* provider;
};

// Observes every host of every pool, a bounded number at a time; one slow host delays only
// itself (each observation has its own deadline).
Result<Observed> ObserveFleet(const Desired& desired, const PlanOptions& options,
                              const Context& context) {
  const std::string secrets_dir = options.secrets_dir;
  const providers::FileSecretSource secrets(secrets_dir);
  const SystemClock clock;
  std::vector<std::unique_ptr<providers::Provider>> built;
  std::vector<HostJob> jobs;
  for (const HostPool& pool : desired.pools) {
    Result<std::unique_ptr<providers::Provider>> provider =
        context.providers.Build(providers::ProviderContext{
            .pool = pool, .secrets = secrets, .logger = context.log, .clock = clock});
    if (!provider.ok()) {
      return provider.status();
    }
    built.push_back(std::move(*provider));
    for (const HostSpec& host : pool.hosts) {
      jobs.push_back(HostJob{.pool = &pool, .host = &host, .provider = built.back().get()});
    }
  }
  Observed observed;
  std::mutex mu;
  std::atomic<size_t> next{0};
  const auto now = clock.Now();
  const auto timeout =
      std::chrono::milliseconds(static_cast<int64_t>(options.host_timeout_seconds * 1000.0));
  auto work = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      const HostJob& job = jobs[i];
      const providers::HostRef ref{
          .pool = job.pool->meta.name, .name = job.host->name, .address = job.host->address};
      providers::HostObservation o = job.provider->Observe(ref, providers::DeadlineIn(timeout));
      ObservedHost host;
      host.name = job.host->name;
      host.pool = job.pool->meta.name;
      host.online = o.status.ok();
      // Without a store there is no history: an offline host counts as just gone silent, so
      // its VMs are reported unknown rather than replaced.
      host.last_seen = now;
      host.error = o.status.ok() ? "" : o.status.message();
      host.facts = std::move(o.facts);
      host.vms = std::move(o.vms);
      if (!o.status.ok()) {
        context.log->warn("host {} ({}): {}", job.host->name, job.pool->meta.name,
                          o.status.ToString());
      }
      std::lock_guard lock(mu);
      observed.hosts[host.name] = std::move(host);
    }
  };
  std::vector<std::thread> workers;
  for (size_t t = 0; t < std::min(kObserveThreads, jobs.size()); ++t) {
    workers.emplace_back(work);
  }
  for (std::thread& w : workers) {
    w.join();
  }
  return observed;
}

}  // namespace

CLI::App* AddPlanCommand(CLI::App& app, PlanOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "Desired state (a folder of manifests, or a revision with --repo) against the live hosts,\n"
      "observed through their providers. Changes nothing.\n"
      "With --config, VMs are judged against the store's ledger (<stateDir>/flotilla.db), as\n"
      "apply and run do; before anything was applied, VMs that carry a desired name are taken\n"
      "as Flotilla's own. Save a plan with --out and apply exactly it with 'apply --plan'.\n"
      "Exit status: 0 no changes; 2 changes (actions, or changes held back); 3 no action\n"
      "possible but VMs that find no host or refused deletions; 1 error.");
  cmd->add_option("--config", options.config,
                  "Reconciler configuration (flotilla.yaml): the fleet repository (source), "
                  "secretsDir, and reconcile settings such as maxDeletionsPerRun");
  cmd->add_option("path", options.path,
                  "Directory of manifests (every *.yaml/*.yml below it) or a single file "
                  "(default: the current folder, or the config's source)");
  cmd->add_option("--repo", options.git.repo, "Plan a revision of this Git repository instead");
  cmd->add_option_function<std::string>(
      "--rev", [&options](const std::string& rev) { options.rev = rev; },
      "With --repo: the revision (default HEAD, or the config's revision or branch)");
  cmd->add_option_function<std::string>(
      "--path", [&options](const std::string& path) { options.repo_path = path; },
      "With --repo: folder of the manifests (default: the config's path)");
  cmd->add_option("--secrets-dir", options.secrets_dir,
                  "Folder of host credentials: <dir>/<credentialsRef>/apiKey (or username and "
                  "password); default $FLOTILLA_SECRETS_DIR, else only FLOTILLA_SECRET_* "
                  "variables");
  cmd->add_option("--host-timeout", options.host_timeout_seconds,
                  "Seconds each host may take to answer")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  AddDeletionSafetyFlags(*cmd, options.max_deletions, options.allow_empty);
  AddAdoptFlag(*cmd, options.adopt);
  AddPlanFormatFlag(*cmd, options.format);
  cmd->add_option("--out", options.out, "Also write the plan as JSON to this file");
  cmd->add_option("--pools", options.pools,
                  "Only these pools (comma-separated) and their VM sets, as a sharded loop "
                  "(run --pools) plans them; a name the revision lacks is an error");
  AddRepositoryFlags(*cmd, options.git);
  return cmd;
}

int RunPlan(const PlanOptions& options, const Context& context) {
  Result<std::shared_ptr<const manifest::SchemaValidator>> validator =
      manifest::SchemaValidator::Create();
  if (!validator.ok()) {
    context.err << "flotilla: " << validator.status().ToString() << "\n";
    return 1;
  }
  manifest::ManifestLoader loader(*validator);
  PlanOptions effective = options;
  planner::PlannerOptions planner_options;
  std::string state_dir;
  std::string label_branch;  // names the revision in the plan: "<branch>@<sha7>"
  if (!options.config.empty()) {
    manifest::Diagnostics diagnostics;
    Result<manifest::ReconcilerConfig> config =
        manifest::LoadConfigFile(options.config, **validator, diagnostics);
    if (!config.ok()) {
      for (const manifest::Diagnostic& d : diagnostics.Sorted()) {
        context.err << d.ToString() << "\n";
      }
      context.err << "flotilla: " << config.status().message() << "\n";
      return 1;
    }
    // Flags given on the command line win over the file.
    if (effective.secrets_dir.empty()) {
      effective.secrets_dir = config->secrets_dir;
    }
    if (effective.path.empty() && effective.git.repo.empty() && !config->source.url.empty()) {
      effective.git.repo = config->source.url;
      effective.git.token_file = config->source.token_file;
      effective.git.token_env = config->source.token_env;
      effective.git.ssh_key_file = config->source.ssh_key_file;
      effective.git.ssh_passphrase_file = config->source.ssh_passphrase_file;
      effective.git.known_hosts_file = config->source.known_hosts_file;
      effective.git.insecure_ignore_host_key = config->source.insecure_ignore_host_key;
      effective.rev =
          config->source.revision.empty() ? config->source.branch : config->source.revision;
      effective.repo_path = config->source.path;
      label_branch = config->source.branch;  // as apply names it, so saved plans compare
    }
    state_dir = config->state_dir;
    planner_options.host_lost_after =
        std::chrono::duration_cast<std::chrono::seconds>(config->reconcile.host_lost_after);
    planner_options.max_deletions = config->reconcile.max_deletions;
    planner_options.max_deletions_percent = config->reconcile.max_deletions_percent;
  }
  if (effective.path.empty()) {
    effective.path = ".";
  }
  // A plan made from Git names its revision, so that 'apply --plan' can refuse a stale one.
  std::string revision;
  Result<manifest::LoadResult> loaded = Status::Internal("not loaded");
  if (effective.git.repo.empty()) {
    loaded = loader.LoadPath(effective.path, effective.path);
  } else {
    Result<std::unique_ptr<Repository>> repo = Repository::Open(effective.git, context);
    if (!repo.ok()) {
      context.err << "flotilla: " << repo.status().message() << "\n";
      return 1;
    }
    const std::string rev = effective.rev.value_or("HEAD");
    Result<std::string> sha = (*repo)->Resolve(rev);
    if (!sha.ok()) {
      context.err << "flotilla: " << sha.status().message() << "\n";
      return 1;
    }
    revision = (label_branch.empty() ? rev : label_branch) + "@" + sha->substr(0, 7);
    loaded = (*repo)->Load(*sha, effective.repo_path.value_or(""), loader);
  }
  if (!loaded.ok()) {
    context.err << "flotilla: " << loaded.status().message() << "\n";
    return 1;
  }
  if (!loaded->ok()) {
    for (const manifest::Diagnostic& d : loaded->diagnostics.Sorted()) {
      context.err << d.ToString() << "\n";
    }
    context.err << "flotilla: the manifests have " << loaded->diagnostics.error_count()
                << " error(s); nothing planned\n";
    return 1;
  }
  const std::vector<std::string> pools = SplitPools(options.pools);
  if (const std::string missing = loaded->desired.MissingPools(pools); !missing.empty()) {
    context.err << "flotilla: " << missing << "\n";
    return 1;
  }
  const Desired desired = loaded->desired.OnlyPools(pools);
  if (effective.secrets_dir.empty()) {
    // Read once at start-up; nothing in the process sets it.
    if (const char* dir = std::getenv("FLOTILLA_SECRETS_DIR")) {  // NOLINT(concurrency-mt-unsafe)
      effective.secrets_dir = dir;
    }
  }
  Result<Observed> observed = ObserveFleet(desired, effective, context);
  if (!observed.ok()) {
    context.err << "flotilla: " << observed.status().message() << "\n";
    return 1;
  }
  if (options.max_deletions) {
    planner_options.max_deletions = options.max_deletions;
  }
  planner_options.allow_empty = options.allow_empty;
  // With a configuration whose store exists, plan against what Flotilla owns (as apply does);
  // without one, desired names are taken as Flotilla's own (nothing else is known).
  Ledger ledger;
  const std::string store_path = (std::filesystem::path(state_dir) / "flotilla.db").string();
  if (!state_dir.empty() && std::filesystem::exists(store_path)) {
    Result<std::unique_ptr<store::Store>> store = store::Store::Open(store_path);
    Result<Ledger> owned = store.ok() ? (*store)->LoadLedger() : Result<Ledger>(store.status());
    if (!owned.ok()) {
      context.err << "flotilla: " << owned.status().message() << "\n";
      return 1;
    }
    ledger = std::move(*owned);
    std::erase_if(ledger.entries, [&](const LedgerEntry& e) {
      return desired.FindPool(e.pool) == nullptr && !pools.empty();  // another shard's
    });
  }
  planner_options.adopt_existing = options.adopt;
  const Plan plan = planner::ComputePlan(desired, *observed, ledger, planner_options,
                                         std::chrono::system_clock::now());
  if (!EmitPlan(plan, options.format, options.out, revision, context)) {
    return 1;
  }
  return PlanExitCode(plan);
}

}  // namespace flotilla::cli
