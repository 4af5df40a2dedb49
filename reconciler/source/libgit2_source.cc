// GitSource on libgit2: a bare mirror per repository URL, read without a working tree.

#include <git2.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>

#include "reconciler/manifest/loader.h"
#include "reconciler/model/digest.h"
#include "reconciler/source/git_source.h"
#include "reconciler/source/git_url.h"
#include "reconciler/ssh/known_hosts.h"
#include "reconciler/source/signature.h"
#include "reconciler/source/socket_stream.h"

namespace flotilla::source {
namespace {

using ssh::KnownHosts;

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
template <typename T, void (*F)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, F>>;
using Repository = Owned<git_repository, git_repository_free>;
using Remote = Owned<git_remote, git_remote_free>;
using Commit = Owned<git_commit, git_commit_free>;
using Tree = Owned<git_tree, git_tree_free>;
using TreeEntry = Owned<git_tree_entry, git_tree_entry_free>;
using Object = Owned<git_object, git_object_free>;
using Blob = Owned<git_blob, git_blob_free>;
using Diff = Owned<git_diff, git_diff_free>;
using Odb = Owned<git_odb, git_odb_free>;
using Reference = Owned<git_reference, git_reference_free>;

std::string Hex(const git_oid* oid) {
  std::array<char, GIT_OID_HEXSZ + 1> buffer{};
  git_oid_tostr(buffer.data(), buffer.size(), oid);
  return buffer.data();
}

std::optional<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string value = text.str();
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) {
    value.pop_back();
  }
  return value;
}

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

// A folder of the repository as Git names it: "./fleet", "fleet/", "/fleet" and "fleet//./"
// are all "fleet"; "." and "" are the root.
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

// State shared with libgit2's callbacks during one network operation.
struct NetworkContext {
  const GitUrl* url = nullptr;
  const GitAuth* auth = nullptr;
  const KnownHosts* known_hosts = nullptr;
  Clock::time_point deadline;
  std::chrono::seconds timeout{0};
  int credential_attempts = 0;
  bool auth_refused = false;
  bool timed_out = false;
  std::string refusal;                // why we refused (credentials, host key)
  std::vector<std::string> secrets;   // values to scrub from any message
  std::vector<std::string> warnings;  // for FetchResult
  const FetchWatch* watch = nullptr;  // cuts the sockets at the deadline

  bool Expired() {
    if (Clock::now() > deadline || (watch != nullptr && watch->expired())) {
      timed_out = true;
    }
    return timed_out;
  }
};

// Records why credentials were refused and returns libgit2's "authentication failed".
int Refuse(NetworkContext* ctx, std::string why) {
  ctx->auth_refused = true;
  ctx->refusal = std::move(why);
  git_error_set_str(GIT_ERROR_NET, ctx->refusal.c_str());
  return GIT_EAUTH;
}

