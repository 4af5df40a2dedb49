// What Flotilla reads back from a Tart host (providers/tart/wire.h): the sectioned output of the
// observe and inventory scripts (ParseHostReport: "@@SECTION ARG" ... "@@rc N", "@@end") and
// the exit status and error text of a failed tart command (Classify: the first byte is the exit
// code, the rest stderr). Invariants: no crash, no sanitizer report; a report without "@@end" is
// refused; only local VMs are listed as local; a refusal says what failed in one message.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/invariants.h"
#include "providers/tart/wire.h"

namespace tart = flotilla::providers::tart;
using flotilla::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  flotilla::Result<tart::HostReport> report = tart::ParseHostReport(text);
  if (report.ok()) {
    Check(text.find("@@end") != std::string_view::npos, "a report without @@end was read");
    for (const tart::ListEntry& entry : report->local) {
      Check(entry.source == "local", "a VM of another source listed as local");
    }
  } else {
    Check(!report.status().message().empty(), "a refusal without a message");
  }
  if (size > 0) {
    const tart::Failure failure = tart::Classify(data[0], text.substr(1));
    Check(failure != tart::Failure::kTargetExists || data[0] == 64,
          "a target-exists failure outside exit 64");
  }
  return 0;
}
