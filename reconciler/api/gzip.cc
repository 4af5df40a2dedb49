#include "reconciler/api/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <stdexcept>

#include "reconciler/model/text.h"

namespace flotilla::api {
namespace {

// Whether the parameters of one listed coding ("q=0.5", " q=0") give it a weight of zero.
bool ZeroWeight(std::string_view params) {
  while (!params.empty()) {
    const size_t semi = params.find(';');
    const std::string_view param = TrimAscii(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
    if (param.size() < 2 || std::tolower(static_cast<unsigned char>(param[0])) != 'q' ||
        param[1] != '=') {
      continue;
    }
    const std::string_view weight = param.substr(2);
    return !weight.empty() && weight.find_first_not_of("0.") == std::string_view::npos;
  }
  return false;
}

}  // namespace

bool AcceptsGzip(std::string_view accept_encoding) {
  bool wildcard = false;
  while (!accept_encoding.empty()) {
    const size_t comma = accept_encoding.find(',');
    const std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding =
        comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);
    const size_t semi = item.find(';');
    const std::string_view coding = TrimAscii(item.substr(0, semi));
    const bool zero = semi != std::string_view::npos && ZeroWeight(item.substr(semi + 1));
    if (EqualsIgnoreCase(coding, "gzip") || EqualsIgnoreCase(coding, "x-gzip")) {
      return !zero;  // named explicitly: that decides, whatever "*" says
    }
    if (coding == "*") {
      wildcard = !zero;
    }
  }
  return wildcard;
}

bool Compressible(std::string_view content_type) {
  const std::string_view type = TrimAscii(content_type.substr(0, content_type.find(';')));
  if (type.starts_with("text/")) {
    return type != "text/event-stream";
  }
  return type == "application/json" || type == "application/javascript" || type == "image/svg+xml";
}

std::string Gzip(std::string_view body) {
  z_stream stream{};
  // 15 bits of window, +16 for a gzip header and trailer; memory level 8 is zlib's default.
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::runtime_error("zlib: deflateInit2 failed");
  }
  // Room for a good ratio first, grown when the answer compresses worse: the API's JSON takes
  // about a fortieth of its size, and a buffer of deflateBound (a little more than the body)
  // would be zero-filled and faulted in, 50 MB for /api/v1/vms at 100,000 VMs, for 1 MB used.
  std::string out;
  out.resize(std::min<size_t>(deflateBound(&stream, static_cast<uLong>(body.size())),
                              body.size() / 16 + 4096));
  // zlib counts in uInt: feed and drain in pieces a uInt can hold.
  constexpr size_t kPiece = std::numeric_limits<uInt>::max();
  size_t in_done = 0;
  size_t out_done = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    const size_t in_piece = std::min(kPiece, body.size() - in_done);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data() + in_done));
    stream.avail_in = static_cast<uInt>(in_piece);
    if (out_done == out.size()) {
      out.resize(out.size() * 2 + 64);
    }
    const size_t out_piece = std::min(kPiece, out.size() - out_done);
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + out_done);
    stream.avail_out = static_cast<uInt>(out_piece);
    const bool last = in_done + in_piece == body.size();
    rc = deflate(&stream, last ? Z_FINISH : Z_NO_FLUSH);
    in_done += in_piece - stream.avail_in;
    out_done += out_piece - stream.avail_out;
  }
  deflateEnd(&stream);
  if (rc != Z_STREAM_END) {
    throw std::runtime_error("zlib: deflate failed");
  }
  out.resize(out_done);
  return out;
}

}  // namespace flotilla::api
