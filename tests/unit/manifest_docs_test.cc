// docs/manifests.md lists every field of HostPool, VMSet and flotilla.yaml in tables generated
// from the JSON Schemas, between marker comments such as
//   <!-- BEGIN GENERATED: hostpool (schemas/hostpool.v1.json) -->
//   ...
//   <!-- END GENERATED -->
// so that the page and the schemas cannot drift. These tests render the tables from the
// schemas compiled into the binary and fail when the page differs, when a property has no
// description, when a leaf field has nothing to show as an example (examples, default, enum or
// const), or when a default or an example does not validate against the field's own schema.
// After changing a schema, rewrite the tables in place with
//   FLOTILLA_UPDATE_DOCS=1 build-test/bin/manifest_docs_test
// which still fails ("rewrote docs/manifests.md; review the diff and rerun"): review the diff,
// then rerun without the variable.

#include <gtest/gtest.h>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "providers/builtin.h"
#include "schemas/embedded.h"
#include "tests/support/text_files.h"

namespace flotilla {
namespace {

namespace fs = std::filesystem;
using testing::Slurp;

// Ordered, so that the tables list fields in the order the schemas declare them.
using Json = nlohmann::ordered_json;

// One row of a field table. Every member but `path` is markdown, ready for a cell.
struct Field {
  std::string path;  // "spec.hosts[].capacity.memory"
  std::string type;
  std::string required;
  std::string default_value;
  std::string allowed;
  std::string example;
  std::string description;
};

struct FieldTable {
  std::string description;            // the schema's own, markdown
  std::vector<Field> fields;          // depth first, in schema order
  std::vector<std::string> problems;  // "spec.pool: no description"
};

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Plain text for a table cell. GitHub would take "<secretsDir>" for an HTML tag, "|" for the
// end of the cell and a "*" or a "_" at the edge of a word for emphasis.
std::string CellText(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '|' || c == '*' || c == '`' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '_') {
      const bool inside_word =
          i > 0 && i + 1 < text.size() && IsAlnum(text[i - 1]) && IsAlnum(text[i + 1]);
      out += inside_word ? "_" : "\\_";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '&') {
      out += "&amp;";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// Text as inline code in a table cell; only "|" needs escaping there.
std::string CellCode(std::string_view text) {
  std::string escaped;
  for (char c : text) {
    if (c == '|') {
      escaped += "\\|";
    } else {
      escaped += c;
    }
  }
  const bool has_backtick = escaped.find('`') != std::string::npos;
  return has_backtick ? "`` " + escaped + " ``" : "`" + escaped + "`";
}

// True when YAML reads `s` back as this string without quotes, in block and flow context.
bool IsPlainScalar(const std::string& s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ' || s.back() == ':') {
    return false;
  }
  if (std::string_view("-?:,[]{}#&*!|>'\"%@`").find(s.front()) != std::string_view::npos) {
    return false;
  }
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 ||
        std::string_view(",[]{}").find(c) != std::string_view::npos) {
      return false;
    }
  }
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) {
    return false;
  }
  // What the YAML 1.2 core schema reads as something other than a string.
  static const std::regex kNotAString(
      "true|false|null|~|[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|"
      "0o[0-7]+|[-+]?\\.inf|\\.nan",
      std::regex::icase);
  return !std::regex_match(s, kNotAString);
}

// A value as one would write it in a manifest: YAML flow style.
std::string Flow(const Json& value) {
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    return IsPlainScalar(s) ? s : value.dump();
  }
  std::string out;
  if (value.is_array()) {
    for (const Json& item : value) {
      out += (out.empty() ? "" : ", ") + Flow(item);
    }
    return "[" + out + "]";
  }
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      out += (out.empty() ? "" : ", ") + (IsPlainScalar(key) ? key : Json(key).dump()) + ": " +
             Flow(item);
    }
    return "{" + out + "}";
  }
  return value.dump();
}

std::string JsonTypeName(const Json& value) {
  if (value.is_string()) {
    return "string";
  }
  if (value.is_number_integer()) {
    return "integer";
  }
  if (value.is_number()) {
    return "number";
  }
  if (value.is_boolean()) {
    return "boolean";
  }
  if (value.is_array()) {
    return "array";
  }
  if (value.is_object()) {
    return "object";
  }
  return "null";
}

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const std::string& part : parts) {
    if (!out.empty()) {
      out += separator;
    }
    out += part;
  }
  return out;
}

void AddUnique(std::vector<std::string>& items, std::string item) {
  if (std::find(items.begin(), items.end(), item) == items.end()) {
    items.push_back(std::move(item));
  }
}

constexpr std::array<const char*, 3> kCombinators = {"allOf", "anyOf", "oneOf"};
constexpr int kMaxDepth = 32;
constexpr int kMaxRefHops = 16;

