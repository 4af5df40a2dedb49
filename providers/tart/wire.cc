#include "providers/tart/wire.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <sstream>

#include "reconciler/model/text.h"

namespace flotilla::providers::tart {
namespace {

using nlohmann::json;

bool Contains(std::string_view text, std::string_view what) {
  return text.find(what) != std::string_view::npos;
}

// A whole number from a JSON number or a numeric string ("22.123" gives 22).
uint64_t Number(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end()) {
    return 0;
  }
  if (it->is_number_unsigned() || it->is_number_integer()) {
    return it->get<int64_t>() < 0 ? 0 : it->get<uint64_t>();
  }
  if (it->is_number_float()) {
    // Negative, or 2^64 and past (a double that does not convert): no size Tart prints.
    const double value = it->get<double>();
    return value >= 0 && value < 18446744073709551616.0 ? static_cast<uint64_t>(value) : 0;
  }
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    uint64_t value = 0;
    std::from_chars(s.data(), s.data() + s.size(), value);
    return value;
  }
  return 0;
}

std::string String(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// State, or (before Tart 1.8) Running.
std::string StateOf(const json& object) {
  std::string state = AsciiLower(String(object, "State"));
  if (state.empty()) {
    const auto running = object.find("Running");
    state = running != object.end() && running->is_boolean() && running->get<bool>() ? "running"
                                                                                     : "stopped";
  }
  return state;
}

Result<json> Parse(std::string_view text, std::string_view what) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return Status::Unavailable(std::string(what) +
                               " printed something that is not JSON: " + FirstLine(text));
  }
  return parsed;
}

std::optional<uint64_t> ParseUnsigned(std::string_view text) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) {
    return std::nullopt;
  }
  return value;
}

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> lines;
  std::stringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::vector<std::string> Words(std::string_view line) {
  std::vector<std::string> words;
  std::stringstream in{std::string(line)};
  for (std::string word; in >> word;) {
    words.push_back(word);
  }
  return words;
}

}  // namespace

Result<std::vector<ListEntry>> ParseList(std::string_view text) {
  Result<json> parsed = Parse(text, "tart list");
  if (!parsed.ok()) {
    return parsed.status();
  }
  if (!parsed->is_array()) {
    return Status::Unavailable("tart list printed no JSON array");
  }
  std::vector<ListEntry> entries;
  for (const json& item : *parsed) {
    if (!item.is_object() || String(item, "Name").empty()) {
      return Status::Unavailable("tart list printed an entry without a Name");
    }
    entries.push_back(ListEntry{.source = AsciiLower(String(item, "Source")),
                                .name = String(item, "Name"),
                                .state = StateOf(item),
                                .disk_gb = Number(item, "Disk")});
  }
  return entries;
}

Result<VmDetails> ParseGet(std::string_view text) {
  Result<json> parsed = Parse(text, "tart get");
  if (!parsed.ok()) {
    return parsed.status();
  }
  if (!parsed->is_object()) {
    return Status::Unavailable("tart get printed no JSON object");
  }
  return VmDetails{.os = AsciiLower(String(*parsed, "OS")),
                   .cpu = static_cast<uint32_t>(Number(*parsed, "CPU")),
                   .memory_mib = Number(*parsed, "Memory"),
                   .disk_gb = Number(*parsed, "Disk"),
                   .state = StateOf(*parsed)};
}

VmState StateFromTart(std::string_view state) {
  if (state == "running") {
    return VmState::kRunning;
  }
  if (state == "suspended") {
    return VmState::kSuspended;
  }
  if (state == "stopped") {
    return VmState::kStopped;
  }
  return VmState::kUnknown;
}

