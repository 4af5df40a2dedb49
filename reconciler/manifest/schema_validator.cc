#include "reconciler/manifest/schema_validator.h"

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "schemas/embedded.h"

namespace flotilla::manifest {

// valijson's validator caches every compiled `pattern` and is not safe to share between
// threads. Each call borrows one from this pool (making one when all are busy), so calls run
// in parallel and each pattern is compiled once per validator, not once per document.
struct SchemaValidator::Engine {
  std::mutex mutex;
  std::vector<std::unique_ptr<valijson::Validator>> idle;  // strong types

  std::unique_ptr<valijson::Validator> Borrow() {
    std::lock_guard<std::mutex> lock(mutex);
    if (idle.empty()) {
      return std::make_unique<valijson::Validator>();
    }
    std::unique_ptr<valijson::Validator> v = std::move(idle.back());
    idle.pop_back();
    return v;
  }

  void Return(std::unique_ptr<valijson::Validator> v) {
    std::lock_guard<std::mutex> lock(mutex);
    idle.push_back(std::move(v));
  }
};

namespace {

using nlohmann::json;

// valijson reports a failing parent for every failing child; only the innermost violation
// is useful to a person.
constexpr std::array<std::string_view, 7> kWrapperPrefixes = {
    "Failed to validate against schema associated with property name",
    "Failed to validate against schema associated with pattern",
    "Failed to validate item #",
    "Cannot validate item #",
    "Failed to validate against child schema #",
    "Failed to validate against additional properties schema",
    "Failed to validate against additional items schema",
};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The text between the last pair of single quotes: valijson puts names there.
std::string QuotedName(const std::string& description) {
  const size_t close = description.rfind('\'');
  if (close == std::string::npos || close == 0) {
    return {};
  }
  const size_t open = description.rfind('\'', close - 1);
  if (open == std::string::npos) {
    return {};
  }
  return description.substr(open + 1, close - open - 1);
}

const json* Resolve(const json& root, const json* node) {
  // Follow local references ("#/definitions/x"); a bounded number guards against cycles.
  for (int hops = 0; node != nullptr && node->is_object() && node->contains("$ref") && hops < 16;
       ++hops) {
    const json& ref = (*node)["$ref"];
    if (!ref.is_string() || !StartsWith(ref.get_ref<const std::string&>(), "#")) {
      return nullptr;
    }
    try {
      node = &root.at(json::json_pointer(ref.get<std::string>().substr(1)));
    } catch (const json::exception&) {
      return nullptr;
    }
  }
  return node;
}

// What sits at one place of a document: the instance value, the schema node that governs it
// (null when it cannot be told), and how messages name it ("replicas", "tags[1]").
struct Located {
  const json* value = nullptr;
  const json* schema = nullptr;
  std::string label = "document";
};

Located Locate(const json& root, const std::vector<std::string>& tokens, const json& instance) {
  static const json kNoSchema = json::object();  // immutable
  Located at{&instance, Resolve(root, &root), "document"};
  for (const std::string& token : tokens) {
    const json* schema = at.schema != nullptr && at.schema->is_object() ? at.schema : &kNoSchema;
    const json* next_schema = nullptr;
    if (at.value->is_array()) {
      if (schema->contains("items") && (*schema)["items"].is_object()) {
        next_schema = &(*schema)["items"];
      }
      const size_t index = std::strtoul(token.c_str(), nullptr, 10);
      at.value = index < at.value->size() ? &(*at.value)[index] : at.value;
      at.label += "[" + token + "]";
    } else {
      if (schema->contains("properties") && (*schema)["properties"].contains(token)) {
        next_schema = &(*schema)["properties"][token];
      } else if (schema->contains("additionalProperties") &&
                 (*schema)["additionalProperties"].is_object()) {
        next_schema = &(*schema)["additionalProperties"];
      }
      if (at.value->is_object() && at.value->contains(token)) {
        at.value = &(*at.value)[token];
      }
      at.label = token;
    }
    at.schema = Resolve(root, next_schema);
  }
  return at;
}

// libstdc++'s std::regex recurses once per character, so a long enough string under a
// `pattern` overflows the stack. Every patterned string also has a maxLength; cut such
// strings to maxLength + 1 characters before validating. The cut string fails maxLength
// exactly as the original does, and the regex only ever sees a short string.
constexpr size_t kPatternLengthCap = 4096;

// The cap of a string under `schema` (pattern_caps::Tree), or nothing when the string has no
// pattern.
std::optional<size_t> PatternCap(const json& schema) {
  if (!schema.contains("pattern")) {
    return std::nullopt;
  }
  size_t cap = kPatternLengthCap;
  if (schema.contains("maxLength") && schema["maxLength"].is_number_unsigned()) {
    cap = std::min(cap, schema["maxLength"].get<size_t>());
  }
  return cap;
}

std::string RenderValue(const json& value) {
  if (value.is_string()) {
    std::string s = value.get<std::string>();
    if (s.size() > 60) {
      size_t cut = 57;  // not inside a UTF-8 character
      while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0u) == 0x80u) {
        --cut;
      }
      s = s.substr(0, cut) + "...";
    }
    // A string cut to its cap (pattern_caps::Tree::Cut) may end inside a character: shown with
    // U+FFFD.
    return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (value.is_object()) {
    return "a mapping";
  }
  if (value.is_array()) {
    return "a list";
  }
  if (value.is_null()) {
    return "an empty value";
  }
  return value.dump();
}

std::string DescribeValue(const json& value) {
  if (value.is_string()) {
    return "the string " + RenderValue(value);
  }
  if (value.is_number()) {
    return "the number " + RenderValue(value);
  }
  return RenderValue(value);
}

std::string TypeNoun(const std::string& type) {
  if (type == "integer") {
    return "an integer";
  }
  if (type == "object") {
    return "a mapping";
  }
  if (type == "array") {
    return "a list";
  }
  if (type == "boolean") {
    return "true or false";
  }
  if (type == "null") {
    return "empty";
  }
  return "a " + type;
}

std::vector<std::string> SchemaTypes(const json* schema) {
  std::vector<std::string> types;
  if (schema == nullptr || !schema->contains("type")) {
    return types;
  }
  const json& t = (*schema)["type"];
  if (t.is_string()) {
    types.push_back(t.get<std::string>());
  } else if (t.is_array()) {
    for (const json& item : t) {
      types.push_back(item.get<std::string>());
    }
  }
  return types;
}

std::string Pointer(const std::vector<std::string>& tokens) {
  std::string p;
  for (const std::string& t : tokens) {
    p += "/" + EscapePointerToken(t);
  }
  return p;
}

struct Violation {
  std::string message;
  std::string pointer;
  bool at_key = false;  // locate at the key rather than the value
};

// valijson's context ("<root>", then "[key]" or "[index]" per level) as reference tokens.
std::vector<std::string> ContextTokens(const std::vector<std::string>& context) {
  std::vector<std::string> tokens;
  for (size_t i = 1; i < context.size(); ++i) {
    const std::string& c = context[i];
    tokens.push_back(c.size() >= 2 ? c.substr(1, c.size() - 2) : c);
  }
  return tokens;
}

std::string ContextPointer(const std::vector<std::string>& context) {
  return Pointer(ContextTokens(context));
}

// Appends to `out` what `error` means for a person; nothing for valijson's wrapper errors.
void Explain(const valijson::ValidationResults::Error& error, const json& schema_root,
             const json& instance, const std::set<std::string>& redacted,
             std::vector<Violation>& out) {
  const std::string& d = error.description;
  for (std::string_view prefix : kWrapperPrefixes) {
    if (StartsWith(d, prefix)) {
      return;
    }
  }
  const std::vector<std::string> tokens = ContextTokens(error.context);
  const Located at = Locate(schema_root, tokens, instance);
  const json* value = at.value;
  const json* schema = at.schema;
  const std::string& field = at.label;
  const std::string pointer = Pointer(tokens);
  // Values of *Ref fields name secrets; when one is malformed, it may be a pasted secret.
  const bool secret = redacted.count(pointer) > 0 ||
                      (field.size() > 3 && field.compare(field.size() - 3, 3, "Ref") == 0);
  const std::string shown = secret ? "(value redacted)" : RenderValue(*value);

  if (StartsWith(d, "Object contains a property that could not be validated")) {
    // valijson names only the first unknown field of an object; name them all.
    std::vector<std::string> known;
    if (schema != nullptr && schema->contains("properties")) {
      for (const auto& [key, unused] : (*schema)["properties"].items()) {
        known.push_back(key);
      }
    }
    for (const auto& [name, unused] : value->items()) {
      if (std::find(known.begin(), known.end(), name) != known.end()) {
        continue;
      }
      std::string message = "unknown field \"" + name + "\"";
      const std::string guess = ClosestMatch(name, known);
      if (!guess.empty()) {
        message += "; did you mean \"" + guess + "\"?";
      } else if (!known.empty()) {
        message += " (" + (tokens.empty() ? std::string("a manifest") : field) + " takes " +
                   Join(known) + ")";
      }
      out.push_back({message, pointer + "/" + EscapePointerToken(name), true});
    }
    return;
  }
  if (StartsWith(d, "Missing required property")) {
    const std::string name = QuotedName(d);
    const std::string where = tokens.empty() ? "document" : field;
    out.push_back(Violation{"missing required field \"" + name + "\" in " + where, pointer, true});
    return;
  }
  if (StartsWith(d, "Value type not permitted")) {
    std::vector<std::string> nouns;
    for (const std::string& t : SchemaTypes(schema)) {
      nouns.push_back(TypeNoun(t));
    }
    std::string message = field + " must be " +
                          (nouns.empty() ? "another type" : Join(nouns, " or ")) + ", not " +
                          (secret ? "this value" : DescribeValue(*value));
    if (value->is_string() &&
        std::find(nouns.begin(), nouns.end(), "true or false") != nouns.end()) {
      message += " (YAML 1.2: write true or false, not yes/no/on/off, and without quotes)";
    } else if (value->is_string() &&
               std::find(nouns.begin(), nouns.end(), "an integer") != nouns.end()) {
      message += " (write the number without quotes)";
    }
    out.push_back(Violation{message, pointer});
    return;
  }
  if (StartsWith(d, "Failed to match against any enum values")) {
    std::vector<std::string> options;
    if (schema != nullptr && schema->contains("enum")) {
      for (const json& e : (*schema)["enum"]) {
        options.push_back(e.is_string() ? e.get<std::string>() : e.dump());
      }
    }
    std::string message = field + " " + shown + " is not one of " + Join(options);
    if (value->is_string() && !secret) {
      const std::string guess = ClosestMatch(value->get<std::string>(), options);
      if (!guess.empty()) {
        message += "; did you mean \"" + guess + "\"?";
      }
    }
    out.push_back(Violation{message, pointer});
    return;
  }
  if (StartsWith(d, "Failed to match expected value set by 'const'")) {
    const std::string expected =
        schema != nullptr && schema->contains("const") ? (*schema)["const"].dump() : "?";
    out.push_back(Violation{field + " " + shown + " must be " + expected, pointer});
    return;
  }
  if (StartsWith(d, "Failed to match regex specified by 'pattern'")) {
    std::string rule;
    if (schema != nullptr && schema->contains("patternErrorMessage")) {
      rule = (*schema)["patternErrorMessage"].get<std::string>();
    } else if (schema != nullptr && schema->contains("pattern")) {
      rule = "must match " + (*schema)["pattern"].get<std::string>();
    } else {
      rule = "has the wrong form";
    }
    out.push_back(Violation{field + " " + shown + " " + rule, pointer});
    return;
  }
  auto bound = [&](const char* key) -> std::string {
    return schema != nullptr && schema->contains(key) ? (*schema)[key].dump() : "?";
  };
  if (StartsWith(d, "Expected number greater than or equal to") ||
      StartsWith(d, "Expected number greater than")) {
    out.push_back(
        Violation{field + " " + shown + " is below the minimum " + bound("minimum"), pointer});
    return;
  }
  if (StartsWith(d, "Expected number less than or equal to") ||
      StartsWith(d, "Expected number less than")) {
    out.push_back(
        Violation{field + " " + shown + " is above the maximum " + bound("maximum"), pointer});
    return;
  }
  if (StartsWith(d, "String should be no more than")) {
    out.push_back(
        Violation{field + " is longer than " + bound("maxLength") + " characters", pointer});
    return;
  }
  if (StartsWith(d, "String should be no fewer than")) {
    out.push_back(Violation{field + " must not be empty", pointer});
    return;
  }
  if (StartsWith(d, "Array should contain no more than")) {
    out.push_back(Violation{field + " has more than " + bound("maxItems") + " items", pointer});
    return;
  }
  if (StartsWith(d, "Array should contain no fewer than")) {
    out.push_back(Violation{field + " needs at least " + bound("minItems") + " items", pointer});
    return;
  }
  if (StartsWith(d, "Elements at indexes")) {
    out.push_back(Violation{field + " lists the same item more than once", pointer});
    return;
  }
  out.push_back(Violation{field + ": " + d, pointer});
  return;
}

constexpr std::string_view kPoolSchema = "hostpool.v1.json";

// The pool schema for one provider: `settings`' properties (and their definitions and
// required keys) join spec's, its `host` properties narrow the hosts' own (a JSON merge
// patch), and spec.provider lists the known names. Without `settings`,
// the schema for a provider nobody registered: only spec.provider is checked, so its error
// is the one a person sees.
Result<json> PoolSchemaFor(const json& pool, const std::vector<std::string>& names,
                           const ProviderRules* rules) {
  json out = pool;
  json& spec = out["properties"]["spec"];
  spec["properties"]["provider"]["enum"] = names;
  if (rules == nullptr) {
    spec["additionalProperties"] = true;
    return out;
  }
  json settings;
  try {
    settings = json::parse(rules->settings_schema());
  } catch (const json::exception& e) {
    return Status::Internal("provider " + std::string(rules->name()) +
                            ": its settings schema is not JSON: " + e.what());
  }
  const json properties = settings.value("properties", json::object());
  const json definitions = settings.value("definitions", json::object());
  for (const auto& [key, property] : properties.items()) {
    if (spec["properties"].contains(key)) {
      return Status::Internal("provider " + std::string(rules->name()) +
                              ": its settings schema redefines spec." + key);
    }
    spec["properties"][key] = property;
  }
  for (const auto& [key, definition] : definitions.items()) {
    if (out["definitions"].contains(key)) {
      return Status::Internal("provider " + std::string(rules->name()) +
                              ": its settings schema redefines #/definitions/" + key);
    }
    out["definitions"][key] = definition;
  }
  const json required = settings.value("required", json::array());
  for (const json& key : required) {
    spec["required"].push_back(key);
  }
  // Narrower rules for a host's neutral keys (an address's form), merged over the neutral ones.
  const json host = settings.value("host", json::object()).value("properties", json::object());
  for (const auto& [key, property] : host.items()) {
    json& neutral = out["definitions"]["host"]["properties"];
    if (!neutral.contains(key)) {
      return Status::Internal("provider " + std::string(rules->name()) +
                              ": its settings schema narrows hosts' " + key + ", which they lack");
    }
    neutral[key].merge_patch(property);
  }
  return out;
}

}  // namespace

