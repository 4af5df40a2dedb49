#include "reconciler/source/seed_repository.h"

#include <git2.h>

#include <filesystem>
#include <fstream>
#include <utility>

#include "reconciler/source/libgit2_util.h"

namespace flotilla::source {
namespace {

namespace fs = std::filesystem;

// Without a user.name and user.email anywhere (a fresh machine), `git commit` in the seeded
// repository would refuse to run; the repository then gets a local identity of its own, so
// that the first thing a newcomer is told to try works.
Status EnsureIdentity(git_repository* repo) {
  git_config* raw_config = nullptr;
  if (git_repository_config(&raw_config, repo) != 0) {
    return libgit2::GitError("cannot read the repository's configuration");
  }
  libgit2::Config config(raw_config);
  git_config* raw_local = nullptr;
  if (git_config_open_level(&raw_local, config.get(), GIT_CONFIG_LEVEL_LOCAL) != 0) {
    return libgit2::GitError("cannot open the repository's own configuration");
  }
  libgit2::Config local(raw_local);
  for (const auto& [key, value] :
       {std::pair{"user.name", "flotilla dev"}, {"user.email", "dev@flotilla.invalid"}}) {
    git_buf existing = GIT_BUF_INIT;
    const int found = git_config_get_string_buf(&existing, config.get(), key);
    git_buf_dispose(&existing);
    if (found == 0) {
      continue;
    }
    if (git_config_set_string(local.get(), key, value) != 0) {
      return libgit2::GitError(std::string("cannot set ") + key);
    }
  }
  return Status::Ok();
}

}  // namespace

Status SeedRepository(const std::string& path, const std::string& branch,
                      const std::map<std::string, std::string>& files, const std::string& message) {
  std::error_code ec;
  if (fs::exists(fs::path(path) / ".git", ec)) {
    return Status::FailedPrecondition(path + " already holds a Git repository");
  }
  for (const auto& [name, content] : files) {
    const fs::path file = fs::path(path) / name;
    fs::create_directories(file.parent_path(), ec);
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) {
      return Status::Unavailable("cannot write " + file.string());
    }
  }
  git_repository_init_options options = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  options.flags = GIT_REPOSITORY_INIT_MKPATH;
  const std::string head = "refs/heads/" + branch;
  options.initial_head = head.c_str();
  git_repository* raw_repo = nullptr;
  if (git_repository_init_ext(&raw_repo, path.c_str(), &options) != 0) {
    return libgit2::GitError("cannot create a repository at " + path);
  }
  libgit2::Repository repo(raw_repo);
  if (Status s = EnsureIdentity(repo.get()); !s.ok()) {
    return s;
  }
  git_index* raw_index = nullptr;
  if (git_repository_index(&raw_index, repo.get()) != 0) {
    return libgit2::GitError("cannot open the index of " + path);
  }
  libgit2::Index index(raw_index);
  for (const auto& [name, content] : files) {
    if (git_index_add_bypath(index.get(), name.c_str()) != 0) {
      return libgit2::GitError("cannot add " + name);
    }
  }
  git_oid tree_id;
  if (git_index_write(index.get()) != 0 || git_index_write_tree(&tree_id, index.get()) != 0) {
    return libgit2::GitError("cannot write the index of " + path);
  }
  git_tree* raw_tree = nullptr;
  if (git_tree_lookup(&raw_tree, repo.get(), &tree_id) != 0) {
    return libgit2::GitError("cannot read the tree just written");
  }
  libgit2::Tree tree(raw_tree);
  git_signature* raw_signature = nullptr;
  if (git_signature_now(&raw_signature, "flotilla dev", "dev@flotilla.invalid") != 0) {
    return libgit2::GitError("cannot make a signature");
  }
  libgit2::Signature signature(raw_signature);
  git_oid commit_id;
  const git_tree* tree_ptr = tree.get();
  if (git_commit_create(&commit_id, repo.get(), "HEAD", signature.get(), signature.get(), nullptr,
                        message.c_str(), tree_ptr, 0, nullptr) != 0) {
    return libgit2::GitError("cannot commit in " + path);
  }
  return Status::Ok();
}

}  // namespace flotilla::source