// Reads one schema into a FieldTable: every property below the root, with local $refs followed
// (into "definitions"), nested objects, array items ("spec.hosts[]"), map values
// ("labels.<name>") and the alternatives of allOf, anyOf and oneOf.
class SchemaReader {
 public:
  explicit SchemaReader(const Json& root) : root_(root) {}

  FieldTable Read() {
    table_.description = CellText(root_.value("description", ""));
    Children(root_, "", 0, "");
    return std::move(table_);
  }

 private:
  bool TooDeep(const std::string& path, int depth) {
    if (depth <= kMaxDepth) {
      return false;
    }
    Problem(path, "nested more than " + std::to_string(kMaxDepth) + " deep (a recursive schema?)");
    return true;
  }

  // Resolve runs several times per node: each problem is kept once.
  void Problem(const std::string& path, const std::string& message) {
    const std::string problem = (path.empty() ? "(document)" : path) + ": " + message;
    AddUnique(table_.problems, problem);
  }

  // `node` with its local $ref followed. Keys beside a $ref (description, default, examples)
  // win over the referenced schema's, so that one definition serves several fields, each
  // documented where it is used.
  Json Resolve(const Json& node, const std::string& path, int hops = 0) {
    if (!node.is_object() || !node.contains("$ref")) {
      return node;
    }
    const Json& ref = node["$ref"];
    if (!ref.is_string() || !ref.get_ref<const std::string&>().starts_with("#/")) {
      Problem(path, "only local references (\"#/...\") can be followed, not " + ref.dump());
      return Json::object();
    }
    if (hops >= kMaxRefHops) {
      Problem(path, "$ref " + ref.dump() + " leads round in a circle");
      return Json::object();
    }
    Json merged;
    try {
      merged =
          Resolve(root_.at(Json::json_pointer(ref.get<std::string>().substr(1))), path, hops + 1);
    } catch (const Json::exception&) {
      Problem(path, "$ref " + ref.dump() + " names nothing in this schema");
      return Json::object();
    }
    if (!merged.is_object()) {
      return merged;
    }
    for (const auto& [key, value] : node.items()) {
      if (key != "$ref") {
        merged[key] = value;
      }
    }
    return merged;
  }

  // True when the fields below `node` get rows of their own.
  bool HasChildren(const Json& node, const std::string& path, int depth = 0) {
    if (!node.is_object() || TooDeep(path, depth)) {
      return false;
    }
    if (node.contains("properties")) {
      return true;
    }
    for (const char* key : {"items", "additionalProperties"}) {
      if (node.contains(key) && node[key].is_object() &&
          HasChildren(Resolve(node[key], path), path, depth + 1)) {
        return true;
      }
    }
    for (const char* keyword : kCombinators) {
      if (node.contains(keyword) && node[keyword].is_array()) {
        for (const Json& alternative : node[keyword]) {
          if (HasChildren(Resolve(alternative, path), path, depth + 1)) {
            return true;
          }
        }
      }
    }
    return false;
  }

  static std::vector<std::string> DeclaredTypes(const Json& node) {
    std::vector<std::string> types;
    if (node.contains("type") && node["type"].is_string()) {
      types.push_back(node["type"].get<std::string>());
    } else if (node.contains("type") && node["type"].is_array()) {
      for (const Json& t : node["type"]) {
        types.push_back(t.get<std::string>());
      }
    } else if (node.contains("const")) {
      types.push_back(JsonTypeName(node["const"]));
    } else if (node.contains("enum") && node["enum"].is_array()) {
      for (const Json& value : node["enum"]) {
        AddUnique(types, JsonTypeName(value));
      }
    }
    return types;
  }

  static std::string Plural(const std::string& type) {
    return type.find(' ') == std::string::npos ? type + "s" : "(" + type + ")";
  }

  // "string", "integer or string", "list of strings", "map of strings", "object".
  std::string TypeOf(const Json& node, const std::string& path, int depth = 0) {
    std::vector<std::string> names;
    if (TooDeep(path, depth)) {
      return "any";
    }
    for (const std::string& type : DeclaredTypes(node)) {
      if (type == "array" && node.contains("items") && node["items"].is_object()) {
        AddUnique(names,
                  "list of " + Plural(TypeOf(Resolve(node["items"], path), path, depth + 1)));
      } else if (type == "array") {
        AddUnique(names, "list");
      } else if (type == "object" && !node.contains("properties") &&
                 node.contains("additionalProperties") &&
                 node["additionalProperties"].is_object()) {
        AddUnique(names, "map of " + Plural(TypeOf(Resolve(node["additionalProperties"], path),
                                                   path, depth + 1)));
      } else {
        AddUnique(names, type);
      }
    }
    if (names.empty()) {
      for (const char* keyword : kCombinators) {
        if (node.contains(keyword) && node[keyword].is_array()) {
          for (const Json& alternative : node[keyword]) {
            AddUnique(names, TypeOf(Resolve(alternative, path), path, depth + 1));
          }
        }
      }
    }
    return names.empty() ? "any" : Join(names, " or ");
  }

