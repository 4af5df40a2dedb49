#include "reconciler/source/libgit2_tree.h"

#include <algorithm>
#include <utility>

#include "reconciler/manifest/loader.h"
#include "reconciler/source/signature.h"

namespace flotilla::source::libgit2 {
namespace {

// True when some folder or file name in `path` is hidden (skipped, as on disk).
bool HasHiddenComponent(std::string_view path) {
  size_t start = 0;
  while (start < path.size()) {
    const size_t slash = std::min(path.find('/', start), path.size());
    if (manifest::IsHiddenName(path.substr(start, slash - start))) {
      return true;
    }
    start = slash + 1;
  }
  return false;
}

// A folder of the repository as Git names it: "./fleet", "fleet/", "/fleet" and
// "fleet//./" are all "fleet"; "." and "" are the root.
std::string TrimSlashes(std::string_view path) {
  std::string out;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    if (!part.empty() && part != ".") {
      out += (out.empty() ? "" : "/") + std::string(part);
    }
    path.remove_prefix(slash == std::string_view::npos ? path.size() : slash + 1);
  }
  return out;
}

// The commit a revision names; its full SHA goes to `sha`.
Result<Commit> LookupCommit(git_repository* repo, std::string_view rev,
                            const std::string& redacted_url, std::string& sha) {
  Result<std::string> resolved = ResolveRevision(repo, rev, redacted_url);
  if (!resolved.ok()) {
    return resolved.status();
  }
  sha = *resolved;
  git_oid oid;
  git_oid_fromstr(&oid, sha.c_str());
  git_commit* raw = nullptr;
  if (git_commit_lookup(&raw, repo, &oid) < 0) {
    return Status::NotFound("commit " + sha + " not found");
  }
  return Commit(raw);
}

// The tree of folder `path` at `rev`.
Result<Tree> TreeAt(git_repository* repo, std::string_view rev, std::string_view path,
                    const std::string& redacted_url) {
  std::string sha;
  Result<Commit> commit = LookupCommit(repo, rev, redacted_url, sha);
  if (!commit.ok()) {
    return commit.status();
  }
  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, commit->get()) < 0) {
    return Status::Internal("cannot read the tree of " + sha + ": " + LastMessage());
  }
  Tree root(raw_tree);
  const std::string sub = TrimSlashes(path);
  if (sub.empty()) {
    return root;
  }
  git_tree_entry* raw_entry = nullptr;
  if (git_tree_entry_bypath(&raw_entry, root.get(), sub.c_str()) < 0) {
    return Status::NotFound("path \"" + sub + "\" not found at " + sha.substr(0, 7));
  }
  TreeEntry entry(raw_entry);
  if (git_tree_entry_type(entry.get()) != GIT_OBJECT_TREE) {
    return Status::NotFound("path \"" + sub + "\" at " + sha.substr(0, 7) +
                            " is a file, not a folder");
  }
  git_tree* raw_sub = nullptr;
  if (git_tree_lookup(&raw_sub, repo, git_tree_entry_id(entry.get())) < 0) {
    return Status::Internal("cannot read \"" + sub + "\": " + LastMessage());
  }
  return Tree(raw_sub);
}

}  // namespace

Result<std::string> ResolveRevision(git_repository* repo, std::string_view rev,
                                    const std::string& redacted_url) {
  const std::string spec(rev);
  git_object* raw = nullptr;
  int rc = git_revparse_single(&raw, repo, spec.c_str());
  Object object(raw);
  if (rc == GIT_ENOTFOUND) {
    return Status::NotFound("revision \"" + spec + "\" not found in " + redacted_url);
  }
  if (rc == GIT_EAMBIGUOUS) {
    return Status::InvalidArgument("revision \"" + spec + "\" is ambiguous; give more of it");
  }
  if (rc < 0) {
    return Status::InvalidArgument("cannot read revision \"" + spec + "\": " + LastMessage());
  }
  git_object* peeled = nullptr;
  if (git_object_peel(&peeled, object.get(), GIT_OBJECT_COMMIT) < 0) {
    return Status::InvalidArgument("revision \"" + spec + "\" is not a commit");
  }
  Object commit(peeled);
  return Hex(git_object_id(commit.get()));
}