int OnCredentials(git_credential** out, const char* /*url*/, const char* username_from_url,
                  unsigned int allowed, void* payload) {
  auto* ctx = static_cast<NetworkContext*>(payload);
  const std::string user = username_from_url != nullptr && *username_from_url != '\0'
                               ? username_from_url
                               : (ctx->url->user.empty() ? "git" : ctx->url->user);
  if ((allowed & GIT_CREDENTIAL_USERNAME) != 0) {
    return git_credential_username_new(out, user.c_str());
  }
  // libgit2 asks again after every rejection; one try is all a configured secret gets.
  if (++ctx->credential_attempts > 1) {
    return Refuse(ctx, "the server refused the configured credentials");
  }
  if ((allowed & GIT_CREDENTIAL_SSH_KEY) != 0) {
    if (ctx->auth->ssh_key_file.empty()) {
      return Refuse(ctx, "the server wants an SSH key and none is configured (auth.sshKeyFile)");
    }
    std::string passphrase;
    if (!ctx->auth->ssh_passphrase_file.empty()) {
      std::optional<std::string> p = ReadSecretFile(ctx->auth->ssh_passphrase_file);
      if (!p) {
        return Refuse(ctx, "cannot read the SSH passphrase file " + ctx->auth->ssh_passphrase_file);
      }
      passphrase = *p;
      ctx->secrets.push_back(passphrase);
    }
    return git_credential_ssh_key_new(out, user.c_str(), nullptr, ctx->auth->ssh_key_file.c_str(),
                                      passphrase.empty() ? nullptr : passphrase.c_str());
  }
  if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) != 0) {
    std::optional<std::string> token;
    if (!ctx->auth->token_file.empty()) {
      token = ReadSecretFile(ctx->auth->token_file);
      if (!token) {
        return Refuse(ctx, "cannot read the token file " + ctx->auth->token_file);
      }
    } else if (!ctx->auth->token_env.empty()) {
      const char* value = std::getenv(ctx->auth->token_env.c_str());
      if (value == nullptr) {
        return Refuse(ctx, "the environment variable " + ctx->auth->token_env + " is not set");
      }
      token = value;
    } else {
      return Refuse(ctx,
                    "the server wants credentials and no token is configured (auth.tokenFile)");
    }
    ctx->secrets.push_back(*token);
    return git_credential_userpass_plaintext_new(out, ctx->auth->username.c_str(), token->c_str());
  }
  return Refuse(ctx, "the server asks for a kind of credentials Flotilla does not support");
}

int OnCertificate(git_cert* cert, int /*valid*/, const char* /*host*/, void* payload) {
  auto* ctx = static_cast<NetworkContext*>(payload);
  if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) {
    return GIT_PASSTHROUGH;  // TLS: libgit2 verifies against the system trust store
  }
  const std::string where =
      ctx->url->host + (ctx->url->port != 0 ? ":" + std::to_string(ctx->url->port) : "");
  if (ctx->auth->insecure_ignore_host_key) {
    ctx->warnings.push_back("accepted the SSH host key of " + where +
                            " without checking it (auth.insecureIgnoreHostKey)");
    return 0;
  }
  const auto* key = reinterpret_cast<const git_cert_hostkey*>(cert);
  if (ctx->known_hosts == nullptr) {
    ctx->refusal = "no known_hosts file is configured to check the host key of " + where +
                   " (auth.knownHostsFile)";
  } else if ((key->type & GIT_CERT_SSH_RAW) == 0) {
    ctx->refusal = "the SSH library gave no host key to check for " + where;
  } else {
    switch (ctx->known_hosts->Check(ctx->url->host, ctx->url->EffectivePort(),
                                    std::string_view(key->hostkey, key->hostkey_len))) {
      case KnownHosts::Verdict::kMatch:
        return 0;
      case KnownHosts::Verdict::kUnknownHost:
        ctx->refusal = "host key of " + where + " is not in the known_hosts file";
        break;
      case KnownHosts::Verdict::kMismatch:
        ctx->refusal = "host key of " + where +
                       " does not match the known_hosts file (it changed, or someone is "
                       "intercepting the connection)";
        break;
      case KnownHosts::Verdict::kRevoked:
        ctx->refusal = "host key of " + where + " is revoked in the known_hosts file";
        break;
    }
  }
  git_error_set_str(GIT_ERROR_SSH, ctx->refusal.c_str());
  return GIT_ECERTIFICATE;
}

int OnTransfer(const git_indexer_progress* /*stats*/, void* payload) {
  return static_cast<NetworkContext*>(payload)->Expired() ? -1 : 0;
}

int OnSideband(const char* /*text*/, int /*len*/, void* payload) {
  return static_cast<NetworkContext*>(payload)->Expired() ? -1 : 0;
}

bool Contains(const std::string& s, std::string_view what) {
  return s.find(what) != std::string::npos;
}

