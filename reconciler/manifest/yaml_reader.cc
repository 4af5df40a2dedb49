#include "reconciler/manifest/yaml_reader.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>

namespace flotilla::manifest {
namespace {

constexpr std::string_view kCoreTagPrefix = "tag:yaml.org,2002:";

SourceLocation LocationOf(const std::string& file, const YAML::Mark& mark) {
  return {file, mark.line + 1, mark.column + 1};
}

bool IsDecimalInteger(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) {
    return false;
  }
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
  }
  return true;
}

// [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool IsFloat(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ++i;
    }
    return i - start;
  };
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
    ++i;
  }
  size_t mantissa = digits();
  if (i < s.size() && s[i] == '.') {
    ++i;
    mantissa += digits();
  }
  if (mantissa == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
      ++i;
    }
    if (digits() == 0) {
      return false;
    }
  }
  return i == s.size();
}

// An integer in `base`; nullopt if the text is not one. Sets `overflow` (and returns null)
// when it does not fit in 64 bits.
std::optional<nlohmann::json> ParseInteger(std::string_view s, int base, bool& overflow) {
  const bool negative = !s.empty() && s[0] == '-';
  std::string_view digits = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? s.substr(1) : s;
  if (base != 10) {
    digits = digits.substr(2);  // "0x" / "0o"
  }
  if (digits.empty()) {
    return std::nullopt;
  }
  uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range) {
    overflow = true;
    return nlohmann::json();
  }
  if (!negative) {
    if (magnitude <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return nlohmann::json(static_cast<int64_t>(magnitude));
    }
    return nlohmann::json(magnitude);
  }
  if (magnitude <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) {
    return nlohmann::json(static_cast<int64_t>(0 - magnitude));
  }
  overflow = true;
  return nlohmann::json();
}

// The YAML 1.2 core schema's resolution of a plain (unquoted, untagged) scalar. Sets
// `overflow` for an integer beyond 64 bits.
nlohmann::json ResolvePlain(const std::string& s, bool& overflow) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    return nullptr;
  }
  if (s == "true" || s == "True" || s == "TRUE") {
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    return false;
  }
  if (IsDecimalInteger(s)) {
    if (auto v = ParseInteger(s, 10, overflow)) {
      return *v;
    }
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    if (auto v = ParseInteger(s, s[1] == 'x' ? 16 : 8, overflow)) {
      return *v;
    }
  }
  if (IsFloat(s)) {
    return std::strtod(s.c_str(), nullptr);
  }
  std::string_view v = s;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    v.remove_prefix(1);
  }
  if (v == ".inf" || v == ".Inf" || v == ".INF") {
    return s[0] == '-' ? -std::numeric_limits<double>::infinity()
                       : std::numeric_limits<double>::infinity();
  }
  if (s == ".nan" || s == ".NaN" || s == ".NAN") {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return s;
}

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
// U+10FFFF). yaml-cpp passes other bytes through; JSON strings cannot hold them.
bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto lead = static_cast<unsigned char>(s[i]);
    size_t length = 1;
    uint32_t code = lead;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
      code = lead & 0x1Fu;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      code = lead & 0x0Fu;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      code = lead & 0x07u;
    } else if (lead >= 0x80) {
      return false;
    }
    if (s.size() - i < length) {
      return false;
    }
    for (size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0u) != 0x80u) {
        return false;
      }
      code = (code << 6) | (c & 0x3Fu);
    }
    if ((length == 3 && (code < 0x800 || (code >= 0xD800 && code <= 0xDFFF))) ||
        (length == 4 && (code < 0x10000 || code > 0x10FFFF))) {
      return false;
    }
    i += length;
  }
  return true;
}

bool IsCollectionTag(const std::string& tag, std::string_view core) {
  return tag.empty() || tag == "?" || tag == "!" ||
         tag == std::string(kCoreTagPrefix) + std::string(core);
}

