// The Parallels DevOps VM list (providers/parallels/wire.h ParseVmList, ParseVm) from the
// service's JSON. Invariants: no crash (no JSON type error escapes), no sanitizer report; a list
// is accepted exactly when every entry is, sorted by name, every VM with an id and a name.

#include <algorithm>
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
  auto list = parallels::ParseVmList(doc);
  if (!doc.is_array()) {
    Check(!list.ok(), "a VM list that is not an array was accepted");
    (void)parallels::ParseVm(doc);
    return 0;
  }
  bool all_ok = true;
  for (const nlohmann::json& entry : doc) {
    auto vm = parallels::ParseVm(entry);
    all_ok = all_ok && vm.ok();
    if (vm.ok()) {
      Check(!vm->id.empty() && !vm->name.empty(), "a VM without an id or a name");
    } else {
      Check(!vm.status().message().empty(), "a refused VM without a message");
    }
  }
  Check(list.ok() == all_ok, "the list and its entries disagree");
  if (list.ok()) {
    Check(list->size() == doc.size(), "the list lost VMs");
    Check(std::is_sorted(list->begin(), list->end(),
                         [](const auto& a, const auto& b) { return a.name < b.name; }),
          "the VM list is not sorted by name");
  }
  return 0;
}
