#include "reconciler/model/template_hash.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <vector>

namespace flotilla {
namespace {

VMTemplate Sample() {
  VMTemplate t;
  t.image = "catalog://macos-sequoia-xcode/16.1";
  t.os = GuestOs::kMacos;
  t.arch = Arch::kArm64;
  t.cpu = 4;
  t.memory = *Quantity::Parse("8Gi");
  t.disk = *Quantity::Parse("80Gi");
  t.startup_script = "echo ready\n";
  return t;
}

TEST(TemplateHashTest, IsAFixedValueAcrossRunsAndPlatforms) {
  // Frozen: if this changes, every VM in every fleet would be marked outdated and replaced.
  // The value was checked against an independent implementation of the encoding in
  // template_hash.h (Python hashlib over the same length-prefixed fields).
  EXPECT_EQ(TemplateHash(Sample()),
            "v1-3c8fdfb3eff43632b274c18e86812de51b454b8d2f37bdc9d22ba461cbe70d97");
}

TEST(TemplateHashTest, HasVersionPrefixAndHexDigest) {
  const std::string h = TemplateHash(Sample());
  ASSERT_EQ(h.size(), 3u + 64u);
  EXPECT_EQ(h.substr(0, 3), "v1-");
  for (char c : h.substr(3)) {
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << h;
  }
}

TEST(TemplateHashTest, ChangesWithEveryFieldThatNeedsANewVM) {
  const std::vector<std::function<void(VMTemplate&)>> changes = {
      [](VMTemplate& t) { t.image = "catalog://macos-sequoia-xcode/16.2"; },
      [](VMTemplate& t) { t.os = GuestOs::kLinux; },
      [](VMTemplate& t) { t.arch = Arch::kX86_64; },
      [](VMTemplate& t) { t.cpu = 6; },
      [](VMTemplate& t) { t.memory = *Quantity::Parse("16Gi"); },
      [](VMTemplate& t) { t.disk = *Quantity::Parse("100Gi"); },
      [](VMTemplate& t) { t.disk.reset(); },
      [](VMTemplate& t) { t.startup_script = "echo ready"; },
      [](VMTemplate& t) { t.startup_script.clear(); },
  };
  std::set<std::string> seen = {TemplateHash(Sample())};
  for (const auto& change : changes) {
    VMTemplate t = Sample();
    change(t);
    EXPECT_TRUE(seen.insert(TemplateHash(t)).second) << "collision after a change";
  }
}

TEST(TemplateHashTest, IgnoresPowerState) {
  VMTemplate stopped = Sample();
  stopped.state = PowerState::kStopped;
  EXPECT_EQ(TemplateHash(stopped), TemplateHash(Sample()));
}

TEST(TemplateHashTest, SameBytesSameHash) {
  VMTemplate a = Sample();
  VMTemplate b = Sample();
  b.memory = *Quantity::Parse("8192Mi");
  EXPECT_EQ(TemplateHash(a), TemplateHash(b));
}

TEST(TemplateHashTest, ScriptCannotImitateTheEncoding) {
  // Without length prefixes, a script that spells out the encoding's separators could make two
  // different templates encode alike; with them it cannot.
  VMTemplate a = Sample();
  a.disk.reset();
  a.startup_script = "x";
  VMTemplate b = a;
  b.startup_script = "x;startupScript=1:x";
  VMTemplate c = a;
  c.disk = Quantity::FromBytes(1);
  c.startup_script = "";
  EXPECT_NE(TemplateHash(a), TemplateHash(b));
  EXPECT_NE(TemplateHash(b), TemplateHash(c));
}

}  // namespace
}  // namespace flotilla