// Builds one document at a time from parser events. Nodes are built bottom-up (each open
// collection owns its value until it closes), so no reference into a growing container is held.
class JsonBuilder : public YAML::EventHandler {
 public:
  JsonBuilder(const std::string& file, Diagnostics& diagnostics)
      : file_(file), diagnostics_(diagnostics) {}

  // The finished document, or nothing if it was empty or rejected.
  std::optional<YamlDocument> Take(int index) {
    if (rejected_ || !root_ || root_->is_null()) {
      return std::nullopt;
    }
    YamlDocument doc;
    doc.value = std::move(*root_);
    doc.marks = std::move(root_marks_);
    doc.file = file_;
    doc.index = index;
    return doc;
  }

  // Where the current document started.
  SourceLocation Start() const { return start_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    frames_.clear();
    root_.reset();
    root_marks_ = std::make_shared<MarkNode>();
    rejected_ = false;
    start_ = LocationOf(file_, mark);
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    CheckAnchor(mark, anchor);
    AddScalar(mark, nullptr, /*key_text=*/nullptr);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
    Reject(mark, "YAML aliases (*name) are not allowed in manifests; write the value out");
    AddScalar(mark, nullptr, nullptr);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    CheckAnchor(mark, anchor);
    if (!IsUtf8(value)) {
      Reject(mark, "text that is not valid UTF-8; manifests are UTF-8");
    }
    nlohmann::json resolved;
    bool overflow = false;
    if (tag == "?") {
      resolved = ResolvePlain(value, overflow);
    } else if (tag == "!" || tag == std::string(kCoreTagPrefix) + "str") {
      resolved = value;
    } else if (tag.rfind(kCoreTagPrefix, 0) == 0) {
      const std::string core = tag.substr(kCoreTagPrefix.size());
      resolved = ResolvePlain(value, overflow);
      const bool matches = (core == "int" && resolved.is_number_integer()) ||
                           (core == "float" && resolved.is_number()) ||
                           (core == "bool" && resolved.is_boolean()) ||
                           (core == "null" && resolved.is_null());
      if (!matches && !overflow) {
        Reject(mark, "value does not match its tag !!" + core);
      }
    } else {
      Reject(mark, "unsupported YAML tag \"" + tag + "\"; manifests use plain YAML values");
      resolved = value;
    }
    if (overflow) {
      Reject(mark, "integer " + value + " does not fit in 64 bits");
    }
    AddScalar(mark, std::move(resolved), &value);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value /*style*/) override {
    CheckAnchor(mark, anchor);
    CheckCollectionTag(mark, tag, "seq");
    Open(mark, nlohmann::json::array());
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value /*style*/) override {
    CheckAnchor(mark, anchor);
    CheckCollectionTag(mark, tag, "map");
    Open(mark, nlohmann::json::object());
  }
  void OnMapEnd() override { Close(); }

  void OnAnchor(const YAML::Mark& mark, const std::string& name) override {
    last_anchor_pos_ = mark.pos;
    Reject(mark, "YAML anchors (&" + name + ") are not allowed in manifests; write the value out");
  }

 private:
  struct Frame {
    nlohmann::json value;
    MarkNode* marks = nullptr;    // this collection's positions
    bool expect_key = true;       // maps only: the next node is a key
    std::string key;              // maps only: the key whose value comes next
    NodeMarks key_marks;          // maps only: where that key is
    bool is_complex_key = false;  // this collection is itself a mapping key (rejected)
    // A complex key's positions, dropped with it. Each has its own: nodes of nested complex
    // keys placed in one shared node would replace (and free) each other's open collections.
    std::unique_ptr<MarkNode> discarded;
  };