  static std::string Number(const Json& node, const char* key) { return node[key].dump(); }

  // What values the validation keywords allow, as markdown: "`arm64`, `x86_64`", "1 to 64",
  // "at most 63 characters", the schema's patternErrorMessage or the pattern itself.
  std::string Allowed(const Json& node, const std::string& path, int depth = 0) {
    std::vector<std::string> parts;
    if (TooDeep(path, depth)) {
      return "";
    }
    if (node.contains("const")) {
      parts.push_back(CellCode(Flow(node["const"])));
    }
    if (node.contains("enum") && node["enum"].is_array()) {
      std::vector<std::string> values;
      for (const Json& value : node["enum"]) {
        values.push_back(CellCode(Flow(value)));
      }
      parts.push_back(Join(values, ", "));
    }
    const bool low = node.contains("minimum");
    const bool high = node.contains("maximum");
    if (low && high) {
      parts.push_back(Number(node, "minimum") + " to " + Number(node, "maximum"));
    } else if (low) {
      parts.push_back("at least " + Number(node, "minimum"));
    } else if (high) {
      parts.push_back("at most " + Number(node, "maximum"));
    }
    if (node.contains("exclusiveMinimum")) {
      parts.push_back("more than " + Number(node, "exclusiveMinimum"));
    }
    if (node.contains("exclusiveMaximum")) {
      parts.push_back("less than " + Number(node, "exclusiveMaximum"));
    }
    if (node.contains("multipleOf")) {
      parts.push_back("a multiple of " + Number(node, "multipleOf"));
    }
    const int64_t min_length = node.value("minLength", int64_t{0});
    if (node.contains("maxLength") && min_length > 1) {
      parts.push_back(std::to_string(min_length) + " to " + Number(node, "maxLength") +
                      " characters");
    } else if (node.contains("maxLength")) {
      parts.push_back((min_length == 1 ? "not empty, at most " : "at most ") +
                      Number(node, "maxLength") + " characters");
    } else if (min_length == 1) {
      parts.push_back("not empty");
    } else if (min_length > 1) {
      parts.push_back("at least " + std::to_string(min_length) + " characters");
    }
    if (node.contains("patternErrorMessage") && node["patternErrorMessage"].is_string()) {
      std::string rule = node["patternErrorMessage"].get<std::string>();
      if (rule.starts_with("must be ")) {
        rule = rule.substr(8);
      }
      parts.push_back(CellText(rule));
    } else if (node.contains("pattern")) {
      parts.push_back("pattern " + CellCode(node["pattern"].get<std::string>()));
    }
    if (node.contains("format")) {
      parts.push_back("format " + CellCode(node["format"].get<std::string>()));
    }
    if (node.contains("minItems")) {
      parts.push_back("at least " + Number(node, "minItems") + " items");
    }
    if (node.contains("maxItems")) {
      parts.push_back("at most " + Number(node, "maxItems") + " items");
    }
    if (node.value("uniqueItems", false)) {
      parts.push_back("no duplicates");
    }
    if (node.contains("minProperties")) {
      parts.push_back("at least " + Number(node, "minProperties") + " keys");
    }
    if (node.contains("maxProperties")) {
      parts.push_back("at most " + Number(node, "maxProperties") + " keys");
    }
    // Scalar items and map values have no rows of their own: say what they allow here.
    if (node.contains("items") && node["items"].is_object()) {
      const Json items = Resolve(node["items"], path);
      if (!HasChildren(items, path)) {
        if (std::string rule = Allowed(items, path, depth + 1); !rule.empty()) {
          parts.push_back("items: " + rule);
        }
      }
    }
    if (node.contains("additionalProperties") && node["additionalProperties"].is_object()) {
      const Json values = Resolve(node["additionalProperties"], path);
      if (!HasChildren(values, path)) {
        if (std::string rule = Allowed(values, path, depth + 1); !rule.empty()) {
          parts.push_back("values: " + rule);
        }
      }
    }
    if (!HasChildren(node, path)) {
      for (const char* keyword : {"anyOf", "oneOf"}) {
        if (!node.contains(keyword) || !node[keyword].is_array()) {
          continue;
        }
        std::vector<std::string> alternatives;
        for (const Json& raw : node[keyword]) {
          const Json alternative = Resolve(raw, path);
          const std::string rule = Allowed(alternative, path, depth + 1);
          alternatives.push_back(CellText(TypeOf(alternative, path, depth + 1)) +
                                 (rule.empty() ? "" : ": " + rule));
        }
        parts.push_back((std::string_view(keyword) == "oneOf" ? "exactly one of: " : "any of: ") +
                        Join(alternatives, "; "));
      }
    }
    return Join(parts, "; ");
  }

