#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "reconciler/manifest/diagnostics.h"
#include "reconciler/manifest/schema_validator.h"
#include "reconciler/manifest/semantic.h"
#include "reconciler/model/result.h"
#include "reconciler/model/types.h"

namespace flotilla::manifest {

// The manifest-folder rules every reader applies, on disk and in Git trees: files named *.yaml
// or *.yml are manifests; a name starting with '.' (.git, .github) is skipped with everything
// below it.
bool IsManifestFileName(std::string_view name);
bool IsHiddenName(std::string_view name);

struct LoadOptions {
  // A file larger than this is refused (manifests are small; this stops a stray disk image).
  size_t max_file_bytes = 1 << 20;
  // At most this many documents in one repository.
  size_t max_documents = 10'000;
  // Files are parsed and validated on this many threads (0: DefaultThreads(), the machine's
  // cores). Results and diagnostics do not depend on it.
  size_t threads = 0;
};

// The text of one manifest file and the name it is shown under in messages
// ("fleet/pools.yaml", or "fleet/pools.yaml@1a2b3c4" when read from Git).
struct ManifestFile {
  std::string display_path;
  std::string content;
};

// What one file holds: decoded objects with their documents, and the problems found in them.
// Depends only on the file's content and display path, so callers may cache it by content.
struct ParsedFile {
  std::vector<Declared<HostPool>> pools;
  std::vector<Declared<VMSet>> sets;
  InvalidNames invalid;
  Diagnostics diagnostics;
  size_t documents = 0;
};

// One file parsed on a document budget of its own (ManifestLoader::ParseAlone).
struct ParsedAlone {
  ParsedFile parsed;
  size_t used = 0;       // documents read: what the file draws from a budget
  bool refused = false;  // the file on its own holds more documents than the limit
};

// "file is N bytes; manifest files may be at most LIMIT bytes"
std::string FileTooLargeMessage(uintmax_t size, size_t limit);

struct LoadResult {
  Desired desired;  // normalised; holds only objects that passed their schema
  Diagnostics diagnostics;
  size_t files = 0;
  size_t documents = 0;

  bool ok() const { return !diagnostics.HasErrors(); }
};

// Appends `suffix` to the file name of every diagnostic and origin ("@1a2b3c4" for a revision),
// and to the `files` named as places inside messages, so that parsed files can be cached under
// their path alone.
void AppendToFileNames(LoadResult& result, const std::string& suffix,
                       const std::vector<std::string>& files);

// Reads manifests: YAML -> JSON (with positions) -> schema -> model -> cross-document checks.
// Every problem is collected; nothing stops at the first. Thread-safety: const methods may be
// called concurrently.
class ManifestLoader {
 public:
  ManifestLoader(std::shared_ptr<const SchemaValidator> validator, LoadOptions options = {});

  // Loads `root`: a single file, or every *.yaml / *.yml below a directory, recursively, in
  // sorted order. Names starting with '.' (.git, .github) are skipped. Symlinks to files inside
  // `root` are read; symlinks that lead outside are refused; symlinked directories are not
  // followed (warning). Paths in messages are `display_root` joined with the path below root.
  // Errors: NotFound if `root` does not exist; problems inside files are diagnostics.
  Result<LoadResult> LoadPath(const std::filesystem::path& root,
                              const std::string& display_root) const;

  // Loads files already in memory (e.g. read from a Git tree).
  LoadResult LoadFiles(const std::vector<ManifestFile>& files) const;

  // One file on its own, drawing its documents from `budget`.
  ParsedFile ParseFile(const ManifestFile& file, DocumentBudget& budget) const;

  // Parses every file on a budget of its own (options().max_documents), on options().threads
  // threads; results in the order of `files`. With TakeOrParse, files are parsed in parallel
  // and still give exactly what ParseFile one after another would.
  std::vector<ParsedAlone> ParseAlone(const std::vector<const ManifestFile*>& files) const;

  // `alone`'s result when its documents fit in what is left of `budget` (drawing them from
  // it), else ParseFile(file, budget): the same as ParseFile(file, budget) either way.
  ParsedFile TakeOrParse(ParsedAlone alone, const ManifestFile& file, DocumentBudget& budget) const;

  // Cross-document checks over parsed files, then normalisation. With `memo`, only what the
  // files that changed since the last call can affect is checked again (CheckMemo); the
  // result is the same.
  LoadResult Assemble(std::vector<ParsedFile> files, CheckMemo* memo = nullptr) const;
  // The same over files kept elsewhere (a parse cache): each object is copied once, straight
  // into place, and the files are left as they were.
  LoadResult Assemble(const std::vector<std::shared_ptr<const ParsedFile>>& files,
                      CheckMemo* memo = nullptr) const;

  const LoadOptions& options() const { return options_; }

 private:
  std::shared_ptr<const SchemaValidator> validator_;
  LoadOptions options_;
};

}  // namespace flotilla::manifest
