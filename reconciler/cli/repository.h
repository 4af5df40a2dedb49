#pragma once

// A fleet repository opened for reading revisions: a local path (read in place) or a remote URL
// (fetched into a mirror under --mirror-dir, or a temporary folder). Shared by the commands that
// read manifests from Git (validate --repo, diff).

#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"
#include "reconciler/manifest/loader.h"
#include "reconciler/model/result.h"
#include "reconciler/source/git_source.h"
#include "reconciler/source/manifest_source.h"

namespace flotilla::cli {

struct RepositoryOptions {
  std::string repo;        // path or URL
  std::string mirror_dir;  // keep the mirror here between runs; default: a temporary folder
  std::string token_file;
  std::string token_env;
  std::string ssh_key_file;
  std::string ssh_passphrase_file;
  std::string known_hosts_file;
  bool insecure_ignore_host_key = false;
};

// Adds --mirror-dir and the authentication flags (not --repo, whose help differs per command).
void AddRepositoryFlags(CLI::App& cmd, RepositoryOptions& options);

// A folder under the system's temporary directory, removed with everything in it.
class TemporaryDirectory {
 public:
  TemporaryDirectory();
  ~TemporaryDirectory();
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Repository {
 public:
  // Opens the repository and, if it is remote, fetches it. Errors never show credentials.
  static Result<std::unique_ptr<Repository>> Open(const RepositoryOptions& options,
                                                  const Context& context);

  // Loads the manifests below `path` at `rev`; files are named `path@sha7`. Blobs parsed once
  // are reused by later loads.
  Result<manifest::LoadResult> Load(const std::string& rev, const std::string& path,
                                    const manifest::ManifestLoader& loader);

  // A revision to its full commit SHA.
  Result<std::string> Resolve(const std::string& rev) { return git_->Resolve(rev); }

 private:
  Repository() = default;

  std::optional<TemporaryDirectory> scratch_;
  std::unique_ptr<source::GitSource> git_;
  source::ParseCache cache_;
};

// The manifests of a folder (`path`), or, when `git.repo` is set, of revision `rev` of that
// repository below `repo_path`.
Result<manifest::LoadResult> LoadManifests(const std::string& path, const RepositoryOptions& git,
                                           const std::string& rev, const std::string& repo_path,
                                           const manifest::ManifestLoader& loader,
                                           const Context& context);

}  // namespace flotilla::cli
