#include "reconciler/cli/diff_command.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "reconciler/manifest/diagnostics.h"
#include "reconciler/planner/planner.h"
#include "reconciler/planner/simulate.h"
#include "reconciler/render/inventory.h"
#include "reconciler/source/git_url.h"

namespace flotilla::cli {
namespace {

// Hosts a revision declares, as if they were all online with their declared architecture and
// capacity (generous where none is declared): the stage on which the base revision is stood up
// when there is no inventory.
void AddDeclaredHosts(const Desired& desired, Observed& observed,
                      std::chrono::system_clock::time_point now) {
  for (const HostPool& pool : desired.pools) {
    for (const HostSpec& spec : pool.hosts) {
      if (observed.hosts.contains(spec.name)) {
        continue;
      }
      ObservedHost host;
      host.name = spec.name;
      host.pool = pool.meta.name;
      host.online = true;
      host.last_seen = now;
      host.facts.arch = spec.arch;
      // What a host does not declare is assumed: any architecture fits it and its capacity is
      // generous, as validate assumes; placements on it are marked in the plan.
      host.facts.assumed = !spec.arch || !spec.capacity;
      if (spec.capacity) {
        host.facts.total = Resources{.cpu = spec.capacity->cpu,
                                     .memory_bytes = spec.capacity->memory.bytes(),
                                     .disk_bytes = spec.capacity->disk.bytes()};
      } else {
        host.facts.total = Resources{
            .cpu = 1024, .memory_bytes = uint64_t{1} << 46, .disk_bytes = uint64_t{1} << 50};
      }
      host.facts.available.disk_bytes = host.facts.total.disk_bytes;
      observed.hosts[spec.name] = std::move(host);
    }
  }
}

// The fleet as the base revision would have made it: its VMs planned onto its declared hosts,
// as many rounds as it takes (deletes and budgets do not apply on an empty stage).
render::Inventory StandUp(const Desired& base, const Desired& head,
                          std::chrono::system_clock::time_point now) {
  render::Inventory world;
  // Head's declarations first: a change to a host's arch or capacity is what head plans on.
  AddDeclaredHosts(head, world.observed, now);
  AddDeclaredHosts(base, world.observed, now);
  planner::PlannerOptions options;
  options.allow_empty = true;
  options.max_deletions = UINT32_MAX;
  for (int round = 0; round < 10; ++round) {
    const Plan plan = planner::ComputePlan(base, world.observed, world.ledger, options, now);
    if (plan.actions.empty()) {
      break;
    }
    planner::SimulateApply(plan, base, world.observed, world.ledger);
  }
  for (const VMSet& set : base.sets) {
    world.ledger.vmset_prune[set.meta.name] = set.prune;
  }
  return world;
}

// The repository the current folder belongs to: the nearest folder, going up, that holds .git.
std::string EnclosingRepository() {
  std::error_code ec;
  for (std::filesystem::path dir = std::filesystem::current_path(ec); !ec && !dir.empty();
       dir = dir.parent_path()) {
    if (std::filesystem::exists(dir / ".git", ec)) {
      return dir.string();
    }
    if (dir == dir.parent_path()) {
      break;
    }
  }
  return ".";
}

void PrintDiagnostics(const manifest::LoadResult& result, const std::string& what,
                      const Context& context) {
  for (const manifest::Diagnostic& d : result.diagnostics.Sorted()) {
    context.err << d.ToString() << "\n";
  }
  context.err << "flotilla: " << what << " has " << result.diagnostics.error_count()
              << " error(s)\n";
}

}  // namespace

CLI::App* AddDiffCommand(CLI::App& app, DiffOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "diff",
      "What a change to the fleet repository does to the fleet: desired(BASE) against\n"
      "desired(HEAD), with every affected VM listed. Needs no credentials and no host access.\n"
      "Without --inventory the base revision is stood up on the hosts the manifests declare\n"
      "(their declared arch and capacity); with --inventory FILE (a snapshot of hosts, VMs and\n"
      "the ledger, as the API exports it) placement and capacity are previewed for real.\n"
      "Hosts that declare no arch or capacity are taken to fit, as validate does; placements\n"
      "that rely on it are marked [assumed host facts].\n"
      "Exit status: 0 no changes; 2 changes (actions, or changes held back); 3 no action\n"
      "possible but VMs that find no host or refused deletions; 1 error (also unschedulable VMs\n"
      "with --fail-on-unschedulable).");
  options.git.repo = ".";
  cmd->add_option("--base", options.base, "Revision the change starts from (e.g. origin/main)")
      ->required();
  cmd->add_option("--head", options.head, "Revision the change ends at (default HEAD)");
  cmd->add_option("--repo", options.git.repo,
                  "Repository: a local path (default: the current folder) or a URL");
  cmd->add_option("--path", options.path,
                  "Folder of the repository (from its root) that holds the manifests");
  cmd->add_option("--inventory", options.inventory,
                  "Inventory snapshot (JSON) to plan HEAD against instead of a simulated BASE");
  AddPlanFormatFlag(*cmd, options.format);
  cmd->add_option("--out", options.out, "Also write the plan as JSON to this file");
  cmd->add_flag("--fail-on-unschedulable", options.fail_on_unschedulable,
                "Exit 1 when a VM of HEAD would find no host");
  AddDeletionSafetyFlags(*cmd, options.max_deletions, options.allow_empty);
  AddRepositoryFlags(*cmd, options.git);
  return cmd;
}

