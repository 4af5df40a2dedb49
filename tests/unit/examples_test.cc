// examples/fleet must stay valid; every file in examples/invalid must give exactly the messages
// kept beside it in <name>.expected.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/unit/manifest_fixture.h"

namespace flotilla::manifest {
namespace {

namespace fs = std::filesystem;

const fs::path kExamples = fs::path(FLOTILLA_SOURCE_DIR) / "examples";

std::vector<std::string> ReadLines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      lines.push_back(line);
    }
  }
  return lines;
}

TEST(ExamplesTest, FleetIsValidWithoutWarnings) {
  ManifestLoader loader(testing::Validator());
  Result<LoadResult> r = loader.LoadPath(kExamples / "fleet", "examples/fleet");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->diagnostics.empty()) << testing::AllText(*r);
  EXPECT_EQ(r->desired.pools.size(), 3u);
  EXPECT_EQ(r->desired.HostCount(), 9u);
  EXPECT_EQ(r->desired.sets.size(), 4u);
  EXPECT_EQ(r->desired.DesiredVMCount(), 11u);
}

TEST(ExamplesTest, FleetFilesPointEditorsAtTheSchemas) {
  for (const auto& entry : fs::recursive_directory_iterator(kExamples / "fleet")) {
    if (entry.path().extension() != ".yaml") {
      continue;
    }
    std::ifstream in(entry.path());
    std::string first;
    std::getline(in, first);
    ASSERT_EQ(first.rfind("# yaml-language-server: $schema=", 0), 0u) << entry.path();
    const fs::path schema = entry.path().parent_path() / first.substr(first.find('=') + 1);
    EXPECT_TRUE(fs::exists(schema)) << entry.path() << " points at " << schema;
  }
}

class InvalidExampleTest : public ::testing::TestWithParam<std::string> {};

TEST_P(InvalidExampleTest, GivesTheExpectedMessages) {
  const fs::path yaml = kExamples / "invalid" / (GetParam() + ".yaml");
  const fs::path expected = kExamples / "invalid" / (GetParam() + ".expected");
  ASSERT_TRUE(fs::exists(expected)) << "missing " << expected;
  ManifestLoader loader(testing::Validator());
  Result<LoadResult> r = loader.LoadPath(yaml, GetParam() + ".yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ok()) << "an invalid example validated clean";
  EXPECT_EQ(testing::Lines(*r), ReadLines(expected));
}

std::vector<std::string> InvalidExamples() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(kExamples / "invalid")) {
    if (entry.path().extension() == ".yaml") {
      names.push_back(entry.path().stem().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Examples, InvalidExampleTest, ::testing::ValuesIn(InvalidExamples()),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(ExamplesTest, EveryExpectationHasItsExample) {
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(kExamples / "invalid")) {
    if (entry.path().extension() == ".expected") {
      ++count;
      fs::path yaml = entry.path();
      yaml.replace_extension(".yaml");
      EXPECT_TRUE(fs::exists(yaml)) << entry.path() << " has no example";
    }
  }
  EXPECT_GE(count, 10u);
}

}  // namespace
}  // namespace flotilla::manifest
