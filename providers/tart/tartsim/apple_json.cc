#include "providers/tart/tartsim/apple_json.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace flotilla::tartsim {

std::string AppleJsonQuote(std::string_view value) {
  std::string out = "\"";
  for (const char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '/':
        out += "\\/";  // no .withoutEscapingSlashes in Tart's encoders
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

AppleJson AppleJson::String(std::string_view value) {
  AppleJson v;
  v.scalar_ = AppleJsonQuote(value);
  return v;
}

AppleJson AppleJson::Int(int64_t value) {
  AppleJson v;
  v.scalar_ = std::to_string(value);
  return v;
}

AppleJson AppleJson::Bool(bool value) {
  AppleJson v;
  v.scalar_ = value ? "true" : "false";
  return v;
}

AppleJson AppleJson::Number(std::string text) {
  AppleJson v;
  v.scalar_ = std::move(text);
  return v;
}

AppleJson AppleJson::Object() {
  AppleJson v;
  v.kind_ = Kind::kObject;
  return v;
}

AppleJson AppleJson::Array() {
  AppleJson v;
  v.kind_ = Kind::kArray;
  return v;
}

AppleJson& AppleJson::Add(std::string key, AppleJson value) {
  members_.emplace_back(std::move(key), std::move(value));
  return *this;
}

AppleJson& AppleJson::Push(AppleJson value) {
  items_.push_back(std::move(value));
  return *this;
}

std::string AppleJson::Render(std::mt19937* shuffle) const {
  std::string out;
  RenderInto(&out, 0, shuffle);
  return out;
}

void AppleJson::RenderInto(std::string* out, int depth, std::mt19937* shuffle) const {
  const std::string inner(static_cast<size_t>(depth + 1) * 2, ' ');
  const std::string outer(static_cast<size_t>(depth) * 2, ' ');
  switch (kind_) {
    case Kind::kScalar:
      *out += scalar_;
      return;
    case Kind::kObject: {
      if (members_.empty()) {
        *out += "{\n\n" + outer + "}";
        return;
      }
      std::vector<size_t> order(members_.size());
      std::iota(order.begin(), order.end(), 0);
      if (shuffle != nullptr) {
        std::shuffle(order.begin(), order.end(), *shuffle);
      }
      *out += "{\n";
      for (size_t i = 0; i < order.size(); ++i) {
        const auto& [key, value] = members_[order[i]];
        *out += inner + AppleJsonQuote(key) + " : ";
        value.RenderInto(out, depth + 1, shuffle);
        *out += i + 1 < order.size() ? ",\n" : "\n";
      }
      *out += outer + "}";
      return;
    }
    case Kind::kArray:
      if (items_.empty()) {
        *out += "[\n\n" + outer + "]";
        return;
      }
      *out += "[\n";
      for (size_t i = 0; i < items_.size(); ++i) {
        *out += inner;
        items_[i].RenderInto(out, depth + 1, shuffle);
        *out += i + 1 < items_.size() ? ",\n" : "\n";
      }
      *out += outer + "]";
      return;
  }
}

}  // namespace flotilla::tartsim
