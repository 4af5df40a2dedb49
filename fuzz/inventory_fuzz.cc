// Inventory snapshots (reconciler/render/inventory.h ParseInventoryJson, RenderInventoryJson):
// `flotilla diff --inventory FILE`, and each host's last observation in the store. Invariants:
// no crash, no sanitizer report; a refusal names a JSON pointer or the document; what is read
// is written as a document that reads back to the same inventory and writes to the same text
// (a round trip).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "fuzz/invariants.h"
#include "reconciler/render/inventory.h"

using flotilla::fuzz::Check;
namespace render = flotilla::render;

namespace {

// The ledger is written sorted by VM; what was read may be in any order.
std::vector<flotilla::LedgerEntry> Sorted(std::vector<flotilla::LedgerEntry> entries) {
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a.vm, a.vmset, a.pool, a.host, a.provider_id, a.template_hash) <
           std::tie(b.vm, b.vmset, b.pool, b.host, b.provider_id, b.template_hash);
  });
  return entries;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  flotilla::Result<render::Inventory> first = render::ParseInventoryJson(text);
  if (!first.ok()) {
    Check(!first.status().message().empty(), "a refusal without a message");
    return 0;
  }
  const std::string written = render::RenderInventoryJson(*first);
  flotilla::Result<render::Inventory> second = render::ParseInventoryJson(written);
  if (!second.ok()) {
    std::fprintf(stderr, "%s\n", second.status().ToString().c_str());
  }
  Check(second.ok(), "a written inventory does not read back");
  Check(second->observed.hosts == first->observed.hosts, "the hosts changed in a round trip");
  Check(Sorted(second->ledger.entries) == Sorted(first->ledger.entries),
        "the ledger changed in a round trip");
  Check(second->ledger.vmset_prune == first->ledger.vmset_prune,
        "the prune flags changed in a round trip");
  Check(render::RenderInventoryJson(*second) == written, "an inventory is written two ways");
  return 0;
}
