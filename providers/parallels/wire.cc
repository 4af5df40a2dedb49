#include "providers/parallels/wire.h"

#include "reconciler/model/text.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace flotilla::providers::parallels {
namespace {

using nlohmann::json;

// A string field, or "" when absent or not a string.
std::string StringField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) {
    return "";
  }
  return it->get<std::string>();
}

std::optional<uint64_t> NumberField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) {
    return std::nullopt;
  }
  return JsonUnsigned(*it);
}

const json* ObjectField(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_object() ? &*it : nullptr;
}

constexpr uint64_t kMiB = uint64_t{1} << 20;

// An architecture as the service writes it: `uname -m` (arm64, x86_64), or the names the
// catalog also accepts, amd64 and aarch64 (catalog/common/helpers.go:47-58).
std::optional<Arch> WireArch(std::string_view text) {
  const std::string arch = AsciiLower(TrimAscii(text));
  if (arch == "amd64") {
    return Arch::kX86_64;
  }
  if (arch == "aarch64") {
    return Arch::kArm64;
  }
  return ParseArch(arch);
}

uint64_t MiBToBytes(uint64_t mib) { return mib > UINT64_MAX / kMiB ? UINT64_MAX : mib * kMiB; }

Resources ParseResourceBlock(const json* block) {
  Resources r;
  if (block == nullptr) {
    return r;
  }
  r.cpu = static_cast<uint32_t>(
      std::min<uint64_t>(NumberField(*block, "logical_cpu_count").value_or(0), UINT32_MAX));
  r.memory_bytes = MiBToBytes(NumberField(*block, "memory_size").value_or(0));
  r.disk_bytes = MiBToBytes(NumberField(*block, "disk_count").value_or(0));
  return r;
}

}  // namespace

std::string NormalizeCatalogName(std::string_view name) {
  static constexpr std::string_view kReplaced = " ,:;()[]{}'\"/\\|<>=+*&^%$#@!`~?";
  std::string out(TrimAscii(name));
  for (char& c : out) {
    if (kReplaced.find(c) != std::string_view::npos) {
      c = '_';
    }
  }
  return AsciiLower(out);
}

std::string ImageCacheKey(std::string_view image) {
  constexpr std::string_view kCatalog = "catalog://";
  if (!image.starts_with(kCatalog)) {
    return std::string(image);
  }
  const std::string_view rest = image.substr(kCatalog.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return std::string(kCatalog) + NormalizeCatalogName(rest);
  }
  return std::string(kCatalog) + NormalizeCatalogName(rest.substr(0, slash)) + "/" +
         NormalizeCatalogName(rest.substr(slash + 1));
}

VmState ParseVmState(std::string_view raw) {
  const std::string state = AsciiLower(raw);
  if (state == "running") {
    return VmState::kRunning;
  }
  if (state == "stopped") {
    return VmState::kStopped;
  }
  if (state == "suspended") {
    return VmState::kSuspended;
  }
  if (state == "paused") {
    return VmState::kPaused;
  }
  if (state == "invalid") {
    return VmState::kInvalid;
  }
  // prlctl's in-between states: starting, stopping, suspending, resuming, pausing, resetting,
  // restoring, continuing, migrating, deleting, ...
  if (state.size() > 3 && state.ends_with("ing")) {
    return VmState::kTransitional;
  }
  return VmState::kUnknown;
}

