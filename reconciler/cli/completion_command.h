#pragma once

// `flotilla completion bash|zsh|fish`: a completion script for that shell, made from the CLI's
// own definition (every command, flag and fixed value list CLI11 knows), so it never falls
// behind a new flag. Pool, VM set and host names complete from the manifests below the line's
// --path (or the current directory when it is a Git work tree): the script asks
// `flotilla completion --names KIND [--path DIR]`, which reads the files there and nothing else
// (no network, no store, no Git history).

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"

namespace flotilla::cli {

// What may follow a flag or stand as a command's operand.
enum class ValueKind {
  kNone,    // a flag without a value
  kText,    // anything: nothing is offered
  kChoice,  // one of `choices`
  kFile,
  kDir,
  kPool,  // names read from the manifests
  kVmSet,
  kHost,
};

struct FlagSpec {
  std::vector<std::string> names;  // "-o", "--output"
  std::string help;
  ValueKind value = ValueKind::kNone;
  std::vector<std::string> choices;  // kChoice
  bool list = false;                 // a comma-separated list (--pools a,b)
};

struct CommandSpec {
  std::string name;  // "" for flotilla itself
  std::string help;
  std::vector<FlagSpec> flags;
  ValueKind operand = ValueKind::kNone;  // positional arguments
  std::vector<std::string> operand_choices;
  std::vector<CommandSpec> commands;
};

// The command tree of `app`: visible commands, their flags (with --help), and what their values
// are, read from CLI11's options (IsMember checks give the choices) and the flag names.
CommandSpec DescribeCommands(const CLI::App& app);

std::string BashCompletion(const CommandSpec& root);
std::string ZshCompletion(const CommandSpec& root);
std::string FishCompletion(const CommandSpec& root);

struct CompletionOptions {
  std::string shell;  // bash, zsh or fish
  std::string names;  // hidden: pools, vmsets or hosts
  std::string path;   // hidden: where --names reads manifests
};

CLI::App* AddCompletionCommand(CLI::App& app, CompletionOptions& options);
// `root` is flotilla's own CLI::App (the command tree to describe).
int RunCompletion(const CompletionOptions& options, const CLI::App& root, const Context& context);

}  // namespace flotilla::cli
