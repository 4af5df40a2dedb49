#include "reconciler/cli/validate_command.h"

#include <map>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <filesystem>
#include <optional>

#include "reconciler/cli/repository.h"
#include "reconciler/manifest/loader.h"
#include "reconciler/model/text.h"
#include "reconciler/source/git_url.h"
#include "reconciler/source/manifest_source.h"

namespace flotilla::cli {
namespace {

using manifest::Diagnostic;
using manifest::LoadResult;
using manifest::Severity;

std::string Summary(const LoadResult& result) {
  const size_t errors = result.diagnostics.error_count();
  const size_t warnings = result.diagnostics.warning_count();
  if (errors > 0) {
    return CountOf(errors, "error", "errors") + ", " + CountOf(warnings, "warning", "warnings") +
           " in " + CountOf(result.files, "file", "files") + ": invalid";
  }
  const Desired& d = result.desired;
  std::string line = CountOf(d.pools.size(), "pool", "pools") + ", " +
                     CountOf(d.HostCount(), "host", "hosts") + ", " +
                     CountOf(d.sets.size(), "VM set", "VM sets") + ", " +
                     CountOf(d.DesiredVMCount(), "VM", "VMs") + " desired: valid";
  if (warnings > 0) {
    line += " (" + CountOf(warnings, "warning", "warnings") + ")";
  }
  return line;
}

void PrintText(const LoadResult& result, const Context& context) {
  constexpr const char* kRed = "\033[31m";
  constexpr const char* kYellow = "\033[33m";
  constexpr const char* kReset = "\033[0m";
  for (const Diagnostic& d : result.diagnostics.Sorted()) {
    std::string line = d.ToString();
    if (context.color) {
      const std::string word = d.severity == Severity::kError ? ": error: " : ": warning: ";
      const size_t at = line.find(word);
      if (at != std::string::npos) {
        line.replace(at, word.size(),
                     ": " + std::string(d.severity == Severity::kError ? kRed : kYellow) +
                         word.substr(2, word.size() - 4) + kReset + ": ");
      }
    }
    context.out << line << "\n";
  }
  context.out << Summary(result) << "\n";
}

void PrintJson(const LoadResult& result, const std::string& path, const Context& context) {
  nlohmann::json findings = nlohmann::json::array();
  for (const Diagnostic& d : result.diagnostics.Sorted()) {
    findings.push_back({
        {"file", d.location.file},
        {"line", d.location.line},
        {"column", d.location.column},
        {"severity", std::string(manifest::ToString(d.severity))},
        {"message", d.message},
        {"pointer", d.pointer},
    });
  }
  const Desired& desired = result.desired;
  nlohmann::json out = {
      {"path", path},
      {"valid", result.ok()},
      {"files", result.files},
      {"documents", result.documents},
      {"errors", result.diagnostics.error_count()},
      {"warnings", result.diagnostics.warning_count()},
      {"pools", desired.pools.size()},
      {"hosts", desired.HostCount()},
      {"vmSets", desired.sets.size()},
      {"vms", desired.DesiredVMCount()},
      {"findings", findings},
  };
  context.out << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace

CLI::App* AddValidateCommand(CLI::App& app, ValidateOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "validate",
      "Check manifests against the schemas and the fleet rules, without touching any host.\n"
      "Every problem is reported as FILE:LINE:COLUMN: error: MESSAGE (JSON-POINTER).\n"
      "Exit status: 0 valid (warnings allowed), 1 invalid or error.");
  cmd->add_option("--repo", options.git.repo,
                  "Validate a revision of this Git repository instead of files: a local path, "
                  "file://, git://, http(s):// or ssh:// URL, or user@host:path");
  cmd->add_option("--rev", options.rev,
                  "With --repo: branch, tag, SHA or expression such as main~2 (default HEAD)");
  cmd->add_option("--path", options.repo_path,
                  "With --repo: folder of the repository that holds the manifests");
  AddRepositoryFlags(*cmd, options.git);
  cmd->add_option("path", options.path,
                  "Directory of manifests (every *.yaml/*.yml below it) or a single file")
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--format",
         [&options](const std::string& format) {
           options.format = format == "json" ? OutputFormat::kJson : OutputFormat::kText;
         },
         "Output format: text (default) or json")
      ->check(CLI::IsMember({"text", "json"}));
  return cmd;
}

int RunValidate(const ValidateOptions& options, const Context& context) {
  const manifest::ManifestLoader& loader = context.loader;
  Result<LoadResult> result =
      LoadManifests(options.path, options.git, options.rev, options.repo_path, loader, context);
  if (!result.ok()) {
    context.err << "flotilla: " << result.status().message() << "\n";
    return 1;
  }
  // Never print or log the URL as typed: it may carry a token.
  const std::string shown =
      options.git.repo.empty() ? options.path : source::RedactUrls(options.git.repo);
  context.log->debug("read {} files, {} documents below {}", result->files, result->documents,
                     options.git.repo.empty() ? shown : shown + "@" + options.rev);
  if (result->documents == 0 && result->ok()) {
    // Valid, but most likely the wrong folder: say so.
    result->diagnostics.Warning({shown, 0, 0},
                                "no manifests found: no *.yaml or *.yml file below it holds a "
                                "document, so nothing was validated");
  }
  if (options.format == OutputFormat::kJson) {
    PrintJson(*result, shown, context);
  } else {
    PrintText(*result, context);
  }
  return result->ok() ? 0 : 1;
}

}  // namespace flotilla::cli