  // Whether `value` passes the field's own schema (with this schema's definitions, for its
  // $refs). A default or an example that does not would teach readers a mistake.
  void CheckValue(const Json& node, const Json& value, const std::string& path,
                  const std::string& what) {
    nlohmann::json schema = nlohmann::json::parse(node.dump());
    if (root_.contains("definitions")) {
      schema["definitions"] = nlohmann::json::parse(root_["definitions"].dump());
    }
    const nlohmann::json instance = nlohmann::json::parse(value.dump());
    try {
      valijson::Schema compiled;
      valijson::SchemaParser parser;
      valijson::adapters::NlohmannJsonAdapter schema_adapter(schema);
      parser.populateSchema(schema_adapter, compiled);
      valijson::Validator validator;
      valijson::adapters::NlohmannJsonAdapter target(instance);
      if (!validator.validate(compiled, target, nullptr)) {
        Problem(path, what + " " + Flow(value) + " does not pass the field's own schema");
      }
    } catch (const std::exception& e) {
      Problem(path, "cannot check " + what + ": " + e.what());
    }
  }

  void AddField(const Json& raw, const std::string& path, const std::string& required, int depth) {
    if (!seen_.insert(path).second) {
      return;  // the same property in several alternatives: listed once
    }
    const Json node = Resolve(raw, path);
    Field field{.path = path,
                .type = CellText(TypeOf(node, path)),
                .required = required,
                .allowed = Allowed(node, path)};
    if (node.contains("description") && node["description"].is_string() &&
        !node["description"].get_ref<const std::string&>().empty()) {
      field.description = CellText(node["description"].get<std::string>());
    } else {
      Problem(path, "no description");
    }
    if (node.contains("default")) {
      field.default_value = CellCode(Flow(node["default"]));
      CheckValue(node, node["default"], path, "default");
    }
    if (node.contains("examples") && node["examples"].is_array()) {
      std::vector<std::string> examples;
      for (const Json& example : node["examples"]) {
        examples.push_back(CellCode(Flow(example)));
        CheckValue(node, example, path, "example");
      }
      field.example = Join(examples, ", ");
    } else if (node.contains("examples")) {
      Problem(path, "examples must be a list of values");
    }
    const bool shows_a_value = node.contains("examples") || node.contains("default") ||
                               node.contains("enum") || node.contains("const");
    if (!HasChildren(node, path) && !shows_a_value) {
      Problem(path, "no example: add \"examples\" (or a \"default\")");
    }
    table_.fields.push_back(std::move(field));
    Children(node, path, depth + 1, "");
  }

  // Rows for the fields below `node`, whose own row (if any) is `path`. `variant` names the
  // alternative of anyOf/oneOf they belong to, if any.
  void Children(const Json& node, const std::string& path, int depth, const std::string& variant) {
    if (!node.is_object()) {
      return;
    }
    if (TooDeep(path, depth)) {
      return;
    }
    if (node.contains("properties") && node["properties"].is_object()) {
      std::set<std::string> required;
      if (node.contains("required") && node["required"].is_array()) {
        for (const Json& name : node["required"]) {
          required.insert(name.get<std::string>());
        }
      }
      for (const auto& [name, child] : node["properties"].items()) {
        std::string needed = "no";
        if (required.contains(name)) {
          needed = variant.empty() ? "yes" : "in " + variant;
        }
        AddField(child, path.empty() ? name : path + "." + name, needed, depth);
      }
    }
    if (node.contains("items") && node["items"].is_object()) {
      Children(Resolve(node["items"], path + "[]"), path + "[]", depth + 1, "");
    }
    if (node.contains("additionalProperties") && node["additionalProperties"].is_object()) {
      const std::string values = path + ".<name>";
      Children(Resolve(node["additionalProperties"], values), values, depth + 1, "");
    }
    for (const char* keyword : kCombinators) {
      if (!node.contains(keyword) || !node[keyword].is_array()) {
        continue;
      }
      for (size_t i = 0; i < node[keyword].size(); ++i) {
        const std::string name = std::string_view(keyword) == "allOf"
                                     ? variant
                                     : std::string(keyword) + " #" + std::to_string(i + 1);
        Children(Resolve(node[keyword][i], path), path, depth + 1, name);
      }
    }
  }

  const Json& root_;
  FieldTable table_;
  std::set<std::string> seen_;
};

FieldTable ReadSchema(const Json& schema) { return SchemaReader(schema).Read(); }

std::string RenderTable(const FieldTable& table) {
  std::string out =
      "| field | type | required | default | allowed | example | description |\n"
      "| --- | --- | --- | --- | --- | --- | --- |\n";
  for (const Field& f : table.fields) {
    out += "| " + CellCode(f.path) + " | " + f.type + " | " + f.required + " | " + f.default_value +
           " | " + f.allowed + " | " + f.example + " | " + f.description + " |\n";
  }
  return out;
}