  // yaml-cpp announces an anchor with OnAnchor (which names it) and again on its node;
  // report it once.
  void CheckAnchor(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor && mark.pos != last_anchor_pos_) {
      Reject(mark, "YAML anchors are not allowed in manifests; write the value out");
    }
  }

  void CheckCollectionTag(const YAML::Mark& mark, const std::string& tag, std::string_view core) {
    if (!IsCollectionTag(tag, core)) {
      Reject(mark, "unsupported YAML tag \"" + tag + "\"; manifests use plain YAML values");
    }
  }

  void Reject(const YAML::Mark& mark, std::string message) {
    rejected_ = true;
    diagnostics_.Error(LocationOf(file_, mark), std::move(message));
  }

  bool InMapKeyPosition() const {
    return !frames_.empty() && frames_.back().value.is_object() && frames_.back().expect_key;
  }

  // Records the position of a new node at the current place and returns its mark node.
  MarkNode* Place(const YAML::Mark& mark, bool is_null) {
    NodeMarks marks{0, 0, mark.line + 1, mark.column + 1};
    if (frames_.empty()) {
      root_marks_->marks = marks;
      return root_marks_.get();
    }
    Frame& parent = frames_.back();
    std::string token;
    if (parent.value.is_array()) {
      token = std::to_string(parent.value.size());
    } else {
      token = parent.key;
      marks.key_line = parent.key_marks.line;
      marks.key_column = parent.key_marks.column;
      if (is_null) {
        // yaml-cpp marks an empty value at the token after it; its key is where it is.
        marks.line = marks.key_line;
        marks.column = marks.key_column;
      }
    }
    // Only this frame's children grow while it is open: the nodes of the open frames below it
    // stay where they are.
    parent.marks->children.push_back({std::move(token), MarkNode{marks, {}}});
    return &parent.marks->children.back().node;
  }

  // Sorts a finished collection's children by token for MarkNode::Find; stable, so that of
  // two equal tokens (a duplicate key, which rejects the document) the later one is found.
  static void SortChildren(MarkNode& node) {
    std::vector<MarkNode::Child>& children = node.children;
    auto by_token = [](const MarkNode::Child& a, const MarkNode::Child& b) {
      return a.token < b.token;
    };
    if (std::is_sorted(children.begin(), children.end(), by_token)) {
      return;
    }
    if (children.size() > 32) {
      std::stable_sort(children.begin(), children.end(), by_token);
      return;
    }
    // An insertion sort (stable) for the usual few keys: stable_sort would allocate a buffer.
    for (size_t i = 1; i < children.size(); ++i) {
      for (size_t j = i; j > 0 && by_token(children[j], children[j - 1]); --j) {
        std::swap(children[j], children[j - 1]);
      }
    }
  }

  // `key_text`: the scalar's text as written, or null for an empty node.
  void AddScalar(const YAML::Mark& mark, nlohmann::json value, const std::string* key_text) {
    if (InMapKeyPosition()) {
      Frame& map = frames_.back();
      if (!value.is_string() && !value.is_number() && !value.is_boolean()) {
        Reject(mark, "mapping keys must be strings");
        map.key = "";
      } else {
        map.key = key_text != nullptr ? *key_text : value.dump();
      }
      if (map.value.contains(map.key)) {
        Reject(mark, "duplicate key \"" + map.key + "\"");
      }
      map.key_marks = {0, 0, mark.line + 1, mark.column + 1};
      map.expect_key = false;
      return;
    }
    Place(mark, value.is_null());
    Attach(std::move(value));
  }

  void Open(const YAML::Mark& mark, nlohmann::json empty) {
    if (InMapKeyPosition()) {
      Reject(mark, "mapping keys must be strings, not collections");
      auto discarded = std::make_unique<MarkNode>();
      MarkNode* marks = discarded.get();
      frames_.push_back({std::move(empty), marks, true, "", {}, true, std::move(discarded)});
      return;
    }
    MarkNode* marks = Place(mark, false);
    frames_.push_back({std::move(empty), marks, true, "", {}, false});
  }

  void Close() {
    Frame done = std::move(frames_.back());
    frames_.pop_back();
    SortChildren(*done.marks);
    if (done.is_complex_key) {
      // The rejected key's value follows; give it a name that cannot clash with a real key.
      frames_.back().key = "\x01complex-key";
      frames_.back().expect_key = false;
      return;
    }
    Attach(std::move(done.value));
  }

  void Attach(nlohmann::json value) {
    if (frames_.empty()) {
      root_ = std::move(value);
      return;
    }
    Frame& parent = frames_.back();
    if (parent.value.is_array()) {
      parent.value.push_back(std::move(value));
    } else {
      parent.value[parent.key] = std::move(value);
      parent.expect_key = true;
    }
  }

  const std::string& file_;
  Diagnostics& diagnostics_;
  std::vector<Frame> frames_;
  std::shared_ptr<MarkNode> root_marks_ = std::make_shared<MarkNode>();
  std::optional<nlohmann::json> root_;
  SourceLocation start_;
  bool rejected_ = false;
  int last_anchor_pos_ = -1;
};

