// Repository addresses (reconciler/source/git_url.h ParseGitUrl, RedactUrls). Invariants: no
// crash, no sanitizer report; the URL handed to libgit2 parses again to the same address (a
// round trip); the user part of an http(s) or git URL (a token or user:password) is in neither
// the URL kept nor the redacted one nor an error; RedactUrls removes it from a
// message.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/invariants.h"
#include "reconciler/source/git_url.h"

using flotilla::Result;
using flotilla::fuzz::Check;
using flotilla::fuzz::CheckNoSecret;
using flotilla::source::GitUrl;
using flotilla::source::ParseGitUrl;

namespace {

// What follows the first "://" of `text`: where a URL, and so its credentials, can be.
std::string_view AfterScheme(std::string_view text) {
  const size_t at = text.find("://");
  return at == std::string_view::npos ? std::string_view() : text.substr(at + 3);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Result<GitUrl> url = ParseGitUrl(text);

  // The credentials of "scheme://CREDENTIALS@host/...": everything up to the last '@'.
  std::string credentials;
  const size_t scheme_end = text.find("://");
  const std::string_view scheme = text.substr(0, scheme_end);
  if (scheme_end != std::string_view::npos &&
      (scheme == "http" || scheme == "https" || scheme == "git")) {
    const std::string_view rest = text.substr(scheme_end + 3);
    const size_t at = rest.rfind('@');
    // Unless the redacted form holds that text anyway: "***@" and what follows the '@'.
    if (at != std::string_view::npos && at >= 4 &&
        ("***@" + std::string(rest.substr(at + 1))).find(rest.substr(0, at)) == std::string::npos) {
      credentials = std::string(rest.substr(0, at));
      // Nor when the address without them writes that text anyway: its host or path holds the
      // same bytes once the URL kept is normalised ("https://AB/@xAB:/y" keeps "xAB/y"), or
      // the redacted form's "***@" and that address do ("http://@h//@h://x" shows "***@h//x").
      const Result<GitUrl> bare =
          ParseGitUrl(std::string(scheme) + "://" + std::string(rest.substr(at + 1)));
      if (bare.ok() &&
          (AfterScheme(bare->url).find(credentials) != std::string_view::npos ||
           ("***@" + std::string(AfterScheme(bare->url))).find(credentials) != std::string::npos)) {
        credentials.clear();
      }
    }
  }
  // A URL in a message runs to white space or a quote, as libgit2 quotes them.
  if (credentials.find_first_of(" \t\n\v\f\r'\"") == std::string::npos) {
    CheckNoSecret(AfterScheme(flotilla::source::RedactUrls(std::string(text))), credentials);
  }
  if (!url.ok()) {
    CheckNoSecret(AfterScheme(url.status().message()), credentials);
    return 0;
  }
  CheckNoSecret(AfterScheme(url->url), credentials);
  CheckNoSecret(AfterScheme(url->redacted), credentials);
  Check(url->port >= 0 && url->port < 65536, "a port out of range");
  Check(!url->IsRemote() || !url->host.empty(), "a remote without a host");

  Result<GitUrl> again = ParseGitUrl(url->url);
  Check(again.ok(), "the URL kept does not parse");
  Check(again->kind == url->kind && again->host == url->host && again->port == url->port &&
            again->url == url->url,
        "the URL kept parses to another address");
  return 0;
}
