#pragma once

// JSON written straight to text, byte for byte as nlohmann::json's dump(2, ' ', false,
// error_handler_t::replace) writes the same document (objects' keys in the order given, which
// the caller keeps sorted as nlohmann's std::map would), without building the document first.
// For the views with one object per VM (100,000 of them in a large fleet), where building
// nlohmann's document of maps was most of the rendering.
//
//   JsonText out;
//   out.BeginObject();
//   out.Key("name");
//   out.String(vm.name);
//   out.EndObject();
//   std::string body = out.Finish();  // "{\n  \"name\": \"...\"\n}\n"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla::api {

class JsonText {
 public:
  JsonText() = default;
  // For elements of an array `depth` containers deep in a larger document (the document's own
  // object is depth 1), written as they are there: the first after a newline and indentation,
  // each other after ",\n". Piece() takes the text; a caller that joins such pieces puts a
  // comma between two that are not empty.
  explicit JsonText(size_t depth) : empty_(depth, true) {}

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }
  // The next member's key. REQUIRES: in an object; keys in nlohmann's order (sorted bytewise).
  void Key(std::string_view key);
  // Text that is not UTF-8 is written with U+FFFD in place of each bad sequence, as nlohmann's
  // replace handler does.
  void String(std::string_view text);
  void Number(uint64_t value);
  // As nlohmann writes a double (the shortest text that reads back, "0.0" for zero).
  void Double(double value);
  void Bool(bool value);
  void Null();
  // Room for about `bytes` of text up front: a large answer is then written into one buffer
  // instead of being copied into a larger one each time it fills (most of rendering 50 MB).
  void Reserve(size_t bytes) { out_.reserve(bytes); }
  // The text, with the newline JsonReply adds. REQUIRES: every container closed.
  std::string Finish();
  // The text so far, as it is: no container closed, no newline added. For a piece of a larger
  // document (JsonText(depth)), or the start of one.
  std::string Piece() { return std::move(out_); }

 private:
  void Open(char bracket);
  void Close(char bracket);
  // Before a value: in an array, the separator and indentation of a new element.
  void BeforeValue();
  void Indent(size_t level);

  std::string out_;
  std::vector<bool> empty_;  // per open container: whether it has no member yet
  bool after_key_ = false;
};

}  // namespace flotilla::api