// What goes between a section's markers.
std::string RenderSection(const FieldTable& table) {
  std::string out = "\n";
  if (!table.description.empty()) {
    out += table.description + "\n\n";
  }
  return out + RenderTable(table) + "\n";
}

// A generated part of docs/manifests.md: its id, where its schema comes from (for people), and
// the schema file of schemas/ it is made from, or else the provider whose pool settings it
// documents.
struct DocSection {
  std::string id;
  std::string source;
  std::string schema;    // "hostpool.v1.json"; empty for a provider's section
  std::string provider;  // "parallels"; empty for a schema's section
};

// The schemas' sections, each built-in provider's after the HostPool's.
std::vector<DocSection> Sections() {
  std::vector<DocSection> sections = {{"hostpool", "schemas/hostpool.v1.json", "hostpool.v1.json"}};
  for (const auto& rules : providers::BuiltinRules()) {
    const std::string name(rules->name());
    sections.push_back({"hostpool-" + name, "provider " + name, "", name});
  }
  sections.push_back({"vmset", "schemas/vmset.v1.json", "vmset.v1.json"});
  sections.push_back({"config", "schemas/config.v1.json", "config.v1.json"});
  return sections;
}

constexpr std::string_view kEndMarker = "<!-- END GENERATED -->";

std::string BeginMarker(const DocSection& section) {
  return "<!-- BEGIN GENERATED: " + section.id + " (" + section.source + ") -->";
}

struct Spliced {
  std::string text;
  std::string error;  // empty on success
};

