#include "providers/tart/settings.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "reconciler/model/text.h"

namespace flotilla::providers::tart {
namespace {

using nlohmann::json;

constexpr size_t kMaxPath = 1024;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLowerAlnum(char c) { return IsDigit(c) || (c >= 'a' && c <= 'z'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

bool AllOf(std::string_view text, bool (*allowed)(char)) {
  return std::all_of(text.begin(), text.end(), allowed);
}

// A path on a host or on the reconciler's machine: `prefix` ("/" or "~/"), then at least one of
// letters, digits, '.', '_', '-', '+' and '/'. Nothing a shell or ssh_config would expand or
// split.
bool IsSafePath(std::string_view path, std::string_view prefix) {
  return path.size() > prefix.size() && path.size() <= kMaxPath && path.starts_with(prefix) &&
         AllOf(path.substr(prefix.size()), [](char c) {
           return IsAlnum(c) || c == '.' || c == '_' || c == '-' || c == '+' || c == '/';
         });
}

// A number from 1 to `max`, in decimal without leading zeros.
std::optional<int> SmallNumber(std::string_view text, int max) {
  if (text.empty() || text.size() > 9 || text[0] == '0' || !AllOf(text, IsDigit)) {
    return std::nullopt;
  }
  int value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value <= max ? std::optional<int>(value) : std::nullopt;
}

// A DNS name: labels of letters, digits and '-', not starting or ending with '-', of at most 63
// characters, together at most 253. With `lowercase`, no capitals.
bool IsDnsName(std::string_view name, bool lowercase) {
  if (name.empty() || name.size() > 253) {
    return false;
  }
  size_t start = 0;
  while (start <= name.size()) {
    const size_t dot = std::min(name.find('.', start), name.size());
    const std::string_view label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(), [lowercase](char c) {
          return (lowercase ? IsLowerAlnum(c) : IsAlnum(c)) || c == '-';
        })) {
      return false;
    }
    start = dot + 1;
  }
  return true;
}

// Four decimal numbers from 0 to 255 without leading zeros ("010" reads as octal to some).
bool IsIpv4(std::string_view address) {
  int parts = 0;
  size_t start = 0;
  while (start <= address.size()) {
    const size_t dot = std::min(address.find('.', start), address.size());
    const std::string_view part = address.substr(start, dot - start);
    if (part != "0" && !SmallNumber(part, 255).has_value()) {
      return false;
    }
    ++parts;
    start = dot + 1;
  }
  return parts == 4;
}

// A host name or an IPv4 address: names that are all digits and dots must be addresses.
bool IsHostName(std::string_view host, bool lowercase) {
  const bool numeric = AllOf(host, [](char c) { return IsDigit(c) || c == '.'; });
  return numeric ? IsIpv4(host) : IsDnsName(host, lowercase);
}

bool IsIpv6(std::string_view address) {
  if (address.empty() || address.size() > 45 || !AllOf(address, [](char c) {
        return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
               c == '.';
      })) {
    return false;
  }
  unsigned char bytes[16];
  return inet_pton(AF_INET6, std::string(address).c_str(), bytes) == 1;
}

// A POSIX portable user name (the portable filename characters, not starting with '-').
bool IsPortableUserName(std::string_view user) {
  return !user.empty() && user.size() <= 64 && user.front() != '-' &&
         AllOf(user, [](char c) { return IsAlnum(c) || c == '.' || c == '_' || c == '-'; });
}

// One component of an OCI repository path: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool IsOciPathComponent(std::string_view component) {
  if (component.empty() || !IsLowerAlnum(component.front()) || !IsLowerAlnum(component.back())) {
    return false;
  }
  size_t i = 0;
  while (i < component.size()) {
    if (IsLowerAlnum(component[i])) {
      ++i;
      continue;
    }
    // A separator: '.', '_', "__" or any number of '-', then a letter or digit.
    const size_t start = i;
    while (i < component.size() && !IsLowerAlnum(component[i])) {
      ++i;
    }
    const std::string_view separator = component.substr(start, i - start);
    if (separator != "." && separator != "_" && separator != "__" &&
        !AllOf(separator, [](char c) { return c == '-'; })) {
      return false;
    }
  }
  return true;
}

// [A-Za-z0-9_][A-Za-z0-9._-]{0,127}
bool IsOciTag(std::string_view tag) {
  return !tag.empty() && tag.size() <= 128 && (IsAlnum(tag.front()) || tag.front() == '_') &&
         AllOf(tag, [](char c) { return IsAlnum(c) || c == '_' || c == '.' || c == '-'; });
}

bool IsSha256Digest(std::string_view digest) {
  constexpr std::string_view kAlgorithm = "sha256:";
  return digest.size() == kAlgorithm.size() + 64 && digest.starts_with(kAlgorithm) &&
         AllOf(digest.substr(kAlgorithm.size()),
               [](char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); });
}

