#include "reconciler/source/manifest_source.h"

#include <utility>

namespace flotilla::source {

manifest::ParsedFile ParseCache::Get(const manifest::ManifestLoader& loader,
                                     const std::string& blob_id, const std::string& display,
                                     const std::string& content, manifest::DocumentBudget& budget) {
  // The same blob under another name parses again: messages must name the right file.
  const std::string key = blob_id + " " + display;
  auto it = entries_.find(key);
  if (it != entries_.end() && budget.used + it->second.parsed.documents <= budget.limit) {
    it->second.used = true;
    budget.used += it->second.parsed.documents;
    return it->second.parsed;  // documents are shared, not copied
  }
  // Not seen, or it would go over the document limit: parse, so that the limit is reported
  // exactly as without a cache. A parse the limit cut short is not kept.
  ++parses_;
  const size_t refused_before = budget.refused;
  manifest::ParsedFile parsed = loader.ParseFile({display, content}, budget);
  if (budget.refused == refused_before) {
    entries_[key] = Entry{parsed, true};
  }
  return parsed;
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
  const std::string at = "@" + sha->substr(0, 7);  // appended once, after assembly
  manifest::DocumentBudget budget{.limit = loader.options().max_documents};
  std::vector<manifest::ParsedFile> parsed;
  manifest::Diagnostics limits;
  for (const TreeFile& file : *files) {
    if (!file.loaded || file.size > loader.options().max_file_bytes) {
      limits.Error({file.path, 0, 0},
                   manifest::FileTooLargeMessage(file.size, loader.options().max_file_bytes));
      continue;
    }
    parsed.push_back(cache.Get(loader, file.blob_id, file.path, file.content, budget));
  }
  cache.Trim();
  manifest::LoadResult result = loader.Assemble(std::move(parsed));
  result.files = files->size();
  result.diagnostics.Append(limits);
  result.diagnostics.Append(tree_diagnostics);
  std::vector<std::string> paths;
  for (const TreeFile& file : *files) {
    paths.push_back(file.path);
  }
  manifest::AppendToFileNames(result, at, paths);
  return result;
}

}  // namespace flotilla::source
