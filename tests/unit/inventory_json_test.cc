// Inventory snapshots read back (reconciler/render/inventory.h): `flotilla diff --inventory FILE`
// and each host's last observation in the store.

#include "reconciler/render/inventory.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace flotilla::render {
namespace {

std::string OneHostSeenAt(const std::string& seconds) {
  return R"({"apiVersion":"flotilla.dev/v1","kind":"Inventory","hosts":[{"name":"h","pool":"p",)"
         R"("online":true,"arch":"arm64","last_seen":)" +
         seconds +
         R"(,"total":{"cpu":8,"memory":"16Gi","disk":"200Gi"},)"
         R"("reserved":{"cpu":0,"memory":"0","disk":"0"},)"
         R"("available":{"cpu":8,"memory":"16Gi","disk":"200Gi"},"vms":[]}],"ledger":[]})";
}

TEST(InventoryJsonTest, ATimeReadsBackToTheSameSecond) {
  Result<Inventory> inventory = ParseInventoryJson(OneHostSeenAt("1764892800"));
  ASSERT_TRUE(inventory.ok()) << inventory.status().ToString();
  ASSERT_EQ(inventory->observed.hosts.count("h"), 1U);
  const auto& seen = inventory->observed.hosts.at("h").last_seen;
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(seen->time_since_epoch()).count(),
            1764892800);
}

// A second the clock cannot hold (fuzz: 10764892800, the year 2311, overflowed the conversion to
// nanoseconds) is refused with the field's name, never wrapped into another time.
TEST(InventoryJsonTest, ATimeBeyondTheClockIsRefused) {
  for (const char* seconds : {"10764892800", "34359738368", "18446744073709551615"}) {
    Result<Inventory> inventory = ParseInventoryJson(OneHostSeenAt(seconds));
    ASSERT_FALSE(inventory.ok()) << seconds;
    EXPECT_NE(inventory.status().message().find("last_seen"), std::string::npos)
        << inventory.status().ToString();
    EXPECT_NE(inventory.status().message().find("is not a time in Unix seconds"), std::string::npos)
        << inventory.status().ToString();
  }
}

}  // namespace
}  // namespace flotilla::render