// `doc` with everything between the line `begin` and the next end marker replaced by `body`.
Spliced Splice(const std::string& doc, const std::string& begin, const std::string& body) {
  const size_t at = doc.find(begin + "\n");
  if (at == std::string::npos || (at != 0 && doc[at - 1] != '\n')) {
    return {.error = "no line " + begin};
  }
  if (doc.find(begin, at + begin.size()) != std::string::npos) {
    return {.error = "more than one line " + begin};
  }
  const size_t body_start = at + begin.size() + 1;
  const size_t end = doc.find(kEndMarker, body_start);
  if (end == std::string::npos || doc[end - 1] != '\n') {
    return {.error = "no line " + std::string(kEndMarker) + " after " + begin};
  }
  const size_t next_begin = doc.find("<!-- BEGIN GENERATED:", body_start);
  if (next_begin != std::string::npos && next_begin < end) {
    return {.error = begin + " is not closed before the next section begins"};
  }
  return {.text = doc.substr(0, body_start) + body + doc.substr(end)};
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

// A unified-style diff (2 lines of context) from `before` to `after`.
std::string LineDiff(const std::string& before, const std::string& after) {
  const std::vector<std::string> a = SplitLines(before);
  const std::vector<std::string> b = SplitLines(after);
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  std::vector<std::vector<int>> lcs(a.size() + 1, std::vector<int>(b.size() + 1, 0));
  for (size_t i = a.size(); i-- > 0;) {
    for (size_t j = b.size(); j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  struct Line {
    char op;        // ' ', '-' or '+'
    size_t before;  // line number in `before` (0-based) of this line or the next
    size_t after;   // the same in `after`
    const std::string* text;
  };
  std::vector<Line> script;
  size_t i = 0;
  size_t j = 0;
  while (i < a.size() || j < b.size()) {
    if (i < a.size() && j < b.size() && a[i] == b[j]) {
      script.push_back({' ', i, j, &a[i]});
      ++i;
      ++j;
    } else if (i < a.size() && (j == b.size() || lcs[i + 1][j] >= lcs[i][j + 1])) {
      script.push_back({'-', i, j, &a[i]});
      ++i;
    } else {
      script.push_back({'+', i, j, &b[j]});
      ++j;
    }
  }
  constexpr size_t kContext = 2;
  std::vector<bool> shown(script.size(), false);
  for (size_t k = 0; k < script.size(); ++k) {
    if (script[k].op != ' ') {
      const size_t from = k >= kContext ? k - kContext : 0;
      const size_t to = std::min(script.size(), k + kContext + 1);
      std::fill(shown.begin() + static_cast<std::ptrdiff_t>(from),
                shown.begin() + static_cast<std::ptrdiff_t>(to), true);
    }
  }
  std::string out;
  for (size_t k = 0; k < script.size(); ++k) {
    if (!shown[k]) {
      continue;
    }
    if (k == 0 || !shown[k - 1]) {
      out += "@@ -" + std::to_string(script[k].before + 1) + " +" +
             std::to_string(script[k].after + 1) + " @@\n";
    }
    out += std::string(1, script[k].op) + " " + *script[k].text + "\n";
  }
  return out;
}

std::string RegenerateCommand() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return "FLOTILLA_UPDATE_DOCS=1 " +
         (ec ? std::string("build-test/bin/manifest_docs_test") : self.string());
}

const fs::path kDocs = fs::path(FLOTILLA_SOURCE_DIR) / "docs" / "manifests.md";

Json EmbeddedSchema(std::string_view name) {
  const std::string_view text = schemas::Find(name);
  EXPECT_FALSE(text.empty()) << "no embedded schema " << name;
  return text.empty() ? Json::object() : Json::parse(text);
}

// A section's schema: a file of schemas/, or a provider's pool settings as the keys of spec
// they add, with the HostPool schema's definitions their $refs name.
Json SectionSchema(const DocSection& section) {
  if (section.provider.empty()) {
    return EmbeddedSchema(section.schema);
  }
  Json settings = Json::object();
  for (const auto& rules : providers::BuiltinRules()) {
    if (rules->name() == section.provider) {
      settings = Json::parse(rules->settings_schema());
    }
  }
  return Json{
      {"description", "The keys provider " + section.provider + " adds to a HostPool's spec."},
      {"type", "object"},
      {"properties",
       {{"spec",
         {{"type", "object"},
          {"description", "The pool's spec, as for every provider, plus these keys."},
          {"properties", settings.value("properties", Json::object())}}}}},
      {"definitions", EmbeddedSchema("hostpool.v1.json").value("definitions", Json::object())}};
}

// The real schemas and the page.

TEST(ManifestDocsTest, DocsMatchTheSchemas) {
  const std::string current = Slurp(kDocs);
  ASSERT_FALSE(current.empty()) << "cannot read " << kDocs;
  std::string generated = current;
  for (const DocSection& section : Sections()) {
    const Spliced spliced =
        Splice(generated, BeginMarker(section), RenderSection(ReadSchema(SectionSchema(section))));
    ASSERT_TRUE(spliced.error.empty())
        << kDocs << ": " << spliced.error << "\nAdd the marker lines " << BeginMarker(section)
        << " and " << kEndMarker << " where the table of " << section.source
        << " belongs, then run\n  " << RegenerateCommand();
    generated = spliced.text;
  }
  if (generated == current) {
    return;
  }
  if (testing::UpdateRequested("FLOTILLA_UPDATE_DOCS")) {
    testing::RewriteAndFail(kDocs, generated);
    return;
  }
  ADD_FAILURE() << "docs/manifests.md does not match the schemas in schemas/ (the tables between "
                   "the GENERATED markers are made from them; - is the file, + the schemas):\n"
                << LineDiff(current, generated)
                << "Edit the schema (never the tables), then rewrite the tables with\n  "
                << RegenerateCommand() << "\nand review the diff.";
}

TEST(ManifestDocsTest, EveryFieldIsDocumented) {
  for (const DocSection& section : Sections()) {
    const FieldTable table = ReadSchema(SectionSchema(section));
    EXPECT_FALSE(table.fields.empty()) << section.source;
    EXPECT_FALSE(table.description.empty()) << section.source << " has no description";
    for (const std::string& problem : table.problems) {
      ADD_FAILURE() << section.source << ": " << problem;
    }
  }
}

// The binary documents the schemas it embeds; make sure those are the files in schemas/.
TEST(ManifestDocsTest, EmbeddedSchemasAreTheFilesInSchemas) {
  for (const DocSection& section : Sections()) {
    if (section.schema.empty()) {
      continue;  // a provider's settings, compiled into the provider
    }
    const fs::path file = fs::path(FLOTILLA_SOURCE_DIR) / "schemas" / section.schema;
    EXPECT_EQ(EmbeddedSchema(section.schema), Json::parse(Slurp(file)))
        << file << " changed since this test was built: rebuild it first";
  }
}

// The reader itself, on small schemas.

const Field* FindField(const FieldTable& table, std::string_view path) {
  for (const Field& f : table.fields) {
    if (f.path == path) {
      return &f;
    }
  }
  return nullptr;
}

bool HasProblem(const FieldTable& table, std::string_view text) {
  return std::any_of(table.problems.begin(), table.problems.end(),
                     [&](const std::string& p) { return p.find(text) != std::string::npos; });
}

std::string AllProblems(const FieldTable& table) { return Join(table.problems, "\n"); }

TEST(ManifestDocsTest, PropertyWithoutDescriptionFailsTheCheck) {
  const FieldTable table = ReadSchema(Json::parse(R"({
    "type": "object",
    "properties": {
      "spec": {
        "type": "object",
        "description": "The spec.",
        "properties": {"size": {"type": "integer", "examples": [3]}}
      }
    }
  })"));
  EXPECT_EQ(table.problems, std::vector<std::string>{"spec.size: no description"});
  ASSERT_NE(FindField(table, "spec.size"), nullptr);
}

TEST(ManifestDocsTest, LeafWithoutAnyExampleFailsTheCheck) {
  const FieldTable table = ReadSchema(Json::parse(R"({
    "type": "object",
    "properties": {
      "name": {"type": "string", "description": "A name."},
      "mode": {"enum": ["a", "b"], "description": "Shown by its values."}
    }
  })"));
  EXPECT_EQ(table.problems,
            std::vector<std::string>{"name: no example: add \"examples\" (or a \"default\")"});
}

TEST(ManifestDocsTest, FollowsRefsIntoDefinitionsAndNamesArrayItems) {
  const FieldTable table = ReadSchema(Json::parse(R"({
    "type": "object",
    "required": ["spec"],
    "properties": {
      "spec": {
        "type": "object",
        "description": "Spec.",
        "properties": {
          "hosts": {"type": "array", "maxItems": 5, "items": {"$ref": "#/definitions/host"},
                    "description": "Hosts."}
        }
      }
    },
    "definitions": {
      "quantity": {"type": ["string", "integer"], "minimum": 0, "description": "A size."},
      "host": {
        "type": "object",
        "required": ["capacity"],
        "properties": {
          "capacity": {
            "type": "object",
            "description": "Capacity.",
            "properties": {
              "memory": {"$ref": "#/definitions/quantity", "description": "Memory.",
                         "default": "8Gi"}
            }
          },
          "tags": {"type": "array", "uniqueItems": true, "default": [],
                   "items": {"type": "string", "maxLength": 63}, "description": "Tags."}
        }
      }
    }
  })"));
  EXPECT_TRUE(table.problems.empty()) << AllProblems(table);
  const Field* hosts = FindField(table, "spec.hosts");
  ASSERT_NE(hosts, nullptr);
  EXPECT_EQ(hosts->type, "list of objects");
  EXPECT_EQ(hosts->allowed, "at most 5 items");
  const Field* memory = FindField(table, "spec.hosts[].capacity.memory");
  ASSERT_NE(memory, nullptr);
  EXPECT_EQ(memory->type, "string or integer");
  EXPECT_EQ(memory->required, "no");
  EXPECT_EQ(memory->default_value, "`8Gi`");
  EXPECT_EQ(memory->allowed, "at least 0");
  EXPECT_EQ(memory->description, "Memory.");  // the use site's words win over the definition's
  const Field* capacity = FindField(table, "spec.hosts[].capacity");
  ASSERT_NE(capacity, nullptr);
  EXPECT_EQ(capacity->required, "yes");
  const Field* tags = FindField(table, "spec.hosts[].tags");
  ASSERT_NE(tags, nullptr);
  EXPECT_EQ(tags->type, "list of strings");
  EXPECT_EQ(tags->default_value, "`[]`");
  EXPECT_EQ(tags->allowed, "no duplicates; items: at most 63 characters");
}

TEST(ManifestDocsTest, ListsTheFieldsOfEveryAlternative) {
  const FieldTable table = ReadSchema(Json::parse(R"({
    "type": "object",
    "properties": {
      "auth": {
        "description": "A token or a key.",
        "oneOf": [
          {"type": "object", "required": ["token"],
           "properties": {"token": {"type": "string", "description": "Token.", "examples": ["t"]}}},
          {"type": "object", "required": ["key"],
           "properties": {"key": {"type": "string", "description": "Key.", "examples": ["k"]}}}
        ]
      },
      "size": {
        "description": "Bytes or a percentage.",
        "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]+%$"}],
        "examples": [5, "10%"]
      }
    }
  })"));
  EXPECT_TRUE(table.problems.empty()) << AllProblems(table);
  ASSERT_NE(FindField(table, "auth"), nullptr);
  EXPECT_EQ(FindField(table, "auth")->type, "object");
  ASSERT_NE(FindField(table, "auth.key"), nullptr);
  EXPECT_EQ(FindField(table, "auth.key")->required, "in oneOf #2");
  const Field* size = FindField(table, "size");
  ASSERT_NE(size, nullptr);
  EXPECT_EQ(size->type, "integer or string");
  EXPECT_EQ(size->allowed, "any of: integer: at least 1; string: pattern `^[0-9]+%$`");
  EXPECT_EQ(size->example, "`5`, `10%`");
}

