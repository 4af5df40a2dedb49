// The YAML reader (reconciler/manifest/yaml_reader.h) on arbitrary text. Invariants: no crash,
// no sanitizer report; every diagnostic names the file and a line >= 1; every node of every
// document returned has a position (line >= 1) for its value and, below a mapping, its key.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/invariants.h"
#include "reconciler/manifest/yaml_reader.h"

namespace {

using flotilla::manifest::EscapePointerToken;
using flotilla::manifest::YamlDocument;

// Walks at most `budget` nodes below `pointer`, checking that each is located.
void CheckPositions(const YamlDocument& doc, const nlohmann::json& node, const std::string& pointer,
                    size_t& budget) {
  if (budget == 0) {
    return;
  }
  --budget;
  flotilla::fuzz::Check(doc.ValueLocation(pointer).line >= 1, "a node without a line");
  flotilla::fuzz::Check(doc.KeyLocation(pointer).line >= 1, "a key without a line");
  flotilla::fuzz::Check(doc.ValueLocation(pointer).file == doc.file, "a node in another file");
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      CheckPositions(doc, value, pointer + "/" + EscapePointerToken(key), budget);
    }
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) {
      CheckPositions(doc, node[i], pointer + "/" + std::to_string(i), budget);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  flotilla::manifest::Diagnostics diagnostics;
  flotilla::manifest::DocumentBudget budget{.limit = 50};
  const std::vector<YamlDocument> docs =
      flotilla::manifest::ReadYamlDocuments(text, "fuzz.yaml", budget, diagnostics);
  flotilla::fuzz::CheckLocated(diagnostics, {"fuzz.yaml"});
  flotilla::fuzz::Check(budget.used <= budget.limit, "more documents than the budget");
  for (const YamlDocument& doc : docs) {
    flotilla::fuzz::Check(doc.file == "fuzz.yaml", "a document in another file");
    size_t nodes = 2000;
    CheckPositions(doc, doc.value, "", nodes);
  }
  return 0;
}