Failure Classify(int exit_code, std::string_view err) {
  if (exit_code == 2) {
    if (Contains(err, "does not exist")) {
      return Failure::kDoesNotExist;
    }
    if (Contains(err, "is already running")) {
      return Failure::kAlreadyRunning;
    }
    if (Contains(err, "is not running")) {
      return Failure::kNotRunning;
    }
    return Failure::kOther;
  }
  if (exit_code == 64) {
    return Contains(err, "already exists") ? Failure::kTargetExists : Failure::kUsage;
  }
  // Tart >= 2.18.1, and the raw Virtualization error of older versions (Code=6).
  if (Contains(err, "exceeds the system limit") ||
      Contains(err, "maximum supported number of active virtual machines") ||
      (Contains(err, "VZErrorDomain") && Contains(err, "Code=6"))) {
    return Failure::kVmLimit;
  }
  if (Contains(err, "-25308") || Contains(err, "SecKeyCreateRandomKey_ios") ||
      Contains(err, "Interaction is not allowed with the Security Server") ||
      Contains(err, "Failed to generate keypair")) {
    return Failure::kKeychainLocked;
  }
  if (Contains(err, "control socket") || Contains(err, "Guest Agent")) {
    return Failure::kNoAgent;
  }
  if (Contains(err, "dataCorrupted") && Contains(err, "not valid JSON")) {
    return Failure::kTornRead;
  }
  if (Contains(err, "failed to lock")) {
    return Failure::kLockRace;
  }
  if (Contains(err, "no IP address found")) {
    return Failure::kNoIp;
  }
  if (Contains(err, "is running")) {
    return Failure::kIsRunning;
  }
  return Failure::kOther;
}

std::string FirstLine(std::string_view text, std::string_view fallback) {
  for (const std::string& line : Lines(text)) {
    const std::string trimmed = std::string(TrimAscii(line));
    if (!trimmed.empty()) {
      return trimmed.size() > 300 ? trimmed.substr(0, 300) + "..." : trimmed;
    }
  }
  return fallback.empty() ? "" : FirstLine(fallback);
}

std::string LastLine(std::string_view text) {
  const std::vector<std::string> lines = Lines(text);
  for (auto line = lines.rbegin(); line != lines.rend(); ++line) {
    const std::string trimmed = std::string(TrimAscii(*line));
    if (!trimmed.empty()) {
      return trimmed.size() > 300 ? trimmed.substr(0, 300) + "..." : trimmed;
    }
  }
  return "";
}

bool TartAtLeast(std::string_view version, std::string_view minimum) {
  if (version.empty()) {
    return false;
  }
  if (version == "SNAPSHOT") {
    return true;
  }
  auto parts = [](std::string_view text) {
    std::vector<uint64_t> numbers;
    std::stringstream in{std::string(text)};
    for (std::string part; std::getline(in, part, '.');) {
      numbers.push_back(ParseUnsigned(TrimAscii(part)).value_or(0));
    }
    return numbers;
  };
  std::vector<uint64_t> have = parts(version);
  std::vector<uint64_t> want = parts(minimum);
  const size_t n = std::max(have.size(), want.size());
  have.resize(n, 0);
  want.resize(n, 0);
  return have >= want;
}

