#include "reconciler/manifest/yaml_reader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cmath>
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

std::optional<nlohmann::json> ParseInteger(std::string_view s, int base) {
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
    // Too large for 64 bits: keep the approximate value, range checks will refuse it.
    return nlohmann::json(negative ? -std::numeric_limits<double>::max()
                                   : std::numeric_limits<double>::max());
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
  return nlohmann::json(-static_cast<double>(magnitude));
}

// The YAML 1.2 core schema's resolution of a plain (unquoted, untagged) scalar.
nlohmann::json ResolvePlain(const std::string& s) {
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
    if (auto v = ParseInteger(s, 10)) {
      return *v;
    }
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    if (auto v = ParseInteger(s, s[1] == 'x' ? 16 : 8)) {
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
    doc.marks = std::move(marks_);
    doc.file = file_;
    doc.index = index;
    return doc;
  }

  void OnDocumentStart(const YAML::Mark& /*mark*/) override {
    frames_.clear();
    marks_.clear();
    root_.reset();
    rejected_ = false;
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    CheckAnchor(mark, anchor);
    AddScalar(mark, nullptr, /*key_text=*/std::nullopt);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
    Reject(mark, "YAML aliases (*name) are not allowed in manifests; write the value out");
    AddScalar(mark, nullptr, std::nullopt);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    CheckAnchor(mark, anchor);
    nlohmann::json resolved;
    if (tag == "?") {
      resolved = ResolvePlain(value);
    } else if (tag == "!" || tag == std::string(kCoreTagPrefix) + "str") {
      resolved = value;
    } else if (tag.rfind(kCoreTagPrefix, 0) == 0) {
      const std::string core = tag.substr(kCoreTagPrefix.size());
      resolved = ResolvePlain(value);
      const bool matches = (core == "int" && resolved.is_number_integer()) ||
                           (core == "float" && resolved.is_number()) ||
                           (core == "bool" && resolved.is_boolean()) ||
                           (core == "null" && resolved.is_null());
      if (!matches) {
        Reject(mark, "value does not match its tag !!" + core);
      }
    } else {
      Reject(mark, "unsupported YAML tag \"" + tag + "\"; manifests use plain YAML values");
      resolved = value;
    }
    AddScalar(mark, std::move(resolved), value);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value /*style*/) override {
    CheckAnchor(mark, anchor);
    Open(mark, nlohmann::json::array());
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value /*style*/) override {
    CheckAnchor(mark, anchor);
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
    std::string pointer;
    bool expect_key = true;       // maps only: the next node is a key
    std::string key;              // maps only: the key whose value comes next
    NodeMarks key_marks;          // maps only: where that key is
    bool is_complex_key = false;  // this collection is itself a mapping key (rejected)
  };

  // yaml-cpp announces an anchor with OnAnchor (which names it) and again on its node;
  // report it once.
  void CheckAnchor(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor && mark.pos != last_anchor_pos_) {
      Reject(mark, "YAML anchors are not allowed in manifests; write the value out");
    }
  }

  void Reject(const YAML::Mark& mark, std::string message) {
    rejected_ = true;
    diagnostics_.Error(LocationOf(file_, mark), std::move(message));
  }

  bool InMapKeyPosition() const {
    return !frames_.empty() && frames_.back().value.is_object() && frames_.back().expect_key;
  }

  // The pointer and marks a new node at this position gets.
  std::pair<std::string, NodeMarks> ChildPosition(const YAML::Mark& mark) const {
    NodeMarks marks{0, 0, mark.line + 1, mark.column + 1};
    if (frames_.empty()) {
      return {"", marks};
    }
    const Frame& parent = frames_.back();
    if (parent.value.is_array()) {
      return {parent.pointer + "/" + std::to_string(parent.value.size()), marks};
    }
    marks.key_line = parent.key_marks.line;
    marks.key_column = parent.key_marks.column;
    return {parent.pointer + "/" + EscapePointerToken(parent.key), marks};
  }

  void AddScalar(const YAML::Mark& mark, nlohmann::json value,
                 const std::optional<std::string>& key_text) {
    if (InMapKeyPosition()) {
      Frame& map = frames_.back();
      if (!value.is_string() && !(value.is_number() || value.is_boolean())) {
        Reject(mark, "mapping keys must be strings");
        map.key = "";
      } else {
        map.key = key_text.value_or(value.dump());
      }
      if (map.value.contains(map.key)) {
        Reject(mark, "duplicate key \"" + map.key + "\"");
      }
      map.key_marks = {0, 0, mark.line + 1, mark.column + 1};
      map.expect_key = false;
      return;
    }
    auto [pointer, marks] = ChildPosition(mark);
    marks_[pointer] = marks;
    Attach(std::move(value));
  }

  void Open(const YAML::Mark& mark, nlohmann::json empty) {
    if (InMapKeyPosition()) {
      Reject(mark, "mapping keys must be strings, not collections");
      frames_.push_back({std::move(empty), "", true, "", {}, true});
      return;
    }
    auto [pointer, marks] = ChildPosition(mark);
    marks_[pointer] = marks;
    frames_.push_back({std::move(empty), std::move(pointer), true, "", {}, false});
  }

  void Close() {
    Frame done = std::move(frames_.back());
    frames_.pop_back();
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
  std::map<std::string, NodeMarks> marks_;
  std::optional<nlohmann::json> root_;
  bool rejected_ = false;
  int last_anchor_pos_ = -1;
};

SourceLocation Lookup(const YamlDocument& doc, std::string_view pointer, bool want_key) {
  std::string p(pointer);
  while (true) {
    auto it = doc.marks.find(p);
    if (it != doc.marks.end()) {
      const NodeMarks& m = it->second;
      if (want_key && m.key_line > 0) {
        return {doc.file, m.key_line, m.key_column};
      }
      return {doc.file, m.line, m.column};
    }
    if (p.empty()) {
      return {doc.file, 0, 0};
    }
    p.erase(p.rfind('/'));
  }
}

}  // namespace

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
      std::optional<YamlDocument> doc = builder.Take(index++);
      if (!doc) {
        continue;
      }
      if (budget.used >= budget.limit) {
        diagnostics.Error(doc->ValueLocation(""), "too many documents: at most " +
                                                      std::to_string(budget.limit) +
                                                      " are read from one repository");
        break;
      }
      ++budget.used;
      documents.push_back(std::move(*doc));
    }
  } catch (const YAML::ParserException& e) {
    // Documents before the error are kept; the rest of the file is not read.
    diagnostics.Error(LocationOf(file, e.mark), "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    diagnostics.Error({file, 0, 0}, std::string("cannot read YAML: ") + e.what());
  }
  return documents;
}

}  // namespace flotilla::manifest