std::string UnescapePointerToken(std::string_view token) {
  std::string out;
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '~' && i + 1 < token.size()) {
      out += token[i + 1] == '1' ? '/' : '~';
      ++i;
    } else {
      out += token[i];
    }
  }
  return out;
}

SourceLocation Lookup(const YamlDocument& doc, std::string_view pointer, bool want_key) {
  if (!doc.marks) {
    return {doc.file, 0, 0};
  }
  const MarkNode* node = doc.marks.get();
  // Walk "/a/b/0" token by token; stop at the deepest node that exists.
  size_t pos = 0;
  while (pos < pointer.size() && pointer[pos] == '/') {
    const size_t end = std::min(pointer.find('/', pos + 1), pointer.size());
    const MarkNode* child =
        node->Find(UnescapePointerToken(pointer.substr(pos + 1, end - pos - 1)));
    if (child == nullptr) {
      break;
    }
    node = child;
    pos = end;
  }
  const NodeMarks& m = node->marks;
  if (want_key && m.key_line > 0) {
    return {doc.file, m.key_line, m.key_column};
  }
  return {doc.file, m.line, m.column};
}

}  // namespace

const MarkNode* MarkNode::Find(std::string_view token) const {
  // The last child not after `token`: of equal tokens, the one placed last.
  auto after = std::upper_bound(children.begin(), children.end(), token,
                                [](std::string_view t, const Child& c) { return t < c.token; });
  if (after == children.begin() || std::prev(after)->token != token) {
    return nullptr;
  }
  return &std::prev(after)->node;
}

SourceLocation YamlDocument::KeyLocation(std::string_view pointer) const {
  return Lookup(*this, pointer, true);
}

SourceLocation YamlDocument::ValueLocation(std::string_view pointer) const {
  return Lookup(*this, pointer, false);
}

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<YamlDocument> ReadYamlDocuments(std::string_view text, const std::string& file,
                                            DocumentBudget& budget, Diagnostics& diagnostics) {
  std::vector<YamlDocument> documents;
  std::istringstream stream{std::string(text)};
  JsonBuilder builder(file, diagnostics);
  int index = 0;
  try {
    YAML::Parser parser(stream);
    while (parser.HandleNextDocument(builder)) {
      if (budget.used >= budget.limit) {
        ++budget.refused;
        diagnostics.Error(builder.Start(), "too many documents: at most " +
                                               std::to_string(budget.limit) +
                                               " are read from one repository");
        break;
      }
      ++budget.used;
      if (std::optional<YamlDocument> doc = builder.Take(index++)) {
        documents.push_back(std::move(*doc));
      }
    }
  } catch (const YAML::DeepRecursion& e) {
    diagnostics.Error(LocationOf(file, e.mark), "document is nested more than " +
                                                    std::to_string(e.depth() - 1) +
                                                    " levels deep; manifests are never that deep");
  } catch (const YAML::ParserException& e) {
    // Documents before the error are kept; the rest of the file is not read.
    diagnostics.Error(LocationOf(file, e.mark), "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    diagnostics.Error({file, 0, 0}, std::string("cannot read YAML: ") + e.what());
  }
  return documents;
}

}  // namespace flotilla::manifest
