#include "reconciler/source/manifest_source.h"

#include <utility>

namespace flotilla::source {

manifest::ParsedFile ParseCache::Get(const manifest::ManifestLoader& loader,
                                     const std::string& blob_id, const std::string& display,
                                     const std::string& content,
                                     manifest::DocumentBudget& budget) {
  auto it = entries_.find(blob_id);
  if (it == entries_.end()) {
    ++parses_;
    Entry entry{loader.ParseFile({display, content}, budget), display, true};
    it = entries_.emplace(blob_id, std::move(entry)).first;
    return it->second.parsed;
  }
  it->second.used = true;
  budget.used += it->second.parsed.documents;
  manifest::ParsedFile copy = it->second.parsed;
  if (it->second.display != display) {
    manifest::Rename(copy, it->second.display, display);
  }
  return copy;
}

void ParseCache::Trim() {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!it->second.used) {
      it = entries_.erase(it);
    } else {
      it->second.used = false;
      ++it;
    }
  }
}

Result<manifest::LoadResult> LoadRevision(GitSource& git, std::string_view rev,
                                          std::string_view path,
                                          const manifest::ManifestLoader& loader,
                                          ParseCache& cache) {
  Result<std::string> sha = git.Resolve(rev);
  if (!sha.ok()) {
    return sha.status();
  }
  manifest::Diagnostics tree_diagnostics;
  Result<std::vector<TreeFile>> files = git.ReadTree(*sha, path, tree_diagnostics);
  if (!files.ok()) {
    return files.status();
  }
  const std::string at = "@" + sha->substr(0, 7);
  manifest::DocumentBudget budget{.limit = loader.options().max_documents};
  std::vector<manifest::ParsedFile> parsed;
  manifest::Diagnostics limits;
  for (const TreeFile& file : *files) {
    const std::string display = file.path + at;
    if (!file.loaded || file.size > loader.options().max_file_bytes) {
      limits.Error({display, 0, 0},
                   manifest::FileTooLargeMessage(file.size, loader.options().max_file_bytes));
      continue;
    }
    parsed.push_back(cache.Get(loader, file.blob_id, display, file.content, budget));
  }
  cache.Trim();
  manifest::LoadResult result = loader.Assemble(std::move(parsed));
  result.files = files->size();
  result.diagnostics.Append(limits);
  for (manifest::Diagnostic d : tree_diagnostics.Sorted()) {
    d.location.file += at;
    result.diagnostics.Add(std::move(d));
  }
  return result;
}

}  // namespace flotilla::source
