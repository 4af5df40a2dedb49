#include "reconciler/model/quantity.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace flotilla {
namespace {

constexpr uint64_t kKi = 1024;
constexpr uint64_t kMi = kKi * 1024;
constexpr uint64_t kGi = kMi * 1024;

uint64_t Bytes(const std::string& text) {
  Result<Quantity> q = Quantity::Parse(text);
  EXPECT_TRUE(q.ok()) << text << ": " << q.status().ToString();
  return q.ok() ? q->bytes() : 0;
}

TEST(QuantityTest, ParsesBinarySuffixes) {
  EXPECT_EQ(Bytes("8Gi"), 8 * kGi);
  EXPECT_EQ(Bytes("512Mi"), 512 * kMi);
  EXPECT_EQ(Bytes("1Ki"), kKi);
  EXPECT_EQ(Bytes("2Ti"), 2 * kGi * 1024);
  EXPECT_EQ(Bytes("1Ei"), kGi * kGi);
}

TEST(QuantityTest, ParsesDecimalSuffixes) {
  EXPECT_EQ(Bytes("80G"), 80'000'000'000u);
  EXPECT_EQ(Bytes("1k"), 1000u);
  EXPECT_EQ(Bytes("1K"), 1000u);
  EXPECT_EQ(Bytes("3M"), 3'000'000u);
  EXPECT_EQ(Bytes("2T"), 2'000'000'000'000u);
}

TEST(QuantityTest, ParsesPlainBytesAndZero) {
  EXPECT_EQ(Bytes("1048576"), kMi);
  EXPECT_EQ(Bytes("0"), 0u);
  EXPECT_EQ(Bytes("0Gi"), 0u);
  EXPECT_EQ(Bytes("18446744073709551615"), UINT64_MAX);
}

TEST(QuantityTest, ParsesWholeFractions) {
  EXPECT_EQ(Bytes("1.5Gi"), kGi + kGi / 2);
  EXPECT_EQ(Bytes("0.5Ki"), 512u);
  EXPECT_EQ(Bytes("2.5k"), 2500u);
  EXPECT_EQ(Bytes("1.000000001G"), 1'000'000'001u);
}

TEST(QuantityTest, RejectsNegativesSignsAndJunk) {
  for (const char* bad : {"", "-1", "-8Gi", "+8Gi", "8GB", "8gi", "Gi", "8 Gi", " 8Gi", "8Gi ",
                          "1e9", "0x10", "8.Gi", ".5Gi", "8..5Gi", "abc", "8Gii", "NaN"}) {
    Result<Quantity> q = Quantity::Parse(bad);
    EXPECT_FALSE(q.ok()) << "accepted \"" << bad << "\"";
    if (!q.ok()) {
      EXPECT_TRUE(q.status().IsInvalidArgument());
      EXPECT_NE(q.status().message().find("invalid quantity"), std::string::npos);
    }
  }
}

TEST(QuantityTest, RejectsFractionsOfABye) {
  Result<Quantity> q = Quantity::Parse("0.1Ki");
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("whole number of bytes"), std::string::npos);
  EXPECT_FALSE(Quantity::Parse("1.5").ok());
  EXPECT_FALSE(Quantity::Parse("0.0000000001Gi").ok());  // too many fraction digits
}

TEST(QuantityTest, RejectsOverflow) {
  EXPECT_FALSE(Quantity::Parse("18446744073709551616").ok());
  EXPECT_FALSE(Quantity::Parse("16Ei").ok());
  EXPECT_FALSE(Quantity::Parse("99999999999999999999999Gi").ok());
  EXPECT_FALSE(Quantity::Parse("18446744073709551615.5Ei").ok());
  Result<Quantity> q = Quantity::Parse("20E");
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("too large"), std::string::npos);
  EXPECT_TRUE(Quantity::Parse("15Ei").ok());
}

TEST(QuantityTest, ToStringPicksShortestExactForm) {
  EXPECT_EQ(Quantity::FromBytes(8 * kGi).ToString(), "8Gi");
  EXPECT_EQ(Quantity::FromBytes(512 * kMi).ToString(), "512Mi");
  EXPECT_EQ(Quantity::FromBytes(80'000'000'000).ToString(), "80G");
  EXPECT_EQ(Quantity::FromBytes(1'000'001).ToString(), "1000001");
  EXPECT_EQ(Quantity::FromBytes(1500).ToString(), "1500");
  EXPECT_EQ(Quantity::FromBytes(2000).ToString(), "2k");
  EXPECT_EQ(Quantity::FromBytes(0).ToString(), "0");
  EXPECT_EQ(Quantity::FromBytes(kGi + kGi / 2).ToString(), "1536Mi");
}

TEST(QuantityTest, RoundTripsThroughToString) {
  for (uint64_t bytes : {uint64_t{1}, uint64_t{1023}, 3 * kKi, 7 * kGi, uint64_t{5'000'000},
                         uint64_t{123456789}, UINT64_MAX}) {
    Result<Quantity> back = Quantity::Parse(Quantity::FromBytes(bytes).ToString());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->bytes(), bytes);
  }
}

TEST(QuantityTest, ComparesByBytes) {
  EXPECT_EQ(*Quantity::Parse("8Gi"), *Quantity::Parse("8192Mi"));
  EXPECT_LT(*Quantity::Parse("8G"), *Quantity::Parse("8Gi"));
  EXPECT_EQ(Quantity::FromMiB(8192).mib(), 8192u);
}

}  // namespace
}  // namespace flotilla
