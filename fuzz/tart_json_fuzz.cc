// What `tart list --format json` and `tart get NAME --format json` print
// (providers/tart/wire.h ParseList, ParseGet), and the one-line summaries of a command's output
// (FirstLine, LastLine). Invariants: no crash (no JSON type error escapes), no sanitizer report;
// listed VMs have a name and a lower-case source and state; summaries are one trimmed line of
// at most 303 characters.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/invariants.h"
#include "providers/tart/wire.h"

namespace tart = flotilla::providers::tart;
using flotilla::fuzz::Check;

namespace {

void CheckLower(const std::string& text, const char* what) {
  for (char c : text) {
    Check(!(c >= 'A' && c <= 'Z'), what);
  }
}

void CheckSummary(const std::string& line) {
  Check(line.size() <= 303, "a summary line longer than 303 characters");
  Check(line.find('\n') == std::string::npos, "a summary of two lines");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  flotilla::Result<std::vector<tart::ListEntry>> list = tart::ParseList(text);
  if (list.ok()) {
    for (const tart::ListEntry& entry : *list) {
      Check(!entry.name.empty(), "a listed VM without a name");
      CheckLower(entry.source, "a source not in lower case");
      CheckLower(entry.state, "a state not in lower case");
    }
  }
  flotilla::Result<tart::VmDetails> details = tart::ParseGet(text);
  if (details.ok()) {
    CheckLower(details->os, "an OS not in lower case");
    CheckLower(details->state, "a state not in lower case");
  }
  CheckSummary(tart::FirstLine(text));
  CheckSummary(tart::LastLine(text));
  return 0;
}