TEST(ManifestDocsTest, RecursiveSchemasAndRefCyclesEndWithAProblem) {
  const FieldTable table = ReadSchema(Json::parse(R"({
    "type": "object",
    "properties": {
      "tree": {"$ref": "#/definitions/node", "description": "A tree."},
      "loop": {"$ref": "#/definitions/a", "description": "A loop."}
    },
    "definitions": {
      "node": {"type": "object", "properties": {"children": {
        "type": "array", "items": {"$ref": "#/definitions/node"}, "description": "Children."}}},
      "a": {"$ref": "#/definitions/b"},
      "b": {"$ref": "#/definitions/a"}
    }
  })"));
  EXPECT_TRUE(HasProblem(table, "deep (a recursive schema?)")) << AllProblems(table);
  EXPECT_TRUE(HasProblem(table, "loop: $ref \"#/definitions/a\" leads round in a circle"))
      << AllProblems(table);
  EXPECT_NE(FindField(table, "tree.children[].children"), nullptr);
}

TEST(ManifestDocsTest, DefaultsAndExamplesMustPassTheirSchema) {
  const FieldTable table = ReadSchema(Json::parse(R"({
    "type": "object",
    "properties": {
      "count": {"type": "integer", "minimum": 1, "default": 0, "description": "Count."},
      "name": {"$ref": "#/definitions/name", "description": "Name.", "examples": ["ok", "Not OK"]}
    },
    "definitions": {"name": {"type": "string", "maxLength": 9, "pattern": "^[a-z]+$"}}
  })"));
  EXPECT_TRUE(HasProblem(table, "count: default 0 does not pass")) << AllProblems(table);
  EXPECT_TRUE(HasProblem(table, "name: example Not OK does not pass")) << AllProblems(table);
  EXPECT_FALSE(HasProblem(table, "example ok ")) << AllProblems(table);
}

