// The request head of a connection the front door hands over whole, the live stream's and the
// tunnels' (ReadRequest, reconciler/api/stream_io.h). The input's first byte sets how many
// bytes each read of the stream gives (1-16); the rest is what the client sent.
// Invariants: nothing past the head's blank line is read (a tunnel's first bytes stay); an
// accepted head has a token method, HTTP/1.0 or 1.1, a path from '/', field names that are
// tokens and values without CR, LF, NUL or surrounding whitespace; the path, encoded a segment at
// a time, decodes to itself.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/invariants.h"
#include "reconciler/api/stream_io.h"
#include "reconciler/model/text.h"
#include "tests/support/memory_stream.h"

namespace {

using flotilla::fuzz::Check;

bool IsTokenChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), IsTokenChar);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t chunk = input.empty() ? 1 : 1 + static_cast<uint8_t>(input.front()) % 16;
  if (!input.empty()) {
    input.remove_prefix(1);
  }
  flotilla::testing::MemoryStream stream{std::string(input), chunk};
  const std::optional<httplib::Request> request = flotilla::api::ReadRequest(stream);
  const size_t end = input.find("\r\n\r\n");
  if (end == std::string_view::npos || end + 4 > flotilla::api::kMaxRequestHead) {
    Check(!request.has_value(), "a request without a whole head");
    return 0;
  }
  Check(stream.rest() == input.substr(end + 4), "read more or less than the head");
  if (!request) {
    return 0;
  }
  Check(IsToken(request->method), "a method that is not a token");
  Check(request->version == "HTTP/1.1" || request->version == "HTTP/1.0", "an unknown version");
  Check(request->path.starts_with('/'), "a path not from '/'");
  std::string encoded;
  std::string_view path = request->path;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    encoded += flotilla::EncodePathSegment(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    encoded += '/';
    path.remove_prefix(slash + 1);
  }
  Check(flotilla::api::PercentDecode(encoded) == request->path, "the path does not round-trip");
  for (const auto& [name, value] : request->headers) {
    Check(IsToken(name), "a field name that is not a token");
    Check(std::none_of(value.begin(), value.end(),
                       [](char c) { return c == '\r' || c == '\n' || c == '\0'; }),
          "a field value with CR, LF or NUL");
    Check(value.empty() || (value.front() != ' ' && value.front() != '\t' && value.back() != ' ' &&
                            value.back() != '\t'),
          "a field value with surrounding whitespace");
  }
  return 0;
}
