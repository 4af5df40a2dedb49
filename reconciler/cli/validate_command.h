#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"
#include "reconciler/cli/repository.h"

namespace flotilla::cli {

enum class OutputFormat { kText, kJson };

struct ValidateOptions {
  std::string path = ".";                     // a directory of manifests, or one file
  OutputFormat format = OutputFormat::kText;  // findings as text lines or one JSON object
  // With `repo`: validate revision `rev` of that repository, manifests below `repo_path`,
  // read straight from Git (no checkout).
  RepositoryOptions git;
  std::string rev = "HEAD";
  std::string repo_path;
};

// Adds `validate` to `app`, filling `options` when parsed.
CLI::App* AddValidateCommand(CLI::App& app, ValidateOptions& options);

// Schema and semantic checks, no network. Returns the exit code: 0 valid (warnings allowed),
// 1 invalid or error.
int RunValidate(const ValidateOptions& options, const Context& context);

}  // namespace flotilla::cli
