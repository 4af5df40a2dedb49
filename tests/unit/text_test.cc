#include "reconciler/model/text.h"

#include <gtest/gtest.h>

#include <vector>

namespace flotilla {
namespace {

TEST(TextTest, CaseFoldingIsAsciiOnly) {
  EXPECT_EQ(AsciiLower("Ios-1 ÄB"), "ios-1 Äb");
  EXPECT_EQ(AsciiUpper("macos_base"), "MACOS_BASE");
  EXPECT_TRUE(EqualsIgnoreCase("IOS-1", "ios-1"));
  EXPECT_FALSE(EqualsIgnoreCase("ios-1", "ios-10"));
  EXPECT_TRUE(ContainsIgnoreCase("error 404: Virtual Machine not found", "virtual machine"));
  EXPECT_FALSE(ContainsIgnoreCase("vm", "virtual"));
  EXPECT_EQ(TrimAscii("  a b \n"), "a b");
  EXPECT_EQ(TrimAscii(" \t "), "");
}

TEST(TextTest, Base64RoundTripsAndRefusesJunk) {
  const std::vector<std::string> texts = {
      "", "a", "ab", "abc", "FLOTILLA:secret", std::string("\0\xff", 2)};
  for (const std::string& text : texts) {
    EXPECT_EQ(DecodeBase64(EncodeBase64(text)), text);
  }
  EXPECT_EQ(EncodeBase64("FLOTILLA:secret"), "RkxPVElMTEE6c2VjcmV0");
  EXPECT_EQ(DecodeBase64("YWI"), "ab");         // padding optional
  EXPECT_EQ(DecodeBase64("-_8="), "\xfb\xff");  // URL-safe alphabet
  EXPECT_FALSE(DecodeBase64("not base64!").has_value());
  EXPECT_FALSE(DecodeBase64("A").has_value());
}

TEST(TextTest, DurationsAddTheirParts) {
  using std::chrono::milliseconds;
  EXPECT_EQ(ParseDuration("500ms"), milliseconds{500});
  EXPECT_EQ(ParseDuration("30s"), milliseconds{30'000});
  EXPECT_EQ(ParseDuration("1h30m"), milliseconds{5'400'000});
  EXPECT_FALSE(ParseDuration("").has_value());
  EXPECT_FALSE(ParseDuration("10").has_value());
  EXPECT_FALSE(ParseDuration("5d").has_value());
  EXPECT_FALSE(ParseDuration("99999999999999999999h").has_value());
}

TEST(TextTest, AddressesInMessagesShowNoUserPart) {
  EXPECT_EQ(AddressForMessages("https://user:pa55@10.0.0.1:8080"), "https://10.0.0.1:8080");
  EXPECT_EQ(AddressForMessages("ssh://tart@10.0.2.11"), "ssh://10.0.2.11");
  EXPECT_EQ(AddressForMessages("tart:pa55@10.0.2.11"), "10.0.2.11");  // no scheme: the same
  EXPECT_EQ(AddressForMessages("https://10.0.0.1:8080/api"), "https://10.0.0.1:8080/api");
  EXPECT_EQ(AddressForMessages("10.0.2.11"), "10.0.2.11");
}

}  // namespace
}  // namespace flotilla
