#pragma once

// Reading revisions of an open repository (internal to the source library): resolving a
// revision to a commit, the manifest files of a folder at a commit, the manifest files two
// commits differ in, a commit's author and subject, and a commit's SSH signature. None of
// these touch the network or change the repository.

#include <git2.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/manifest/diagnostics.h"
#include "reconciler/model/result.h"
#include "reconciler/source/git_source.h"
#include "reconciler/source/libgit2_util.h"

namespace flotilla::source::libgit2 {

// The full SHA of the commit `rev` names. NotFound (naming `redacted_url`) for an unknown
// revision, InvalidArgument for an ambiguous one or one that is not a commit.
Result<std::string> ResolveRevision(git_repository* repo, std::string_view rev,
                                    const std::string& redacted_url);

// The manifest files below `path` at `rev`, sorted by path (GitSource::ReadTree). Files over
// `max_file_bytes` are listed by size and not loaded; blobs `known` names (when set) are listed
// with `known` and nothing read. `expected_files` only reserves the list.
Result<std::vector<TreeFile>> ReadManifestTree(git_repository* repo, std::string_view rev,
                                               std::string_view path, size_t max_file_bytes,
                                               const std::string& redacted_url,
                                               const KnownBlob& known, size_t expected_files,
                                               manifest::Diagnostics& diagnostics);

// The manifest files below `path` that differ between `a` and `b`, sorted and unique
// (GitSource::ChangedFiles).
Result<std::vector<std::string>> ChangedManifestFiles(git_repository* repo, std::string_view a,
                                                      std::string_view b, std::string_view path,
                                                      const std::string& redacted_url);

// The author, time and subject of the commit `rev` names (GitSource::Commit).
Result<CommitInfo> ReadCommitInfo(git_repository* repo, std::string_view rev,
                                  const std::string& redacted_url);

// Checks the SSH signature of commit `tip` against `allowed_signers_file` (signature.h);
// `branch`, if any, only names the commit in messages.
Status VerifyCommitSignature(git_repository* repo, git_oid tip,
                             const std::string& allowed_signers_file, const std::string& branch);

}  // namespace flotilla::source::libgit2
