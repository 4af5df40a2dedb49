// Quantities (reconciler/model/quantity.h). Invariants: no crash, no sanitizer report; a parsed
// quantity prints to a form that parses to the same bytes, and so does the first 8 bytes of the
// input read as a byte count; a refusal quotes what it refused.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz/invariants.h"
#include "reconciler/model/quantity.h"

namespace {

using flotilla::Quantity;
using flotilla::fuzz::Check;

void CheckRoundTrip(Quantity q) {
  const std::string text = q.ToString();
  flotilla::Result<Quantity> again = Quantity::Parse(text);
  Check(again.ok(), "a printed quantity does not parse");
  Check(again->bytes() == q.bytes(), "a printed quantity parses to other bytes");
  Check(again->ToString() == text, "a quantity prints two ways");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  flotilla::Result<Quantity> q = Quantity::Parse(text);
  if (q.ok()) {
    CheckRoundTrip(*q);
  } else {
    Check(!q.status().message().empty(), "a refusal without a message");
  }
  if (size >= sizeof(uint64_t)) {
    uint64_t bytes = 0;
    std::memcpy(&bytes, data, sizeof bytes);
    CheckRoundTrip(Quantity::FromBytes(bytes));
  }
  return 0;
}
