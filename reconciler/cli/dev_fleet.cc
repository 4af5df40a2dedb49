#include "reconciler/cli/dev_fleet.h"

#include <optional>
#include <sstream>

#include "reconciler/model/text.h"

namespace flotilla::cli {
namespace {

// A mapping key of a block-style YAML line: `key:` followed by a value, a comment, or nothing
// (a nested block). The value has its comment cut off.
struct KeyLine {
  std::string_view key;
  std::string_view value;  // empty for a nested block
};

std::optional<KeyLine> ParseKeyLine(std::string_view content) {
  size_t colon = content.find(':');
  while (colon != std::string_view::npos && colon + 1 < content.size() &&
         content[colon + 1] != ' ') {
    colon = content.find(':', colon + 1);  // "https://..." in a value is not a key's colon
  }
  if (colon == std::string_view::npos || colon == 0) {
    return std::nullopt;
  }
  std::string_view value = content.substr(colon + 1);
  if (const size_t hash = value.find(" #"); hash != std::string_view::npos) {
    value = value.substr(0, hash);
  }
  value = TrimAscii(value);
  if (value.starts_with('#')) {
    value = {};
  }
  return KeyLine{.key = TrimAscii(content.substr(0, colon)), .value = value};
}

}  // namespace

SimulatedFleet SimulatedExamples(const std::map<std::string, std::string>& examples,
                                 const Desired& fleet, std::string_view prefix,
                                 const std::set<std::string>& simulated) {
  SimulatedFleet out{.files = examples};
  const auto drop = [&](const ObjectMeta& meta, const std::string& provider, std::string what) {
    const std::string_view file(meta.origin.file);
    if (file.starts_with(prefix)) {
      out.files.erase(std::string(file.substr(prefix.size())));
    }
    out.left_out[provider].push_back(std::move(what));
  };
  std::map<std::string, std::string> other_pools;  // pool -> provider
  for (const HostPool& pool : fleet.pools) {
    if (!simulated.contains(pool.provider)) {
      other_pools[pool.meta.name] = pool.provider;
      drop(pool.meta, pool.provider, "pool " + pool.meta.name);
    }
  }
  for (const VMSet& set : fleet.sets) {
    if (auto pool = other_pools.find(set.pool); pool != other_pools.end()) {
      drop(set.meta, pool->second, "VM set " + set.meta.name);
    }
  }
  return out;
}

Result<std::string> RewritePool(const std::string& text, const PoolRewrite& rewrite) {
  std::istringstream in(text);
  std::ostringstream out;
  out << "# Seeded by 'flotilla dev' from examples/fleet: each host's address points at a\n"
         "# simulated host on this machine.\n";
  if (!rewrite.settings.empty()) {
    std::string names;
    for (const auto& [path, value] : rewrite.settings) {
      names += (names.empty() ? "" : ", ") + path;
    }
    out << "# Set for the simulated hosts: " << names << ".\n";
  }
  struct Frame {
    size_t indent;
    std::string key;  // "-" for a sequence item
  };
  std::vector<Frame> path;  // the blocks the current line is in
  std::set<std::string> found;
  std::string host;                             // the hosts item the lines are in
  size_t skip_deeper_than = std::string::npos;  // inside a dropped block
  for (std::string line; std::getline(in, line);) {
    const size_t indent = line.find_first_not_of(' ');
    const std::string_view body =
        indent == std::string::npos ? std::string_view() : std::string_view(line).substr(indent);
    if (skip_deeper_than != std::string::npos) {
      if (body.empty() || indent > skip_deeper_than) {
        continue;
      }
      skip_deeper_than = std::string::npos;
    }
    if (body.empty() || body.starts_with('#')) {
      out << line << "\n";
      continue;
    }
    while (!path.empty() && path.back().indent >= indent) {
      path.pop_back();
    }
    std::string_view content = body;
    size_t key_indent = indent;
    if (content.starts_with("- ")) {
      path.push_back({indent, "-"});
      host.clear();  // a new item: an address before its name is left alone
      content = TrimAscii(content.substr(2));
      key_indent = line.size() - content.size();
    }
    const std::optional<KeyLine> key = ParseKeyLine(content);
    if (!key) {
      out << line << "\n";
      continue;
    }
    std::string dotted;
    for (const Frame& frame : path) {
      dotted += frame.key + ".";
    }
    dotted += key->key;
    const std::string_view prefix = std::string_view(line).substr(0, key_indent);
    if (dotted.starts_with("spec.") && rewrite.dropped.contains(dotted.substr(5))) {
      skip_deeper_than = key_indent;
      continue;
    }
    if (dotted.starts_with("spec.")) {
      if (auto setting = rewrite.settings.find(dotted.substr(5));
          setting != rewrite.settings.end() && !key->value.empty()) {
        found.insert(setting->first);
        out << prefix << key->key << ": " << setting->second << "\n";
        continue;
      }
    }
    if (dotted == "spec.hosts.-.name") {
      host = std::string(key->value);
    } else if (dotted == "spec.hosts.-.address") {
      if (auto to = rewrite.addresses.find(host); to != rewrite.addresses.end()) {
        out << prefix << key->key << ": " << to->second << "\n";
        continue;
      }
    }
    if (key->value.empty()) {
      path.push_back({key_indent, std::string(key->key)});
    }
    out << line << "\n";
  }
  std::string missing;
  for (const auto& [setting, value] : rewrite.settings) {
    if (!found.contains(setting)) {
      missing += (missing.empty() ? "" : ", ") + setting;
    }
  }
  if (!missing.empty()) {
    return Status::NotFound("the pool manifest has no " + missing + " to set");
  }
  return out.str();
}

}  // namespace flotilla::cli
