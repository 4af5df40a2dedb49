#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/result.h"

namespace flotilla::ssh {

// An OpenSSH known_hosts file, enforced: a host key is accepted only if the file lists exactly
// that key for the host (and port). Plain and hashed (|1|salt|hash) host names, comma-separated
// patterns and "[host]:port" entries are understood. A key on a @revoked line is refused for
// every host; wildcard host patterns and @cert-authority lines are not supported (never
// match).
class KnownHosts {
 public:
  // Reads and parses `path`. Errors: NotFound (no file), InvalidArgument (unreadable lines are
  // skipped, not errors; a file with no usable entry is an error).
  static Result<KnownHosts> Load(const std::string& path);
  static KnownHosts Parse(std::string_view text);

  enum class Verdict { kMatch, kUnknownHost, kMismatch, kRevoked };

  // Checks the raw public key blob (the SSH wire format, as in the base64 column) presented by
  // `host` on `port` (22 means the plain host name).
  Verdict Check(std::string_view host, int port, std::string_view key_blob) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::vector<std::string> patterns;  // plain names ("host", "[host]:2222")
    std::string salt;                   // hashed entry: decoded salt
    std::string hash;                   // hashed entry: decoded HMAC-SHA1
    std::string key;                    // decoded key blob
    bool revoked = false;
  };
  std::vector<Entry> entries_;
};

// Base64 (standard alphabet, padding optional) to bytes; empty on malformed input.
std::string DecodeBase64(std::string_view text);

}  // namespace flotilla::ssh