namespace pattern_caps {

// What the cutting of long patterned strings reads of one place of a schema, its references
// resolved: the cap of a string there, and the places of properties, of other properties and
// of items. A null place is one with no schema (a reference that resolves to nothing, or not
// to an object): nothing below it is cut.
struct Place {
  std::optional<size_t> cap;
  std::map<std::string, const Place*, std::less<>> properties;
  const Place* additional = nullptr;
  const Place* items = nullptr;
};

// A schema's places, built once, so that a document is checked for strings to cut, and cut,
// without resolving references and looking keys up in the schema's JSON for every node.
class Tree {
 public:
  explicit Tree(const json& root) : root_(&root) { top_ = Build(&root); }

  // Whether Cut would cut a string of `value`.
  bool NeedsCap(const json& value) const { return Needs(top_, value); }

  // Cuts every string of `value` longer than its cap to cap + 1 characters and records its
  // pointer in `cut`: a pattern finding there would be about the cut text, not the user's, and
  // is dropped.
  void Cut(json& value, std::set<std::string>& cut) const { Cut(top_, value, "", cut); }

 private:
  const Place* Build(const json* schema) {
    if (auto it = built_.find(schema); it != built_.end()) {
      return it->second;
    }
    const json* resolved = Resolve(*root_, schema);
    if (resolved == nullptr || !resolved->is_object()) {
      built_[schema] = nullptr;
      return nullptr;
    }
    places_.push_back(std::make_unique<Place>());
    Place* place = places_.back().get();
    built_[schema] = place;  // before its children: a schema may refer to itself
    place->cap = PatternCap(*resolved);
    if (resolved->contains("properties") && (*resolved)["properties"].is_object()) {
      for (const auto& [key, property] : (*resolved)["properties"].items()) {
        place->properties[key] = Build(&property);
      }
    }
    if (resolved->contains("additionalProperties") &&
        (*resolved)["additionalProperties"].is_object()) {
      place->additional = Build(&(*resolved)["additionalProperties"]);
    }
    if (resolved->contains("items")) {
      place->items = Build(&(*resolved)["items"]);
    }
    return place;
  }

