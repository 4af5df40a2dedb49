// One manifest file through the whole loader (reconciler/manifest/loader.h LoadFiles: YAML,
// schemas, decoding, cross-document checks, normalisation), with the built-in providers' rules.
// Invariants: no crash, no sanitizer report; every diagnostic names the file and a line >= 1;
// the result is ok exactly when there is no error; every object loaded comes from the file.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz/invariants.h"
#include "providers/builtin.h"
#include "reconciler/manifest/loader.h"

namespace {

using flotilla::fuzz::Check;

const flotilla::manifest::ManifestLoader& Loader() {
  static const auto* loader = [] {
    auto validator =
        flotilla::manifest::SchemaValidator::Create(flotilla::providers::BuiltinRules());
    Check(validator.ok(), "the schemas do not load");
    return new flotilla::manifest::ManifestLoader(*validator);
  }();
  return *loader;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string file = "fleet/fuzz.yaml";
  const flotilla::manifest::LoadResult result =
      Loader().LoadFiles({{file, std::string(reinterpret_cast<const char*>(data), size)}});
  flotilla::fuzz::CheckLocated(result.diagnostics, {file});
  Check(result.ok() == (result.diagnostics.error_count() == 0), "ok() and the errors disagree");
  Check(result.desired.pools.size() + result.desired.sets.size() <= result.documents,
        "more objects than documents");
  for (const flotilla::HostPool& pool : result.desired.pools) {
    Check(pool.meta.origin.file == file && pool.meta.origin.line >= 1, "a pool from nowhere");
  }
  for (const flotilla::VMSet& set : result.desired.sets) {
    Check(set.meta.origin.file == file && set.meta.origin.line >= 1, "a set from nowhere");
  }
  return 0;
}
