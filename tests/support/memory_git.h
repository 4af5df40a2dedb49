#pragma once

// A fleet repository held in memory: one commit whose tree is the files given, for tests of
// what is loaded from Git without a repository on disk.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reconciler/source/git_source.h"

namespace flotilla::testing {

// A repository of one commit, `sha`, held in memory.
class MemoryGit final : public source::GitSource {
 public:
  explicit MemoryGit(const std::map<std::string, std::string>& files,
                     std::string sha = "89abcdef0123456789abcdef0123456789abcdef")
      : sha_(std::move(sha)) {
    for (const auto& [path, content] : files) {
      // Git's blob id depends on the content only; a stand-in that does too.
      files_.push_back({.path = path,
                        .blob_id = std::to_string(std::hash<std::string>{}(content)),
                        .size = content.size(),
                        .loaded = true,
                        .content = content});
    }
  }
  // `files` as ReadTree lists them (a large blob listed but not loaded, as the fleet fuzzer's).
  MemoryGit(std::vector<source::TreeFile> files, std::string sha)
      : sha_(std::move(sha)), files_(std::move(files)) {}
  Result<source::FetchResult> Fetch() override { return source::FetchResult{}; }
  Result<std::string> Resolve(std::string_view /*rev*/) override { return sha_; }
  Result<std::vector<source::TreeFile>> ReadTree(std::string_view /*commit*/,
                                                 std::string_view /*path*/,
                                                 manifest::Diagnostics& /*diagnostics*/) override {
    return files_;
  }
  Result<std::vector<std::string>> ChangedFiles(std::string_view /*a*/, std::string_view /*b*/,
                                                std::string_view /*path*/) override {
    return std::vector<std::string>{};
  }
  Result<source::CommitInfo> Commit(std::string_view /*rev*/) override {
    return source::CommitInfo{.sha = sha_};
  }
  Status VerifyCommit(std::string_view /*sha*/) override { return Status::Ok(); }

 private:
  std::string sha_;
  std::vector<source::TreeFile> files_;
};

}  // namespace flotilla::testing
