#pragma once

// How Tart's command line reports things, and a parser shaped like swift-argument-parser 1.6
// (the version Tart pins in Package.resolved). Three ways out besides success (Root.swift,
// ArgumentParser's MessageInfo.swift):
//   - a RuntimeError (VMStorageHelper.swift): its text bare on stderr; exit 2 for "does not
//     exist", "is not running" and "already running", 1 otherwise (all 1 before Tart 2.0);
//   - any other error: "Error: <text>" on stderr, exit 1;
//   - a ValidationError or a parse error: "Error: <text>", the usage line and
//     "  See 'tart <cmd> --help' for more information." on stderr, exit 64. A ValidationError
//     thrown from a command's run() (not its validate()) gets the ROOT usage, "tart <subcommand>",
//     because Root.main calls Root.exit(withError:).
// Commands throw TartExit; main() prints it and returns its code, so destructors (locks) run.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flotilla::tartsim {

struct TartExit {
  int code = 0;
  std::string stderr_text;  // printed verbatim
  std::string stdout_text;  // printed verbatim, before stderr_text
};

enum class RuntimeKind {
  kDoesNotExist,    // exit 2 (Tart >= 2.0)
  kNotRunning,      // exit 2
  kAlreadyRunning,  // exit 2
  kOther,           // exit 1
};

// What a parse or validation error prints as usage.
struct Usage {
  std::string command;   // "stop"; empty for the root command
  std::string synopsis;  // "tart stop <name> [--timeout <timeout>]"
};

// The root command's usage, which a ValidationError thrown from run() prints.
Usage RootUsage();

// REQUIRES: `version` is the configured Tart version (exit codes changed in 2.0).
[[noreturn]] void ThrowRuntimeError(const std::string& version, RuntimeKind kind,
                                    const std::string& text);
[[noreturn]] void ThrowError(const std::string& message);
[[noreturn]] void ThrowValidation(const std::string& message, const Usage& usage);
// The standard "does not exist" RuntimeError.
[[noreturn]] void ThrowDoesNotExist(const std::string& version, const std::string& name);

struct OptionSpec {
  std::string long_name;  // without the dashes; empty for a short-only flag
  char short_name = 0;
  bool takes_value = false;
  std::string value_name;  // "timeout" in "--timeout <timeout>"
};

struct CommandSpec {
  Usage usage;
  std::vector<OptionSpec> options;
  std::vector<std::string> positionals;  // value names, in order
  bool last_positional_repeats = false;  // `delete <name> ...`
  // `exec`: once the last positional has started, every remaining argument belongs to it
  // (ArgumentParser's .captureForPassthrough).
  bool passthrough = false;
};

class ParsedArgs {
 public:
  bool Flag(const std::string& long_name) const;
  std::optional<std::string> Value(const std::string& long_name) const;  // the last one given
  std::vector<std::string> Values(const std::string& long_name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  bool help() const { return help_; }

 private:
  friend ParsedArgs ParseArgs(const CommandSpec& spec, const std::vector<std::string>& args);
  std::vector<std::pair<std::string, std::string>> values_;  // (long name, value) in order
  std::vector<std::string> flags_;
  std::vector<std::string> positionals_;
  bool help_ = false;
};

// Parses `args` (after the subcommand). Throws TartExit (64) with ArgumentParser's texts.
ParsedArgs ParseArgs(const CommandSpec& spec, const std::vector<std::string>& args);

// An unsigned option value no larger than `max`; otherwise ArgumentParser's
// "The value 'x' is invalid for '--cpu <cpu>'" (exit 64).
uint64_t ParseUnsigned(const CommandSpec& spec, const std::string& long_name,
                       const std::string& value, uint64_t max);

// One of `allowed` (an enum option such as --format); otherwise
// "The value 'x' is invalid for '--format <format>'. Please provide one of 'text' and 'json'."
std::string ParseChoice(const CommandSpec& spec, const std::string& long_name,
                        const std::string& value, const std::vector<std::string>& allowed);

// The short help `tart <cmd> --help` prints (not Tart's full text).
std::string HelpText(const CommandSpec& spec);

}  // namespace flotilla::tartsim
