#pragma once

// What a client does with a gzip answer, for tests of the API's compression.

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace flotilla::testing {

// `compressed` inflated; a failure of the test unless it is exactly one whole gzip member.
inline std::string Gunzip(const std::string& compressed) {
  z_stream stream{};
  EXPECT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);
  std::string out;
  std::string buffer(1 << 16, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer.data());
    stream.avail_out = static_cast<uInt>(buffer.size());
    rc = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer.data(), buffer.size() - stream.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END) << "not one whole gzip member";
  EXPECT_EQ(stream.avail_in, 0U) << "bytes after the gzip member";
  inflateEnd(&stream);
  return out;
}

}  // namespace flotilla::testing
