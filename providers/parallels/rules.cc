#include "providers/parallels/rules.h"

#include <algorithm>
#include <cctype>

#include "providers/parallels/embedded.h"
#include "providers/parallels/wire.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::parallels {
namespace {

std::string Scheme(std::string_view address) {
  const size_t end = address.find("://");
  return end == std::string_view::npos ? "" : AsciiLower(address.substr(0, end));
}

bool IsLoopback(std::string_view address) {
  const size_t start = address.find("://");
  if (start == std::string_view::npos) {
    return false;
  }
  const std::string rest = AsciiLower(address.substr(start + 3));
  if (rest.starts_with("[::1]")) {
    return true;
  }
  const std::string host = rest.substr(0, rest.find_first_of(":/"));
  return host == "localhost" || host.starts_with("127.");
}

// The characters of a catalog id, a version or a template VM's name.
bool IsImageWord(std::string_view word) {
  return !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

std::string_view ParallelsRules::settings_schema() const {
  return embedded::Find("pool_settings.v1.json");
}

void ParallelsRules::CheckPool(const HostPool& pool, std::vector<PoolProblem>& problems) const {
  if (pool.credentials_ref.empty()) {
    problems.push_back(PoolProblem{
        .pointer = "/spec",
        .at_key = true,
        .message = "pool \"" + pool.meta.name +
                   "\" uses provider parallels, which needs spec.credentialsRef (the secret with "
                   "the hosts' API key or username and password)"});
  }
  for (const HostSpec& host : pool.hosts) {
    const std::string scheme = Scheme(host.address);
    if (scheme != "http" && scheme != "https") {
      problems.push_back(PoolProblem{.host = host.name,
                                     .pointer = "/address",
                                     .message = "address " + AddressForMessages(host.address) +
                                                " must start with https:// or http:// (provider "
                                                "parallels talks to the host's REST API)"});
    } else if (scheme == "http" && !IsLoopback(host.address)) {
      problems.push_back(
          PoolProblem{.severity = PoolProblem::Severity::kWarning,
                      .host = host.name,
                      .pointer = "/address",
                      .message = "address " + AddressForMessages(host.address) +
                                 " uses plain http: host credentials would cross the network "
                                 "unencrypted; prefer https"});
    }
  }
}

std::string ParallelsRules::CheckImage(std::string_view image) const {
  constexpr std::string_view kWanted =
      "must be catalog://ID/VERSION (a catalog image) or vm://NAME (a template VM on the host) "
      "for provider parallels";
  // The provider's own parser, and only the characters the catalog and hosts name things with.
  Result<ImageRef> ref = ParseImage(image);
  const bool valid = ref.ok() && (ref->kind == ImageRef::Kind::kCatalog
                                      ? IsImageWord(ref->catalog_id) && IsImageWord(ref->version)
                                      : IsImageWord(ref->vm_name));
  return valid ? "" : std::string(kWanted);
}

std::string ParallelsRules::ImageCacheKey(std::string_view image) const {
  // Only catalog images are pulled into a host's cache; a template VM is on the host already.
  return image.starts_with("catalog://") ? parallels::ImageCacheKey(image) : "";
}

}  // namespace flotilla::providers::parallels
