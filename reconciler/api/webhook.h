#pragma once

// Git push webhooks: authenticates a request and extracts the pushed branch. No I/O; the HTTP
// server hands over the headers and the raw body (DESIGN section 7, docs/api.md).
//
// Thread-safety: every function here is pure and may be called from any thread at once;
// VerifyWebhook calls `headers` only on the calling thread, before returning.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "reconciler/model/result.h"

namespace flotilla::api {

// Returns a request header's value, or nullopt when absent. Lookup is case-insensitive.
using HeaderLookup = std::function<std::optional<std::string>(std::string_view name)>;

struct WebhookConfig {
  std::string secret;                       // the shared secret; REQUIRES: non-empty
  size_t max_body_bytes = size_t{1} << 20;  // longer bodies are refused before any HMAC work
};

struct PushEvent {
  std::string source;    // "github", "gitlab" or "generic"
  std::string event;     // "push", "ping", "Push Hook", "Tag Push Hook", "System Hook", ...
  bool is_push = false;  // a push to a branch: not a tag, a deletion, a ping or another event
  std::string ref;       // "refs/heads/main" as sent; empty when none
  std::string branch;    // "main" when ref is refs/heads/<branch>; empty otherwise
  std::string after;     // the pushed commit, 40 hex digits as sent, or empty. A hint only: never
                         // trusted for content (the source fetches and resolves the branch itself)
};

// Authenticates the request, then parses its body. Forms, tried in this order:
//   GitHub:  X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>; event from
//            X-GitHub-Event. Fields "ref", "after", "deleted" are read from "push" events only.
//   GitLab:  X-Gitlab-Token: <secret>; event from X-Gitlab-Event. Fields "ref", "after",
//            "object_kind" are read from "Push Hook", "Tag Push Hook" and "System Hook" events.
//   Generic: X-Flotilla-Signature: sha256=<hex HMAC-SHA256(secret, body)>; event "push"; body
//            {"ref": "refs/heads/main"} or {"branch": "main"} (both: they must agree), optional
//            "after".
// A header with an empty value counts as absent, and so does a JSON field that is null.
// Hex digits compare case-insensitively; signatures and tokens compare in constant time. A push
// whose "after" is all zeros, or GitHub's "deleted": true, is a deletion: is_push is false.
// Any other event (ping, merge request, ...) with a valid JSON object body succeeds with
// is_push false and no fields read.
//
// Errors (messages name the header at fault; never the secret or an expected value):
//   InvalidArgument     body longer than max_body_bytes (checked first); a missing event header;
//                       a body that is not a JSON object; a field of the wrong type; an "after"
//                       that is not 40 hex digits; a generic body naming no branch.
//   PermissionDenied    no recognised signature header (a GitHub request with only the SHA-1
//                       X-Hub-Signature is told to send X-Hub-Signature-256); a malformed or
//                       wrong signature or token.
//   FailedPrecondition  config.secret is empty (the REQUIRES broken): every request is refused.
Result<PushEvent> VerifyWebhook(const WebhookConfig& config, const HeaderLookup& headers,
                                std::string_view body);

// HMAC-SHA256 of `data` under `key`, as 64 lowercase hex digits.
std::string HmacSha256Hex(std::string_view key, std::string_view data);

// True when a and b are byte-for-byte equal. Time depends on the lengths only, never on the
// content; different lengths return false at once.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace flotilla::api
