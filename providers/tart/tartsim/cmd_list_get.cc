// tart list, tart get, tart fqn (Commands/List.swift, Get.swift, FQN.swift; the JSON fields by
// version follow `git log -S` on those files, see docs/providers.md "flotilla-tartsim").

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "providers/tart/tartsim/apple_json.h"
#include "providers/tart/tartsim/commands.h"
#include "providers/tart/tartsim/fs_util.h"
#include "providers/tart/tartsim/oci_storage.h"

namespace flotilla::tartsim {
namespace {

const CommandSpec kListSpec{
    .usage = {.command = "list",
              .synopsis = "tart list [--source <source>] [--format <format>] [--quiet]"},
    .options = {{.long_name = "source", .takes_value = true, .value_name = "source"},
                {.long_name = "format", .takes_value = true, .value_name = "format"},
                {.long_name = "quiet", .short_name = 'q'}},
};

const CommandSpec kGetSpec{
    .usage = {.command = "get", .synopsis = "tart get <name> [--format <format>]"},
    .options = {{.long_name = "format", .takes_value = true, .value_name = "format"}},
    .positionals = {"name"},
};

const CommandSpec kFqnSpec{
    .usage = {.command = "fqn", .synopsis = "tart fqn <name>"},
    .positionals = {"name"},
};

// One row: the column title, its JSON value, and its text-table cell.
struct Cell {
  std::string title;
  AppleJson json;
  std::string text;
  bool json_only = false;  // "Running" is hidden from the text table (Format.swift)
};
using Row = std::vector<Cell>;

Cell StringCell(const std::string& title, const std::string& value) {
  return Cell{.title = title, .json = AppleJson::String(value), .text = value};
}

Cell IntCell(const std::string& title, int64_t value) {
  return Cell{.title = title, .json = AppleJson::Int(value), .text = std::to_string(value)};
}

Cell BoolCell(const std::string& title, bool value) {
  return Cell{.title = title,
              .json = AppleJson::Bool(value),
              .text = value ? "true" : "false",
              .json_only = title == "Running"};
}

// ISO8601DateFormatter: 2026-05-12T10:00:00Z.
std::string IsoDate(time_t t) {
  struct tm utc {};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

// RelativeDateTimeFormatter, .full units style, en_US.
std::string RelativeDate(time_t t) {
  const int64_t delta = static_cast<int64_t>(time(nullptr)) - static_cast<int64_t>(t);
  const int64_t ago = delta < 0 ? -delta : delta;
  struct Unit {
    int64_t seconds;
    const char* name;
  };
  static const Unit kUnits[] = {{31536000, "year"}, {2592000, "month"}, {604800, "week"},
                                {86400, "day"},     {3600, "hour"},     {60, "minute"},
                                {1, "second"}};
  int64_t count = 0;
  const char* name = "second";
  for (const Unit& unit : kUnits) {
    if (ago >= unit.seconds) {
      count = ago / unit.seconds;
      name = unit.name;
      break;
    }
  }
  const std::string amount = std::to_string(count) + " " + name + (count == 1 ? "" : "s");
  return delta < 0 || (delta == 0) ? "in " + amount : amount + " ago";
}

// TextTable's Style.plain (cells padded to the widest, joined by one space), trimmed as
// Format.swift trims it.
std::string RenderTable(const std::vector<Row>& rows) {
  if (rows.empty()) {
    return "";
  }
  std::vector<size_t> widths;
  std::vector<const Cell*> header;
  for (const Cell& cell : rows[0]) {
    if (!cell.json_only) {
      header.push_back(&cell);
      widths.push_back(cell.title.size());
    }
  }
  for (const Row& row : rows) {
    size_t column = 0;
    for (const Cell& cell : row) {
      if (!cell.json_only) {
        widths[column] = std::max(widths[column], cell.text.size());
        ++column;
      }
    }
  }
  auto pad = [](const std::string& s, size_t width) {
    return s + std::string(width > s.size() ? width - s.size() : 0, ' ');
  };
  std::string out;
  for (size_t c = 0; c < header.size(); ++c) {
    out += (c == 0 ? "" : " ") + pad(header[c]->title, widths[c]);
  }
  out += "\n";
  for (const Row& row : rows) {
    size_t column = 0;
    for (const Cell& cell : row) {
      if (!cell.json_only) {
        out += (column == 0 ? "" : " ") + pad(cell.text, widths[column]);
        ++column;
      }
    }
    out += "\n";
  }
  const size_t begin = out.find_first_not_of(" \n");
  const size_t end = out.find_last_not_of(" \n");
  return begin == std::string::npos ? "" : out.substr(begin, end - begin + 1);
}

AppleJson RowJson(const Row& row) {
  AppleJson object = AppleJson::Object();
  for (const Cell& cell : row) {
    object.Add(cell.title, cell.json);
  }
  return object;
}

Row ListRow(const Context& ctx, const std::string& source, const std::string& name,
            const VmDir& dir, bool json) {
  const int64_t gb = 1000LL * 1000 * 1000;
  Row row;
  row.push_back(StringCell("Source", source));
  row.push_back(StringCell("Name", name));
  if (ctx.config.AtLeast("2.6.1")) {
    row.push_back(IntCell("Disk", dir.SizeBytes() / gb));
    row.push_back(IntCell("Size", dir.AllocatedBytes() / gb));
  } else {
    row.push_back(IntCell("Size", dir.SizeBytes() / gb));
  }
  if (ctx.config.AtLeast("2.15.0") && !ctx.config.AtLeast("2.31.0")) {
    // allocatedSizeGB() - deduplicatedSizeGB(); nothing is deduplicated without --deduplicate.
    row.push_back(IntCell("SizeOnDisk", dir.AllocatedBytes() / gb));
  }
  if (ctx.config.AtLeast("2.31.0")) {
    const time_t accessed = dir.AccessTime();
    row.push_back(StringCell("Accessed", json ? IsoDate(accessed) : RelativeDate(accessed)));
  }
  const VmState state = dir.State();
  if (ctx.config.AtLeast("1.2.0")) {
    row.push_back(BoolCell("Running", state == VmState::kRunning));
  }
  if (ctx.config.AtLeast("1.8.0")) {
    row.push_back(StringCell("State", VmStateName(state)));
  }
  return row;
}

void PrintRows(const Context& ctx, const std::vector<Row>& rows, bool json, bool single) {
  if (!json) {
    std::cout << RenderTable(rows) << "\n";
    return;
  }
  std::unique_ptr<std::mt19937> shuffle = ctx.Shuffler();
  if (single) {
    std::cout << RowJson(rows.at(0)).Render(shuffle.get()) << "\n";
    return;
  }
  AppleJson array = AppleJson::Array();
  for (const Row& row : rows) {
    array.Push(RowJson(row));
  }
  std::cout << array.Render(shuffle.get()) << "\n";
}

}  // namespace

int CmdList(const Context& ctx, const Args& args) {
  ParsedArgs parsed = ParseArgs(kListSpec, args);
  if (parsed.help()) {
    std::cout << HelpText(kListSpec);
    return 0;
  }
  const std::string format =
      ParseChoice(kListSpec, "format", parsed.Value("format").value_or("text"), {"text", "json"});
  const std::optional<std::string> source = parsed.Value("source");
  if (source && *source != "local" && *source != "oci") {
    ThrowValidation("'" + *source + "' is not a valid <source>", kListSpec.usage);
  }
  StartCommand(ctx, true);
  const bool json = format == "json";
  std::vector<Row> rows;
  std::vector<std::string> names;
  if (!source || *source == "local") {
    for (const auto& [name, dir] : ListLocalVms(ctx.home)) {
      names.push_back(name);
      rows.push_back(ListRow(ctx, "local", name, dir, json));
    }
  }
  if (!source || *source == "oci") {
    const std::string label = ctx.config.AtLeast("2.11.0") ? "OCI" : "oci";
    for (const OciEntry& entry : ListOci(ctx.home)) {
      names.push_back(entry.name);
      rows.push_back(ListRow(ctx, label, entry.name, entry.dir, json));
    }
  }
  if (parsed.Flag("quiet")) {
    for (const std::string& name : names) {
      std::cout << name << "\n";
    }
    return 0;
  }
  PrintRows(ctx, rows, json, false);
  return 0;
}

int CmdGet(const Context& ctx, const Args& args) {
  ParsedArgs parsed = ParseArgs(kGetSpec, args);
  if (parsed.help()) {
    std::cout << HelpText(kGetSpec);
    return 0;
  }
  const std::string format =
      ParseChoice(kGetSpec, "format", parsed.Value("format").value_or("text"), {"text", "json"});
  StartCommand(ctx, true);
  const VmDir dir = OpenLocalVm(ctx, parsed.positionals()[0]);
  VmConfig config;
  try {
    config = ReadVmConfig(dir.config_path());
  } catch (const std::runtime_error& e) {
    ThrowError(e.what());
  }
  Row row;
  if (ctx.config.AtLeast("2.8.0")) {
    row.push_back(StringCell("OS", config.os));
  }
  row.push_back(IntCell("CPU", config.cpu_count));
  row.push_back(IntCell("Memory", config.memory_size / 1024 / 1024));
  row.push_back(IntCell("Disk", dir.SizeBytes() / 1000 / 1000 / 1000));
  if (ctx.config.AtLeast("2.28.0")) {
    row.push_back(StringCell("DiskFormat", config.disk_format));
  }
  if (ctx.config.AtLeast("2.6.1")) {
    // String(format: "%.3f", Float(allocatedSizeBytes()) / 1000 / 1000 / 1000), in Float.
    const float gb = static_cast<float>(dir.AllocatedBytes()) / 1000.0f / 1000.0f / 1000.0f;
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(gb));
    row.push_back(ctx.config.get_size_number
                      ? Cell{.title = "Size", .json = AppleJson::Number(buf), .text = buf}
                      : StringCell("Size", buf));
  }
  std::string display =
      std::to_string(config.display_width) + "x" + std::to_string(config.display_height);
  row.push_back(StringCell("Display", display + config.display_unit));
  const VmState state = dir.State();
  if (ctx.config.AtLeast("1.2.0")) {
    row.push_back(BoolCell("Running", state == VmState::kRunning));
  }
  if (ctx.config.AtLeast("1.8.0")) {
    row.push_back(StringCell("State", VmStateName(state)));
  }
  PrintRows(ctx, {row}, format == "json", true);
  return 0;
}

int CmdFqn(const Context& ctx, const Args& args) {
  ParsedArgs parsed = ParseArgs(kFqnSpec, args);
  if (parsed.help()) {
    std::cout << HelpText(kFqnSpec);
    return 0;
  }
  StartCommand(ctx, true);
  const std::string& name = parsed.positionals()[0];
  std::string error;
  std::optional<RemoteName> remote = RemoteName::Parse(name, &error);
  if (!remote) {
    std::cout << name << "\n";
    return 0;
  }
  std::optional<std::string> digest = OciDigest(ctx.home, *remote);
  if (!digest) {
    ThrowRuntimeError(ctx.version(), RuntimeKind::kOther,
                      "OCI storage error: " + remote->Description() +
                          " is not a digest and doesn't point to a digest");
  }
  std::cout << remote->AtDigest(*digest).Description() << "\n";
  return 0;
}

}  // namespace flotilla::tartsim
