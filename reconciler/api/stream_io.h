#pragma once

// For the handlers the front door hands a connection to whole (the live stream, live.h;
// tunnels, tunnel.h), which read their request and write their answer themselves, without
// cpp-httplib: its answers cannot outlive the handler on a server that does not accept itself.
//
// Thread-safety: per stream.

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

// The request the front door read whole: method, path (percent-decoded), query parameters
// (decoded) and header fields. Nullopt when it does not read as one.
std::optional<httplib::Request> ReadRequest(httplib::Stream& stream);

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
