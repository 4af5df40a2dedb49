#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/manifest/diagnostics.h"
#include "reconciler/model/result.h"

namespace flotilla::source {

// How to reach and trust the fleet repository (config `source` and `source.auth`).
struct GitAuth {
  std::string token_file;  // http(s): file holding a token, sent as basic auth password
  std::string token_env;   // http(s): environment variable holding the token instead
  std::string username = "x-access-token";  // http(s) basic-auth user sent with the token
  std::string ssh_key_file;                 // ssh: private key
  std::string ssh_passphrase_file;          // ssh: file holding the key's passphrase, if any
  std::string known_hosts_file;  // ssh: host keys to trust; required unless the next is set
  bool insecure_ignore_host_key = false;  // ssh: accept any host key (warned on every fetch)
};

struct GitSourceOptions {
  std::string url;              // see ParseGitUrl
  std::string branch = "main";  // empty: mirror every branch, follow none
  std::string state_dir;        // the mirror lives in <state_dir>/git/<hash of url>.git
  GitAuth auth;
  std::chrono::seconds fetch_timeout{120};  // whole fetch, including connect
  size_t max_file_bytes = 1 << 20;          // larger blobs are listed by size, not loaded
  // Non-empty: the branch tip must carry an SSH signature (git's gpg.format=ssh) by a key of
  // this allowed-signers file, checked with ssh-keygen before the mirror's branch moves; a
  // refused tip leaves the mirror at the last accepted one.
  std::string allowed_signers_file;
};

struct CommitInfo {
  std::string sha;  // full hex
  std::string author;
  std::string email;
  int64_t time = 0;  // seconds since the epoch
  std::string subject;
};

struct FetchResult {
  std::string old_sha;  // branch tip before the fetch; empty on the first clone
  std::string new_sha;  // branch tip after
  bool cloned = false;  // the mirror was created (first use or recovered from corruption)
  bool forced = false;  // the branch moved backwards or sideways (force-push)
  std::vector<std::string> warnings;  // to log on every fetch (e.g. an unchecked host key)
  bool changed() const { return old_sha != new_sha; }
};

// One manifest file of a tree, read straight from the object database.
struct TreeFile {
  std::string path;     // relative to the repository root
  std::string blob_id;  // hex
  size_t size = 0;      // bytes
  bool loaded = false;  // false when larger than GitSourceOptions::max_file_bytes
  std::string content;  // empty unless loaded
  // The caller said it has this blob (ReadTreeSkipping's `known`): neither size nor content was
  // read.
  bool known = false;
};

// Whether the caller already holds the blob `blob_id` (hex) found at `path`.
using KnownBlob = std::function<bool(const std::string& blob_id, const std::string& path)>;

// The fleet repository: a local bare mirror kept up to date from the remote, read at any
// revision without a working tree. Errors are classified:
//   Unavailable       network, timeout, server down (retryable)
//   PermissionDenied  authentication, host key or signature refused
//   NotFound          repository, branch, revision or path missing
//   InvalidArgument   bad URL, bad revision syntax, bad options
// No message ever contains a credential. Not thread-safe: one caller at a time.
class GitSource {
 public:
  virtual ~GitSource() = default;

  // Clones on first use (or when the mirror is unusable), then fetches the branch and tags.
  // After a failure the mirror and the last fetched commit are as they were.
  virtual Result<FetchResult> Fetch() = 0;

  // A revision (branch, tag, full or abbreviated SHA, HEAD, "main~2") to a full commit SHA.
  virtual Result<std::string> Resolve(std::string_view rev) = 0;

  // Manifest files (*.yaml, *.yml) below `path` at `commit`, without a checkout. Names
  // starting with '.' are skipped as on disk; symlinks and submodules are skipped with a
  // warning in `diagnostics`. NotFound if `path` is missing or not a folder.
  virtual Result<std::vector<TreeFile>> ReadTree(std::string_view commit, std::string_view path,
                                                 manifest::Diagnostics& diagnostics) = 0;

  // The same, reading neither size nor content of the blobs `known` names (`known` set in
  // their TreeFile): a caller that keeps what it made of each blob reads only new ones. This
  // default reads everything.
  virtual Result<std::vector<TreeFile>> ReadTreeSkipping(std::string_view commit,
                                                         std::string_view path,
                                                         const KnownBlob& known,
                                                         manifest::Diagnostics& diagnostics) {
    (void)known;
    return ReadTree(commit, path, diagnostics);
  }

  // Paths of manifest files below `path` that differ between commits `a` and `b`.
  virtual Result<std::vector<std::string>> ChangedFiles(std::string_view a, std::string_view b,
                                                        std::string_view path) = 0;

  virtual Result<CommitInfo> Commit(std::string_view rev) = 0;

  // With allowed_signers_file: OK when `sha` carries an SSH signature by a key of that file,
  // PermissionDenied otherwise. Fetch checks a followed branch's tip before the mirror moves;
  // this checks any commit (a pinned revision, a repository read in place). Without the
  // option: OK.
  virtual Status VerifyCommit(std::string_view sha) = 0;
};

// The libgit2 implementation. For a local path or file:// URL with an empty state_dir, the
// repository itself is read and Fetch() only resolves the branch.
Result<std::unique_ptr<GitSource>> OpenGitSource(const GitSourceOptions& options);

// Sets up libgit2 for the process: call once in main (and in tests) before any GitSource, and
// keep the returned object alive while they are used. `io_timeout` bounds every network read
// and write of every Git transport (libgit2 1.5 has no such option of its own).
class GitLibrary {
 public:
  // The libgit2 this process runs with ("1.5.1"); needs no initialisation.
  static std::string Version();

  explicit GitLibrary(std::chrono::seconds io_timeout = std::chrono::seconds(30));
  ~GitLibrary();
  GitLibrary(const GitLibrary&) = delete;
  GitLibrary& operator=(const GitLibrary&) = delete;
};

}  // namespace flotilla::source
