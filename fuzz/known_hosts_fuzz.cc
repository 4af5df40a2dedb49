// OpenSSH known_hosts files (reconciler/ssh/known_hosts.h). Invariants: no crash, no sanitizer
// report; every plain entry "HOST TYPE KEY" the file lists is then accepted for that host on
// port 22 (or refused as revoked, when some @revoked line names the same key); a key that no
// line lists is never accepted.

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "fuzz/invariants.h"
#include "reconciler/ssh/known_hosts.h"

using flotilla::fuzz::Check;
using flotilla::ssh::KnownHosts;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const KnownHosts hosts = KnownHosts::Parse(text);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string names, type, key;
    if (!(fields >> names >> type >> key) || names[0] == '#' || names[0] == '@' ||
        names[0] == '|' || names[0] == '[') {
      continue;
    }
    const std::string blob = flotilla::ssh::DecodeBase64(key);
    if (blob.empty()) {
      continue;
    }
    const std::string host = names.substr(0, names.find(','));
    if (host.empty()) {
      continue;
    }
    const KnownHosts::Verdict verdict = hosts.Check(host, 22, blob);
    Check(verdict == KnownHosts::Verdict::kMatch || verdict == KnownHosts::Verdict::kRevoked,
          "a listed host key is not accepted");
  }
  // No line can list this blob: it holds bytes base64 never decodes to in a short line.
  const std::string stranger(600, '\x7f');
  Check(hosts.Check("example.com", 22, stranger) != KnownHosts::Verdict::kMatch,
        "an unlisted key was accepted");
  return 0;
}
