#include "reconciler/api/json_text.h"

#include <nlohmann/json.hpp>

#include <charconv>

namespace flotilla::api {
namespace {

// Whether nlohmann would write `text` as it is between quotes: printable ASCII, no quote or
// backslash. Anything else (escapes, UTF-8, bytes to replace) is left to nlohmann itself.
bool Plain(std::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f || c == '"' || c == '\\') {
      return false;
    }
  }
  return true;
}

void Quoted(std::string& out, std::string_view text) {
  if (Plain(text)) {
    out += '"';
    out += text;
    out += '"';
    return;
  }
  out += nlohmann::json(std::string(text))
             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void JsonText::Indent(size_t level) { out_.append(2 * level, ' '); }

void JsonText::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (empty_.empty()) {
    return;  // the document itself
  }
  out_ += empty_.back() ? "\n" : ",\n";
  empty_.back() = false;
  Indent(empty_.size());
}

void JsonText::Key(std::string_view key) {
  out_ += empty_.back() ? "\n" : ",\n";
  empty_.back() = false;
  Indent(empty_.size());
  Quoted(out_, key);
  out_ += ": ";
  after_key_ = true;
}

void JsonText::Open(char bracket) {
  BeforeValue();
  out_ += bracket;
  empty_.push_back(true);
}

void JsonText::Close(char bracket) {
  const bool empty = empty_.back();
  empty_.pop_back();
  if (!empty) {
    out_ += '\n';
    Indent(empty_.size());
  }
  out_ += bracket;
}

void JsonText::String(std::string_view text) {
  BeforeValue();
  Quoted(out_, text);
}

void JsonText::Number(uint64_t value) {
  BeforeValue();
  char buffer[24];
  out_.append(buffer, std::to_chars(buffer, buffer + sizeof buffer, value).ptr);
}

void JsonText::Double(double value) {
  BeforeValue();
  out_ += nlohmann::json(value).dump();
}

void JsonText::Bool(bool value) {
  BeforeValue();
  out_ += value ? "true" : "false";
}

void JsonText::Null() {
  BeforeValue();
  out_ += "null";
}

std::string JsonText::Finish() {
  out_ += '\n';
  return std::move(out_);
}

}  // namespace flotilla::api
