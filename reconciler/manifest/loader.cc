#include "reconciler/manifest/loader.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>
#include <utility>

#include "reconciler/manifest/decode.h"
#include "reconciler/manifest/worker_pool.h"
#include "reconciler/model/normalize.h"

namespace flotilla::manifest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kApiVersion = "flotilla.dev/v1";

struct Kind {
  std::string_view name;
  std::string_view schema;
};
constexpr std::array<Kind, 2> kKinds = {{
    {"HostPool", "hostpool.v1.json"},
    {"VMSet", "vmset.v1.json"},
}};

bool IsManifestName(const fs::path& path) { return IsManifestFileName(path.filename().string()); }

bool IsHidden(const fs::path& path) { return IsHiddenName(path.filename().string()); }

// True when `target` is `root` or lies below it. Both canonical.
bool IsWithin(const fs::path& target, const fs::path& root) {
  auto [root_end, unused] = std::mismatch(root.begin(), root.end(), target.begin(), target.end());
  return root_end == root.end();
}

// Finds the manifest files below a root, then reads each real file once: a file reached both
// directly and through a symlink (or through two symlinks) is read under its own name.
class FileCollector {
 public:
  FileCollector(const fs::path& root, const std::string& display_root, const LoadOptions& options,
                Diagnostics& diagnostics)
      : display_root_(display_root), options_(options), diagnostics_(diagnostics) {
    std::error_code ec;
    canonical_root_ = fs::canonical(root, ec);
  }

  void Walk(const fs::path& dir, const fs::path& relative) {
    std::error_code ec;
    std::vector<fs::directory_entry> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      entries.push_back(*it);
    }
    if (ec) {
      diagnostics_.Error({Display(relative), 0, 0}, "cannot read directory: " + ec.message());
      return;
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.path().filename() < b.path().filename();
    });
    for (const fs::directory_entry& entry : entries) {
      const fs::path rel = relative / entry.path().filename();
      if (IsHidden(entry.path())) {
        continue;
      }
      if (entry.is_symlink(ec)) {
        FollowLink(entry.path(), rel);
      } else if (entry.is_directory(ec)) {
        Walk(entry.path(), rel);
      } else if (entry.is_regular_file(ec) && IsManifestName(entry.path())) {
        Add(entry.path(), rel, /*via_link=*/false);
      }
    }
  }

  // A single file named by the user.
  void AddRoot(const fs::path& path) { Add(path, {}, false); }

  // Reads every file found, once per real file, in the order found.
  std::vector<ManifestFile> Read() {
    std::map<fs::path, const Candidate*> chosen;
    for (const Candidate& c : candidates_) {
      auto [it, inserted] = chosen.emplace(c.real, &c);
      if (!inserted && it->second->via_link && !c.via_link) {
        it->second = &c;  // prefer the file's own name to a link's
      }
    }
    std::vector<ManifestFile> files;
    for (const Candidate& c : candidates_) {
      if (chosen[c.real] == &c) {
        ReadOne(c, files);
      }
    }
    return files;
  }

 private:
  struct Candidate {
    fs::path real;      // canonical
    fs::path relative;  // below the root, as found
    bool via_link = false;
  };

  void Add(const fs::path& path, const fs::path& relative, bool via_link) {
    std::error_code ec;
    fs::path real = fs::canonical(path, ec);
    candidates_.push_back({ec ? path : real, relative, via_link});
  }

  void ReadOne(const Candidate& c, std::vector<ManifestFile>& files) {
    const std::string shown = Display(c.relative);
    std::error_code ec;
    const uintmax_t size = fs::file_size(c.real, ec);
    if (ec) {
      diagnostics_.Error({shown, 0, 0}, "cannot read file: " + ec.message());
      return;
    }
    if (size > options_.max_file_bytes) {
      diagnostics_.Error({shown, 0, 0}, FileTooLargeMessage(size, options_.max_file_bytes));
      return;
    }
    std::ifstream in(c.real, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    if (!in.good() && !in.eof()) {
      diagnostics_.Error({shown, 0, 0}, "cannot read file");
      return;
    }
    files.push_back({shown, content.str()});
  }

  std::string Display(const fs::path& relative) const {
    if (relative.empty()) {
      return display_root_;
    }
    return (fs::path(display_root_) / relative).lexically_normal().generic_string();
  }

  void FollowLink(const fs::path& link, const fs::path& relative) {
    std::error_code ec;
    const fs::path target = fs::canonical(link, ec);
    const std::string shown = Display(relative);
    if (ec) {
      diagnostics_.Error({shown, 0, 0}, "broken symlink: " + ec.message());
      return;
    }
    if (!IsWithin(target, canonical_root_)) {
      diagnostics_.Error({shown, 0, 0},
                         "symlink points outside the manifest directory; refusing to read it");
      return;
    }
    if (fs::is_directory(target, ec)) {
      diagnostics_.Warning({shown, 0, 0},
                           "symlinked directory not followed; its manifests are read where "
                           "they really are");
      return;
    }
    if (IsManifestName(relative)) {
      Add(target, relative, /*via_link=*/true);
    }
  }

  fs::path canonical_root_;
  std::string display_root_;
  const LoadOptions& options_;
  Diagnostics& diagnostics_;
  std::vector<Candidate> candidates_;
};

