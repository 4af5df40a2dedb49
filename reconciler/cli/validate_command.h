#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"

namespace flotilla::cli {

enum class OutputFormat { kText, kJson };

struct ValidateOptions {
  std::string path = ".";                     // a directory of manifests, or one file
  OutputFormat format = OutputFormat::kText;  // findings as text lines or one JSON object
  // With `repo`: validate revision `rev` of that repository, manifests below `repo_path`,
  // read straight from Git (no checkout).
  std::string repo;
  std::string rev = "HEAD";
  std::string repo_path;
  std::string state_dir;  // keep the mirror here between runs; default: a temporary folder
  std::string token_file;
  std::string token_env;
  std::string ssh_key_file;
  std::string ssh_passphrase_file;
  std::string known_hosts_file;
  bool insecure_ignore_host_key = false;
};

// Adds `validate` to `app`, filling `options` when parsed.
CLI::App* AddValidateCommand(CLI::App& app, ValidateOptions& options);

// Schema and semantic checks, no network. Returns the exit code: 0 valid (warnings allowed),
// 1 invalid or error.
int RunValidate(const ValidateOptions& options, const Context& context);

}  // namespace flotilla::cli
