#pragma once

#include <map>
#include <string>
#include <string_view>

#include "reconciler/manifest/loader.h"
#include "reconciler/source/git_source.h"

namespace flotilla::source {

// Parsed manifest files by blob id: loading a new revision parses only the blobs that changed.
// Not thread-safe.
class ParseCache {
 public:
  // The parsed form of `blob_id` shown as `display`, parsing `content` only when that pair has
  // not been seen. Copies are cheap: parsed documents are shared.
  manifest::ParsedFile Get(const manifest::ManifestLoader& loader, const std::string& blob_id,
                           const std::string& display, const std::string& content,
                           manifest::DocumentBudget& budget);

  // Drops entries not used since the last call, so the cache holds one revision's blobs.
  void Trim();

  size_t parses() const { return parses_; }  // blobs parsed since construction
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    manifest::ParsedFile parsed;
    bool used = false;
  };
  std::map<std::string, Entry> entries_;
  size_t parses_ = 0;
};

// Loads the manifests below `path` at revision `rev` straight from the repository: no
// checkout. Messages name files "<path>@<short-sha>", e.g. "fleet/pools.yaml@1a2b3c4:12:5".
// Errors: those of Resolve and ReadTree; problems inside the files are diagnostics.
Result<manifest::LoadResult> LoadRevision(GitSource& git, std::string_view rev,
                                          std::string_view path,
                                          const manifest::ManifestLoader& loader,
                                          ParseCache& cache);

}  // namespace flotilla::source
