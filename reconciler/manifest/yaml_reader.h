#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/manifest/diagnostics.h"

namespace flotilla::manifest {

// Where a node sits in its file. Lines and columns are 1-based; key_line is 0 for nodes that
// are not the value of a mapping key (document roots, sequence items).
struct NodeMarks {
  int key_line = 0;
  int key_column = 0;
  int line = 0;
  int column = 0;
};

// Positions shaped like the document: a child per mapping key or list index. Memory grows with
// the document, never with the length of the paths to its nodes. Children are held in place
// (one allocation per collection rather than two per node), sorted by token once their
// collection is read.
struct MarkNode {
  struct Child;
  NodeMarks marks;
  std::vector<Child> children;

  // The child named `token`, or null.
  const MarkNode* Find(std::string_view token) const;
};

struct MarkNode::Child {
  std::string token;  // the mapping key, or the list index in decimal
  MarkNode node;
};

// One YAML document converted to JSON, with the position of every node.
struct YamlDocument {
  nlohmann::json value;
  std::shared_ptr<const MarkNode> marks;  // the root's; null when positions are unknown
  std::string file;                       // display path
  int index = 0;                          // 0-based position among the file's documents

  // The position of the key that names `pointer` (or of the value, for sequence items and the
  // root). A pointer with no node falls back to its nearest existing ancestor.
  SourceLocation KeyLocation(std::string_view pointer) const;
  // The position of the value at `pointer`, with the same fallback.
  SourceLocation ValueLocation(std::string_view pointer) const;
};

// How many documents may still be read, shared by every file of one repository.
struct DocumentBudget {
  size_t limit = 10'000;  // documents per repository
  size_t used = 0;
  size_t refused = 0;  // reads stopped because the limit was reached
};

// Parses every document of one YAML file (`text`) into JSON.
//
// Scalars are typed by the YAML 1.2 core schema (what editors use): `yes`/`on` stay strings,
// `0x1F` is an integer, quoted scalars are always strings. Rejected with a diagnostic, the
// document being dropped: syntax errors, anchors and aliases (a billion-laughs guard; YAML
// aliases also make reviews of a fleet diff misleading), duplicate keys, keys that are not
// scalars, tags other than the core ones, integers beyond 64 bits, keys and values that are not
// UTF-8, and nesting deeper than the parser allows. Empty documents are skipped.
//
// Every document the parser finds counts against `budget`, empty or rejected ones too;
// documents beyond it are an error and are not returned.
std::vector<YamlDocument> ReadYamlDocuments(std::string_view text, const std::string& file,
                                            DocumentBudget& budget, Diagnostics& diagnostics);

// Escapes one reference token of a JSON pointer ("~" -> "~0", "/" -> "~1").
std::string EscapePointerToken(std::string_view token);

}  // namespace flotilla::manifest
