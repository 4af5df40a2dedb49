#include "reconciler/source/manifest_source.h"

#include <utility>

namespace flotilla::source {

ParseCache::Entry* ParseCache::Find(const std::string& blob_id, const std::string& display) {
  auto it = entries_.find(display);
  return it != entries_.end() && it->second.blob_id == blob_id ? &it->second : nullptr;
}

manifest::ParsedFile ParseCache::Get(const manifest::ManifestLoader& loader,
                                     const std::string& blob_id, const std::string& display,
                                     const std::string& content, manifest::DocumentBudget& budget) {
  return *GetShared(loader, blob_id, display, content, budget);
}

std::shared_ptr<const manifest::ParsedFile> ParseCache::GetShared(
    const manifest::ManifestLoader& loader, const std::string& blob_id, const std::string& display,
    const std::string& content, manifest::DocumentBudget& budget) {
  // The same blob under another name parses again: messages must name the right file.
  Entry* entry = Find(blob_id, display);
  if (entry != nullptr && budget.used + entry->parsed->documents <= budget.limit) {
    entry->used = true;
    budget.used += entry->parsed->documents;
    return entry->parsed;
  }
  // Not seen, or it would go over the document limit: parse, so that the limit is reported
  // exactly as without a cache. A parse the limit cut short is not kept. `content` may be the
  // entry's own (GetAll): it is read before the entry is replaced.
  ++parses_;
  const size_t refused_before = budget.refused;
  auto parsed =
      std::make_shared<const manifest::ParsedFile>(loader.ParseFile({display, content}, budget));
  if (budget.refused == refused_before) {
    std::string kept = content;
    entries_[display] = Entry{blob_id, parsed, std::move(kept), true};
  }
  return parsed;
}

std::vector<std::shared_ptr<const manifest::ParsedFile>> ParseCache::GetAll(
    const manifest::ManifestLoader& loader, const std::vector<const TreeFile*>& files,
    manifest::DocumentBudget& budget) {
  constexpr size_t kSeen = static_cast<size_t>(-1);
  std::vector<manifest::ManifestFile> fresh;
  std::vector<size_t> fresh_index(files.size(), kSeen);
  // One lookup per file; entries are nodes, so the pointers outlive the inserts below.
  std::vector<Entry*> seen(files.size(), nullptr);
  for (size_t i = 0; i < files.size(); ++i) {
    seen[i] = Find(files[i]->blob_id, files[i]->path);
    if (seen[i] == nullptr) {
      fresh_index[i] = fresh.size();
      fresh.push_back({files[i]->path, files[i]->content});
    }
  }
  std::vector<const manifest::ManifestFile*> to_parse;
  to_parse.reserve(fresh.size());
  for (const manifest::ManifestFile& file : fresh) {
    to_parse.push_back(&file);
  }
  std::vector<manifest::ParsedAlone> alone = loader.ParseAlone(to_parse);
  std::vector<std::shared_ptr<const manifest::ParsedFile>> out;
  out.reserve(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    const TreeFile& file = *files[i];
    if (fresh_index[i] != kSeen) {
      manifest::ParsedAlone& parsed = alone[fresh_index[i]];
      if (!parsed.refused && budget.used + parsed.used <= budget.limit) {
        // What Get would parse, with the same budget: the file's documents fit.
        budget.used += parsed.used;
        ++parses_;
        auto shared = std::make_shared<const manifest::ParsedFile>(std::move(parsed.parsed));
        // The copy made for parsing is kept: nothing reads `fresh` after ParseAlone.
        entries_[file.path] =
            Entry{file.blob_id, shared, std::move(fresh[fresh_index[i]].content), true};
        out.push_back(std::move(shared));
        continue;
      }
    }
    Entry* entry = seen[i];
    if (entry != nullptr && budget.used + entry->parsed->documents <= budget.limit) {
      // Get's hit, without looking the file up again.
      entry->used = true;
      budget.used += entry->parsed->documents;
      out.push_back(entry->parsed);
    } else if (file.known && entry != nullptr) {
      // Not read from the tree: the content kept with the parse stands in (the entry names it).
      out.push_back(GetShared(loader, file.blob_id, file.path, entry->content, budget));
    } else {
      out.push_back(GetShared(loader, file.blob_id, file.path, file.content, budget));
    }
  }
  return out;
}

bool ParseCache::Has(const std::string& blob_id, const std::string& display) const {
  auto it = entries_.find(display);
  return it != entries_.end() && it->second.blob_id == blob_id;
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
  // Blobs parsed for an earlier revision are not read again.
  const KnownBlob known = [&cache](const std::string& blob_id, const std::string& file) {
    return cache.Has(blob_id, file);
  };
  Result<std::vector<TreeFile>> files = git.ReadTreeSkipping(*sha, path, known, tree_diagnostics);
  if (!files.ok()) {
    return files.status();
  }
  const std::string at = "@" + sha->substr(0, 7);  // appended once, after assembly
  manifest::DocumentBudget budget{.limit = loader.options().max_documents};
  std::vector<const TreeFile*> readable;
  manifest::Diagnostics limits;
  for (const TreeFile& file : *files) {
    if (file.known) {
      readable.push_back(&file);  // kept by the cache, so it was within the limit
      continue;
    }
    if (!file.loaded || file.size > loader.options().max_file_bytes) {
      limits.Error({file.path, 0, 0},
                   manifest::FileTooLargeMessage(file.size, loader.options().max_file_bytes));
      continue;
    }
    readable.push_back(&file);
  }
  std::vector<std::shared_ptr<const manifest::ParsedFile>> parsed =
      cache.GetAll(loader, readable, budget);
  cache.Trim();
  manifest::LoadResult result = loader.Assemble(parsed, &cache.memo());
  result.files = files->size();
  result.diagnostics.Append(limits);
  result.diagnostics.Append(tree_diagnostics);
  std::vector<std::string> paths;  // only messages name other files
  if (!result.diagnostics.empty()) {
    paths.reserve(files->size());
    for (const TreeFile& file : *files) {
      paths.push_back(file.path);
    }
  }
  manifest::AppendToFileNames(result, at, paths);
  return result;
}

}  // namespace flotilla::source