class Libgit2Source final : public GitSource {
 public:
  Libgit2Source(GitSourceOptions options, GitUrl url, std::optional<KnownHosts> known_hosts,
                fs::path mirror, bool in_place)
      : options_(std::move(options)),
        url_(std::move(url)),
        known_hosts_(std::move(known_hosts)),
        mirror_(std::move(mirror)),
        in_place_(in_place) {}

  Result<FetchResult> Fetch() override {
    if (in_place_) {
      Status s = OpenRepository();
      if (!s.ok()) {
        return s;
      }
      Result<std::string> tip = BranchTip();
      if (!tip.ok()) {
        return tip.status();
      }
      return FetchResult{.old_sha = *tip, .new_sha = *tip};
    }
    FetchResult result;
    Status s = Status::Internal("no usable mirror");
    if (OpenMirror()) {
      Result<std::string> before = BranchTip();
      result.old_sha = before.ok() ? *before : "";
      s = FetchIntoMirror(result.warnings);
      if (!s.ok() && !IsLocalDamage(s)) {
        return s;  // network, credentials, branch: the mirror is as it was
      }
    }
    if (!s.ok()) {
      // No mirror yet, or the mirror itself is damaged: clone afresh beside it and swap it in
      // only once that worked, so that a failure here loses nothing.
      s = CloneFresh(result.warnings);
      if (!s.ok()) {
        return s;
      }
      result.cloned = true;
    }
    Result<std::string> after = BranchTip();
    if (!after.ok()) {
      return after.status();
    }
    result.new_sha = *after;
    if (!result.old_sha.empty() && result.old_sha != result.new_sha) {
      git_oid old_oid, new_oid;
      git_oid_fromstr(&old_oid, result.old_sha.c_str());
      git_oid_fromstr(&new_oid, result.new_sha.c_str());
      result.forced = git_graph_descendant_of(repo_.get(), &new_oid, &old_oid) != 1;
    }
    return result;
  }

