#pragma once

// Small helpers over libgit2's C API, internal to the source library: owning pointers that call
// the matching git_*_free, object ids as hex, and libgit2's last error as text or a Status.
// REQUIRES: a live GitLibrary (git_source.h) around every use.

#include <git2.h>

#include <array>
#include <memory>
#include <string>

#include "reconciler/model/status.h"
#include "reconciler/source/git_url.h"

namespace flotilla::source::libgit2 {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, Free>>;

using Blob = Owned<git_blob, git_blob_free>;
using Commit = Owned<git_commit, git_commit_free>;
using Config = Owned<git_config, git_config_free>;
using Diff = Owned<git_diff, git_diff_free>;
using Index = Owned<git_index, git_index_free>;
using Object = Owned<git_object, git_object_free>;
using Odb = Owned<git_odb, git_odb_free>;
using Remote = Owned<git_remote, git_remote_free>;
using Repository = Owned<git_repository, git_repository_free>;
using Signature = Owned<git_signature, git_signature_free>;
using Tree = Owned<git_tree, git_tree_free>;
using TreeEntry = Owned<git_tree_entry, git_tree_entry_free>;

inline std::string Hex(const git_oid* oid) {
  std::array<char, GIT_OID_HEXSZ + 1> buffer{};
  git_oid_tostr(buffer.data(), buffer.size(), oid);
  return buffer.data();
}

// libgit2's message for the last failure on this thread, with any credentials in URLs redacted.
inline std::string LastMessage() {
  const git_error* e = git_error_last();
  return RedactUrls(e != nullptr && e->message != nullptr ? e->message : "unknown error");
}

// Internal: "<what>: <libgit2's message for the last failure>", unredacted (for local paths).
inline Status GitError(const std::string& what) {
  const git_error* e = git_error_last();
  return Status::Internal(what + ": " +
                          (e != nullptr && e->message != nullptr
                               ? std::string(e->message)
                               : std::string("unknown libgit2 error")));
}

}  // namespace flotilla::source::libgit2