std::optional<uint64_t> JsonUnsigned(const json& value) {
  if (value.is_number_unsigned()) {
    return value.get<uint64_t>();
  }
  if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    return v < 0 ? std::nullopt : std::optional<uint64_t>(static_cast<uint64_t>(v));
  }
  if (value.is_number_float()) {
    const double v = value.get<double>();
    // 2^64 as a double; anything at or past it (or NaN, or negative) does not fit.
    if (!(v >= 0.0 && v < 18446744073709551616.0)) {
      return std::nullopt;
    }
    return static_cast<uint64_t>(v);
  }
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) {
      return v;
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> ParseSize(std::string_view text) {
  text = TrimAscii(text);
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end == text.data()) {
    return std::nullopt;
  }
  std::string unit = AsciiLower(TrimAscii(std::string_view(end, text.data() + text.size() - end)));
  uint64_t scale = 0;
  if (unit.empty() || unit == "mb" || unit == "m" || unit == "mib") {
    scale = kMiB;
  } else if (unit == "b") {
    scale = 1;
  } else if (unit == "kb" || unit == "k" || unit == "kib") {
    scale = 1024;
  } else if (unit == "gb" || unit == "g" || unit == "gib") {
    scale = kMiB * 1024;
  } else if (unit == "tb" || unit == "t" || unit == "tib") {
    scale = kMiB * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  if (number > UINT64_MAX / scale) {
    return std::nullopt;
  }
  return number * scale;
}

Result<VmInfo> ParseVm(const json& vm) {
  if (!vm.is_object()) {
    return Status::InvalidArgument("a VM entry is not a JSON object");
  }
  VmInfo info;
  info.id = StringField(vm, "ID");
  info.name = StringField(vm, "Name");
  info.raw_state = StringField(vm, "State");
  if (info.id.empty()) {
    return Status::InvalidArgument("a VM entry has no \"ID\"" +
                                   (info.name.empty() ? "" : " (VM " + info.name + ")"));
  }
  if (info.name.empty()) {
    return Status::InvalidArgument("VM " + info.id + " has no \"Name\"");
  }
  // A VM the host cannot describe is still there: it counts, and it is never taken for gone.
  info.state = ParseVmState(info.raw_state);
  info.os_raw = StringField(vm, "OS");
  info.type = StringField(vm, "Type");
  const std::string os = AsciiLower(info.os_raw);
  if (info.type == "APPLE_VZ_VM" || os.starts_with("macos")) {
    info.os = GuestOs::kMacos;
  } else if (!os.empty() && !os.starts_with("win")) {
    info.os = GuestOs::kLinux;  // ubuntu, debian, fedora, linux, ...
  }
  if (const json* hardware = ObjectField(vm, "Hardware")) {
    if (const json* cpu = ObjectField(*hardware, "cpu")) {
      info.cpu = static_cast<uint32_t>(
          std::min<uint64_t>(NumberField(*cpu, "cpus").value_or(0), UINT32_MAX));
    }
    if (const json* memory = ObjectField(*hardware, "memory")) {
      info.memory_bytes = ParseSize(StringField(*memory, "size")).value_or(0);
    }
    if (const json* disk = ObjectField(*hardware, "hdd0")) {
      info.disk_bytes = ParseSize(StringField(*disk, "size")).value_or(0);
    }
  }
  info.ip = StringField(vm, "internal_ip_address");
  info.pending_create_for = ParsePendingCreateName(info.name);
  return info;
}

Result<std::vector<VmInfo>> ParseVmList(const json& list) {
  if (!list.is_array()) {
    return Status::InvalidArgument("the VM list is not a JSON array");
  }
  std::vector<VmInfo> vms;
  vms.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    Result<VmInfo> vm = ParseVm(list[i]);
    if (!vm.ok()) {
      return vm.status().WithContext("VM list entry " + std::to_string(i));
    }
    vms.push_back(std::move(*vm));
  }
  std::sort(vms.begin(), vms.end(),
            [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
  return vms;
}

Result<HostFacts> ParseHardware(const json& usage) {
  if (!usage.is_object()) {
    return Status::InvalidArgument("the hardware report is not a JSON object");
  }
  const json* total = ObjectField(usage, "total");
  const json* available = ObjectField(usage, "total_available");
  if (total == nullptr) {
    return Status::InvalidArgument("the hardware report has no \"total\"");
  }
  if (available == nullptr) {
    return Status::InvalidArgument("the hardware report has no \"total_available\"");
  }
  HostFacts facts;
  facts.arch = WireArch(StringField(usage, "cpu_type"));
  facts.os_name = StringField(usage, "os_name");
  facts.os_version = StringField(usage, "os_version");
  facts.agent_version = StringField(usage, "devops_version");
  facts.hypervisor_version = StringField(usage, "parallels_desktop_version");
  facts.total = ParseResourceBlock(total);
  facts.available = ParseResourceBlock(available);
  facts.system_reserved = ParseResourceBlock(ObjectField(usage, "system_reserved"));
  // Both prl_home fields are omitempty: a total without a free figure is a full disk.
  const std::optional<uint64_t> home_total = NumberField(*available, "prl_home_total_size");
  const std::optional<uint64_t> home_free = NumberField(*available, "prl_home_free_size");
  facts.disk_known = home_total.has_value() || home_free.has_value();
  facts.total.disk_bytes = MiBToBytes(home_total.value_or(0));
  facts.available.disk_bytes = MiBToBytes(home_free.value_or(0));
  return facts;
}

std::vector<std::string> ParseCachedImages(const json& cache, std::optional<Arch> arch) {
  std::vector<std::string> images;
  if (!cache.is_object()) {
    return images;
  }
  auto manifests = cache.find("manifests");
  if (manifests == cache.end() || !manifests->is_array()) {
    return images;
  }
  for (const json& m : *manifests) {
    if (!m.is_object()) {
      continue;
    }
    // Entries are kept per architecture (catalog/cacheservice); another architecture's copy
    // is no use to this host's VMs.
    const std::string entry_arch = StringField(m, "architecture");
    if (arch && !entry_arch.empty() && WireArch(entry_arch) != arch) {
      continue;
    }
    const std::string id = StringField(m, "catalog_id");
    const std::string version = StringField(m, "version");
    if (!id.empty() && !version.empty()) {
      images.push_back(ImageCacheKey("catalog://" + id + "/" + version));
    }
  }
  std::sort(images.begin(), images.end());
  images.erase(std::unique(images.begin(), images.end()), images.end());
  return images;
}

Result<Job> ParseJob(const json& job) {
  if (!job.is_object()) {
    return Status::InvalidArgument("the job is not a JSON object");
  }
  Job out;
  out.id = StringField(job, "id");
  out.state = AsciiLower(StringField(job, "state"));
  if (out.id.empty()) {
    return Status::InvalidArgument("the job has no \"id\"");
  }
  if (out.state.empty()) {
    return Status::InvalidArgument("job " + out.id + " has no \"state\"");
  }
  out.progress =
      static_cast<int>(std::min<uint64_t>(NumberField(job, "progress").value_or(0), 100));
  out.error = StringField(job, "error");
  if (out.error.empty()) {
    out.error = StringField(job, "message");
  }
  out.result_record_id = StringField(job, "result_record_id");
  out.result_record_name = StringField(job, "result_record_name");
  out.type = StringField(job, "job_type");
  out.operation = StringField(job, "job_operation");
  // models/job.go JobStepResponse: the first step still running says what the job is doing.
  if (auto steps = job.find("steps"); steps != job.end() && steps->is_array()) {
    for (const json& step : *steps) {
      if (!step.is_object() || AsciiLower(StringField(step, "state")) != "running") {
        continue;
      }
      std::string name = StringField(step, "display_name");
      if (name.empty()) {
        name = StringField(step, "name");
      }
      out.step = name;
      auto percentage = step.find("current_percentage");
      const uint64_t value = NumberField(step, "value").value_or(0);
      const uint64_t total = NumberField(step, "total").value_or(0);
      if (percentage != step.end() && percentage->is_number() && total > 0) {
        // Clamped before the conversion: a double past int's range does not convert.
        const double percent = std::clamp(percentage->get<double>(), 0.0, 100.0);
        out.step += " " + std::to_string(static_cast<int>(percent)) + "%";
        const std::string unit = StringField(step, "unit");
        const bool mb = EqualsIgnoreCase(unit, "MB") || EqualsIgnoreCase(unit, "MiB");
        auto size = [&](uint64_t n) {
          if (!mb) {
            return std::to_string(n) + (unit.empty() ? "" : " " + unit);
          }
          // MB with one decimal of GiB: "9.2 GiB".
          const uint64_t tenths = (n * 10 + 512) / 1024;
          return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " GiB";
        };
        std::string detail = size(value) + " of " + size(total);
        if (const std::string eta = StringField(step, "eta"); !eta.empty()) {
          detail += ", " + eta + " left";
        }
        out.step += " (" + detail + ")";
      }
      break;
    }
  }
  return out;
}

std::string ErrorMessage(std::string_view body, const Redactor& redactor, const Redactor* more) {
  std::string message;
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    message = StringField(parsed, "message");
    if (message.empty()) {
      message = StringField(parsed, "error_description");
    }
    if (message.empty()) {
      message = StringField(parsed, "error");
    }
  } else if (!parsed.is_discarded()) {
    message = parsed.is_null() ? "" : parsed.dump();
  } else {
    message = std::string(body);
  }
  message = redactor.Apply(message);
  if (more != nullptr) {
    message = more->Apply(message);
  }
  // Collapse the multi-line messages the service builds ("Error pulling manifest: \n\n...").
  std::string flat;
  bool space = false;
  for (char c : TrimAscii(message)) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = true;
      continue;
    }
    if (space && !flat.empty()) {
      flat += ' ';
    }
    space = false;
    flat += c;
  }
  if (flat.size() > 300) {
    flat.resize(297);
    flat += "...";
  }
  return flat;
}