// REGISTRY: a lowercase host name or IPv4 address and an optional :PORT. It must look like a
// host (a '.', a port, or localhost), as Docker and Tart tell a registry from a namespace: in
// "oci://cirruslabs/macos" the registry was forgotten.
bool IsRegistry(std::string_view registry) {
  const size_t colon = registry.find(':');
  const std::string_view host = registry.substr(0, colon);
  if (colon != std::string_view::npos &&
      !SmallNumber(registry.substr(colon + 1), 65535).has_value()) {
    return false;
  }
  const bool looks_like_host = colon != std::string_view::npos ||
                               host.find('.') != std::string_view::npos || host == "localhost";
  return looks_like_host && IsHostName(host, /*lowercase=*/true);
}

Result<ImageRef> ParseOci(std::string_view reference) {
  std::string_view digest;
  const size_t at = reference.find('@');
  const bool has_digest = at != std::string_view::npos;
  if (has_digest) {
    digest = reference.substr(at + 1);
    reference = reference.substr(0, at);
  }
  const size_t slash = reference.find('/');
  if (slash == std::string_view::npos) {
    return Status::InvalidArgument(
        "the registry or the repository is missing (oci://ghcr.io/ORG/REPO)");
  }
  const std::string_view registry = reference.substr(0, slash);
  if (!IsRegistry(registry)) {
    return Status::InvalidArgument(
        "the reference must start with a registry: a lowercase host name or IPv4 address with "
        "an optional :PORT (oci://ghcr.io/ORG/REPO)");
  }
  std::string_view path = reference.substr(slash + 1);
  const size_t last_slash = path.rfind('/');
  const size_t colon = path.find(':', last_slash == std::string_view::npos ? 0 : last_slash);
  const bool has_tag = colon != std::string_view::npos;
  const std::string_view tag = has_tag ? path.substr(colon + 1) : "latest";
  path = path.substr(0, colon);
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    if (!IsOciPathComponent(path.substr(start, end - start))) {
      return Status::InvalidArgument(
          "the repository is lowercase letters and digits, in components separated by '/', "
          "and within a component by '.', '_', '__' or '-'");
    }
    start = end + 1;
  }
  if (registry.size() + 1 + path.size() > 255) {
    return Status::InvalidArgument("the registry and repository are longer than 255 characters");
  }
  if (has_tag && has_digest) {
    return Status::InvalidArgument("it has both a tag and a digest; keep one");
  }
  if (!IsOciTag(tag)) {
    return Status::InvalidArgument(
        "the tag is letters, digits, '_', '.' and '-', not starting with '.' or '-', at most 128 "
        "characters");
  }
  if (has_digest && !IsSha256Digest(digest)) {
    return Status::InvalidArgument("the digest must be sha256: and 64 lowercase hex digits");
  }
  std::string name = std::string(registry) + "/" + std::string(path);
  name += has_digest ? "@" + std::string(digest) : ":" + std::string(tag);
  return ImageRef{.kind = ImageRef::Kind::kOci, .name = std::move(name)};
}

// settings[object] as an object (null: absent); its keys must be among `known`.
Result<const json*> SettingsObject(const json& settings, const char* object,
                                   std::initializer_list<std::string_view> known) {
  const auto o = settings.find(object);
  if (o == settings.end() || o->is_null()) {
    return static_cast<const json*>(nullptr);
  }
  if (!o->is_object()) {
    return Status::InvalidArgument(std::string(object) + " must be an object");
  }
  for (const auto& [key, value] : o->items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Status::InvalidArgument(std::string(object) + "." + key +
                                     " is not a setting of provider tart");
    }
  }
  return &*o;
}

// object[key], or null when absent.
const json& Member(const json* object, const char* key) {
  static const json kNull;
  if (object == nullptr) {
    return kNull;
  }
  const auto v = object->find(key);
  return v == object->end() ? kNull : *v;
}

