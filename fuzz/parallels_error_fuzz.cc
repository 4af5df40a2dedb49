// Error bodies of the Parallels DevOps service (providers/parallels/wire.h ErrorMessage), which
// become the messages users and logs see, and the image references the provider sends
// (ParseImage). Two secrets are known to the redactors. Invariants: no crash, no sanitizer
// report; a message is one line of at most 300 characters and never holds a known secret.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/invariants.h"
#include "providers/parallels/wire.h"

namespace parallels = flotilla::providers::parallels;
using flotilla::fuzz::Check;
using flotilla::fuzz::CheckNoSecret;

namespace {

constexpr std::string_view kPassword = "Pw0rd-fuzz-Secret";
constexpr std::string_view kApiKey = "key";  // short: redacted only as a word of its own

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  flotilla::providers::Redactor redactor;
  redactor.Add(kPassword);
  flotilla::providers::Redactor more;
  more.Add(kApiKey);
  const flotilla::providers::Redactor* const extras[] = {&more, nullptr};
  for (const flotilla::providers::Redactor* extra : extras) {
    const std::string message = parallels::ErrorMessage(body, redactor, extra);
    Check(message.size() <= 300, "an error message longer than 300 characters");
    Check(message.find_first_of("\r\n") == std::string::npos, "an error message on two lines");
    CheckNoSecret(message, kPassword);
  }
  flotilla::Result<parallels::ImageRef> image = parallels::ParseImage(body);
  if (image.ok() && image->kind == parallels::ImageRef::Kind::kCatalog) {
    Check(!image->catalog_id.empty() && !image->version.empty(), "a catalog image without a name");
  }
  return 0;
}