std::optional<bool> VersionAtLeast(std::string_view version, std::string_view minimum) {
  auto numbers = [](std::string_view text) {
    std::vector<uint64_t> out;
    if (!text.empty() && (text.front() == 'v' || text.front() == 'V')) {
      text.remove_prefix(1);
    }
    text = text.substr(0, text.find('-'));
    while (!text.empty()) {
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (ec != std::errc()) {
        break;
      }
      out.push_back(n);
      text.remove_prefix(static_cast<size_t>(end - text.data()));
      if (text.empty() || text.front() != '.') {
        break;
      }
      text.remove_prefix(1);
    }
    return out;
  };
  std::vector<uint64_t> have = numbers(TrimAscii(version));
  std::vector<uint64_t> want = numbers(minimum);
  if (have.empty()) {
    return std::nullopt;
  }
  have.resize(std::max(have.size(), want.size()), 0);
  want.resize(have.size(), 0);
  return have >= want;
}

Result<ImageRef> ParseImage(std::string_view image) {
  ImageRef ref;
  if (image.starts_with("catalog://")) {
    std::string_view rest = image.substr(10);
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size() ||
        rest.find('/', slash + 1) != std::string_view::npos) {
      return Status::InvalidArgument("image \"" + std::string(image) +
                                     "\" is not catalog://ID/VERSION");
    }
    ref.kind = ImageRef::Kind::kCatalog;
    ref.catalog_id = std::string(rest.substr(0, slash));
    ref.version = std::string(rest.substr(slash + 1));
    return ref;
  }
  if (image.starts_with("vm://") && image.size() > 5) {
    ref.kind = ImageRef::Kind::kTemplateVm;
    ref.vm_name = std::string(image.substr(5));
    return ref;
  }
  return Status::InvalidArgument("image \"" + std::string(image) +
                                 "\" is neither catalog://ID/VERSION nor vm://NAME");
}

