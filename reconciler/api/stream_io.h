#pragma once

// For the handlers the front door hands a connection to whole (the live stream, live.h;
// tunnels, tunnel.h), which read their request and write their answer themselves, without
// cpp-httplib: its answers cannot outlive the handler on a server that does not accept itself.
//
// Thread-safety: per stream.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace httplib {
class Stream;
struct Request;
}  // namespace httplib

namespace flotilla::api {

// The most a request's head (request line and header fields, with the blank line) may hold.
inline constexpr size_t kMaxRequestHead = size_t{64} << 10;

// The request the front door read whole: method, version, path (percent-decoded), query
// parameters (decoded) and header fields (values without surrounding whitespace). Reads up to
// the blank line that ends the head and no further. Nullopt when the head does not read as an
// HTTP/1.x request in origin form (RFC 9112), or is longer than kMaxRequestHead.
std::optional<httplib::Request> ReadRequest(httplib::Stream& stream);

// What a 400 says when ReadRequest refused the head.
inline constexpr std::string_view kUnreadableHead =
    "the request head is not HTTP/1.1 (a request line with an origin-form target, then header "
    "fields, each on a line of its own, without whitespace before the colon)";

// Whether the client closed its side (TCP FIN, also after TLS close_notify) or the connection
// broke.
bool PeerGone(const httplib::Stream& stream);

// Writes all of `text`; false when the connection failed first.
bool WriteAll(httplib::Stream& stream, std::string_view text);

// The status line ("200 OK") and header fields of an answer that ends with the connection,
// with the security headers; without the blank line that ends them.
std::string Head(std::string_view status, std::string_view content_type,
                 const std::vector<std::pair<std::string, std::string>>& extra);

// "%41b" -> "Ab"; '+' stays '+'. Nullopt for a malformed escape.
std::optional<std::string> PercentDecode(std::string_view text);

}  // namespace flotilla::api