  // The place of a mapping's key `key` under `place`: its property's, else the other
  // properties'.
  static const Place* Below(const Place& place, std::string_view key) {
    auto property = place.properties.find(key);
    return property != place.properties.end() ? property->second : place.additional;
  }

  static bool Needs(const Place* place, const json& value) {
    if (place == nullptr) {
      return false;
    }
    if (value.is_string()) {
      return place->cap && value.get_ref<const std::string&>().size() > *place->cap;
    }
    if (value.is_object()) {
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (Needs(Below(*place, it.key()), it.value())) {
          return true;
        }
      }
      return false;
    }
    if (value.is_array()) {
      for (const json& item : value) {
        if (Needs(place->items, item)) {
          return true;
        }
      }
    }
    return false;
  }

  static void Cut(const Place* place, json& value, const std::string& pointer,
                  std::set<std::string>& cut) {
    if (place == nullptr) {
      return;
    }
    if (value.is_string()) {
      std::string& text = value.get_ref<std::string&>();
      if (place->cap && text.size() > *place->cap) {
        text.resize(*place->cap + 1);
        cut.insert(pointer);
      }
    } else if (value.is_object()) {
      for (auto it = value.begin(); it != value.end(); ++it) {
        Cut(Below(*place, it.key()), it.value(), pointer + "/" + EscapePointerToken(it.key()), cut);
      }
    } else if (value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i) {
        Cut(place->items, value[i], pointer + "/" + std::to_string(i), cut);
      }
    }
  }

  const json* root_;
  std::map<const json*, const Place*> built_;
  std::vector<std::unique_ptr<Place>> places_;
  const Place* top_ = nullptr;
};

}  // namespace pattern_caps