Result<std::vector<TreeFile>> ReadManifestTree(git_repository* repo, std::string_view rev,
                                               std::string_view path, size_t max_file_bytes,
                                               const std::string& redacted_url,
                                               const KnownBlob& known, size_t expected_files,
                                               manifest::Diagnostics& diagnostics) {
  Result<Tree> tree = TreeAt(repo, rev, path, redacted_url);
  if (!tree.ok()) {
    return tree.status();
  }
  git_odb* raw_odb = nullptr;
  if (git_repository_odb(&raw_odb, repo) < 0) {
    return Status::Internal("cannot open the object database: " + LastMessage());
  }
  Odb odb(raw_odb);
  struct Walk {
    git_repository* repo;
    size_t max_file_bytes;
    git_odb* odb;
    std::string prefix;
    manifest::Diagnostics* diagnostics;
    const KnownBlob* known;
    std::vector<TreeFile> files;
    Status status;
  } walk{repo, max_file_bytes, odb.get(), TrimSlashes(path), &diagnostics, &known, {}, {}};
  walk.files.reserve(expected_files);
  auto visit = [](const char* root, const git_tree_entry* entry, void* payload) -> int {
    auto* w = static_cast<Walk*>(payload);
    const std::string_view name = git_tree_entry_name(entry);
    // The path from the repository root, built only for entries that need it.
    auto full_path = [&] {
      std::string full;
      full.reserve(w->prefix.size() + 1 + std::char_traits<char>::length(root) + name.size());
      if (!w->prefix.empty()) {
        full.append(w->prefix).append("/");
      }
      full.append(root).append(name);
      return full;
    };
    if (manifest::IsHiddenName(name)) {
      return 1;  // hidden, as on disk: skip it and everything below
    }
    switch (git_tree_entry_filemode(entry)) {
      case GIT_FILEMODE_TREE:
        return 0;
      case GIT_FILEMODE_LINK:
        if (manifest::IsManifestFileName(name)) {
          w->diagnostics->Warning({full_path(), 0, 0},
                                  "symlink skipped: manifests are read from "
                                  "regular files only");
        }
        return 0;
      case GIT_FILEMODE_COMMIT:
        w->diagnostics->Warning({full_path(), 0, 0},
                                "submodule skipped: its manifests are not read");
        return 1;
      default:
        break;
    }
    if (!manifest::IsManifestFileName(name)) {
      return 0;
    }
    TreeFile file;
    file.path = full_path();
    file.blob_id = Hex(git_tree_entry_id(entry));
    const std::string& full = file.path;
    if (*w->known && (*w->known)(file.blob_id, file.path)) {
      file.known = true;
      w->files.push_back(std::move(file));
      return 0;
    }
    size_t size = 0;
    git_object_t type;
    if (git_odb_read_header(&size, &type, w->odb, git_tree_entry_id(entry)) < 0) {
      w->status = Status::Internal("cannot read " + full + ": " + LastMessage());
      return -1;
    }
    file.size = size;
    if (size > w->max_file_bytes) {
      w->files.push_back(std::move(file));  // listed by size, never loaded
      return 0;
    }
    git_blob* raw_blob = nullptr;
    if (git_blob_lookup(&raw_blob, w->repo, git_tree_entry_id(entry)) < 0) {
      w->status = Status::Internal("cannot read " + full + ": " + LastMessage());
      return -1;
    }
    Blob blob(raw_blob);
    file.content.assign(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                        static_cast<size_t>(git_blob_rawsize(blob.get())));
    file.loaded = true;
    w->files.push_back(std::move(file));
    return 0;
  };
  if (git_tree_walk(tree->get(), GIT_TREEWALK_PRE, visit, &walk) < 0 && walk.status.ok()) {
    walk.status = Status::Internal("cannot walk the tree: " + LastMessage());
  }
  if (!walk.status.ok()) {
    return walk.status;
  }
  // A pre-order walk of Git's tree order gives the paths sorted already (a folder sorts as its
  // name and '/', as the paths below it do); a malformed tree may not.
  auto by_path = [](const TreeFile& a, const TreeFile& b) { return a.path < b.path; };
  if (!std::is_sorted(walk.files.begin(), walk.files.end(), by_path)) {
    std::sort(walk.files.begin(), walk.files.end(), by_path);
  }
  return std::move(walk.files);
}

