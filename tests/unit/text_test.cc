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

}  // namespace
}  // namespace flotilla
