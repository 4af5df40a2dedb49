#include "reconciler/cli/repository.h"

#include <unistd.h>

#include <filesystem>

#include "reconciler/source/git_url.h"

namespace flotilla::cli {

void AddRepositoryFlags(CLI::App& cmd, RepositoryOptions& options) {
  cmd.add_option("--mirror-dir", options.mirror_dir,
                 "With a remote --repo: keep the Git mirror here between runs (default: a "
                 "temporary folder)");
  cmd.add_option("--token-file", options.token_file,
                 "With an http(s) --repo: file holding the access token");
  cmd.add_option("--token-env", options.token_env,
                 "With an http(s) --repo: environment variable holding the access token");
  cmd.add_option("--ssh-key-file", options.ssh_key_file, "With an ssh --repo: private key");
  cmd.add_option("--ssh-passphrase-file", options.ssh_passphrase_file,
                 "With an ssh --repo: file holding the private key's passphrase");
  cmd.add_option("--known-hosts-file", options.known_hosts_file,
                 "With an ssh --repo: known_hosts file; the server's key must be in it");
  cmd.add_flag("--insecure-ignore-host-key", options.insecure_ignore_host_key,
               "With an ssh --repo: accept any host key (unsafe; warned about)");
}

TemporaryDirectory::TemporaryDirectory() {
  std::string pattern = (std::filesystem::temp_directory_path() / "flotilla-XXXXXX").string();
  if (mkdtemp(pattern.data()) != nullptr) {
    path_ = pattern;
  }
}

TemporaryDirectory::~TemporaryDirectory() {
  if (!path_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
}

Result<std::unique_ptr<Repository>> Repository::Open(const RepositoryOptions& options,
                                                     const Context& context) {
  source::GitSourceOptions git;
  git.url = options.repo;
  git.branch = "";  // read any revision; follow no branch
  git.auth.token_file = options.token_file;
  git.auth.token_env = options.token_env;
  git.auth.ssh_key_file = options.ssh_key_file;
  git.auth.ssh_passphrase_file = options.ssh_passphrase_file;
  git.auth.known_hosts_file = options.known_hosts_file;
  git.auth.insecure_ignore_host_key = options.insecure_ignore_host_key;
  Result<source::GitUrl> url = source::ParseGitUrl(options.repo);
  if (!url.ok()) {
    return url.status();
  }
  std::unique_ptr<Repository> repository(new Repository());
  if (url->IsRemote()) {
    if (options.mirror_dir.empty()) {
      repository->scratch_.emplace();
      git.state_dir = repository->scratch_->path();
    } else {
      git.state_dir = options.mirror_dir;
    }
  }
  Result<std::unique_ptr<source::GitSource>> opened = source::OpenGitSource(git);
  if (!opened.ok()) {
    return opened.status();
  }
  repository->git_ = std::move(*opened);
  if (url->IsRemote()) {
    Result<source::FetchResult> fetched = repository->git_->Fetch();
    if (!fetched.ok()) {
      return fetched.status();
    }
    for (const std::string& warning : fetched->warnings) {
      context.log->warn("{}", warning);
    }
    context.log->debug("fetched {}", url->redacted);
  }
  return repository;
}

Result<manifest::LoadResult> Repository::Load(const std::string& rev, const std::string& path,
                                              const manifest::ManifestLoader& loader) {
  return source::LoadRevision(*git_, rev, path, loader, cache_);
}

Result<manifest::LoadResult> LoadManifests(const std::string& path, const RepositoryOptions& git,
                                           const std::string& rev, const std::string& repo_path,
                                           const manifest::ManifestLoader& loader,
                                           const Context& context) {
  if (git.repo.empty()) {
    return loader.LoadPath(path, path);
  }
  Result<std::unique_ptr<Repository>> repo = Repository::Open(git, context);
  if (!repo.ok()) {
    return repo.status();
  }
  return (*repo)->Load(rev, repo_path, loader);
}

}  // namespace flotilla::cli