Result<std::vector<std::string>> ChangedManifestFiles(git_repository* repo, std::string_view a,
                                                      std::string_view b, std::string_view path,
                                                      const std::string& redacted_url) {
  Result<Tree> old_tree = TreeAt(repo, a, "", redacted_url);
  if (!old_tree.ok()) {
    return old_tree.status();
  }
  Result<Tree> new_tree = TreeAt(repo, b, "", redacted_url);
  if (!new_tree.ok()) {
    return new_tree.status();
  }
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  std::string prefix = TrimSlashes(path);
  char* spec = prefix.data();
  if (!prefix.empty()) {
    opts.pathspec.strings = &spec;
    opts.pathspec.count = 1;
  }
  git_diff* raw = nullptr;
  if (git_diff_tree_to_tree(&raw, repo, old_tree->get(), new_tree->get(), &opts) < 0) {
    return Status::Internal("cannot compare revisions: " + LastMessage());
  }
  Diff diff(raw);
  std::vector<std::string> changed;
  for (size_t i = 0; i < git_diff_num_deltas(diff.get()); ++i) {
    const git_diff_delta* delta = git_diff_get_delta(diff.get(), i);
    for (const char* p : {delta->old_file.path, delta->new_file.path}) {
      const std::string file = p == nullptr ? "" : p;
      if (manifest::IsManifestFileName(file) && !HasHiddenComponent(file.substr(prefix.size()))) {
        changed.push_back(file);
      }
    }
  }
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  return changed;
}

Result<CommitInfo> ReadCommitInfo(git_repository* repo, std::string_view rev,
                                  const std::string& redacted_url) {
  std::string sha;
  Result<Commit> commit = LookupCommit(repo, rev, redacted_url, sha);
  if (!commit.ok()) {
    return commit.status();
  }
  const git_signature* author = git_commit_author(commit->get());
  CommitInfo info;
  info.sha = sha;
  info.author = author->name != nullptr ? author->name : "";
  info.email = author->email != nullptr ? author->email : "";
  info.time = static_cast<int64_t>(author->when.time);
  const char* summary = git_commit_summary(commit->get());
  info.subject = summary != nullptr ? summary : "";
  return info;
}

// `tip` by value: libgit2 takes a non-const pointer.
Status VerifyCommitSignature(git_repository* repo, git_oid tip,
                             const std::string& allowed_signers_file, const std::string& branch) {
  const std::string sha = Hex(&tip);
  git_buf signature = GIT_BUF_INIT;
  git_buf signed_data = GIT_BUF_INIT;
  const int rc = git_commit_extract_signature(&signature, &signed_data, repo, &tip, nullptr);
  std::string sig_text, data_text;
  if (rc == 0) {
    sig_text.assign(signature.ptr, signature.size);
    data_text.assign(signed_data.ptr, signed_data.size);
  }
  git_buf_dispose(&signature);
  git_buf_dispose(&signed_data);
  if (rc < 0 && rc != GIT_ENOTFOUND) {
    return Status::Internal("cannot read commit " + sha + ": " + LastMessage());
  }
  return VerifySshSignature(
      sig_text, data_text, allowed_signers_file,
      "commit " + sha.substr(0, 7) + (branch.empty() ? std::string() : " on " + branch));
}

}  // namespace flotilla::source::libgit2
