#include "reconciler/source/libgit2_mirror.h"

#include <array>
#include <cstdlib>
#include <string_view>
#include <system_error>
#include <utility>

#include "reconciler/source/libgit2_tree.h"
#include "reconciler/source/socket_stream.h"

namespace flotilla::source::libgit2 {
namespace {

namespace fs = std::filesystem;

bool Contains(const std::string& s, std::string_view what) {
  return s.find(what) != std::string::npos;
}

// Errors that mean the mirror on disk is damaged rather than the remote being unreachable.
bool IsLocalDamage(const Status& s) { return s.code() == Status::Code::kInternal; }

}  // namespace

Mirror::Mirror(GitSourceOptions options, GitUrl url, std::optional<ssh::KnownHosts> known_hosts,
               fs::path folder, bool in_place)
    : options_(std::move(options)),
      url_(std::move(url)),
      known_hosts_(std::move(known_hosts)),
      mirror_(std::move(folder)),
      in_place_(in_place) {}

Result<FetchResult> Mirror::Fetch() {
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

Status Mirror::EnsureOpen() {
  return repo_ ? Status::Ok() : (in_place_ ? OpenRepository() : OpenExistingMirror());
}

Status Mirror::OpenRepository() {
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

Status Mirror::OpenExistingMirror() {
  git_repository* raw = nullptr;
  if (git_repository_open_bare(&raw, mirror_.c_str()) < 0) {
    return Status::FailedPrecondition("the repository has not been fetched yet (" + url_.redacted +
                                      ")");
  }
  repo_.reset(raw);
  return Status::Ok();
}

// Opens the existing mirror if it is there and sound.
bool Mirror::OpenMirror() {
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
Status Mirror::CloneFresh(std::vector<std::string>& warnings) {
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
bool Mirror::MirrorLooksSound() {
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

Result<std::string> Mirror::BranchTip() {
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

Status Mirror::FetchIntoMirror(std::vector<std::string>& warnings) {
  const FetchWatch watch(SteadyClock::now() + options_.fetch_timeout);
  NetworkContext ctx;
  ctx.watch = &watch;
  ctx.url = &url_;
  ctx.auth = &options_.auth;
  ctx.known_hosts = known_hosts_ ? &*known_hosts_ : nullptr;
  ctx.timeout = options_.fetch_timeout;
  ctx.deadline = SteadyClock::now() + options_.fetch_timeout;

  git_remote* raw = nullptr;
  if (git_remote_create_anonymous(&raw, repo_.get(), url_.url.c_str()) < 0) {
    return Status::InvalidArgument("cannot use repository URL " + url_.redacted + ": " +
                                   LastMessage());
  }
  Remote remote(raw);
  git_remote_callbacks callbacks = GIT_REMOTE_CALLBACKS_INIT;
  SetNetworkCallbacks(callbacks, ctx);

  int rc = git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &callbacks, nullptr, nullptr);
  if (rc < 0) {
    return ClassifyFetchError(rc, ctx, "cannot reach " + url_.redacted, url_.IsRemote());
  }
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  if ((rc = git_remote_ls(&heads, &count, remote.get())) < 0) {
    return ClassifyFetchError(rc, ctx, "cannot list the branches of " + url_.redacted,
                              url_.IsRemote());
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
    return ClassifyFetchError(rc, ctx, "cannot fetch from " + url_.redacted, url_.IsRemote());
  }
  if (!options_.allowed_signers_file.empty() && !options_.branch.empty()) {
    // The objects are here but no ref has moved yet: refuse before anything points at them.
    Status verified = VerifyCommitSignature(repo_.get(), remote_tip, options_.allowed_signers_file,
                                            options_.branch);
    if (!verified.ok()) {
      git_remote_disconnect(remote.get());
      return verified;
    }
  }
  if ((rc = git_remote_update_tips(remote.get(), &callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_ALL,
                                   "flotilla fetch")) < 0) {
    return ClassifyFetchError(rc, ctx, "cannot update the mirror's branches", url_.IsRemote());
  }
  if ((rc = git_remote_prune(remote.get(), &callbacks)) < 0) {
    return ClassifyFetchError(rc, ctx, "cannot prune deleted branches", url_.IsRemote());
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

Status ClassifyFetchError(int rc, NetworkContext& ctx, const std::string& what, bool remote) {
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
                       klass == GIT_ERROR_HTTP || klass == GIT_ERROR_SSL || klass == GIT_ERROR_OS ||
                       klass == GIT_ERROR_CALLBACK;
  // Servers that refuse a path say so in their own words (git daemon, ssh + git-upload-pack).
  if (network && (Contains(detail, "not exported") ||
                  Contains(detail,
                           "does not appear to be "
                           "a git repository") ||
                  Contains(detail, "repository not found"))) {
    return Status::NotFound(message);
  }
  if (network || (remote && (klass == GIT_ERROR_NONE || klass == GIT_ERROR_INVALID))) {
    return Status::Unavailable(message);
  }
  return Status::Internal(message);  // the mirror on disk: recovered by cloning afresh
}

}  // namespace flotilla::source::libgit2
