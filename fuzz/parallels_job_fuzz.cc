// Parallels DevOps jobs (providers/parallels/wire.h ParseJob: the asynchronous create and
// cache operations the provider polls). Invariants: no crash (no JSON type error escapes), no
// sanitizer report; an accepted job has an id, a lower-case state and a progress of 0-100.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz/invariants.h"
#include "providers/parallels/wire.h"

namespace parallels = flotilla::providers::parallels;
using flotilla::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return 0;
  }
  flotilla::Result<parallels::Job> job = parallels::ParseJob(doc);
  if (!job.ok()) {
    Check(!job.status().message().empty(), "a refused job without a message");
    return 0;
  }
  Check(!job->id.empty() && !job->state.empty(), "a job without an id or a state");
  Check(job->progress >= 0 && job->progress <= 100, "a progress outside 0-100");
  for (char c : job->state) {
    Check(!(c >= 'A' && c <= 'Z'), "a state not in lower case");
  }
  return 0;
}
