// ReadRequest (reconciler/api/stream_io.h): how the live stream's and the tunnels' requests are
// read. What follows the head stays unread; heads two readers could read differently are
// refused (RFC 9112 3, 5.1, 5.2).

#include <gtest/gtest.h>
#include <httplib.h>

#include <string>

#include "reconciler/api/stream_io.h"
#include "tests/support/memory_stream.h"

namespace flotilla::api {
namespace {

using flotilla::testing::MemoryStream;

std::optional<httplib::Request> Read(const std::string& text) {
  MemoryStream stream(text);
  return ReadRequest(stream);
}

TEST(StreamIoTest, ReadsTheHeadAndLeavesWhatFollows) {
  MemoryStream stream(
      "GET /api/v1/vms/a%20b/port-forward?port=22&host=mac%2Da HTTP/1.1\r\n"
      "Host: flotilla\r\nUpgrade:  flotilla-tunnel \t\r\nAuthorization: Bearer t\r\n\r\n"
      "SSH-2.0-first bytes",
      3);
  std::optional<httplib::Request> request = ReadRequest(stream);
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(request->method, "GET");
  EXPECT_EQ(request->version, "HTTP/1.1");
  EXPECT_EQ(request->path, "/api/v1/vms/a b/port-forward");
  EXPECT_EQ(request->get_param_value("port"), "22");
  EXPECT_EQ(request->get_param_value("host"), "mac-a");
  EXPECT_EQ(request->get_header_value("Upgrade"), "flotilla-tunnel");
  EXPECT_EQ(request->get_header_value("authorization"), "Bearer t");
  EXPECT_EQ(stream.rest(), "SSH-2.0-first bytes");
}

TEST(StreamIoTest, ReadsARequestWithoutFieldsOrQuery) {
  std::optional<httplib::Request> request = Read("GET /api/v1/live HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(request->path, "/api/v1/live");
  EXPECT_TRUE(request->params.empty());
  EXPECT_TRUE(request->headers.empty());
}

TEST(StreamIoTest, RefusesAMalformedRequestLine) {
  for (const char* line : {"GET /a", "GET  /a HTTP/1.1", "GET /a b HTTP/1.1", "GET a HTTP/1.1",
                           "GET http://h/a HTTP/1.1", "GET /a HTTP/2", "G(T /a HTTP/1.1",
                           " GET /a HTTP/1.1", "GET /a HTTP/1.1 ", "GET /%zz HTTP/1.1",
                           "GET /a?x=%4 HTTP/1.1", "GET /a\x7f HTTP/1.1", ""}) {
    EXPECT_FALSE(Read(std::string(line) + "\r\n\r\n").has_value()) << line;
  }
}

TEST(StreamIoTest, RefusesFieldsTwoReadersCouldReadDifferently) {
  for (const char* field : {
           "Upgrade : x",      // whitespace between name and colon (RFC 9112 5.1)
           " folded",          // obsolete line folding (RFC 9112 5.2)
           "\tUpgrade: x",     // likewise
           "no colon",         // not a field
           ": empty name",     // likewise
           "Upgrade: a\nX: b"  // a bare LF inside a line
       }) {
    EXPECT_FALSE(
        Read("GET /a HTTP/1.1\r\nHost: h\r\n" + std::string(field) + "\r\n\r\n").has_value())
        << field;
  }
  EXPECT_FALSE(Read("GET /a HTTP/1.1\r\nX: a\rb\r\n\r\n").has_value());
  EXPECT_FALSE(Read(std::string("GET /a HTTP/1.1\r\nX: a\0b\r\n\r\n", 27)).has_value());
  EXPECT_FALSE(Read("GET /a HTTP/1.1\nHost: h\n\n").has_value());
}

TEST(StreamIoTest, RefusesAnUnfinishedOrOverlongHead) {
  EXPECT_FALSE(Read("GET /a HTTP/1.1\r\nHost: h\r\n").has_value());
  std::string longer = "GET /a HTTP/1.1\r\nX: " + std::string(kMaxRequestHead, 'x') + "\r\n\r\n";
  MemoryStream stream(longer);
  EXPECT_FALSE(ReadRequest(stream).has_value());
  // It stopped reading at the limit.
  EXPECT_EQ(stream.rest().size(), longer.size() - kMaxRequestHead);
}

}  // namespace
}  // namespace flotilla::api
