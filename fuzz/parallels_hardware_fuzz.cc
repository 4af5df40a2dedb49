// The Parallels DevOps host reports (providers/parallels/wire.h): ParseHardware
// (GET /config/hardware) and ParseCachedImages (GET /cache) on the same JSON. Invariants: no
// crash (no JSON type error escapes), no sanitizer report; a report without "total" and
// "total_available" objects is refused; the cached images are sorted, distinct, catalog keys
// that ImageCacheKey leaves as they are.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
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
  auto facts = parallels::ParseHardware(doc);
  const bool complete = doc.is_object() && doc.contains("total") && doc["total"].is_object() &&
                        doc.contains("total_available") && doc["total_available"].is_object();
  Check(facts.ok() == complete, "a hardware report was judged wrongly");
  for (std::optional<flotilla::Arch> arch :
       {std::optional<flotilla::Arch>(), std::optional(flotilla::Arch::kArm64),
        std::optional(flotilla::Arch::kX86_64)}) {
    const std::vector<std::string> images = parallels::ParseCachedImages(doc, arch);
    Check(std::is_sorted(images.begin(), images.end()), "cached images not sorted");
    Check(std::adjacent_find(images.begin(), images.end()) == images.end(),
          "cached images listed twice");
    for (const std::string& image : images) {
      Check(image.starts_with("catalog://"), "a cached image that is not a catalog key");
      Check(parallels::ImageCacheKey(image) == image, "a cached image key is not normalised");
    }
  }
  return 0;
}
