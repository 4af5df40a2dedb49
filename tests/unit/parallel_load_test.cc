// Files are parsed and validated on several threads (LoadOptions::threads); the result must be
// exactly that of one thread, whatever the timing: the same Desired, the same diagnostics, the
// document limit reported at the same place.

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "reconciler/manifest/worker_pool.h"
#include "reconciler/source/manifest_source.h"
#include "tests/support/memory_git.h"
#include "tests/support/random_fleet.h"
#include "tests/unit/manifest_fixture.h"

namespace flotilla::source {
namespace {

namespace fs = std::filesystem;
using manifest::LoadOptions;
using manifest::LoadResult;
using manifest::ManifestLoader;

LoadOptions Threads(size_t threads, size_t max_documents = 10'000) {
  return {.max_documents = max_documents, .threads = threads};
}

std::string LoadFromGit(const std::map<std::string, std::string>& files, LoadOptions options) {
  testing::MemoryGit git(files);
  const ManifestLoader loader(manifest::testing::Validator(), options);
  ParseCache cache;
  Result<LoadResult> r = LoadRevision(git, "main", "fleet", loader, cache);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? testing::Describe(*r) : "";
}

std::string LoadFromMemory(const std::map<std::string, std::string>& files, LoadOptions options) {
  std::vector<manifest::ManifestFile> list;
  for (const auto& [path, content] : files) {
    list.push_back({path, content});
  }
  const ManifestLoader loader(manifest::testing::Validator(), options);
  return testing::Describe(loader.LoadFiles(list));
}

// The reference: every file parsed in order on one budget, as loading was before threads.
manifest::LoadResult LoadOneByOne(const std::map<std::string, std::string>& files,
                                  LoadOptions options) {
  const ManifestLoader loader(manifest::testing::Validator(), options);
  manifest::DocumentBudget budget{.limit = options.max_documents};
  std::vector<manifest::ParsedFile> parsed;
  for (const auto& [path, content] : files) {
    parsed.push_back(loader.ParseFile({path, content}, budget));
  }
  manifest::LoadResult result = loader.Assemble(std::move(parsed));
  result.files = files.size();
  return result;
}

// The same as LoadRevision names files: "<path>@<short sha>".
std::string OneByOneFromGit(const std::map<std::string, std::string>& files, LoadOptions options) {
  manifest::LoadResult result = LoadOneByOne(files, options);
  std::vector<std::string> paths;
  for (const auto& [path, content] : files) {
    paths.push_back(path);
  }
  manifest::AppendToFileNames(result, "@89abcde", paths);
  return testing::Describe(result);
}

std::string LoadFromDisk(const fs::path& root, LoadOptions options) {
  const ManifestLoader loader(manifest::testing::Validator(), options);
  Result<LoadResult> r = loader.LoadPath(root, "examples");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? testing::Describe(*r) : "";
}

TEST(ParallelLoadTest, ExamplesLoadTheSameOnAnyNumberOfThreads) {
  const fs::path examples = fs::path(FLOTILLA_SOURCE_DIR) / "examples";
  for (const fs::path& root : {examples / "fleet", examples / "invalid", examples}) {
    const std::string one = LoadFromDisk(root, Threads(1));
    ASSERT_NE(one.find("pool"), std::string::npos) << root;
    for (size_t threads : {2, 3, 8}) {
      EXPECT_EQ(LoadFromDisk(root, Threads(threads)), one) << root << ", threads " << threads;
    }
  }
}

TEST(ParallelLoadTest, GeneratedFleetsLoadTheSameOnAnyNumberOfThreads) {
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    testing::RandomFleet fleet(seed);
    const std::map<std::string, std::string> files = fleet.Files(40 + fleet.Pick(80));
    const std::string git = OneByOneFromGit(files, Threads(1));
    const std::string memory = testing::Describe(LoadOneByOne(files, Threads(1)));
    ASSERT_NE(git.find("error"), std::string::npos) << "seed " << seed << ": no broken file";
    for (size_t threads : {1, 2, 4, 7}) {
      EXPECT_EQ(LoadFromGit(files, Threads(threads)), git) << "seed " << seed;
      EXPECT_EQ(LoadFromMemory(files, Threads(threads)), memory) << "seed " << seed;
    }
  }
}

// The document limit is counted in file order: files parsed early on another thread must not
// move the place where it is reported.
TEST(ParallelLoadTest, DocumentLimitIsReportedInTheSamePlace) {
  for (uint32_t seed = 20; seed <= 25; ++seed) {
    testing::RandomFleet fleet(seed);
    const std::map<std::string, std::string> files = fleet.Files(60);
    for (size_t limit : {1, 17, 40}) {
      const std::string git = OneByOneFromGit(files, Threads(1, limit));
      const std::string memory = testing::Describe(LoadOneByOne(files, Threads(1, limit)));
      ASSERT_NE(git.find("too many documents"), std::string::npos) << seed << "/" << limit;
      for (size_t threads : {1, 2, 5}) {
        EXPECT_EQ(LoadFromGit(files, Threads(threads, limit)), git) << seed << "/" << limit;
        EXPECT_EQ(LoadFromMemory(files, Threads(threads, limit)), memory) << seed << "/" << limit;
      }
    }
  }
}

TEST(ParallelLoadTest, ParallelForCallsEveryIndexOnceAndRethrows) {
  for (size_t threads : {0, 1, 2, 9}) {
    std::vector<int> calls(1000, 0);
    manifest::ParallelFor(calls.size(), threads, [&](size_t i) { ++calls[i]; });
    EXPECT_EQ(std::count(calls.begin(), calls.end(), 1), 1000) << threads;
  }
  EXPECT_THROW(manifest::ParallelFor(100, 3,
                                     [](size_t i) {
                                       if (i == 42) {
                                         throw std::runtime_error("boom");
                                       }
                                     }),
               std::runtime_error);
  EXPECT_GE(manifest::DefaultThreads(), 1u);
}

}  // namespace
}  // namespace flotilla::source
