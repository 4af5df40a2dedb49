#include "reconciler/cli/app.h"

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "reconciler/cli/completion_command.h"
#include "reconciler/cli/context.h"
#include "reconciler/cli/converge_command.h"
#include "reconciler/cli/dev_command.h"
#include "reconciler/cli/diff_command.h"
#include "reconciler/cli/logging.h"
#include "reconciler/cli/plan_command.h"
#include "reconciler/cli/read_commands.h"
#include "reconciler/cli/store_command.h"
#include "reconciler/cli/tunnel_commands.h"
#include "reconciler/cli/validate_command.h"
#include "reconciler/cli/version_command.h"
#include "reconciler/manifest/diagnostics.h"
#include "reconciler/manifest/loader.h"
#include "reconciler/source/git_source.h"

namespace flotilla::cli {
namespace {

struct GlobalOptions {
  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";
};

// Options of the top-level command that take a value in the next argument.
bool TakesValue(const std::string& arg) { return arg == "--log-format" || arg == "--log-level"; }

// The first argument that is not an option: the subcommand the user meant, if any.
std::string FirstCommandWord(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      return i + 1 < argc ? argv[i + 1] : "";
    }
    if (!arg.empty() && arg[0] == '-') {
      if (TakesValue(arg)) {
        ++i;
      }
      continue;
    }
    return arg;
  }
  return {};
}

// For each --flag in argv that neither `cmd` nor flotilla itself takes, the closest one that
// they do ("unknown flag --yess; did you mean --yes?").
void SuggestFlags(const CLI::App& app, const CLI::App* cmd, int argc, const char* const* argv,
                  std::ostream& err) {
  std::vector<std::string> flags;
  for (const CLI::App* a : {&app, cmd}) {
    for (const CLI::Option* o : a->get_options()) {
      for (const std::string& name : o->get_lnames()) {
        flags.push_back("--" + name);
      }
    }
  }
  for (int i = 1; i < argc; ++i) {
    const std::string arg(argv[i]);
    const std::string flag = arg.substr(0, arg.find('='));
    if (!flag.starts_with("--") || std::find(flags.begin(), flags.end(), flag) != flags.end()) {
      continue;
    }
    const std::string guess = manifest::ClosestMatch(flag, flags);
    if (!guess.empty()) {
      err << "flotilla: unknown flag " << flag << "; did you mean " << guess << "?\n";
    }
  }
}

}  // namespace

