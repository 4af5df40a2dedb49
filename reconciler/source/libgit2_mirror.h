#pragma once

// A repository's local copy (internal to the source library): a bare mirror in
// <stateDir>/git/<hash>.git, fetched from the URL with a deadline and replaced by a fresh clone
// when it is damaged, or, for a local repository and no state directory, the repository itself
// read in place. Thread-safety: none; GitSource's callers serialise its use.

#include <git2.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "reconciler/model/result.h"
#include "reconciler/source/git_source.h"
#include "reconciler/source/git_url.h"
#include "reconciler/source/libgit2_auth.h"
#include "reconciler/source/libgit2_util.h"
#include "reconciler/ssh/known_hosts.h"

namespace flotilla::source::libgit2 {

class Mirror {
 public:
  // `known_hosts` checks SSH host keys (none: an ssh URL is refused unless
  // auth.insecureIgnoreHostKey). With `in_place`, `folder` is unused and nothing is fetched.
  Mirror(GitSourceOptions options, GitUrl url, std::optional<ssh::KnownHosts> known_hosts,
         std::filesystem::path folder, bool in_place);

  // GitSource::Fetch: fetches the branch into the mirror, cloning afresh beside it (and
  // swapping it in once that worked) when there is none yet or it is damaged.
  Result<FetchResult> Fetch();

  // Opens the repository, or the mirror an earlier Fetch left, unless it is open.
  // FailedPrecondition: nothing fetched yet; NotFound: no repository at a local path.
  Status EnsureOpen();

  git_repository* repo() const { return repo_.get(); }  // null until opened
  const GitSourceOptions& options() const { return options_; }
  const GitUrl& url() const { return url_; }

 private:
  Status OpenRepository();
  Status OpenExistingMirror();
  bool OpenMirror();
  Status CloneFresh(std::vector<std::string>& warnings);
  bool MirrorLooksSound();
  Result<std::string> BranchTip();
  Status FetchIntoMirror(std::vector<std::string>& warnings);

  GitSourceOptions options_;
  GitUrl url_;
  std::optional<ssh::KnownHosts> known_hosts_;
  std::filesystem::path mirror_;
  bool in_place_;
  Repository repo_;
};

// The Status for libgit2's failure `rc` of a network step `what`: Unavailable when the deadline
// passed, the server is unreachable or busy (retry); PermissionDenied for refused credentials or
// host keys; NotFound for a repository the server does not have; Internal for damage to the
// mirror on disk (Fetch clones afresh). Secrets the callbacks handed out and credentials in
// URLs never appear in the message. `remote` is GitUrl::IsRemote().
Status ClassifyFetchError(int rc, NetworkContext& context, const std::string& what, bool remote);

}  // namespace flotilla::source::libgit2
