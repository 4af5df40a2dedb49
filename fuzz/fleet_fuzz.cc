// A fleet of several files loaded as from Git (reconciler/source/manifest_source.h
// LoadRevision over an in-memory GitSource, with a ParseCache), as `flotilla run` loads each
// revision. The input is split into files at lines "#file PATH" (a YAML comment); text before
// the first such line is "fleet/fleet.yaml". Files larger than 2 KiB are listed but not loaded,
// as ReadTree does with large blobs; hidden and non-YAML names are skipped as ReadTree skips them.
// Invariants: no crash, no sanitizer report; every diagnostic names one of the files (at the
// revision) and, unless about a whole file, a line >= 1; loading the same revision again through
// the warm cache gives the same diagnostics and objects (by name and origin).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/invariants.h"
#include "providers/builtin.h"
#include "reconciler/manifest/loader.h"
#include "reconciler/source/manifest_source.h"
#include "tests/support/memory_git.h"

namespace {

using flotilla::Result;
using flotilla::fuzz::Check;
namespace manifest = flotilla::manifest;
namespace source = flotilla::source;

constexpr size_t kMaxFileBytes = 2048;
constexpr std::string_view kSha = "0123456789abcdef0123456789abcdef01234567";

const manifest::ManifestLoader& Loader() {
  static const auto* loader = [] {
    auto validator = manifest::SchemaValidator::Create(flotilla::providers::BuiltinRules());
    Check(validator.ok(), "the schemas do not load");
    return new manifest::ManifestLoader(*validator, {.max_file_bytes = kMaxFileBytes});
  }();
  return *loader;
}

bool Listed(std::string_view path) {
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view name = path.substr(start, slash - start);
    if (name.empty() || manifest::IsHiddenName(name)) {
      return false;
    }
    if (slash == std::string_view::npos) {
      return manifest::IsManifestFileName(name);
    }
    start = slash + 1;
  }
}

std::vector<source::TreeFile> Split(std::string_view input) {
  std::vector<source::TreeFile> files;
  std::string path = "fleet/fleet.yaml";
  std::string content;
  std::set<std::string> seen;
  auto flush = [&] {
    if (Listed(path) && seen.insert(path).second && files.size() < 16) {
      source::TreeFile file{
          .path = path, .blob_id = std::to_string(files.size()), .size = content.size()};
      file.loaded = content.size() <= kMaxFileBytes;
      if (file.loaded) {
        file.content = content;
      }
      files.push_back(std::move(file));
    }
    content.clear();
  };
  while (!input.empty()) {
    const size_t end = input.find('\n');
    const std::string_view line =
        input.substr(0, end == std::string_view::npos ? input.size() : end + 1);
    input.remove_prefix(line.size());
    if (line.starts_with("#file ")) {
      flush();
      path = "fleet/" + std::string(line.substr(6, line.find_last_not_of("\r\n") - 5));
    } else {
      content += line;
    }
  }
  flush();
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return files;
}

std::vector<std::string> Lines(const manifest::LoadResult& result) {
  std::vector<std::string> lines;
  for (const manifest::Diagnostic& d : result.diagnostics.Sorted()) {
    lines.push_back(d.ToString());
  }
  return lines;
}

std::vector<std::string> Names(const flotilla::Desired& desired) {
  std::vector<std::string> names;
  for (const flotilla::HostPool& pool : desired.pools) {
    names.push_back("pool " + pool.meta.name + " " + pool.meta.origin.ToString());
  }
  for (const flotilla::VMSet& set : desired.sets) {
    names.push_back("set " + set.meta.name + " " + set.meta.origin.ToString());
  }
  return names;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<source::TreeFile> files =
      Split(std::string_view(reinterpret_cast<const char*>(data), size));
  std::vector<std::string> names;
  for (const source::TreeFile& f : files) {
    names.push_back(f.path + "@" + std::string(kSha.substr(0, 7)));
  }
  flotilla::testing::MemoryGit git(std::move(files), std::string(kSha));
  source::ParseCache cache;
  Result<manifest::LoadResult> cold = source::LoadRevision(git, "main", "fleet", Loader(), cache);
  Check(cold.ok(), "an in-memory revision did not load");
  flotilla::fuzz::CheckLocated(cold->diagnostics, names);
  Check(cold->ok() == (cold->diagnostics.error_count() == 0), "ok() and the errors disagree");

  Result<manifest::LoadResult> warm = source::LoadRevision(git, "main", "fleet", Loader(), cache);
  Check(warm.ok(), "a cached revision did not load");
  Check(Lines(*warm) == Lines(*cold), "the cache changed the diagnostics");
  // Names, not whole objects: settings may hold a NaN, which equals nothing.
  Check(Names(warm->desired) == Names(cold->desired), "the cache changed the objects");
  return 0;
}