int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err, bool color,
           const providers::ProviderRegistry& providers) {
  CLI::App app(
      "flotilla keeps a fleet of virtual machines equal to what a Git repository says.\n"
      "Commit HostPool and VMSet manifests; flotilla plans and converges the hosts.",
      "flotilla");
  app.set_version_flag("--version", "",
                       "Print the version and what it was built with (as "
                       "'flotilla version') and exit");
  app.require_subcommand(0, 1);
  app.footer(
      "Exit status: 0 success, 1 error; plan and diff also 2 (changes) and 3 (no action\n"
      "possible, but VMs that find no host or refused deletions).\n"
      "Run 'flotilla COMMAND --help' for the options of one command.\n");

  GlobalOptions global;
  app.add_option_function<std::string>(
         "--log-format",
         [&global](const std::string& format) {
           global.log_format = format == "json" ? LogFormat::kJson : LogFormat::kText;
         },
         "Log format on stderr: text (default) or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", global.log_level,
                 "Least severe log level shown: trace, debug, info (default), warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->type_name("LEVEL");

  // Every command: its flags (added now) and how it runs (once it is the one parsed).
  struct Command {
    CLI::App* cmd;
    std::function<int(const Context&)> run;
  };
  ValidateOptions validate;
  DiffOptions diff;
  PlanOptions plan;
  ApplyOptions apply;
  RunOptions run;
  ReadOptions status;
  HistoryOptions history;
  ReadOptions hosts;
  VmsOptions vms;
  ReconcileOptions reconcile;
  PortForwardOptions port_forward;
  SshOptions ssh;
  VncOptions vnc;
  DevOptions dev;
  StoreCommandOptions store;
  VersionOptions version;
  CompletionOptions completion;
  CLI::App* apply_cmd = AddApplyCommand(app, apply);
  CLI::App* run_cmd = AddRunCommand(app, run);
  const std::vector<Command> commands = {
      {AddValidateCommand(app, validate),
       [&](const Context& c) { return RunValidate(validate, c); }},
      {AddDiffCommand(app, diff), [&](const Context& c) { return RunDiff(diff, c); }},
      {AddPlanCommand(app, plan), [&](const Context& c) { return RunPlan(plan, c); }},
      {apply_cmd, [&](const Context& c) { return RunApply(apply, c); }},
      {run_cmd, [&](const Context& c) { return RunLoop(run, c); }},
      {AddStatusCommand(app, status), [&](const Context& c) { return RunStatus(status, c); }},
      {AddHistoryCommand(app, history), [&](const Context& c) { return RunHistory(history, c); }},
      {AddHostsCommand(app, hosts), [&](const Context& c) { return RunHosts(hosts, c); }},
      {AddVmsCommand(app, vms), [&](const Context& c) { return RunVms(vms, c); }},
      {AddReconcileCommand(app, reconcile),
       [&](const Context& c) { return RunReconcile(reconcile, c); }},
      {AddPortForwardCommand(app, port_forward),
       [&](const Context& c) { return RunPortForward(port_forward, c); }},
      {AddSshCommand(app, ssh), [&](const Context& c) { return RunSsh(ssh, c); }},
      {AddVncCommand(app, vnc), [&](const Context& c) { return RunVnc(vnc, c); }},
      {AddDevCommand(app, dev), [&](const Context& c) { return RunDev(dev, c); }},
      {AddStoreCommand(app, store),
       [&](const Context& c) { return RunStore(store, *app.get_subcommand("store"), c); }},
      {AddVersionCommand(app, version), [&](const Context& c) { return RunVersion(version, c); }},
      {AddCompletionCommand(app, completion),
       [&](const Context& c) { return RunCompletion(completion, app, c); }},
  };

  std::vector<std::string> names;
  for (CLI::App* sub : app.get_subcommands({})) {
    names.push_back(sub->get_name());
    // Each command's help states its own exit status, not the summary of all of them.
    const bool own = sub->get_description().find("Exit status") != std::string::npos;
    sub->footer(own ? "" : "Exit status: 0 success, 1 error.");
  }
  const std::string word = FirstCommandWord(argc, argv);
  if (!word.empty() && std::find(names.begin(), names.end(), word) == names.end()) {
    SuggestFlags(app, &app, argc, argv, err);  // "--log-levl debug" makes "debug" the command
    err << "flotilla: unknown command \"" << word << "\"";
    const std::string guess = manifest::ClosestMatch(word, names);
    if (!guess.empty()) {
      err << "; did you mean \"" << guess << "\"?";
    }
    err << "\nCommands: " << manifest::Join(names) << ". Run 'flotilla --help' for more.\n";
    return 1;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion&) {
    out << VersionText(CurrentVersion(providers));
    return 0;
  } catch (const CLI::ParseError& e) {
    err << "flotilla: " << e.what() << "\n";
    const CLI::App* cmd = app.get_subcommands().empty() ? &app : app.get_subcommands().back();
    SuggestFlags(app, cmd, argc, argv, err);
    err << "Run 'flotilla " << (cmd == &app ? std::string() : cmd->get_name() + " ")
        << "--help' for usage.\n";
    return 1;
  }

  if (app.get_subcommands().empty()) {
    err << app.help();
    return 1;
  }

  // Built once for every command: the schemas, with each provider's pool settings merged in.
  Result<std::shared_ptr<const manifest::SchemaValidator>> validator =
      manifest::SchemaValidator::Create(providers.Rules());
  if (!validator.ok()) {
    err << "flotilla: " << validator.status().message() << "\n";
    return 1;
  }
  // apply and run also take the log settings of flotilla.yaml; the flags take precedence.
  if (apply_cmd->parsed() || run_cmd->parsed()) {
    const manifest::ReconcilerConfig::Log configured =
        ConfiguredLog(apply_cmd->parsed() ? apply.where : run.where, **validator);
    if (!configured.format.empty() && app.get_option("--log-format")->count() == 0) {
      global.log_format = configured.format == "json" ? LogFormat::kJson : LogFormat::kText;
    }
    if (!configured.level.empty() && app.get_option("--log-level")->count() == 0) {
      global.log_level = configured.level;
    }
  }
  Result<std::shared_ptr<spdlog::logger>> log =
      MakeLogger(global.log_format, global.log_level, err);
  if (!log.ok()) {
    err << "flotilla: " << log.status().message() << "\n";
    return 1;
  }
  const manifest::ManifestLoader loader(*validator);
  const Context context{.out = out,
                        .err = err,
                        .color = color,
                        .log = *log,
                        .providers = providers,
                        .validator = **validator,
                        .loader = loader};
  const source::GitLibrary git_library;
  for (const Command& command : commands) {
    if (command.cmd->parsed()) {
      return command.run(context);
    }
  }
  err << "flotilla: no command ran\n";
  return 1;
}

}  // namespace flotilla::cli
