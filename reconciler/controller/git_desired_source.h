#pragma once

// Desired state from the fleet's Git repository (config `source`): a bare mirror under
// <stateDir>/git for remote URLs, the repository itself for a local path.

#include <memory>
#include <string>
#include <vector>

#include "reconciler/controller/controller.h"
#include "reconciler/manifest/config.h"
#include "reconciler/source/git_source.h"
#include "reconciler/source/manifest_source.h"

namespace flotilla::controller {

class GitDesiredSource final : public DesiredSource {
 public:
  // Opens (does not fetch) the repository of `config.source`. `loader` must outlive this.
  static Result<std::unique_ptr<GitDesiredSource>> Open(const manifest::ReconcilerConfig& config,
                                                        const manifest::ManifestLoader& loader);

  Result<std::string> Poll() override;
  Result<manifest::LoadResult> Load(const std::string& sha) override;
  std::string Describe() const override { return description_; }
  std::vector<std::string> TakeWarnings() override;
  std::optional<CommitSummary> Commit(const std::string& sha) override;

 private:
  GitDesiredSource(const manifest::ReconcilerConfig& config, const manifest::ManifestLoader& loader,
                   std::unique_ptr<source::GitSource> git, std::string description)
      : source_(config.source),
        loader_(loader),
        git_(std::move(git)),
        description_(std::move(description)) {}

  manifest::ReconcilerConfig::Source source_;
  const manifest::ManifestLoader& loader_;
  std::unique_ptr<source::GitSource> git_;
  source::ParseCache cache_;
  std::string description_;
  std::vector<std::string> warnings_;  // of fetches since the last TakeWarnings
};

}  // namespace flotilla::controller