TEST(ManifestDocsTest, CellsAreSafeMarkdown) {
  const FieldTable table = ReadSchema(Json::parse(R"({
    "type": "object",
    "properties": {
      "path": {"type": "string", "pattern": "^(a|b)$", "examples": ["a"],
               "description": "Read <secretsDir>/<ref>/key, FLOTILLA_SECRET_<REF> or a|b; x86_64."}
    }
  })"));
  ASSERT_EQ(table.fields.size(), 1u);
  EXPECT_EQ(table.fields[0].allowed, "pattern `^(a\\|b)$`");
  EXPECT_EQ(table.fields[0].description,
            "Read &lt;secretsDir&gt;/&lt;ref&gt;/key, FLOTILLA_SECRET\\_&lt;REF&gt; or a\\|b; "
            "x86_64.");
  const std::string rendered = RenderTable(table);
  const std::string row = "| `path` | string | no |  | pattern `^(a\\|b)$` | `a` | " +
                          table.fields[0].description + " |\n";
  EXPECT_NE(rendered.find(row), std::string::npos) << rendered;
}

TEST(ManifestDocsTest, ValuesAreShownAsInAManifest) {
  EXPECT_EQ(Flow(Json::parse(R"(["m2", "builder"])")), "[m2, builder]");
  EXPECT_EQ(Flow(Json::parse(R"({"site": "rack-a"})")), "{site: rack-a}");
  EXPECT_EQ(Flow(Json("10%")), "10%");
  EXPECT_EQ(Flow(Json("127.0.0.1:8080")), "127.0.0.1:8080");
  EXPECT_EQ(Flow(Json("true")), "\"true\"");
  EXPECT_EQ(Flow(Json("12")), "\"12\"");
  EXPECT_EQ(Flow(Json("a: b")), "\"a: b\"");
  EXPECT_EQ(Flow(Json("#!/bin/sh\nrun\n")), "\"#!/bin/sh\\nrun\\n\"");
  EXPECT_EQ(Flow(Json(false)), "false");
}

TEST(ManifestDocsTest, SpliceReplacesOnlyTheTextBetweenTheMarkers) {
  const std::string begin = BeginMarker(Sections()[0]);
  const std::string doc = "# Title\n\n" + begin + "\nold\n" + std::string(kEndMarker) + "\nafter\n";
  const Spliced spliced = Splice(doc, begin, "\nnew\n\n");
  ASSERT_TRUE(spliced.error.empty()) << spliced.error;
  EXPECT_EQ(spliced.text,
            "# Title\n\n" + begin + "\n\nnew\n\n" + std::string(kEndMarker) + "\nafter\n");
  EXPECT_EQ(Splice(spliced.text, begin, "\nnew\n\n").text, spliced.text);  // idempotent
  EXPECT_FALSE(Splice("# Title\n", begin, "x").error.empty());
  EXPECT_FALSE(Splice(begin + "\nno end\n", begin, "x").error.empty());
  EXPECT_FALSE(Splice(doc + doc, begin, "x").error.empty());
}

TEST(ManifestDocsTest, DiffShowsChangedLinesWithContext) {
  EXPECT_EQ(LineDiff("a\nb\nc\nd\ne\nf\n", "a\nb\nc\nD\ne\nf\n"),
            "@@ -2 +2 @@\n  b\n  c\n- d\n+ D\n  e\n  f\n");
  EXPECT_EQ(LineDiff("same\n", "same\n"), "");
}

}  // namespace
}  // namespace flotilla
