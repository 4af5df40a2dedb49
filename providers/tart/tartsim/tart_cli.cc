#include "providers/tart/tartsim/tart_cli.h"

#include <algorithm>
#include <charconv>

#include "providers/tart/tartsim/sim_config.h"

namespace flotilla::tartsim {
namespace {

std::string UsageBlock(const Usage& usage) {
  const std::string see =
      usage.command.empty() ? "tart --help" : "tart " + usage.command + " --help";
  return "Usage: " + usage.synopsis + "\n  See '" + see + "' for more information.\n";
}

const OptionSpec* FindLong(const CommandSpec& spec, const std::string& name) {
  for (const OptionSpec& o : spec.options) {
    if (!o.long_name.empty() && o.long_name == name) {
      return &o;
    }
  }
  return nullptr;
}

const OptionSpec* FindShort(const CommandSpec& spec, char name) {
  for (const OptionSpec& o : spec.options) {
    if (o.short_name == name) {
      return &o;
    }
  }
  return nullptr;
}

std::string KeyOf(const OptionSpec& o) {
  return o.long_name.empty() ? std::string(1, o.short_name) : o.long_name;
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// ArgumentParser's unknownOptionMessage: a long-name suggestion closer than 4 edits.
std::string UnknownOption(const CommandSpec& spec, const std::string& given, bool is_short) {
  std::string message = "Unknown option '" + given + "'";
  if (is_short) {
    return message;
  }
  const OptionSpec* best = nullptr;
  size_t best_distance = 4;
  for (const OptionSpec& o : spec.options) {
    if (o.long_name.empty()) {
      continue;
    }
    const size_t d = EditDistance("--" + o.long_name, given);
    if (d < best_distance) {
      best = &o;
      best_distance = d;
    }
  }
  if (best != nullptr) {
    message += ". Did you mean '--" + best->long_name + "'?";
  }
  return message;
}

}  // namespace

Usage RootUsage() { return Usage{.command = "", .synopsis = "tart <subcommand>"}; }

void ThrowRuntimeError(const std::string& version, RuntimeKind kind, const std::string& text) {
  int code = 1;
  if (kind != RuntimeKind::kOther && VersionAtLeast(version, "2.0.0")) {
    code = 2;  // HasExitCode, PR#597
  }
  throw TartExit{.code = code, .stderr_text = text + "\n"};
}

void ThrowDoesNotExist(const std::string& version, const std::string& name) {
  ThrowRuntimeError(version, RuntimeKind::kDoesNotExist,
                    "the specified VM \"" + name + "\" does not exist");
}

void ThrowError(const std::string& message) {
  throw TartExit{.code = 1, .stderr_text = "Error: " + message + "\n"};
}

void ThrowValidation(const std::string& message, const Usage& usage) {
  throw TartExit{.code = 64, .stderr_text = "Error: " + message + "\n" + UsageBlock(usage)};
}

bool ParsedArgs::Flag(const std::string& long_name) const {
  return std::find(flags_.begin(), flags_.end(), long_name) != flags_.end();
}

std::optional<std::string> ParsedArgs::Value(const std::string& long_name) const {
  std::optional<std::string> last;
  for (const auto& [key, value] : values_) {
    if (key == long_name) {
      last = value;
    }
  }
  return last;
}

std::vector<std::string> ParsedArgs::Values(const std::string& long_name) const {
  std::vector<std::string> all;
  for (const auto& [key, value] : values_) {
    if (key == long_name) {
      all.push_back(value);
    }
  }
  return all;
}

ParsedArgs ParseArgs(const CommandSpec& spec, const std::vector<std::string>& args) {
  ParsedArgs parsed;
  std::vector<std::string> extra;
  bool only_positionals = false;
  auto in_passthrough = [&] {
    return spec.passthrough && parsed.positionals_.size() >= spec.positionals.size();
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool positional = only_positionals || in_passthrough() || arg.size() < 2 || arg[0] != '-';
    if (positional) {
      if (parsed.positionals_.size() < spec.positionals.size() || spec.last_positional_repeats ||
          spec.passthrough) {
        parsed.positionals_.push_back(arg);
      } else {
        extra.push_back(arg);
      }
      continue;
    }
    if (arg == "--") {
      only_positionals = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      parsed.help_ = true;
      continue;
    }
    if (arg.rfind("--", 0) == 0) {
      const size_t eq = arg.find('=');
      const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const OptionSpec* option = FindLong(spec, name);
      if (option == nullptr) {
        ThrowValidation(UnknownOption(spec, arg.substr(0, eq), false), spec.usage);
      }
      if (!option->takes_value) {
        if (eq != std::string::npos) {
          ThrowValidation("The option '--" + name + "' does not take any value, but '" +
                              arg.substr(eq + 1) + "' was specified.",
                          spec.usage);
        }
        parsed.flags_.push_back(KeyOf(*option));
        continue;
      }
      std::string value;
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
      } else if (i + 1 < args.size() && !(args[i + 1].size() > 1 && args[i + 1][0] == '-')) {
        value = args[++i];
      } else {
        ThrowValidation("Missing value for '--" + name + " <" + option->value_name + ">'",
                        spec.usage);
      }
      parsed.values_.emplace_back(KeyOf(*option), value);
      continue;
    }
    // One or more short flags: "-i", "-it", "-t 5".
    for (size_t c = 1; c < arg.size(); ++c) {
      const OptionSpec* option = FindShort(spec, arg[c]);
      if (option == nullptr) {
        ThrowValidation(UnknownOption(spec, std::string("-") + arg[c], true), spec.usage);
      }
      if (!option->takes_value) {
        parsed.flags_.push_back(KeyOf(*option));
        continue;
      }
      if (c + 1 != arg.size() || i + 1 >= args.size() ||
          (args[i + 1].size() > 1 && args[i + 1][0] == '-')) {
        ThrowValidation(
            std::string("Missing value for '-") + arg[c] + " <" + option->value_name + ">'",
            spec.usage);
      }
      parsed.values_.emplace_back(KeyOf(*option), args[++i]);
    }
  }
  if (parsed.help_) {
    return parsed;
  }
  if (parsed.positionals_.size() < spec.positionals.size()) {
    const size_t missing = parsed.positionals_.size();
    const bool repeats = missing + 1 == spec.positionals.size() &&
                         (spec.last_positional_repeats || spec.passthrough);
    ThrowValidation("Missing expected argument '<" + spec.positionals[missing] + ">" +
                        (repeats ? " ..." : "") + "'",
                    spec.usage);
  }
  if (extra.size() == 1) {
    ThrowValidation("Unexpected argument '" + extra[0] + "'", spec.usage);
  }
  if (extra.size() > 1) {
    std::string joined;
    for (const std::string& e : extra) {
      joined += (joined.empty() ? "" : "', '") + e;
    }
    ThrowValidation(std::to_string(extra.size()) + " unexpected arguments: '" + joined + "'",
                    spec.usage);
  }
  return parsed;
}

uint64_t ParseUnsigned(const CommandSpec& spec, const std::string& long_name,
                       const std::string& value, uint64_t max) {
  uint64_t out = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, out);
  if (value.empty() || ec != std::errc() || ptr != end || out > max) {
    const OptionSpec* option = FindLong(spec, long_name);
    const std::string value_name = option != nullptr ? option->value_name : long_name;
    ThrowValidation(
        "The value '" + value + "' is invalid for '--" + long_name + " <" + value_name + ">'",
        spec.usage);
  }
  return out;
}

std::string ParseChoice(const CommandSpec& spec, const std::string& long_name,
                        const std::string& value, const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) {
    return value;
  }
  std::string list;
  if (allowed.size() <= 2) {
    for (size_t i = 0; i < allowed.size(); ++i) {
      list += (i == 0 ? "'" : " and '") + allowed[i] + "'";
    }
  } else {
    for (size_t i = 0; i + 1 < allowed.size(); ++i) {
      list += (i == 0 ? "'" : ", '") + allowed[i] + "'";
    }
    list += " or '" + allowed.back() + "'";
  }
  const OptionSpec* option = FindLong(spec, long_name);
  const std::string value_name = option != nullptr ? option->value_name : long_name;
  ThrowValidation("The value '" + value + "' is invalid for '--" + long_name + " <" + value_name +
                      ">'. Please provide one of " + list + ".",
                  spec.usage);
}

std::string HelpText(const CommandSpec& spec) {
  return "USAGE: " + spec.usage.synopsis + "\n\n(flotilla-tartsim: a fake of Tart for tests)\n";
}

}  // namespace flotilla::tartsim
