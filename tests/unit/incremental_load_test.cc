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