int RunDiff(const DiffOptions& options, const Context& context) {
  const manifest::ManifestLoader& loader = context.loader;
  RepositoryOptions git = options.git;
  if (git.repo.empty() || git.repo == ".") {
    git.repo = EnclosingRepository();
  }
  Result<std::unique_ptr<Repository>> repo = Repository::Open(git, context);
  if (!repo.ok()) {
    context.err << "flotilla: " << repo.status().message() << "\n";
    return 1;
  }
  Result<manifest::LoadResult> head = (*repo)->Load(options.head, options.path, loader);
  if (!head.ok()) {
    context.err << "flotilla: " << head.status().message() << "\n";
    return 1;
  }
  if (!head->ok()) {
    PrintDiagnostics(*head, "head " + options.head, context);
    return 1;
  }
  Result<manifest::LoadResult> base = (*repo)->Load(options.base, options.path, loader);
  if (!base.ok()) {
    context.err << "flotilla: " << base.status().message() << "\n";
    return 1;
  }
  Desired base_desired = base->desired;
  if (!base->ok()) {
    context.err << "flotilla: warning: base " << options.base << " does not validate ("
                << base->diagnostics.error_count()
                << " errors); comparing against an empty fleet\n";
    base_desired = Desired{};
  }

  const auto now = std::chrono::system_clock::now();
  render::Inventory world;
  if (!options.inventory.empty()) {
    std::ifstream in(options.inventory, std::ios::binary);
    if (!in) {
      context.err << "flotilla: cannot read inventory " << options.inventory << "\n";
      return 1;
    }
    std::stringstream text;
    text << in.rdbuf();
    Result<render::Inventory> inventory = render::ParseInventoryJson(text.str());
    if (!inventory.ok()) {
      context.err << "flotilla: " << options.inventory << ": " << inventory.status().message()
                  << "\n";
      return 1;
    }
    world = std::move(*inventory);
    // Hosts the snapshot does not know (added since, or by this change) are not offline: they
    // are taken as declared, as without an inventory.
    AddDeclaredHosts(head->desired, world.observed, now);
  } else {
    world = StandUp(base_desired, head->desired, now);
  }
  planner::PlannerOptions planner_options;
  planner_options.max_deletions = options.max_deletions;
  planner_options.allow_empty = options.allow_empty;
  const Plan plan =
      planner::ComputePlan(head->desired, world.observed, world.ledger, planner_options, now);

  const std::string placement =
      !options.inventory.empty()
          ? "an inventory snapshot (" +
                std::filesystem::path(options.inventory).filename().string() +
                "; hosts it lacks as the manifests declare them)"
          : "simulated on the hosts the manifests declare (BASE stood up on them; no inventory)";
  if (!EmitPlan(plan, options.format, options.out, options.base + ".." + options.head, context,
                placement)) {
    return 1;
  }
  if (options.fail_on_unschedulable && plan.Count(FindingKind::kUnschedulable) > 0) {
    return 1;
  }
  return PlanExitCode(plan);
}

}  // namespace flotilla::cli
