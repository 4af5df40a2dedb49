#include "providers/hostsim/sim_wire.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>

#include "reconciler/model/text.h"

namespace flotilla::hostsim {
namespace {

using nlohmann::json;

// Finds `key` in `object` ignoring case.
const json* FindKeyIgnoreCase(const json& object, std::string_view key) {
  if (!object.is_object()) {
    return nullptr;
  }
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (EqualsIgnoreCase(it.key(), key)) {
      return &it.value();
    }
  }
  return nullptr;
}

}  // namespace

std::string Rfc3339(std::chrono::system_clock::time_point tp) {
  const std::time_t t = std::chrono::system_clock::to_time_t(tp);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}

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

GuestOs GuessImageOs(std::string_view catalog_id, std::string_view host_arch) {
  const std::string id = AsciiLower(catalog_id);
  const bool apple = id.find("macos") != std::string::npos || id.find("ios") != std::string::npos ||
                     id.find("xcode") != std::string::npos;
  return host_arch == "arm64" && apple ? GuestOs::kMacos : GuestOs::kLinux;
}

// A JSON body parsed leniently: discarded (is_discarded()) when it is not valid JSON.
json ParseBody(std::string_view body) {
  if (body.empty()) {
    return json::object();
  }
  return json::parse(body, nullptr, /*allow_exceptions=*/false);
}

std::string StringField(const json& j, const char* key) {
  if (!j.is_object()) {
    return "";
  }
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return "";
  }
  return it->get<std::string>();
}

// A positive integer given as a JSON number or a decimal string ("4", "8192").
std::optional<uint64_t> PositiveInt(const json& j) {
  if (j.is_number_unsigned() || j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    return v > 0 ? std::optional<uint64_t>(static_cast<uint64_t>(v)) : std::nullopt;
  }
  if (!j.is_string()) {
    return std::nullopt;
  }
  const std::string s = j.get<std::string>();
  if (s.empty() || s.size() > 12 ||
      !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::nullopt;
  }
  const uint64_t v = std::stoull(s);
  return v > 0 ? std::optional<uint64_t>(v) : std::nullopt;
}

// "amd64" -> "x86_64", "arm"/"aarch64" -> "arm64"; "" when unknown.
std::string NormalizeArch(std::string_view arch) {
  const std::string a = AsciiLower(arch);
  if (a == "x86_64" || a == "amd64") {
    return "x86_64";
  }
  if (a == "arm64" || a == "arm" || a == "aarch64") {
    return "arm64";
  }
  return "";
}

bool IsAlive(std::string_view state) {
  static constexpr std::array<std::string_view, 9> kAlive = {"running",   "starting", "restarting",
                                                             "resetting", "resuming", "pausing",
                                                             "paused",    "stopping", "suspending"};
  return std::find(kAlive.begin(), kAlive.end(), state) != kAlive.end();
}

std::string OperationTitle(StateOp op) {
  std::string name(StateOpName(op));
  name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
  return name;
}

json OAuthError(std::string_view description) {
  return {{"error", "unauthorized_client"}, {"error_description", description}};
}

// The diagnostics error of auth/token and auth/token/validate (§1.1 shape 3).
Reply Diagnostics(int code, std::string_view message, std::string_view operation) {
  const std::string now = Rfc3339(std::chrono::system_clock::now());
  json error = {{"code", std::to_string(code)},
                {"message", message},
                {"timestamp", now},
                {"component", "auth"}};
  json diagnostics = {{"operation", operation},
                      {"start_time", now},
                      {"end_time", now},
                      {"path", json::array({"auth", operation})},
                      {"errors", json::array({error})},
                      {"warnings", json::array()}};
  return Reply::Json(code, {{"message", message}, {"diagnostics", diagnostics}, {"code", code}});
}

Reply VmNotFound() { return Reply::Error(ApiError::Coded(404, "Virtual machine not found")); }

Reply InvalidBody(std::string_view what) {
  return Reply::Error(ApiError::Raw(400, "Invalid request body: " + std::string(what)));
}

std::string PullError(std::string_view what) {
  return "error 400: Error pulling manifest: \n\n" + std::string(what);
}

std::optional<VmFilter> ParseFilter(const std::string& text, std::string* error) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    *error = "invalid filter \"" + text + "\": expected <property>=<regex>[,i]";
    return std::nullopt;
  }
  VmFilter filter;
  std::string prop = text.substr(0, eq);
  size_t start = 0;
  while (true) {
    const size_t dot = prop.find('.', start);
    filter.path.push_back(prop.substr(start, dot == std::string::npos ? dot : dot - start));
    if (dot == std::string::npos) {
      break;
    }
    start = dot + 1;
  }
  std::string value = text.substr(eq + 1);
  auto flags = std::regex::ECMAScript;
  if (value.size() >= 2 && value.compare(value.size() - 2, 2, ",i") == 0) {
    value.resize(value.size() - 2);
    flags |= std::regex::icase;
  }
  try {
    filter.regex = std::regex(value, flags);
  } catch (const std::regex_error& e) {
    *error = "error parsing regexp: invalid filter value \"" + value + "\"";
    return std::nullopt;
  }
  return filter;
}

bool FilterMatches(const VmFilter& filter, const json& vm) {
  const json* node = &vm;
  for (const std::string& key : filter.path) {
    node = FindKeyIgnoreCase(*node, key);
    if (node == nullptr) {
      return false;
    }
  }
  const std::string text = node->is_string() ? node->get<std::string>() : node->dump();
  return std::regex_search(text, filter.regex);
}

}  // namespace flotilla::hostsim