// Moves the objects of `from` into `to` stably sorted by name, as Normalize(Desired) sorts.
template <typename T>
void MoveSortedByName(std::vector<Declared<T>>& from, std::vector<T>& to) {
  auto by_name = [&](size_t a, size_t b) {
    return from[a].object.meta.name < from[b].object.meta.name;
  };
  to.reserve(to.size() + from.size());
  // Files are often named after their objects: in order already, nothing to sort.
  bool sorted = true;
  for (size_t i = 1; i < from.size() && sorted; ++i) {
    sorted = !by_name(i, i - 1);
  }
  if (sorted) {
    for (Declared<T>& declared : from) {
      to.push_back(std::move(declared.object));
    }
    return;
  }
  std::vector<size_t> order(from.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  std::stable_sort(order.begin(), order.end(), by_name);
  for (size_t i : order) {
    to.push_back(std::move(from[i].object));
  }
}

std::vector<std::string> KindNames() {
  std::vector<std::string> names;
  for (const Kind& k : kKinds) {
    names.emplace_back(k.name);
  }
  return names;
}

// A document with no apiVersion or kind and the keys of flotilla.yaml: the configuration file,
// found among the manifests (a folder, or a repository's root).
bool IsConfigurationFile(const YamlDocument& doc) {
  if (!doc.value.is_object() || doc.value.contains("apiVersion") || doc.value.contains("kind")) {
    return false;
  }
  for (const char* key : {"source", "stateDir", "secretsDir", "reconcile", "api", "log", "store"}) {
    if (doc.value.contains(key)) {
      return true;
    }
  }
  return false;
}

// Checks apiVersion and kind; returns the kind's schema, or empty after reporting why not.
std::string_view SchemaFor(const YamlDocument& doc, Diagnostics& diagnostics) {
  if (!doc.value.is_object()) {
    diagnostics.Error(doc.ValueLocation(""),
                      "a manifest must be a mapping with apiVersion, kind, metadata and spec");
    return {};
  }
  const auto api = doc.value.find("apiVersion");
  if (api == doc.value.end()) {
    diagnostics.Error(
        doc.ValueLocation(""),
        "missing apiVersion; Flotilla manifests start with apiVersion: " + std::string(kApiVersion),
        "/apiVersion");
    return {};
  }
  if (!api->is_string() || api->get<std::string>() != kApiVersion) {
    const std::string shown = api->is_string() ? api->get<std::string>() : api->dump();
    const bool ours = shown.rfind("flotilla.dev/", 0) == 0;
    diagnostics.Error(
        doc.ValueLocation("/apiVersion"),
        ours ? "apiVersion \"" + shown + "\" is not supported by this flotilla; use " +
                   std::string(kApiVersion)
             : "apiVersion \"" + shown + "\" is not a Flotilla manifest (expected " +
                   std::string(kApiVersion) + "); keep other files out of the manifest folder",
        "/apiVersion");
    return {};
  }
  const auto kind = doc.value.find("kind");
  if (kind == doc.value.end() || !kind->is_string()) {
    diagnostics.Error(doc.ValueLocation(kind == doc.value.end() ? "" : "/kind"),
                      "missing kind; one of " + Join(KindNames()), "/kind");
    return {};
  }
  const std::string name = kind->get<std::string>();
  for (const Kind& k : kKinds) {
    if (k.name == name) {
      return k.schema;
    }
  }
  std::string message = "unknown kind \"" + name + "\"";
  const std::string guess = ClosestMatch(name, KindNames());
  message +=
      guess.empty() ? " (kinds: " + Join(KindNames()) + ")" : "; did you mean \"" + guess + "\"?";
  diagnostics.Error(doc.ValueLocation("/kind"), message, "/kind");
  return {};
}

}  // namespace

