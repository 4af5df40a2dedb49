// Reading manifests from disk: the directory walk and its guards.

#include "reconciler/manifest/loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "tests/unit/manifest_fixture.h"

namespace flotilla::manifest {
namespace {

namespace fs = std::filesystem;
using testing::AllText;
using testing::kPool;
using testing::kSet;
using testing::Says;

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("flotilla-loader-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "fleet");
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const fs::path& relative, const std::string& content) {
    fs::create_directories((root_ / relative).parent_path());
    std::ofstream(root_ / relative, std::ios::binary) << content;
  }

  LoadResult Load(const fs::path& relative = "fleet", LoadOptions options = {}) {
    ManifestLoader loader(testing::Validator(), options);
    Result<LoadResult> r = loader.LoadPath(root_ / relative, relative.generic_string());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : LoadResult{};
  }

  fs::path root_;
};

TEST_F(LoaderTest, ReadsYamlAndYmlRecursivelyAndIgnoresOtherFiles) {
  Write("fleet/pools/mac.yaml", std::string(kPool));
  Write("fleet/sets/deep/ios.yml", std::string(kSet));
  Write("fleet/README.md", "not: yaml: at all: [");
  Write("fleet/notes.txt", "kind: Nope");
  LoadResult r = Load();
  EXPECT_TRUE(r.ok()) << AllText(r);
  EXPECT_EQ(r.files, 2u);
  EXPECT_EQ(r.documents, 2u);
  EXPECT_EQ(r.desired.pools.size(), 1u);
  EXPECT_EQ(r.desired.sets.size(), 1u);
}

// spec.access of a pool (the ports tunnels may reach) and of a set's template (the ssh user):
// defaults, given values, and a port out of range located.
TEST_F(LoaderTest, AccessSettingsOfPoolsAndSets) {
  Write("fleet/pools/mac.yaml", std::string(kPool));
  Write("fleet/sets/ios.yaml", std::string(kSet));
  LoadResult defaults = Load();
  ASSERT_TRUE(defaults.ok()) << AllText(defaults);
  EXPECT_EQ(defaults.desired.pools[0].allowed_ports, (std::vector<uint16_t>{22, 5900}));
  EXPECT_EQ(defaults.desired.sets[0].ssh_user, "");

  Write("fleet/pools/mac.yaml",
        testing::Replace(kPool, "  credentialsRef: mac-creds\n",
                         "  credentialsRef: mac-creds\n  access: {allowedPorts: [8080, 22]}\n"));
  Write("fleet/sets/ios.yaml", testing::Replace(kSet, "    memory: 8Gi\n",
                                                "    memory: 8Gi\n    access: {sshUser: admin}\n"));
  LoadResult given = Load();
  ASSERT_TRUE(given.ok()) << AllText(given);
  EXPECT_EQ(given.desired.pools[0].allowed_ports, (std::vector<uint16_t>{22, 8080}));
  EXPECT_TRUE(given.desired.pools[0].settings.find("access") ==
              given.desired.pools[0].settings.end());
  EXPECT_EQ(given.desired.sets[0].ssh_user, "admin");

  Write("fleet/pools/mac.yaml",
        testing::Replace(kPool, "  credentialsRef: mac-creds\n",
                         "  credentialsRef: mac-creds\n  access: {allowedPorts: [70000]}\n"));
  LoadResult bad = Load();
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(Says(bad, "mac.yaml:7:27: error: allowedPorts[0] 70000 is above the maximum 65535"))
      << AllText(bad);
}

TEST_F(LoaderTest, SkipsHiddenFilesAndFolders) {
  Write("fleet/mac.yaml", std::string(kPool));
  Write("fleet/.github/workflows/ci.yaml", "on: push\njobs: {}\n");
  Write("fleet/.hidden.yaml", "kind: Nope\n");
  LoadResult r = Load();
  EXPECT_TRUE(r.ok()) << AllText(r);
  EXPECT_EQ(r.files, 1u);
}

TEST_F(LoaderTest, PathsInMessagesStartWithWhatTheUserTyped) {
  Write("fleet/sets/ios.yaml", testing::Replace(kSet, "cpu: 4", "cpu: 0"));
  LoadResult r = Load();
  EXPECT_TRUE(Says(r,
                   "fleet/sets/ios.yaml:12:10: error: cpu 0 is below the minimum 1 "
                   "(/spec/template/cpu)"))
      << AllText(r);
}

TEST_F(LoaderTest, ALoneFileCanBeValidated) {
  Write("fleet/all.yaml", testing::Fleet(kPool, kSet));
  LoadResult r = Load("fleet/all.yaml");
  EXPECT_TRUE(r.ok()) << AllText(r);
  EXPECT_EQ(r.desired.DesiredVMCount(), 2u);
}

TEST_F(LoaderTest, MissingPathIsNotFound) {
  ManifestLoader loader(testing::Validator());
  Result<LoadResult> r = loader.LoadPath(root_ / "nope", "nope");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_EQ(r.status().message(), "no such file or directory: nope");
}

TEST_F(LoaderTest, RefusesFilesOverOneMebibyte) {
  Write("fleet/mac.yaml", std::string(kPool));
  Write("fleet/huge.yaml", "# " + std::string(1 << 20, 'x') + "\n");
  LoadResult r = Load();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(Says(r,
                   "fleet/huge.yaml: error: file is 1048579 bytes; manifest files may be at "
                   "most 1048576 bytes"))
      << AllText(r);
  EXPECT_EQ(r.desired.pools.size(), 1u);  // the rest still loads
}

TEST_F(LoaderTest, FileOfExactlyTheLimitIsRead) {
  std::string content = std::string(kPool);
  content += "#" + std::string((1 << 20) - content.size() - 2, 'x') + "\n";
  ASSERT_EQ(content.size(), 1u << 20);
  Write("fleet/mac.yaml", content);
  EXPECT_TRUE(Load().ok());
}

TEST_F(LoaderTest, RefusesMoreThanTenThousandDocuments) {
  std::string docs;
  for (int i = 0; i < 10'001; ++i) {
    docs += "---\n{}\n";
  }
  Write("fleet/many.yaml", docs);
  LoadResult r = Load();
  EXPECT_TRUE(Says(r, "too many documents: at most 10000 are read from one repository"));
}

TEST_F(LoaderTest, RejectedAndEmptyDocumentsCountTowardsTheLimit) {
  std::string docs;
  for (int i = 0; i < 6; ++i) {
    docs += "---\na: &x 1\n";  // each rejected for its anchor
  }
  Write("fleet/anchors.yaml", docs);
  LoadOptions options;
  options.max_documents = 5;
  LoadResult r = Load("fleet", options);
  EXPECT_TRUE(Says(r, "too many documents: at most 5")) << AllText(r);
}

TEST_F(LoaderTest, DocumentLimitSpansFiles) {
  Write("fleet/a.yaml", std::string(kPool));
  Write("fleet/b.yaml", std::string(kSet));
  LoadOptions options;
  options.max_documents = 1;
  LoadResult r = Load("fleet", options);
  EXPECT_TRUE(Says(r, "fleet/b.yaml:1:1: error: too many documents: at most 1")) << AllText(r);
}

TEST_F(LoaderTest, RefusesSymlinksThatLeaveTheDirectory) {
  Write("outside/secret.yaml", std::string(kPool));
  Write("fleet/set.yaml", std::string(kSet));
  fs::create_symlink(root_ / "outside/secret.yaml", root_ / "fleet/pool.yaml");
  fs::create_directory_symlink(root_ / "outside", root_ / "fleet/linked");
  LoadResult r = Load();
  EXPECT_TRUE(Says(r, "fleet/pool.yaml: error: symlink points outside the manifest directory"))
      << AllText(r);
  EXPECT_TRUE(Says(r, "fleet/linked: error: symlink points outside the manifest directory"));
  EXPECT_TRUE(r.desired.pools.empty());
}

TEST_F(LoaderTest, FollowsFileSymlinksInsideButNotDirectories) {
  Write("fleet/real/pool.yaml", std::string(kPool));
  Write("fleet/set.yaml", std::string(kSet));
  fs::create_directory_symlink(root_ / "fleet/real", root_ / "fleet/alias");
  LoadResult r = Load();
  EXPECT_TRUE(r.ok()) << AllText(r);
  EXPECT_TRUE(Says(r, "fleet/alias: warning: symlinked directory not followed"));
  EXPECT_EQ(r.desired.pools.size(), 1u);

  fs::remove(root_ / "fleet/alias");
  fs::create_symlink(root_ / "fleet/real/pool.yaml", root_ / "fleet/a-link.yaml");
  fs::create_symlink(root_ / "fleet/real/pool.yaml", root_ / "fleet/z-link.yaml");
  LoadResult once = Load();
  EXPECT_TRUE(once.ok()) << AllText(once);  // one file, however many names lead to it
  EXPECT_EQ(once.files, 2u);
  EXPECT_EQ(once.desired.pools.size(), 1u);
}

TEST_F(LoaderTest, SymlinkIsReadWhenItIsTheOnlyWayIn) {
  // The real file sits in a hidden folder, which the walk skips; the link is how it is found.
  Write("fleet/.shared/pool.yaml", testing::Replace(kPool, "cpu: 8,", "cpu: 0,"));
  fs::create_symlink(root_ / "fleet/.shared/pool.yaml", root_ / "fleet/pool.yaml");
  EXPECT_TRUE(Says(Load(), "fleet/pool.yaml:9:21: error: cpu 0 is below the minimum 1"));
}

TEST_F(LoaderTest, BrokenSymlinkIsReported) {
  Write("fleet/set.yaml", std::string(kSet));
  fs::create_symlink(root_ / "fleet/gone.yaml", root_ / "fleet/dangling.yaml");
  EXPECT_TRUE(Says(Load(), "fleet/dangling.yaml: error: broken symlink"));
}

TEST_F(LoaderTest, ProblemsInOneFileDoNotHideOthers) {
  Write("fleet/a.yaml", "a: [\n");
  Write("fleet/b.yaml", testing::Replace(kSet, "arch: arm64", "arch: amd64"));
  Write("fleet/c.yaml", std::string(kPool));
  LoadResult r = Load();
  EXPECT_TRUE(Says(r, "fleet/a.yaml:"));
  EXPECT_TRUE(Says(r, "fleet/b.yaml:11:11: error: arch \"amd64\""));
  EXPECT_EQ(r.desired.pools.size(), 1u);
}

TEST_F(LoaderTest, ParseFileIsIndependentOfOtherFiles) {
  // The Git source caches ParsedFile by blob; a file's result must not depend on its neighbours.
  ManifestLoader loader(testing::Validator());
  DocumentBudget budget;
  ParsedFile alone = loader.ParseFile({"s.yaml", std::string(kSet)}, budget);
  EXPECT_FALSE(alone.diagnostics.HasErrors());
  ASSERT_EQ(alone.sets.size(), 1u);
  LoadResult assembled =
      loader.Assemble({loader.ParseFile({"p.yaml", std::string(kPool)}, budget), std::move(alone)});
  EXPECT_TRUE(assembled.ok()) << AllText(assembled);
}

TEST_F(LoaderTest, AssembleOverSharedFilesMatchesOwnedFilesAndLeavesThemIntact) {
  // LoadRevision assembles the parse cache's files without copying them first: the result must
  // be the one of files handed over, and the cache's files must still hold their objects after.
  ManifestLoader loader(testing::Validator());
  DocumentBudget budget;
  auto parse = [&](const std::string& name, const std::string& content) {
    return std::make_shared<const ParsedFile>(loader.ParseFile({name, content}, budget));
  };
  const std::vector<std::shared_ptr<const ParsedFile>> shared = {
      parse("p.yaml", std::string(kPool)),
      parse("s.yaml", std::string(kSet)),
      parse("again.yaml", std::string(kSet)),  // the same set twice: one stays, one error
      parse("bad.yaml", testing::Replace(kSet, "arch: arm64", "arch: amd64")),
  };
  std::vector<ParsedFile> owned;
  for (const auto& file : shared) {
    owned.push_back(*file);
  }
  const LoadResult from_owned = loader.Assemble(std::move(owned));
  const LoadResult first = loader.Assemble(shared);
  const LoadResult second = loader.Assemble(shared);
  EXPECT_FALSE(from_owned.ok());
  EXPECT_EQ(first.desired.sets.size(), 1u);
  for (const LoadResult* r : {&first, &second}) {
    EXPECT_EQ(r->desired, from_owned.desired);
    EXPECT_EQ(AllText(*r), AllText(from_owned));
    EXPECT_EQ(r->documents, from_owned.documents);
  }
  ASSERT_EQ(shared[1]->sets.size(), 1u);
  EXPECT_EQ(shared[1]->sets[0].object.meta.name, first.desired.sets[0].meta.name);
}

TEST_F(LoaderTest, ObjectsComeOutSortedByNameInOrNotInTheOrderOfTheirFiles) {
  // Files named after their objects list them in order already (nothing to sort); any other
  // order is sorted. Either way the first file's duplicate stays.
  auto set = [](const std::string& name) {
    return testing::Replace(kSet, "name: ios", "name: " + name);
  };
  Write("fleet/pool.yaml", std::string(kPool));
  Write("fleet/sets/a.yaml", set("a"));
  Write("fleet/sets/b.yaml", set("b"));
  Write("fleet/sets/c.yaml", set("c") + "---\n" + set("d"));
  LoadResult in_order = Load();
  ASSERT_EQ(in_order.desired.sets.size(), 4u) << AllText(in_order);
  Write("fleet/sets/e.yaml", set("b") + "---\n" + set("a0"));  // b again, and one out of place
  LoadResult out_of_order = Load();
  std::vector<std::string> names;
  for (const LoadResult* r : {&in_order, &out_of_order}) {
    names.clear();
    EXPECT_TRUE(
        std::is_sorted(r->desired.sets.begin(), r->desired.sets.end(),
                       [](const VMSet& x, const VMSet& y) { return x.meta.name < y.meta.name; }));
    for (const VMSet& s : r->desired.sets) {
      names.push_back(s.meta.name + "@" + s.meta.origin.file);
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a@fleet/sets/a.yaml", "a0@fleet/sets/e.yaml",
                                             "b@fleet/sets/b.yaml", "c@fleet/sets/c.yaml",
                                             "d@fleet/sets/c.yaml"}));
  EXPECT_TRUE(Says(out_of_order, "duplicate VMSet \"b\"")) << AllText(out_of_order);
}

}  // namespace
}  // namespace flotilla::manifest