Result<HostReport> ParseHostReport(std::string_view out) {
  HostReport report;
  std::string section;  // "list", "get NAME", ...
  std::string body;
  bool ended = false;
  // Handles one finished section.
  auto finish = [&](int rc) -> Status {
    const size_t space = section.find(' ');
    const std::string kind = section.substr(0, space);
    const std::string arg = space == std::string::npos ? "" : section.substr(space + 1);
    const std::vector<std::string> lines = Lines(body);
    if (kind == "version") {
      if (rc != 0) {
        return Status::Unavailable("tart --version failed: " + FirstLine(body, "no output") +
                                   " (is tart.path right?)");
      }
      report.tart_version = FirstLine(body);
    } else if (kind == "sysctl") {
      if (rc != 0 || lines.size() < 3) {
        return Status::Unavailable("sysctl failed: " + FirstLine(body, "no output"));
      }
      report.ncpu =
          static_cast<uint32_t>(ParseUnsigned(std::string(TrimAscii(lines[0]))).value_or(0));
      report.memsize = ParseUnsigned(std::string(TrimAscii(lines[1]))).value_or(0);
      report.machine = std::string(TrimAscii(lines[2]));
    } else if (kind == "sw_vers") {
      report.os_version = rc == 0 ? FirstLine(body) : "";
    } else if (kind == "df") {
      // The last line: FILESYSTEM BLOCKS USED AVAILABLE ... (1024-byte blocks, -k).
      if (rc == 0 && lines.size() >= 2) {
        const std::vector<std::string> words = Words(lines.back());
        if (words.size() >= 4) {
          report.disk_total_kb = ParseUnsigned(words[1]);
          report.disk_avail_kb = ParseUnsigned(words[3]);
        }
      }
    } else if (kind == "now") {
      report.now = static_cast<int64_t>(ParseUnsigned(std::string(TrimAscii(arg))).value_or(0));
    } else if (kind == "list") {
      if (rc != 0) {
        return Status::Unavailable("tart list failed: " + FirstLine(body, "no output"));
      }
      Result<std::vector<ListEntry>> entries = ParseList(body);
      if (!entries.ok()) {
        return entries.status();
      }
      for (ListEntry& entry : *entries) {
        if (entry.source == "local") {
          report.local.push_back(std::move(entry));
        }
      }
    } else if (kind == "oci") {
      if (rc == 0) {
        for (const std::string& line : lines) {
          if (!std::string(TrimAscii(line)).empty()) {
            report.cached.push_back(std::string(TrimAscii(line)));
          }
        }
      }
    } else if (kind == "get") {
      if (rc == 0) {
        Result<VmDetails> details = ParseGet(body);
        if (!details.ok()) {
          return details.status().WithContext("VM " + arg);
        }
        report.details[arg] = std::move(*details);
      } else if (Classify(rc, body) != Failure::kDoesNotExist) {
        // A VM deleted between list and get is simply gone; anything else is a failure.
        return Status::Unavailable("tart get " + arg + " failed: " + FirstLine(body, "no output"));
      }
    } else if (kind == "ip") {
      if (rc == 0 && !FirstLine(body).empty()) {
        report.ips[arg] = FirstLine(body);
      } else {
        report.ip_failures[arg] = HostReport::IpFailure{.exit_code = rc, .text = body};
      }
    } else if (kind == "job") {
      const std::vector<std::string> words = Words(body);
      if (words.size() >= 3) {
        report.jobs[arg] =
            HostReport::Job{.pid = static_cast<int64_t>(ParseUnsigned(words[0]).value_or(0)),
                            .started = static_cast<int64_t>(ParseUnsigned(words[1]).value_or(0)),
                            .alive = words[2] == "1"};
      }
    } else if (kind == "names") {
      if (rc != 0) {
        return Status::Unavailable("tart list failed: " + FirstLine(body, "no output"));
      }
      for (const std::string& line : lines) {
        if (!line.empty()) {
          report.names.push_back(line);
        }
      }
    } else if (kind == "create") {
      const std::vector<std::string> words = Words(body);
      if (words.size() >= 3) {
        report.creates[arg] =
            HostReport::Job{.pid = static_cast<int64_t>(ParseUnsigned(words[0]).value_or(0)),
                            .started = static_cast<int64_t>(ParseUnsigned(words[1]).value_or(0)),
                            .alive = words[2] == "1"};
      }
    } else if (kind == "log") {
      report.jobs[arg].log_tail = body;
    }
    return Status::Ok();
  };
  for (const std::string& line : Lines(out)) {
    if (line.starts_with("@@rc ")) {
      const int rc = static_cast<int>(ParseUnsigned(line.substr(5)).value_or(1));
      if (Status s = finish(rc); !s.ok()) {
        return s;
      }
      section.clear();
      body.clear();
    } else if (line == "@@end") {
      ended = true;
    } else if (line.starts_with("@@") && section.empty()) {
      section = line.substr(2);
      body.clear();  // what came between sections (a tool's progress lines) is no section's
    } else {
      body += line;
      body += '\n';
    }
  }
  if (!ended) {
    return Status::Unavailable("the host's report ended early");
  }
  return report;
}

}  // namespace flotilla::providers::tart
