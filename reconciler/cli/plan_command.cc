#include "reconciler/cli/plan_command.h"

#include <cstdlib>
#include <filesystem>

#include "reconciler/cli/converge_command.h"
#include "reconciler/cli/plan_output.h"
#include "reconciler/controller/controller.h"
#include "reconciler/controller/git_desired_source.h"
#include "reconciler/manifest/config.h"
#include "reconciler/manifest/loader.h"
#include "reconciler/model/clock.h"
#include "reconciler/store/store.h"

namespace flotilla::cli {
namespace {

// Manifests already read (a folder, or a revision read with --repo), served to the controller
// as its only revision.
class LoadedSource final : public controller::DesiredSource {
 public:
  LoadedSource(std::string sha, manifest::LoadResult loaded, std::string what)
      : sha_(std::move(sha)), loaded_(std::move(loaded)), what_(std::move(what)) {}
  Result<std::string> Poll() override { return sha_; }
  Result<manifest::LoadResult> Load(const std::string& /*sha*/) override { return loaded_; }
  std::string Describe() const override { return what_; }

 private:
  std::string sha_;
  manifest::LoadResult loaded_;
  std::string what_;
};

int PlanFail(const Context& context, const Status& status) {
  context.err << "flotilla: " << status.message() << "\n";
  return 1;
}

// Keeps the diagnostics of the last load, so that an invalid revision is shown in full.
class RecordingSource final : public controller::DesiredSource {
 public:
  explicit RecordingSource(controller::DesiredSource& inner) : inner_(inner) {}
  Result<std::string> Poll() override { return inner_.Poll(); }
  Result<manifest::LoadResult> Load(const std::string& sha) override {
    Result<manifest::LoadResult> loaded = inner_.Load(sha);
    if (loaded.ok()) {
      diagnostics_ = loaded->diagnostics;
    }
    return loaded;
  }
  std::string Describe() const override { return inner_.Describe(); }
  const manifest::Diagnostics& diagnostics() const { return diagnostics_; }

 private:
  controller::DesiredSource& inner_;
  manifest::Diagnostics diagnostics_;
};

}  // namespace

CLI::App* AddPlanCommand(CLI::App& app, PlanOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "Desired state (the configuration's repository, a folder of manifests, or a revision\n"
      "with --repo) against the live hosts, observed and planned by the same code as apply and\n"
      "run. Changes nothing: the store is opened read-only, no host is asked to change.\n"
      "With --config, VMs are judged against the store's ledger (<stateDir>/flotilla.db), as\n"
      "apply and run do; without a store every VM is unmanaged, and one that carries a desired\n"
      "name is a conflict (--adopt shows its adoption). Save a plan with --out and apply exactly\n"
      "it with 'apply --plan'.\n"
      "Exit status: 0 no changes; 2 changes (actions, or changes held back); 3 no action\n"
      "possible but VMs that find no host or refused deletions; 1 error.");
  cmd->add_option("--config", options.config,
                  "Reconciler configuration: the fleet repository (source), the store "
                  "(stateDir), secretsDir and reconcile settings (default: $FLOTILLA_CONFIG, "
                  "else ./flotilla.yaml if it exists)");
  cmd->add_option("path", options.path,
                  "Directory of manifests (every *.yaml/*.yml below it) or a single file, "
                  "instead of the configuration's source (default: that source, else the "
                  "current folder)");
  cmd->add_option("--repo", options.git.repo, "Plan a revision of this Git repository instead");
  cmd->add_option_function<std::string>(
      "--rev", [&options](const std::string& rev) { options.rev = rev; },
      "The revision to plan (with --repo: default HEAD; else default the configuration's "
      "revision or branch)");
  cmd->add_option_function<std::string>(
      "--path", [&options](const std::string& path) { options.repo_path = path; },
      "Folder of the manifests in the repository (--repo's, or the configuration's; default: "
      "the configuration's source.path, else the root)");
  cmd->add_option("--state-dir", options.state_dir,
                  "With --config: folder of the store (flotilla.db) to plan against; overrides "
                  "the configuration's stateDir");
  cmd->add_option("--secrets-dir", options.secrets_dir,
                  "Folder of host credentials: <dir>/<credentialsRef>/apiKey (or username and "
                  "password); default $FLOTILLA_SECRETS_DIR, else only FLOTILLA_SECRET_* "
                  "variables");
  cmd->add_option("--host-timeout", options.host_timeout_seconds,
                  "Seconds each host may take to answer (default: reconcile.hostTimeout, 15)")
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
  const manifest::ManifestLoader& loader = context.loader;
  std::optional<manifest::ReconcilerConfig> config;
  // As every command: --config, else $FLOTILLA_CONFIG, else ./flotilla.yaml if it exists.
  const std::string config_path = ConfigPath(StoreLocation{.config = options.config});
  if (!config_path.empty()) {
    manifest::Diagnostics diagnostics;
    Result<manifest::ReconcilerConfig> loaded =
        manifest::LoadConfigFile(config_path, context.validator, diagnostics);
    if (!loaded.ok()) {
      for (const manifest::Diagnostic& d : diagnostics.Sorted()) {
        context.err << d.ToString() << "\n";
      }
      return PlanFail(context, loaded.status());
    }
    config = std::move(*loaded);
    if (!options.state_dir.empty()) {
      config->state_dir = options.state_dir;
    }
    if (!options.secrets_dir.empty()) {
      config->secrets_dir = options.secrets_dir;
    }
  }