struct SchemaValidator::Compiled {
  nlohmann::json source;  // kept for messages: enums, patterns, known fields
  valijson::Schema schema;
  std::unique_ptr<pattern_caps::Tree> caps;  // of `source`
};

namespace {

Result<std::unique_ptr<SchemaValidator::Compiled>> Compile(json source, const std::string& what) {
  auto compiled = std::make_unique<SchemaValidator::Compiled>();
  try {
    compiled->source = std::move(source);
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter adapter(compiled->source);
    parser.populateSchema(adapter, compiled->schema);
    compiled->caps = std::make_unique<pattern_caps::Tree>(compiled->source);
  } catch (const std::exception& e) {
    return Status::Internal(what + " is invalid: " + e.what());
  }
  return compiled;
}

}  // namespace

SchemaValidator::~SchemaValidator() = default;

Result<std::shared_ptr<const SchemaValidator>> SchemaValidator::Create(ProviderRulesList rules) {
  std::shared_ptr<SchemaValidator> validator(new SchemaValidator());
  validator->engine_ = std::make_unique<Engine>();
  validator->rules_ = std::move(rules);
  for (std::string_view name : schemas::Names()) {
    json source;
    try {
      source = json::parse(schemas::Find(name));
    } catch (const std::exception& e) {
      return Status::Internal("embedded schema " + std::string(name) + " is invalid: " + e.what());
    }
    if (name == kPoolSchema) {
      std::vector<std::string> names;
      for (const std::shared_ptr<const ProviderRules>& r : validator->rules_) {
        names.emplace_back(r->name());
      }
      for (const std::shared_ptr<const ProviderRules>& r : validator->rules_) {
        Result<json> merged = PoolSchemaFor(source, names, r.get());
        if (!merged.ok()) {
          return merged.status();
        }
        Result<std::unique_ptr<Compiled>> compiled = Compile(
            std::move(*merged), "the pool schema of provider \"" + std::string(r->name()) + "\"");
        if (!compiled.ok()) {
          return compiled.status();
        }
        validator->pool_schemas_.emplace(std::string(r->name()), std::move(*compiled));
      }
      // What schemas_ holds for pools: the schema of a provider no rules name.
      Result<json> neutral = PoolSchemaFor(source, names, nullptr);
      if (!neutral.ok()) {
        return neutral.status();
      }
      source = std::move(*neutral);
    }
    Result<std::unique_ptr<Compiled>> compiled =
        Compile(std::move(source), "embedded schema " + std::string(name));
    if (!compiled.ok()) {
      return compiled.status();
    }
    validator->schemas_.emplace(std::string(name), std::move(*compiled));
  }
  return std::shared_ptr<const SchemaValidator>(std::move(validator));
}

