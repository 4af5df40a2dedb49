// GitSource on libgit2: a bare mirror per repository URL (libgit2_mirror.h), read without a
// working tree (libgit2_tree.h).

#include <git2.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <utility>

#include "reconciler/model/digest.h"
#include "reconciler/source/git_source.h"
#include "reconciler/source/git_url.h"
#include "reconciler/source/libgit2_mirror.h"
#include "reconciler/source/libgit2_tree.h"
#include "reconciler/source/socket_stream.h"
#include "reconciler/ssh/known_hosts.h"

namespace flotilla::source {
namespace {

namespace fs = std::filesystem;

class Libgit2Source final : public GitSource {
 public:
  Libgit2Source(GitSourceOptions options, GitUrl url, std::optional<ssh::KnownHosts> known_hosts,
                fs::path mirror, bool in_place)
      : mirror_(std::move(options), std::move(url), std::move(known_hosts), std::move(mirror),
                in_place) {}

  Result<FetchResult> Fetch() override { return mirror_.Fetch(); }

  Result<std::string> Resolve(std::string_view rev) override {
    if (Status s = mirror_.EnsureOpen(); !s.ok()) {
      return s;
    }
    return libgit2::ResolveRevision(mirror_.repo(), rev, mirror_.url().redacted);
  }

  Result<std::vector<TreeFile>> ReadTree(std::string_view rev, std::string_view path,
                                         manifest::Diagnostics& diagnostics) override {
    if (Status s = mirror_.EnsureOpen(); !s.ok()) {
      return s;
    }
    return Read(rev, path, nullptr, diagnostics);
  }

  Result<std::vector<TreeFile>> ReadTreeSkipping(std::string_view rev, std::string_view path,
                                                 const KnownBlob& known,
                                                 manifest::Diagnostics& diagnostics) override {
    if (Status s = mirror_.EnsureOpen(); !s.ok()) {
      return s;
    }
    return Read(rev, path, known, diagnostics);
  }

  Result<std::vector<std::string>> ChangedFiles(std::string_view a, std::string_view b,
                                                std::string_view path) override {
    if (Status s = mirror_.EnsureOpen(); !s.ok()) {
      return s;
    }
    return libgit2::ChangedManifestFiles(mirror_.repo(), a, b, path, mirror_.url().redacted);
  }

  Status VerifyCommit(std::string_view sha) override {
    const GitSourceOptions& options = mirror_.options();
    if (options.allowed_signers_file.empty()) {
      return Status::Ok();
    }
    if (Status s = mirror_.EnsureOpen(); !s.ok()) {
      return s;
    }
    git_oid oid{};
    if (git_oid_fromstrn(&oid, sha.data(), sha.size()) < 0) {
      return Status::InvalidArgument("\"" + std::string(sha) + "\" is not a commit id");
    }
    return libgit2::VerifyCommitSignature(mirror_.repo(), oid, options.allowed_signers_file,
                                          options.branch);
  }

  Result<CommitInfo> Commit(std::string_view rev) override {
    if (Status s = mirror_.EnsureOpen(); !s.ok()) {
      return s;
    }
    return libgit2::ReadCommitInfo(mirror_.repo(), rev, mirror_.url().redacted);
  }

 private:
  // ReadManifestTree, its list reserved for as many files as the last tree read held.
  Result<std::vector<TreeFile>> Read(std::string_view rev, std::string_view path,
                                     const KnownBlob& known, manifest::Diagnostics& diagnostics) {
    Result<std::vector<TreeFile>> files =
        libgit2::ReadManifestTree(mirror_.repo(), rev, path, mirror_.options().max_file_bytes,
                                  mirror_.url().redacted, known, last_tree_files_, diagnostics);
    if (files.ok()) {
      last_tree_files_ = files->size();
    }
    return files;
  }

  libgit2::Mirror mirror_;
  size_t last_tree_files_ = 0;  // files of the last tree read: a size hint, nothing more
};

}  // namespace

Result<std::unique_ptr<GitSource>> OpenGitSource(const GitSourceOptions& options) {
  Result<GitUrl> url = ParseGitUrl(options.url);
  if (!url.ok()) {
    return url.status();
  }
  const bool local = !url->IsRemote();
  if (local && options.state_dir.empty()) {
    return std::unique_ptr<GitSource>(
        std::make_unique<Libgit2Source>(options, *url, std::nullopt, fs::path(), true));
  }
  if (options.state_dir.empty()) {
    return Status::InvalidArgument("a state directory is needed to mirror " + url->redacted);
  }
  std::optional<ssh::KnownHosts> known_hosts;
  if (url->kind == GitUrl::Kind::kSsh && !options.auth.insecure_ignore_host_key) {
    if (options.auth.known_hosts_file.empty()) {
      return Status::InvalidArgument(
          "ssh repositories need auth.knownHostsFile (or auth.insecureIgnoreHostKey: true, "
          "which accepts any server)");
    }
    Result<ssh::KnownHosts> loaded = ssh::KnownHosts::Load(options.auth.known_hosts_file);
    if (!loaded.ok()) {
      return loaded.status();
    }
    known_hosts = std::move(*loaded);
  }
  const fs::path mirror = fs::path(options.state_dir) / "git" /
                          (::flotilla::Sha256Hex(url->url).substr(0, 16) + ".git");
  return std::unique_ptr<GitSource>(
      std::make_unique<Libgit2Source>(options, *url, std::move(known_hosts), mirror, false));
}

GitLibrary::GitLibrary(std::chrono::seconds io_timeout) {
  git_libgit2_init();
  RegisterTimeoutSocketStream(io_timeout);
}

GitLibrary::~GitLibrary() { git_libgit2_shutdown(); }

std::string GitLibrary::Version() {
  int major = 0;
  int minor = 0;
  int revision = 0;
  git_libgit2_version(&major, &minor, &revision);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(revision);
}

}  // namespace flotilla::source
