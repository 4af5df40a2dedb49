// The API's own gzip (reconciler/api/gzip.h): what Accept-Encoding takes gzip, which answers are
// compressed, and that a compressed body reads back to the same bytes.

#include "reconciler/api/gzip.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

#include "reconciler/api/view_cache.h"
#include "tests/support/gunzip.h"

namespace flotilla::api {
namespace {

using testing::Gunzip;

TEST(ApiGzipTest, AcceptEncodingTakesGzipUnlessItsWeightIsZero) {
  for (const char* yes : {"gzip", "GZIP", "gzip, deflate, br", "br;q=1.0, gzip;q=0.5", "x-gzip",
                          "*", "deflate, *;q=0.1", " gzip ; q=1"}) {
    EXPECT_TRUE(AcceptsGzip(yes)) << yes;
  }
  for (const char* no : {"", "identity", "br", "deflate, br", "gzip;q=0", "gzip; q=0.000",
                         "*, gzip;q=0", "*;q=0", "gzipx", "x-gzip;q=0"}) {
    EXPECT_FALSE(AcceptsGzip(no)) << no;
  }
}

TEST(ApiGzipTest, TextJsonScriptsAndSvgAreCompressedNotStreamsOrImages) {
  for (const char* yes :
       {"application/json", "application/json; charset=utf-8", "text/html",
        "text/css; charset=utf-8", "text/plain", "application/javascript", "image/svg+xml"}) {
    EXPECT_TRUE(Compressible(yes)) << yes;
  }
  for (const char* no :
       {"", "text/event-stream", "image/png", "application/octet-stream", "font/woff2"}) {
    EXPECT_FALSE(Compressible(no)) << no;
  }
}

TEST(ApiGzipTest, AGzipBodyReadsBackToTheSameBytes) {
  std::mt19937 random(7);  // the same bytes every run
  std::string noisy(3 << 20, '\0');
  for (char& c : noisy) {
    c = static_cast<char>(random() % 7 == 0 ? random() : 'a' + random() % 4);
  }
  // Random bytes do not compress: the answer outgrows the body (the output buffer grows).
  std::string random_bytes(1 << 20, '\0');
  for (char& c : random_bytes) {
    c = static_cast<char>(random());
  }
  for (const std::string& body :
       {std::string(), std::string("{}\n"), std::string(1 << 20, 'x'), noisy, random_bytes}) {
    const std::string compressed = Gzip(body);
    ASSERT_GE(compressed.size(), 18U) << "a gzip member has a header and a trailer";
    EXPECT_EQ(static_cast<unsigned char>(compressed[0]), 0x1fU);
    EXPECT_EQ(static_cast<unsigned char>(compressed[1]), 0x8bU);
    EXPECT_EQ(Gunzip(compressed), body);
  }
}

TEST(ApiGzipTest, AKeptViewIsCompressedOnce) {
  CachedView view;
  view.reply.body = std::string(1 << 16, '{');
  const std::string& first = view.Gzipped();
  const std::string& second = view.Gzipped();
  EXPECT_EQ(&first, &second);
  EXPECT_EQ(Gunzip(first), view.reply.body);
}

}  // namespace
}  // namespace flotilla::api
