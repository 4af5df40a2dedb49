#pragma once

// Compression of the API's answers. The server decides it for every answer in one place
// (server.cc Send) instead of cpp-httplib, so that a snapshot view is compressed once per
// snapshot (view_cache.h CachedView::Gzipped) rather than once per request: the VM list of a
// 100,000-VM fleet is 50 MB, and compressing it took longer than writing it.

#include <string>
#include <string_view>

namespace flotilla::api {

// Whether an Accept-Encoding header value takes gzip: "gzip" or "x-gzip" listed (or "*"), and
// not with q=0 (RFC 9110 12.5.3).
bool AcceptsGzip(std::string_view accept_encoding);

// Whether answers of this Content-Type are worth compressing (JSON, JavaScript, SVG, text other
// than the event stream); parameters such as "; charset=utf-8" are ignored.
bool Compressible(std::string_view content_type);

// `body` as a gzip member (RFC 1952), zlib's default level. Throws std::runtime_error when zlib
// fails (out of memory).
std::string Gzip(std::string_view body);

}  // namespace flotilla::api
