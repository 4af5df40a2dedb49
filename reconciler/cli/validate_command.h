#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"

namespace flotilla::cli {

enum class OutputFormat { kText, kJson };

struct ValidateOptions {
  std::string path = ".";                     // a directory of manifests, or one file
  OutputFormat format = OutputFormat::kText;  // findings as text lines or one JSON object
};

// Adds `validate` to `app`, filling `options` when parsed.
CLI::App* AddValidateCommand(CLI::App& app, ValidateOptions& options);

// Schema and semantic checks, no network. Returns the exit code: 0 valid (warnings allowed),
// 1 invalid or error.
int RunValidate(const ValidateOptions& options, const Context& context);

}  // namespace flotilla::cli
