#include "reconciler/controller/git_desired_source.h"

#include <utility>

#include "reconciler/source/git_url.h"

namespace flotilla::controller {

Result<std::unique_ptr<GitDesiredSource>> GitDesiredSource::Open(
    const manifest::ReconcilerConfig& config, const manifest::ManifestLoader& loader) {
  if (config.source.url.empty()) {
    return Status::InvalidArgument(
        "no fleet repository configured: set source.url in the configuration file");
  }
  Result<source::GitUrl> url = source::ParseGitUrl(config.source.url);
  if (!url.ok()) {
    return url.status();
  }
  source::GitSourceOptions options;
  options.url = config.source.url;
  options.branch = config.source.revision.empty() ? config.source.branch : "";
  if (url->IsRemote()) {
    options.state_dir = config.state_dir;
  }
  options.auth.token_file = config.source.token_file;
  options.auth.token_env = config.source.token_env;
  options.auth.username = config.source.username;
  options.auth.ssh_key_file = config.source.ssh_key_file;
  options.auth.ssh_passphrase_file = config.source.ssh_passphrase_file;
  options.auth.known_hosts_file = config.source.known_hosts_file;
  options.auth.insecure_ignore_host_key = config.source.insecure_ignore_host_key;
  options.allowed_signers_file = config.source.allowed_signers_file;
  Result<std::unique_ptr<source::GitSource>> git = source::OpenGitSource(options);
  if (!git.ok()) {
    return git.status();
  }
  std::string description =
      url->redacted + " (" +
      (config.source.revision.empty() ? "branch " + config.source.branch
                                      : "revision " + config.source.revision) +
      (config.source.path.empty() ? "" : ", path " + config.source.path) + ")";
  return std::unique_ptr<GitDesiredSource>(
      new GitDesiredSource(config, loader, std::move(*git), std::move(description)));
}

Result<std::string> GitDesiredSource::Poll() {
  Result<source::FetchResult> fetched = git_->Fetch();
  if (!fetched.ok()) {
    return fetched.status();
  }
  warnings_.insert(warnings_.end(), fetched->warnings.begin(), fetched->warnings.end());
  Result<std::string> sha =
      git_->Resolve(source_.revision.empty() ? source_.branch : source_.revision);
  if (!sha.ok()) {
    return sha;
  }
  // source.verify holds for every revision that can be applied: a pinned one and a repository
  // read in place too, not only a fetched branch tip.
  if (Status verified = git_->VerifyCommit(*sha); !verified.ok()) {
    return verified;
  }
  return sha;
}

std::vector<std::string> GitDesiredSource::TakeWarnings() { return std::exchange(warnings_, {}); }

std::optional<CommitSummary> GitDesiredSource::Commit(const std::string& sha) {
  Result<source::CommitInfo> info = git_->Commit(sha);
  if (!info.ok()) {
    return std::nullopt;
  }
  return CommitSummary{
      .sha = info->sha, .subject = info->subject, .author = info->author, .time = info->time};
}

Result<manifest::LoadResult> GitDesiredSource::Load(const std::string& sha) {
  return source::LoadRevision(*git_, sha, source_.path, loader_, cache_);
}

}  // namespace flotilla::controller