  // What to plan: the configuration's repository (fetched into a mirror of this command's own,
  // never a running loop's), or manifests read here from a folder or a --repo revision.
  const bool from_config_source =
      config && options.path.empty() && options.git.repo.empty() && !config->source.url.empty();
  std::unique_ptr<controller::DesiredSource> source;
  std::optional<TemporaryDirectory> mirror;
  std::string revision;      // names the plan's revision, as apply does: "<branch>@<sha7>"
  std::string label_branch;  // with --repo, the revision asked for
  if (from_config_source) {
    manifest::ReconcilerConfig for_source = *config;
    mirror.emplace();
    for_source.state_dir = mirror->path();
    if (options.rev) {
      for_source.source.revision = *options.rev;
    }
    if (options.repo_path) {
      for_source.source.path = *options.repo_path;
    }
    Result<std::unique_ptr<controller::GitDesiredSource>> git =
        controller::GitDesiredSource::Open(for_source, loader);
    if (!git.ok()) {
      return PlanFail(context, git.status());
    }
    source = std::move(*git);
    label_branch = config->source.branch;
  } else {
    const std::string path = options.path.empty() ? "." : options.path;
    std::string sha = "local";
    Result<manifest::LoadResult> loaded = Status::Internal("not loaded");
    if (options.git.repo.empty()) {
      loaded = loader.LoadPath(path, path);
    } else {
      Result<std::unique_ptr<Repository>> repo = Repository::Open(options.git, context);
      if (!repo.ok()) {
        return PlanFail(context, repo.status());
      }
      const std::string rev = options.rev.value_or("HEAD");
      Result<std::string> resolved = (*repo)->Resolve(rev);
      if (!resolved.ok()) {
        return PlanFail(context, resolved.status());
      }
      sha = *resolved;
      label_branch = rev;
      loaded = (*repo)->Load(sha, options.repo_path.value_or(""), loader);
    }
    if (!loaded.ok()) {
      return PlanFail(context, loaded.status());
    }
    if (loaded->ok() && loaded->documents == 0) {
      return PlanFail(context,
                      Status::NotFound("no manifests (*.yaml, *.yml) found in " +
                                       (options.git.repo.empty() ? path : options.git.repo) +
                                       "; nothing to plan"));
    }
    source = std::make_unique<LoadedSource>(sha, std::move(*loaded),
                                            options.git.repo.empty() ? path : options.git.repo);
  }
  RecordingSource recording(*source);

  // Judge VMs against what Flotilla owns: the configuration's store, opened read-only (a loop
  // may own it); without one, an empty store that lasts as long as this command.
  const std::string store_path =
      config ? (std::filesystem::path(config->state_dir) / "flotilla.db").string() : "";
  const bool has_store = !store_path.empty() && std::filesystem::exists(store_path);
  Result<std::unique_ptr<store::Store>> store =
      has_store ? store::Store::Open(store_path, store::StoreOptions{.read_only = true})
                : store::Store::Open(":memory:");
  if (!store.ok()) {
    return PlanFail(context, store.status());
  }

  controller::ControllerOptions controller_options;
  if (config) {
    controller_options = controller::ConfiguredOptions(*config, std::move(controller_options));
  } else if (const char* dir =
                 std::getenv("FLOTILLA_SECRETS_DIR")) {  // NOLINT(concurrency-mt-unsafe)
    controller_options.secrets_dir = dir;  // read once at start-up; nothing in the process sets it
  }
  if (!options.secrets_dir.empty()) {
    controller_options.secrets_dir = options.secrets_dir;
  }
  if (options.host_timeout_seconds) {
    controller_options.host_timeout =
        std::chrono::milliseconds(static_cast<int64_t>(*options.host_timeout_seconds * 1000.0));
  }
  controller_options.pools = SplitPools(options.pools);
  controller_options.adopt = options.adopt;
  controller_options.preview = true;
  SystemClock clock;
  controller::Controller controller(std::move(controller_options), **store, recording,
                                    context.providers, clock, context.log);
  const controller::SyncResult sync = controller.Sync();
  if (sync.fail_static || sync.sha.empty()) {
    for (const manifest::Diagnostic& d : recording.diagnostics().Sorted()) {
      context.err << d.ToString() << "\n";
    }
    return PlanFail(context, Status::FailedPrecondition(sync.problem + "; nothing planned"));
  }
  if (options.max_deletions || options.allow_empty) {
    controller.Approve(PassApproval{
        .max_deletions = options.max_deletions, .allow_empty = options.allow_empty, .by = "local"});
  }
  Result<controller::Prepared> prepared = controller.Prepare();
  if (!prepared.ok()) {
    return PlanFail(context, prepared.status());
  }
  if (!prepared->unusable_pools.empty()) {
    for (size_t i = 1; i < prepared->unusable_pools.size(); ++i) {
      context.err << "flotilla: " << prepared->unusable_pools[i] << "\n";
    }
    return PlanFail(context, Status::FailedPrecondition(prepared->unusable_pools.front() +
                                                        "; its hosts cannot be observed"));
  }
  if (sync.sha != "local") {
    revision = label_branch + "@" + sync.sha.substr(0, 7);
  }
  if (!EmitPlan(prepared->plan, options.format, options.out, revision, context)) {
    return 1;
  }
  return PlanExitCode(prepared->plan);
}

}  // namespace flotilla::cli
