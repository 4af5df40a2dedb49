// Git push webhooks (reconciler/api/webhook.h). The input is HTTP headers, one "Name: value" a
// line, then an empty line and the body. Its first byte picks how it is authenticated:
//   'h'  a valid X-Hub-Signature-256 for the body is added (GitHub)
//   'l'  the valid X-Gitlab-Token is added (GitLab)
//   'g'  a valid X-Flotilla-Signature is added (generic)
//   else the headers as given (mostly refused: the fuzzer cannot forge an HMAC)
// Invariants: no crash, no sanitizer report; no message contains the secret or the expected
// signature; an accepted push names refs/heads/<branch> and an "after" of 40 hex digits or none.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz/invariants.h"
#include "reconciler/api/webhook.h"

namespace {

using flotilla::fuzz::Check;
using flotilla::fuzz::CheckNoSecret;

constexpr std::string_view kSecret = "fuzz-webhook-secret-Kq7ZtW";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const char mode = input.empty() ? '\0' : input.front();
  if (mode == 'h' || mode == 'l' || mode == 'g') {
    input.remove_prefix(1);
  }
  // Headers up to the first empty line; the rest is the body.
  std::map<std::string, std::string> headers;
  std::string_view body;
  while (true) {
    const size_t end = input.find('\n');
    const std::string_view line = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
    if (Trim(line).empty()) {
      body = input;
      break;
    }
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      headers[Lower(Trim(line.substr(0, colon)))] = std::string(Trim(line.substr(colon + 1)));
    }
    if (end == std::string_view::npos) {
      break;
    }
  }
  const std::string signature = "sha256=" + flotilla::api::HmacSha256Hex(kSecret, body);
  if (mode == 'h') {
    headers["x-hub-signature-256"] = signature;
  } else if (mode == 'l') {
    headers["x-gitlab-token"] = std::string(kSecret);
  } else if (mode == 'g') {
    headers["x-flotilla-signature"] = signature;
  }
  const flotilla::api::HeaderLookup lookup =
      [&headers](std::string_view name) -> std::optional<std::string> {
    auto it = headers.find(Lower(name));
    return it == headers.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  const flotilla::api::WebhookConfig config{.secret = std::string(kSecret), .max_body_bytes = 4096};
  flotilla::Result<flotilla::api::PushEvent> event =
      flotilla::api::VerifyWebhook(config, lookup, body);
  if (!event.ok()) {
    CheckNoSecret(event.status().ToString(), kSecret);
    CheckNoSecret(event.status().ToString(), signature.substr(7));
    return 0;
  }
  Check(mode == 'h' || mode == 'l' || mode == 'g', "a request without a valid signature passed");
  Check(event->source == "github" || event->source == "gitlab" || event->source == "generic",
        "an unknown source");
  if (event->is_push) {
    Check(!event->branch.empty(), "a push without a branch");
    Check(event->ref == "refs/heads/" + event->branch, "a push whose ref is not its branch");
  }
  if (!event->after.empty()) {
    Check(event->after.size() == 40, "an \"after\" that is not 40 digits");
    for (char c : event->after) {
      Check(std::isxdigit(static_cast<unsigned char>(c)) != 0, "an \"after\" that is not hex");
    }
  }
  return 0;
}