Status ReadTart(const json* tart, TartPoolSettings& out) {
  if (const json& path = Member(tart, "path"); !path.is_null()) {
    if (!path.is_string() || !IsSafePath(path.get_ref<const std::string&>(), "/")) {
      return Status::InvalidArgument(
          "tart.path must be an absolute path of letters, digits, '.', '_', '-', '+' and '/' "
          "(such as /opt/homebrew/bin/tart)");
    }
    out.tart_path = path.get<std::string>();
  }
  if (const json& home = Member(tart, "home"); !home.is_null()) {
    const bool valid = home.is_string() && (IsSafePath(home.get_ref<const std::string&>(), "/") ||
                                            IsSafePath(home.get_ref<const std::string&>(), "~/"));
    if (!valid) {
      return Status::InvalidArgument(
          "tart.home must be an absolute path or one starting with ~/, of letters, digits, '.', "
          "'_', '-', '+' and '/' (such as ~/.tart or /Volumes/vms/tart)");
    }
    out.tart_home = home.get<std::string>();
  }
  if (const json& policy = Member(tart, "pullPolicy"); !policy.is_null()) {
    if (policy == "IfNotPresent") {
      out.pull_policy = PullPolicy::kIfNotPresent;
    } else if (policy == "Always") {
      out.pull_policy = PullPolicy::kAlways;
    } else {
      return Status::InvalidArgument("tart.pullPolicy must be IfNotPresent or Always");
    }
  }
  return Status::Ok();
}

Status ReadSsh(const json* ssh, TartPoolSettings& out) {
  if (const json& file = Member(ssh, "knownHostsFile"); !file.is_null()) {
    if (!file.is_string() || !IsSafePath(file.get_ref<const std::string&>(), "/")) {
      return Status::InvalidArgument(
          "ssh.knownHostsFile must be an absolute path of letters, digits, '.', '_', '-', '+' "
          "and '/' (such as /etc/flotilla/known_hosts)");
    }
    out.known_hosts_file = file.get<std::string>();
  }
  if (const json& skip = Member(ssh, "insecureIgnoreHostKey"); !skip.is_null()) {
    if (!skip.is_boolean()) {
      return Status::InvalidArgument("ssh.insecureIgnoreHostKey must be true or false");
    }
    out.insecure_ignore_host_key = skip.get<bool>();
  }
  if (const json& timeout = Member(ssh, "connectTimeout"); !timeout.is_null()) {
    const std::optional<std::chrono::milliseconds> parsed =
        timeout.is_string() ? ParseDuration(timeout.get_ref<const std::string&>()) : std::nullopt;
    if (!parsed.has_value() || parsed->count() <= 0) {
      return Status::InvalidArgument(
          "ssh.connectTimeout must be a duration of more than 0, such as 10s or 1m30s");
    }
    out.connect_timeout = *parsed;
  }
  if (const json& sessions = Member(ssh, "maxSessions"); !sessions.is_null()) {
    if (!sessions.is_number_integer() || sessions.get<int64_t>() < 1 ||
        sessions.get<int64_t>() > 10) {
      return Status::InvalidArgument("ssh.maxSessions must be an integer from 1 to 10");
    }
    out.max_sessions = sessions.get<int>();
  }
  if (const json& tunnels = Member(ssh, "maxTunnels"); !tunnels.is_null()) {
    if (!tunnels.is_number_integer() || tunnels.get<int64_t>() < 0 || tunnels.get<int64_t>() > 64) {
      return Status::InvalidArgument("ssh.maxTunnels must be an integer from 0 to 64");
    }
    out.max_tunnels = tunnels.get<int>();
  }
  return Status::Ok();
}

}  // namespace

Result<TartPoolSettings> ParsePoolSettings(const json& settings) {
  TartPoolSettings out;
  if (settings.is_null()) {
    return out;
  }
  if (!settings.is_object()) {
    return Status::InvalidArgument("the pool's settings must be an object");
  }
  for (const auto& [key, value] : settings.items()) {
    if (key != "tart" && key != "ssh") {
      return Status::InvalidArgument(key + " is not a setting of provider tart (tart, ssh)");
    }
  }
  Result<const json*> tart = SettingsObject(settings, "tart", {"path", "home", "pullPolicy"});
  if (!tart.ok()) {
    return tart.status();
  }
  Result<const json*> ssh = SettingsObject(
      settings, "ssh",
      {"knownHostsFile", "insecureIgnoreHostKey", "connectTimeout", "maxSessions", "maxTunnels"});
  if (!ssh.ok()) {
    return ssh.status();
  }
  if (Status s = ReadTart(*tart, out); !s.ok()) {
    return s;
  }
  if (Status s = ReadSsh(*ssh, out); !s.ok()) {
    return s;
  }
  return out;
}