Result<std::string> ExecCommand(std::string_view script,
                                const std::map<std::string, std::string>& env) {
  std::string payload;
  for (const auto& [name, value] : env) {
    const bool valid = !name.empty() && std::isdigit(static_cast<unsigned char>(name[0])) == 0 &&
                       std::all_of(name.begin(), name.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
                       });
    if (!valid) {
      return Status::InvalidArgument("environment variable name \"" + name +
                                     "\" is not a shell name");
    }
    payload += "export " + name + "='";
    for (char c : value) {
      payload += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    payload += "'\n";
  }
  payload += script;
  return "echo " + EncodeBase64(payload) + " | base64 --decode | /bin/bash";
}

std::vector<std::string> CatalogConnectionSecrets(std::string_view connection) {
  static constexpr std::string_view kSecretKeys[] = {
      "password", "api_key", "access_key", "secret_key", "session_token", "storage_account_key"};
  std::vector<std::string> secrets;
  while (!connection.empty()) {
    const size_t end = connection.find(';');
    std::string_view part = connection.substr(0, end);
    connection = end == std::string_view::npos ? std::string_view() : connection.substr(end + 1);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    const std::string key = AsciiLower(TrimAscii(part.substr(0, eq)));
    std::string_view value = TrimAscii(part.substr(eq + 1));
    if (key == "host") {
      // USER:PASS@host, or BASE64(KEY:SECRET)@host
      if (size_t at = value.rfind('@'); at != std::string_view::npos) {
        std::string_view credentials = value.substr(0, at);
        secrets.emplace_back(credentials);
        if (size_t colon = credentials.find(':'); colon != std::string_view::npos) {
          secrets.emplace_back(credentials.substr(colon + 1));
        } else if (std::optional<std::string> decoded = DecodeBase64(credentials);
                   decoded && !decoded->empty()) {
          // An API key: base64 of KEY:SECRET.
          secrets.push_back(*decoded);
          if (size_t key_end = decoded->find(':'); key_end != std::string::npos) {
            secrets.push_back(decoded->substr(key_end + 1));
          }
        }
      }
      continue;
    }
    if (std::find(std::begin(kSecretKeys), std::end(kSecretKeys), key) != std::end(kSecretKeys) &&
        !value.empty()) {
      secrets.emplace_back(value);
    }
  }
  return secrets;
}

}  // namespace flotilla::providers::parallels