  Result<std::string> Resolve(std::string_view rev) override {
    Status s = EnsureOpen();
    if (!s.ok()) {
      return s;
    }
    const std::string spec(rev);
    git_object* raw = nullptr;
    int rc = git_revparse_single(&raw, repo_.get(), spec.c_str());
    Object object(raw);
    if (rc == GIT_ENOTFOUND) {
      return Status::NotFound("revision \"" + spec + "\" not found in " + url_.redacted);
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

  Result<std::vector<TreeFile>> ReadTree(std::string_view rev, std::string_view path,
                                         manifest::Diagnostics& diagnostics) override {
    Result<Tree> tree = TreeAt(rev, path);
    if (!tree.ok()) {
      return tree.status();
    }
    git_odb* raw_odb = nullptr;
    if (git_repository_odb(&raw_odb, repo_.get()) < 0) {
      return Status::Internal("cannot open the object database: " + LastMessage());
    }
    Odb odb(raw_odb);
    struct Walk {
      Libgit2Source* self;
      git_odb* odb;
      std::string prefix;
      manifest::Diagnostics* diagnostics;
      std::vector<TreeFile> files;
      Status status;
    } walk{this, odb.get(), TrimSlashes(path), &diagnostics, {}, {}};
    auto visit = [](const char* root, const git_tree_entry* entry, void* payload) -> int {
      auto* w = static_cast<Walk*>(payload);
      const std::string name = git_tree_entry_name(entry);
      const std::string relative = std::string(root) + name;
      const std::string full = w->prefix.empty() ? relative : w->prefix + "/" + relative;
      if (manifest::IsHiddenName(name)) {
        return 1;  // hidden, as on disk: skip it and everything below
      }
      switch (git_tree_entry_filemode(entry)) {
        case GIT_FILEMODE_TREE:
          return 0;
        case GIT_FILEMODE_LINK:
          if (manifest::IsManifestFileName(name)) {
            w->diagnostics->Warning({full, 0, 0},
                                    "symlink skipped: manifests are read from "
                                    "regular files only");
          }
          return 0;
        case GIT_FILEMODE_COMMIT:
          w->diagnostics->Warning({full, 0, 0}, "submodule skipped: its manifests are not read");
          return 1;
        default:
          break;
      }
      if (!manifest::IsManifestFileName(name)) {
        return 0;
      }
      TreeFile file;
      file.path = full;
      file.blob_id = Hex(git_tree_entry_id(entry));
      size_t size = 0;
      git_object_t type;
      if (git_odb_read_header(&size, &type, w->odb, git_tree_entry_id(entry)) < 0) {
        w->status = Status::Internal("cannot read " + full + ": " + LastMessage());
        return -1;
      }
      file.size = size;
      if (size > w->self->options_.max_file_bytes) {
        w->files.push_back(std::move(file));  // listed by size, never loaded
        return 0;
      }
      git_blob* raw_blob = nullptr;
      if (git_blob_lookup(&raw_blob, w->self->repo_.get(), git_tree_entry_id(entry)) < 0) {
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
    std::sort(walk.files.begin(), walk.files.end(),
              [](const TreeFile& a, const TreeFile& b) { return a.path < b.path; });
    return std::move(walk.files);
  }

  Result<std::vector<std::string>> ChangedFiles(std::string_view a, std::string_view b,
                                                std::string_view path) override {
    Result<Tree> old_tree = TreeAt(a, "");
    if (!old_tree.ok()) {
      return old_tree.status();
    }
    Result<Tree> new_tree = TreeAt(b, "");
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
    if (git_diff_tree_to_tree(&raw, repo_.get(), old_tree->get(), new_tree->get(), &opts) < 0) {
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

  Status VerifyCommit(std::string_view sha) override {
    if (options_.allowed_signers_file.empty()) {
      return Status::Ok();
    }
    if (Status s = EnsureOpen(); !s.ok()) {
      return s;
    }
    git_oid oid{};
    if (git_oid_fromstrn(&oid, sha.data(), sha.size()) < 0) {
      return Status::InvalidArgument("\"" + std::string(sha) + "\" is not a commit id");
    }
    return VerifyTip(oid);
  }

  Result<CommitInfo> Commit(std::string_view rev) override {
    std::string sha;
    Result<::flotilla::source::Commit> commit = LookupCommit(rev, sha);
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

 private:
  static std::string LastMessage() {
    const git_error* e = git_error_last();
    return RedactUrls(e != nullptr && e->message != nullptr ? e->message : "unknown error");
  }

  // Errors that mean the mirror on disk is damaged rather than the remote being unreachable.
  static bool IsLocalDamage(const Status& s) { return s.code() == Status::Code::kInternal; }

  static bool IsLinkToFolderOrManifest(std::string_view name) {
    return manifest::IsManifestFileName(name) || name.find('.') == std::string_view::npos;
  }

  Status EnsureOpen() {
    return repo_ ? Status::Ok() : (in_place_ ? OpenRepository() : OpenExistingMirror());
  }

  Status OpenRepository() {
    if (repo_) {
      return Status::Ok();
    }
    std::string path = url_.url;
    if (url_.kind == GitUrl::Kind::kFile) {
      path = path.substr(std::string("file://").size());
    }
    git_repository* raw = nullptr;
    if (git_repository_open_ext(&raw, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) < 0) {
      return Status::NotFound("no Git repository at " + path + ": " + LastMessage());
    }
    repo_.reset(raw);
    return Status::Ok();
  }

  Status OpenExistingMirror() {
    git_repository* raw = nullptr;
    if (git_repository_open_bare(&raw, mirror_.c_str()) < 0) {
      return Status::FailedPrecondition("the repository has not been fetched yet (" +
                                        url_.redacted + ")");
    }
    repo_.reset(raw);
    return Status::Ok();
  }

  // Opens the existing mirror if it is there and sound.
  bool OpenMirror() {
    if (repo_) {
      return true;
    }
    git_repository* raw = nullptr;
    std::error_code ec;
    if (!fs::exists(mirror_, ec) || git_repository_open_bare(&raw, mirror_.c_str()) < 0) {
      return false;
    }
    repo_.reset(raw);
    if (!MirrorLooksSound()) {
      repo_.reset();
      return false;
    }
    return true;
  }

  // Clones into a new folder beside the mirror and, once that worked, puts it in the mirror's
  // place. On failure the old mirror (if any) is untouched and opened again.
  Status CloneFresh(std::vector<std::string>& warnings) {
    repo_.reset();
    const fs::path fresh = mirror_.string() + ".new";
    std::error_code ec;
    fs::remove_all(fresh, ec);  // left by a crash
    fs::create_directories(mirror_.parent_path(), ec);
    git_repository* raw = nullptr;
    if (git_repository_init(&raw, fresh.c_str(), /*is_bare=*/1) < 0) {
      return Status::Internal("cannot create a mirror in " + fresh.string() + ": " + LastMessage());
    }
    repo_.reset(raw);
    Status s = FetchIntoMirror(warnings);
    repo_.reset();
    if (!s.ok()) {
      fs::remove_all(fresh, ec);
      OpenMirror();
      return s;
    }
    const fs::path old = mirror_.string() + ".old";
    fs::remove_all(old, ec);
    if (fs::exists(mirror_, ec)) {
      fs::rename(mirror_, old, ec);
    }
    fs::rename(fresh, mirror_, ec);
    if (ec) {
      return Status::Internal("cannot move the new mirror into place: " + ec.message());
    }
    fs::remove_all(old, ec);
    return OpenMirror() ? Status::Ok() : Status::Internal("the new mirror cannot be opened");
  }

  // The branch tip, if there is one, must be a readable commit.
  bool MirrorLooksSound() {
    const std::string ref = "refs/heads/" + options_.branch;
    git_oid oid;
    if (git_reference_name_to_id(&oid, repo_.get(), ref.c_str()) < 0) {
      return true;  // nothing fetched yet is not damage
    }
    git_commit* raw = nullptr;
    if (git_commit_lookup(&raw, repo_.get(), &oid) < 0) {
      return false;
    }
    git_commit_free(raw);
    return true;
  }

  Result<std::string> BranchTip() {
    if (options_.branch.empty()) {
      return std::string();
    }
    const std::string ref = "refs/heads/" + options_.branch;
    git_oid oid;
    const int rc = git_reference_name_to_id(&oid, repo_.get(), ref.c_str());
    if (rc == GIT_ENOTFOUND) {
      return Status::NotFound("branch \"" + options_.branch + "\" not found in " + url_.redacted);
    }
    if (rc < 0) {
      return Status::Internal("cannot read branch \"" + options_.branch + "\": " + LastMessage());
    }
    return Hex(&oid);
  }

  Status FetchIntoMirror(std::vector<std::string>& warnings) {
    const FetchWatch watch(Clock::now() + options_.fetch_timeout);
    NetworkContext ctx;
    ctx.watch = &watch;
    ctx.url = &url_;
    ctx.auth = &options_.auth;
    ctx.known_hosts = known_hosts_ ? &*known_hosts_ : nullptr;
    ctx.timeout = options_.fetch_timeout;
    ctx.deadline = Clock::now() + options_.fetch_timeout;

    git_remote* raw = nullptr;
    if (git_remote_create_anonymous(&raw, repo_.get(), url_.url.c_str()) < 0) {
      return Status::InvalidArgument("cannot use repository URL " + url_.redacted + ": " +
                                     LastMessage());
    }
    Remote remote(raw);
    git_remote_callbacks callbacks = GIT_REMOTE_CALLBACKS_INIT;
    callbacks.credentials = OnCredentials;
    callbacks.certificate_check = OnCertificate;
    callbacks.transfer_progress = OnTransfer;
    callbacks.sideband_progress = OnSideband;
    callbacks.payload = &ctx;

    int rc = git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &callbacks, nullptr, nullptr);
    if (rc < 0) {
      return Classify(rc, ctx, "cannot reach " + url_.redacted);
    }
    const git_remote_head** heads = nullptr;
    size_t count = 0;
    if ((rc = git_remote_ls(&heads, &count, remote.get())) < 0) {
      return Classify(rc, ctx, "cannot list the branches of " + url_.redacted);
    }
    const std::string wanted = "refs/heads/" + options_.branch;
    bool found = options_.branch.empty();  // no branch: mirror whatever is there
    git_oid remote_tip{};
    for (size_t i = 0; i < count; ++i) {
      if (wanted == heads[i]->name) {
        found = true;
        remote_tip = heads[i]->oid;
      }
    }
    if (!found) {
      git_remote_disconnect(remote.get());
      return Status::NotFound("branch \"" + options_.branch + "\" not found in " + url_.redacted +
                              " (deleted or renamed?); the last fetched commit "
                              "is kept");
    }
    std::array<char*, 2> specs = {const_cast<char*>("+refs/heads/*:refs/heads/*"),
                                  const_cast<char*>("+refs/tags/*:refs/tags/*")};
    git_strarray refspecs{specs.data(), specs.size()};
    git_fetch_options fetch = GIT_FETCH_OPTIONS_INIT;
    fetch.callbacks = callbacks;
    fetch.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
    if ((rc = git_remote_download(remote.get(), &refspecs, &fetch)) < 0) {
      return Classify(rc, ctx, "cannot fetch from " + url_.redacted);
    }
    if (!options_.allowed_signers_file.empty() && !options_.branch.empty()) {
      // The objects are here but no ref has moved yet: refuse before anything points at them.
      Status verified = VerifyTip(remote_tip);
      if (!verified.ok()) {
        git_remote_disconnect(remote.get());
        return verified;
      }
    }
    if ((rc = git_remote_update_tips(remote.get(), &callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_ALL,
                                     "flotilla fetch")) < 0) {
      return Classify(rc, ctx, "cannot update the mirror's branches");
    }
    if ((rc = git_remote_prune(remote.get(), &callbacks)) < 0) {
      return Classify(rc, ctx, "cannot prune deleted branches");
    }
    if (!options_.branch.empty()) {
      git_repository_set_head(repo_.get(), wanted.c_str());
    } else {
      // Following no branch: HEAD is whatever the remote's HEAD names.
      git_buf head = GIT_BUF_INIT;
      if (git_remote_default_branch(&head, remote.get()) == 0) {
        git_repository_set_head(repo_.get(), head.ptr);
      }
      git_buf_dispose(&head);
    }
    git_remote_disconnect(remote.get());
    warnings = std::move(ctx.warnings);
    return Status::Ok();
  }

  Status VerifyTip(git_oid tip) {  // by value: libgit2 takes a non-const pointer
    const std::string sha = Hex(&tip);
    git_buf signature = GIT_BUF_INIT;
    git_buf signed_data = GIT_BUF_INIT;
    const int rc =
        git_commit_extract_signature(&signature, &signed_data, repo_.get(), &tip, nullptr);
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
        sig_text, data_text, options_.allowed_signers_file,
        "commit " + sha.substr(0, 7) +
            (options_.branch.empty() ? std::string() : " on " + options_.branch));
  }

  Status Classify(int rc, NetworkContext& ctx, const std::string& what) {
    const git_error* e = git_error_last();
    std::string detail = e != nullptr && e->message != nullptr ? e->message : "unknown error";
    const int klass = e != nullptr ? e->klass : GIT_ERROR_NONE;
    for (const std::string& secret : ctx.secrets) {
      for (size_t at; !secret.empty() && (at = detail.find(secret)) != std::string::npos;) {
        detail.replace(at, secret.size(), "***");
      }
    }
    detail = RedactUrls(detail);
    const std::string message = what + ": " + detail;
    if (ctx.Expired()) {
      return Status::Unavailable(what + ": timed out after " + std::to_string(ctx.timeout.count()) +
                                 "s");
    }
    if (ctx.auth_refused || rc == GIT_EAUTH || rc == GIT_ECERTIFICATE) {
      return Status::PermissionDenied(what + ": " + (ctx.refusal.empty() ? detail : ctx.refusal));
    }
    // libgit2 reports HTTP failures as "unexpected http status code: NNN".
    constexpr std::string_view kHttpStatus = "unexpected http status code: ";
    if (const size_t at = detail.find(kHttpStatus); at != std::string::npos) {
      const int code = std::atoi(detail.c_str() + at + kHttpStatus.size());
      if (code == 401 || code == 403) {
        return Status::PermissionDenied(message);
      }
      if (code == 404) {
        return Status::NotFound(message);
      }
      if (code == 429 || code >= 500) {
        return Status::Unavailable(message);
      }
      return Status::InvalidArgument(message);
    }
    const bool network = klass == GIT_ERROR_NET || klass == GIT_ERROR_SSH ||
                         klass == GIT_ERROR_HTTP || klass == GIT_ERROR_SSL ||
                         klass == GIT_ERROR_OS || klass == GIT_ERROR_CALLBACK;
    // Servers that refuse a path say so in their own words (git daemon, ssh + git-upload-pack).
    if (network && (Contains(detail, "not exported") ||
                    Contains(detail,
                             "does not appear to be "
                             "a git repository") ||
                    Contains(detail, "repository not found"))) {
      return Status::NotFound(message);
    }
    if (network || (url_.IsRemote() && (klass == GIT_ERROR_NONE || klass == GIT_ERROR_INVALID))) {
      return Status::Unavailable(message);
    }
    return Status::Internal(message);  // the mirror on disk: recovered by cloning afresh
  }

  // The commit a revision names; its full SHA goes to `sha`.
  Result<::flotilla::source::Commit> LookupCommit(std::string_view rev, std::string& sha) {
    Result<std::string> resolved = Resolve(rev);
    if (!resolved.ok()) {
      return resolved.status();
    }
    sha = *resolved;
    git_oid oid;
    git_oid_fromstr(&oid, sha.c_str());
    git_commit* raw = nullptr;
    if (git_commit_lookup(&raw, repo_.get(), &oid) < 0) {
      return Status::NotFound("commit " + sha + " not found");
    }
    return ::flotilla::source::Commit(raw);
  }

  Result<Tree> TreeAt(std::string_view rev, std::string_view path) {
    std::string sha;
    Result<::flotilla::source::Commit> commit = LookupCommit(rev, sha);
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
    if (git_tree_lookup(&raw_sub, repo_.get(), git_tree_entry_id(entry.get())) < 0) {
      return Status::Internal("cannot read \"" + sub + "\": " + LastMessage());
    }
    return Tree(raw_sub);
  }

  GitSourceOptions options_;
  GitUrl url_;
  std::optional<KnownHosts> known_hosts_;
  fs::path mirror_;
  bool in_place_;
  Repository repo_;
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
  std::optional<KnownHosts> known_hosts;
  if (url->kind == GitUrl::Kind::kSsh && !options.auth.insecure_ignore_host_key) {
    if (options.auth.known_hosts_file.empty()) {
      return Status::InvalidArgument(
          "ssh repositories need auth.knownHostsFile (or auth.insecureIgnoreHostKey: true, "
          "which accepts any server)");
    }
    Result<KnownHosts> loaded = KnownHosts::Load(options.auth.known_hosts_file);
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

}  // namespace flotilla::source
