#pragma once

// JSON as Foundation's JSONEncoder writes it with `.prettyPrinted` and nothing else (Tart's
// Formatter/Format.swift and VMConfig.save): two-space indentation, `"key" : value`, forward
// slashes escaped as `\/`, non-ASCII characters written as UTF-8, an empty array as `[\n\n]`.
// Keys keep the order they were added in (the order of Tart's Encodable structs), unless a
// shuffling generator is passed to Render (TART_HOME/.fake/config.json "shuffle_keys").

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flotilla::tartsim {

class AppleJson {
 public:
  static AppleJson String(std::string_view value);
  static AppleJson Int(int64_t value);
  static AppleJson Bool(bool value);
  // An already formatted number, e.g. "22.123".
  static AppleJson Number(std::string text);
  static AppleJson Object();
  static AppleJson Array();

  // Object members, in insertion order. REQUIRES: this is an object.
  AppleJson& Add(std::string key, AppleJson value);
  // Array items. REQUIRES: this is an array.
  AppleJson& Push(AppleJson value);

  // The text without a trailing newline. `shuffle` (may be null) permutes every object's keys.
  std::string Render(std::mt19937* shuffle = nullptr) const;

 private:
  enum class Kind { kScalar, kObject, kArray };
  void RenderInto(std::string* out, int depth, std::mt19937* shuffle) const;

  Kind kind_ = Kind::kScalar;
  std::string scalar_;  // the encoded scalar
  std::vector<std::pair<std::string, AppleJson>> members_;
  std::vector<AppleJson> items_;
};

// `value` as a JSON string literal with Foundation's escaping (quotes included).
std::string AppleJsonQuote(std::string_view value);

}  // namespace flotilla::tartsim
