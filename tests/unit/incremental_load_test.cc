// Loading revision after revision through one ParseCache re-parses only new blobs and
// re-checks only what they can affect (manifest::CheckMemo). Whatever the history, each
// revision must load exactly as it does from scratch: the same Desired, the same diagnostics.

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>

#include "reconciler/source/manifest_source.h"
#include "tests/support/memory_git.h"
#include "tests/support/random_fleet.h"
#include "tests/unit/manifest_fixture.h"

namespace flotilla::source {
namespace {

using manifest::LoadResult;
using manifest::ManifestLoader;

std::string Sha(int commit) {
  char sha[41];
  std::snprintf(sha, sizeof sha, "%040x", commit + 1);
  return sha;
}

std::string Load(const std::map<std::string, std::string>& files, const std::string& sha,
                 const ManifestLoader& loader, ParseCache& cache) {
  testing::MemoryGit git(files, sha);
  Result<LoadResult> r = LoadRevision(git, "main", "fleet", loader, cache);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? testing::Describe(*r) : "";
}

// Random commits (add, modify, delete, rename, break, mend, copy a file so that its names are
// defined twice), seeded so that a failure replays: each revision loaded through the warm
// cache against the same revision loaded cold.
TEST(IncrementalLoadTest, RandomHistoriesLoadAsFromScratch) {
  const ManifestLoader loader(manifest::testing::Validator(), {.threads = 2});
  size_t replayed_somewhere = 0;
  for (uint32_t seed = 100; seed < 112; ++seed) {
    testing::RandomFleet fleet(seed);
    std::map<std::string, std::string> files = fleet.Files(20 + fleet.Pick(60));
    ParseCache warm;
    for (int commit = 0; commit < 40; ++commit) {
      const int changes = 1 + fleet.Pick(3);
      for (int c = 0; c < changes; ++c) {
        fleet.Mutate(files);
      }
      const size_t checks_before = warm.memo().set_checks();
      const std::string incremental = Load(files, Sha(commit), loader, warm);
      ParseCache cold;
      const std::string full = Load(files, Sha(commit), loader, cold);
      ASSERT_EQ(incremental, full) << "seed " << seed << ", commit " << commit;
      if (commit > 0 && warm.memo().set_checks() - checks_before < cold.memo().set_checks()) {
        ++replayed_somewhere;
      }
    }
  }
  // The memo was used, not just filled: some revisions re-checked fewer sets than a cold load.
  EXPECT_GT(replayed_somewhere, 100u);
}

// MemoryGit that, like the libgit2 source, reads neither size nor content of the blobs the
// caller says it has.
class SkippingGit final : public GitSource {
 public:
  explicit SkippingGit(const std::map<std::string, std::string>& files) : git_(files) {}
  Result<FetchResult> Fetch() override { return git_.Fetch(); }
  Result<std::string> Resolve(std::string_view rev) override { return git_.Resolve(rev); }
  Result<std::vector<TreeFile>> ReadTree(std::string_view commit, std::string_view path,
                                         manifest::Diagnostics& diagnostics) override {
    return git_.ReadTree(commit, path, diagnostics);
  }
  Result<std::vector<TreeFile>> ReadTreeSkipping(std::string_view commit, std::string_view path,
                                                 const KnownBlob& known,
                                                 manifest::Diagnostics& diagnostics) override {
    Result<std::vector<TreeFile>> files = git_.ReadTree(commit, path, diagnostics);
    for (TreeFile& file : *files) {
      if (known(file.blob_id, file.path)) {
        file = TreeFile{.path = file.path, .blob_id = file.blob_id, .known = true};
      }
    }
    return files;
  }
  Result<std::vector<std::string>> ChangedFiles(std::string_view a, std::string_view b,
                                                std::string_view path) override {
    return git_.ChangedFiles(a, b, path);
  }
  Result<CommitInfo> Commit(std::string_view rev) override { return git_.Commit(rev); }
  Status VerifyCommit(std::string_view sha) override { return git_.VerifyCommit(sha); }

 private:
  testing::MemoryGit git_;
};

// A file the cache holds, not read from the tree again, is parsed again from the content kept
// with it when a new file ahead of it takes the document limit: it reports the limit as a cold
// load does.
TEST(IncrementalLoadTest, AKeptFileCutShortByTheLimitIsParsedFromItsKeptContent) {
  const ManifestLoader loader(manifest::testing::Validator(), {.max_documents = 2});
  const std::string pool =
      "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: p}\nspec:\n"
      "  credentialsRef: builders\n  hosts:\n    - name: h1\n      address: "
      "https://10.0.0.1:8080\n";
  const std::map<std::string, std::string> first = {{"fleet/b.yaml", pool}};
  std::map<std::string, std::string> second = first;
  second["fleet/a.yaml"] = "a: 1\n---\nb: 2\n";
  auto load = [&](const std::map<std::string, std::string>& files, ParseCache& cache) {
    SkippingGit git(files);
    Result<LoadResult> r = LoadRevision(git, "main", "fleet", loader, cache);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? testing::Describe(*r) : "";
  };
  ParseCache warm;
  load(first, warm);
  const std::string incremental = load(second, warm);
  ParseCache cold;
  const std::string full = load(second, cold);
  EXPECT_EQ(incremental, full);
  EXPECT_NE(full.find("fleet/b.yaml@89abcde:1:1: error: too many documents"), std::string::npos)
      << full;
}

// A pool's change reaches the sets that use it, though their own files did not change.
TEST(IncrementalLoadTest, APoolChangeRechecksItsSets) {
  const ManifestLoader loader(manifest::testing::Validator());
  const std::string set =
      "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: web}\nspec:\n  pool: p\n"
      "  replicas: 1\n  selector: {tags: [builder]}\n  template:\n    image: "
      "catalog://macos/15\n    os: macos\n    arch: arm64\n    cpu: 8\n    memory: 8Gi\n";
  auto pool = [](int cpu) {
    return "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: p}\nspec:\n"
           "  credentialsRef: builders\n  hosts:\n    - name: h1\n      address: "
           "https://10.0.0.1:8080\n      tags: [builder]\n      capacity: {cpu: " +
           std::to_string(cpu) + ", memory: 32Gi, disk: 100Gi}\n";
  };
  ParseCache warm;
  const std::string fits =
      Load({{"fleet/p.yaml", pool(12)}, {"fleet/web.yaml", set}}, Sha(1), loader, warm);
  EXPECT_EQ(fits.find("fits no host"), std::string::npos) << fits;
  const std::string too_small =
      Load({{"fleet/p.yaml", pool(4)}, {"fleet/web.yaml", set}}, Sha(2), loader, warm);
  EXPECT_NE(too_small.find("fits no host"), std::string::npos) << too_small;
  const size_t checks = warm.memo().set_checks();
  Load({{"fleet/p.yaml", pool(4)}, {"fleet/web.yaml", set}}, Sha(3), loader, warm);
  EXPECT_EQ(warm.memo().set_checks(), checks) << "nothing changed: nothing re-checked";
}

}  // namespace
}  // namespace flotilla::source
