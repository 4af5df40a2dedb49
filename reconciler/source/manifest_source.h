#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "reconciler/manifest/loader.h"
#include "reconciler/source/git_source.h"

namespace flotilla::source {

// Parsed manifest files by blob id: loading a new revision parses only the blobs that changed
// (on the loader's threads), and checks again across files only what they can affect.
// Not thread-safe.
class ParseCache {
 public:
  // The parsed form of `blob_id` shown as `display`, parsing `content` only when that pair has
  // not been seen. Copies are cheap: parsed documents are shared.
  manifest::ParsedFile Get(const manifest::ManifestLoader& loader, const std::string& blob_id,
                           const std::string& display, const std::string& content,
                           manifest::DocumentBudget& budget);

  // Whether Get has `blob_id` shown as `display` (so its content need not be read again).
  bool Has(const std::string& blob_id, const std::string& display) const;

  // Get for every file of a tree, in order: the blobs not seen are parsed first, on the
  // loader's threads, and the result is exactly what Get one file after another gives, shared
  // with the cache rather than copied. A file read with `known` (ReadTreeSkipping) is one Has
  // named: its size and content come from here.
  std::vector<std::shared_ptr<const manifest::ParsedFile>> GetAll(
      const manifest::ManifestLoader& loader, const std::vector<const TreeFile*>& files,
      manifest::DocumentBudget& budget);

  // Drops entries not used since the last call, so the cache holds one revision's blobs.
  void Trim();

  size_t parses() const { return parses_; }  // blobs parsed since construction
  size_t size() const { return entries_.size(); }

  // What the cross-file checks of the last revision found, for the next (see CheckMemo).
  manifest::CheckMemo& memo() { return memo_; }

 private:
  struct Entry {
    std::string blob_id;  // what the file held when parsed
    std::shared_ptr<const manifest::ParsedFile> parsed;
    std::string content;  // parsed again if a later revision's document limit cuts it short
    bool used = false;
  };
  // The entry for `display` if it holds `blob_id`, else null.
  Entry* Find(const std::string& blob_id, const std::string& display);
  // Get, shared with the cache.
  std::shared_ptr<const manifest::ParsedFile> GetShared(const manifest::ManifestLoader& loader,
                                                        const std::string& blob_id,
                                                        const std::string& display,
                                                        const std::string& content,
                                                        manifest::DocumentBudget& budget);
  // By file name: a tree holds one blob per name, and a name's new blob replaces its old one
  // (which the next Trim would drop). No key is built per file and lookup.
  std::unordered_map<std::string, Entry> entries_;
  size_t parses_ = 0;
  manifest::CheckMemo memo_;
};

// Loads the manifests below `path` at revision `rev` straight from the repository: no
// checkout. Messages name files "<path>@<short-sha>", e.g. "fleet/pools.yaml@1a2b3c4:12:5".
// Errors: those of Resolve and ReadTree; problems inside the files are diagnostics.
Result<manifest::LoadResult> LoadRevision(GitSource& git, std::string_view rev,
                                          std::string_view path,
                                          const manifest::ManifestLoader& loader,
                                          ParseCache& cache);

}  // namespace flotilla::source