Result<SshAddress> ParseSshAddress(std::string_view address) {
  constexpr std::string_view kScheme = "ssh://";
  const bool url = address.starts_with(kScheme);
  const std::string_view rest = url ? address.substr(kScheme.size()) : address;
  if (!url && rest.find("://") != std::string_view::npos) {
    return Status::InvalidArgument("it is a URL, and only ssh:// is an SSH address");
  }
  const size_t at = rest.find('@');
  if (at == std::string_view::npos) {
    return Status::InvalidArgument("the user is missing (USER@HOST)");
  }
  if (rest.find('@', at + 1) != std::string_view::npos) {
    return Status::InvalidArgument("it has more than one '@'");
  }
  SshAddress out;
  out.user = std::string(rest.substr(0, at));
  if (!IsPortableUserName(out.user)) {
    return Status::InvalidArgument(
        "the user is not a POSIX portable user name (letters, digits, '.', '_' and '-', not "
        "starting with '-', at most 64 characters)");
  }
  const std::string_view host_port = rest.substr(at + 1);
  std::string_view after;  // what follows the host: empty or ":PORT"
  if (host_port.starts_with("[")) {
    const size_t close = host_port.find(']');
    if (close == std::string_view::npos || !IsIpv6(host_port.substr(1, close - 1))) {
      return Status::InvalidArgument("the host in brackets is not an IPv6 address");
    }
    out.host = std::string(host_port.substr(1, close - 1));
    after = host_port.substr(close + 1);
  } else {
    const size_t colon = host_port.find(':');
    if (colon != std::string_view::npos &&
        host_port.find(':', colon + 1) != std::string_view::npos) {
      return Status::InvalidArgument("an IPv6 address goes in brackets (USER@[fe80::1])");
    }
    out.host = std::string(host_port.substr(0, colon));
    after = colon == std::string_view::npos ? std::string_view() : host_port.substr(colon);
    if (out.host.empty()) {
      return Status::InvalidArgument("the host is missing (USER@HOST)");
    }
    if (!IsHostName(out.host, /*lowercase=*/false)) {
      return Status::InvalidArgument(
          "the host is not a DNS name, an IPv4 address or an IPv6 address in brackets");
    }
  }
  if (after.empty()) {
    return out;
  }
  if (!after.starts_with(":")) {
    return Status::InvalidArgument("something follows the host; only :PORT may");
  }
  if (!url) {
    return Status::InvalidArgument("a port needs the ssh:// form (ssh://USER@HOST:PORT)");
  }
  const std::optional<int> port = SmallNumber(after.substr(1), 65535);
  if (!port.has_value()) {
    return Status::InvalidArgument("the port is not a number from 1 to 65535");
  }
  out.port = *port;
  return out;
}

Result<ImageRef> ParseImage(std::string_view image) {
  constexpr std::string_view kOci = "oci://";
  constexpr std::string_view kVm = "vm://";
  if (image.starts_with(kOci)) {
    return ParseOci(image.substr(kOci.size()));
  }
  if (image.starts_with(kVm)) {
    const std::string_view name = image.substr(kVm.size());
    if (name.empty() || name.size() > 255 || !IsAlnum(name.front()) ||
        !AllOf(name, [](char c) { return IsAlnum(c) || c == '.' || c == '_' || c == '-'; })) {
      return Status::InvalidArgument(
          "the VM name is letters, digits, '.', '_' and '-', starting with a letter or digit, at "
          "most 255 characters");
    }
    return ImageRef{.kind = ImageRef::Kind::kLocalVm, .name = std::string(name)};
  }
  if (image.find("://") == std::string_view::npos) {
    return Status::InvalidArgument(
        "it starts with neither oci:// nor vm:// (an image in a registry is "
        "oci://REGISTRY/REPO:TAG)");
  }
  return Status::InvalidArgument("it starts with neither oci:// nor vm://");
}

std::string ImageCacheKey(std::string_view image) {
  Result<ImageRef> ref = ParseImage(image);
  return ref.ok() && ref->kind == ImageRef::Kind::kOci ? ref->name : "";
}

}  // namespace flotilla::providers::tart