bool IsManifestFileName(std::string_view name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  return ends_with(".yaml") || ends_with(".yml");
}

bool IsHiddenName(std::string_view name) { return !name.empty() && name[0] == '.'; }

std::string FileTooLargeMessage(uintmax_t size, size_t limit) {
  return "file is " + std::to_string(size) + " bytes; manifest files may be at most " +
         std::to_string(limit) + " bytes";
}

void AppendToFileNames(LoadResult& result, const std::string& suffix,
                       const std::vector<std::string>& files) {
  // Messages that point at another place ("already defined at pools.yaml:7:9") name files too.
  for (size_t i = 0; i < files.size() && !result.diagnostics.empty(); ++i) {
    result.diagnostics.ReplaceInMessages(" at " + files[i] + ":", " at " + files[i] + suffix + ":");
  }
  result.diagnostics.AppendToFileNames(suffix);
  for (HostPool& pool : result.desired.pools) {
    pool.meta.origin.file += suffix;
    for (HostSpec& host : pool.hosts) {
      host.origin.file += suffix;
    }
  }
  for (VMSet& set : result.desired.sets) {
    set.meta.origin.file += suffix;
  }
}

ManifestLoader::ManifestLoader(std::shared_ptr<const SchemaValidator> validator,
                               LoadOptions options)
    : validator_(std::move(validator)), options_(options) {}

Result<LoadResult> ManifestLoader::LoadPath(const fs::path& root,
                                            const std::string& display_root) const {
  std::error_code ec;
  const fs::file_status status = fs::status(root, ec);
  if (ec || !fs::exists(status)) {
    return Status::NotFound("no such file or directory: " + display_root);
  }
  Diagnostics walk_diagnostics;
  FileCollector collector(root, display_root, options_, walk_diagnostics);
  if (fs::is_directory(status)) {
    collector.Walk(root, {});
  } else {
    collector.AddRoot(root);
  }
  LoadResult result = LoadFiles(collector.Read());
  result.diagnostics.Append(walk_diagnostics);
  return result;
}

LoadResult ManifestLoader::LoadFiles(const std::vector<ManifestFile>& files) const {
  std::vector<const ManifestFile*> readable;
  Diagnostics limit;
  for (const ManifestFile& file : files) {
    if (file.content.size() > options_.max_file_bytes) {
      limit.Error({file.display_path, 0, 0},
                  FileTooLargeMessage(file.content.size(), options_.max_file_bytes));
      continue;
    }
    readable.push_back(&file);
  }
  std::vector<ParsedAlone> alone = ParseAlone(readable);
  std::vector<ParsedFile> parsed;
  parsed.reserve(readable.size());
  DocumentBudget budget{.limit = options_.max_documents};
  for (size_t i = 0; i < readable.size(); ++i) {
    parsed.push_back(TakeOrParse(std::move(alone[i]), *readable[i], budget));
  }
  LoadResult result = Assemble(std::move(parsed));
  result.files = files.size();
  result.diagnostics.Append(limit);
  return result;
}

ParsedFile ManifestLoader::ParseFile(const ManifestFile& file, DocumentBudget& budget) const {
  ParsedFile out;
  std::vector<YamlDocument> docs =
      ReadYamlDocuments(file.content, file.display_path, budget, out.diagnostics);
  out.documents = docs.size();
  for (YamlDocument& doc : docs) {
    if (IsConfigurationFile(doc)) {
      out.diagnostics.Warning(doc.ValueLocation(""),
                              "a flotilla configuration file, not a manifest: skipped (commands "
                              "read it with --config)");
      --out.documents;
      continue;
    }
    const std::string_view schema = SchemaFor(doc, out.diagnostics);
    if (schema.empty()) {
      continue;
    }
    const std::set<std::string> secrets = CheckInlineSecrets(doc, out.diagnostics);
    const bool valid = validator_->Validate(schema, doc, out.diagnostics, secrets);
    const bool is_pool = doc.value["kind"] == "HostPool";
    if (!valid || !secrets.empty()) {
      const json* name = doc.value.contains("metadata") && doc.value["metadata"].is_object() &&
                                 doc.value["metadata"].contains("name")
                             ? &doc.value["metadata"]["name"]
                             : nullptr;
      if (is_pool && name != nullptr && name->is_string()) {
        out.invalid.pools.insert(name->get<std::string>());
      }
      continue;
    }
    if (is_pool) {
      HostPool pool = DecodeHostPool(doc, out.diagnostics);
      out.pools.push_back({std::move(pool), std::make_shared<const YamlDocument>(std::move(doc))});
    } else {
      VMSet set = DecodeVMSet(doc, out.diagnostics);
      out.sets.push_back({std::move(set), std::make_shared<const YamlDocument>(std::move(doc))});
    }
  }
  return out;
}

