#include "reconciler/render/inventory.h"

#include <nlohmann/json.hpp>

namespace flotilla::render {

std::string RenderInventoryJson(const Inventory& inventory) {
  // Host-reported text may not be UTF-8: replace bad bytes rather than throw.
  return InventoryToJson(inventory).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

Result<Inventory> ParseInventoryJson(std::string_view text) {
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return Status::InvalidArgument("the inventory is not valid JSON");
  }
  return InventoryFromJson(doc);
}

}  // namespace flotilla::render