const json* SchemaValidator::PoolSchemaOf(std::string_view provider) const {
  auto it = pool_schemas_.find(provider);
  return it == pool_schemas_.end() ? nullptr : &it->second->source;
}

const SchemaValidator::Compiled* SchemaValidator::PoolSchema(const json& document) const {
  std::string provider = "parallels";  // the pool schema's default for spec.provider
  if (const json* spec =
          document.is_object() && document.contains("spec") ? &document["spec"] : nullptr;
      spec != nullptr && spec->is_object() && spec->contains("provider")) {
    provider = (*spec)["provider"].is_string() ? (*spec)["provider"].get<std::string>() : "";
  }
  auto it = pool_schemas_.find(provider);
  return (it != pool_schemas_.end() ? it : schemas_.find(kPoolSchema))->second.get();
}

bool SchemaValidator::Validate(std::string_view schema, const YamlDocument& doc,
                               Diagnostics& diagnostics,
                               const std::set<std::string>& redacted) const {
  auto it = schemas_.find(schema);
  if (it == schemas_.end()) {
    diagnostics.Error(doc.ValueLocation(""), "no schema named " + std::string(schema));
    return false;
  }
  const Compiled* compiled = schema == kPoolSchema ? PoolSchema(doc.value) : it->second.get();
  // The document is validated as it is unless a string must be cut: then a copy, cut.
  std::optional<json> guarded;
  std::set<std::string> cut;
  if (compiled->caps->NeedsCap(doc.value)) {
    guarded = doc.value;
    compiled->caps->Cut(*guarded, cut);
  }
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(guarded ? *guarded : doc.value);
  bool valid = false;
  {
    std::unique_ptr<valijson::Validator> validator = engine_->Borrow();
    valid = validator->validate(compiled->schema, target, &results);
    engine_->Return(std::move(validator));
  }
  if (valid) {
    return true;
  }
  valijson::ValidationResults::Error error;
  bool reported = false;
  while (results.popError(error)) {
    if (StartsWith(error.description, "Failed to match regex") &&
        cut.count(ContextPointer(error.context)) > 0) {
      continue;
    }
    std::vector<Violation> violations;
    Explain(error, compiled->source, doc.value, redacted, violations);
    for (Violation& v : violations) {
      SourceLocation where = v.at_key ? doc.KeyLocation(v.pointer) : doc.ValueLocation(v.pointer);
      diagnostics.Error(std::move(where), std::move(v.message), std::move(v.pointer));
      reported = true;
    }
  }
  if (!reported) {
    diagnostics.Error(doc.ValueLocation(""), "does not match schema " + std::string(schema));
  }
  return false;
}

bool SchemaValidator::Validate(std::string_view schema, const nlohmann::json& value,
                               const std::string& file, Diagnostics& diagnostics) const {
  YamlDocument doc;
  doc.value = value;
  doc.file = file;
  return Validate(schema, doc, diagnostics);
}

}  // namespace flotilla::manifest