std::vector<ParsedAlone> ManifestLoader::ParseAlone(
    const std::vector<const ManifestFile*>& files) const {
  std::vector<ParsedAlone> out(files.size());
  ParallelFor(files.size(), options_.threads, [&](size_t i) {
    DocumentBudget own{.limit = options_.max_documents};
    out[i].parsed = ParseFile(*files[i], own);
    out[i].used = own.used;
    out[i].refused = own.refused > 0;
  });
  return out;
}

ParsedFile ManifestLoader::TakeOrParse(ParsedAlone alone, const ManifestFile& file,
                                       DocumentBudget& budget) const {
  // ParseFile refuses a document only when the budget is spent; a file that reads `used`
  // documents on its own therefore reads the same with `budget` when they fit.
  if (!alone.refused && budget.used + alone.used <= budget.limit) {
    budget.used += alone.used;
    return std::move(alone.parsed);
  }
  return ParseFile(file, budget);
}

namespace {

// Appends the declared objects `from` to `into` (moved from when `Owned`, else copied), each
// normalised.
template <bool Owned, typename From, typename T>
void AppendNormalized(From& from, std::vector<T>& into) {
  for (auto& declared : from) {
    if constexpr (Owned) {
      into.push_back(std::move(declared));
    } else {
      into.push_back(declared);
    }
    Normalize(into.back().object);
  }
}

// Assemble over owned files (objects moved) or shared ones (objects copied): `file(i)` is the
// i-th file; `Owned` says whether its objects may be moved from.
template <bool Owned, typename FileAt>
LoadResult AssembleFiles(size_t count, FileAt file, const SchemaValidator& validator,
                         CheckMemo* memo) {
  LoadResult result;
  std::vector<Declared<HostPool>> pools;
  std::vector<Declared<VMSet>> sets;
  InvalidNames invalid;
  size_t pool_count = 0;
  size_t set_count = 0;
  for (size_t i = 0; i < count; ++i) {
    pool_count += file(i).pools.size();
    set_count += file(i).sets.size();
  }
  pools.reserve(pool_count);
  sets.reserve(set_count);
  for (size_t i = 0; i < count; ++i) {
    auto& f = file(i);
    result.documents += f.documents;
    result.diagnostics.Append(f.diagnostics);
    invalid.pools.insert(f.invalid.pools.begin(), f.invalid.pools.end());
    AppendNormalized<Owned>(f.pools, pools);
    AppendNormalized<Owned>(f.sets, sets);
  }
  result.files = count;
  CheckFleet(pools, sets, validator.rules(), invalid, result.diagnostics, memo);
  // What Normalize(result.desired) would do: every object is normalised already (above), and
  // the order by name is found on indices, so that each object moves once instead of the
  // stable sort moving 10,000 of them many times over.
  MoveSortedByName(pools, result.desired.pools);
  MoveSortedByName(sets, result.desired.sets);
  return result;
}

}  // namespace

LoadResult ManifestLoader::Assemble(std::vector<ParsedFile> files, CheckMemo* memo) const {
  return AssembleFiles<true>(
      files.size(), [&](size_t i) -> ParsedFile& { return files[i]; }, *validator_, memo);
}

LoadResult ManifestLoader::Assemble(const std::vector<std::shared_ptr<const ParsedFile>>& files,
                                    CheckMemo* memo) const {
  return AssembleFiles<false>(
      files.size(), [&](size_t i) -> const ParsedFile& { return *files[i]; }, *validator_, memo);
}

}  // namespace flotilla::manifest
