#pragma once

// The Parallels DevOps API's wire formats (reference sections 3-6), parsed into provider types.
// Unknown fields are ignored; a missing required field is an error naming it, never a crash.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/provider.h"
#include "reconciler/model/result.h"

namespace flotilla::providers::parallels {

// "8192Mb", "64Gb", "512 MB", "1024" (plain numbers are MB, the service's unit) -> bytes.
// Units b, Kb, Mb, Gb, Tb are powers of 1024, case-insensitive. nullopt on anything else.
std::optional<uint64_t> ParseSize(std::string_view text);

// A ParallelsVM object.
Result<VmInfo> ParseVm(const nlohmann::json& vm);
// A list of ParallelsVM objects, sorted by name.
Result<std::vector<VmInfo>> ParseVmList(const nlohmann::json& list);
// A SystemUsageResponse (GET /config/hardware).
Result<HostFacts> ParseHardware(const nlohmann::json& usage);
// `{"manifests":[{"catalog_id","version",...}]}` (GET /cache) -> sorted "catalog://ID/VERSION".
std::vector<std::string> ParseCachedImages(const nlohmann::json& cache);

struct Job {
  std::string id;
  std::string state;  // init, pending, running, completed, failed, skipped
  int progress = 0;
  std::string error;             // set when failed
  std::string result_record_id;  // the VM id once completed
};
Result<Job> ParseJob(const nlohmann::json& job);

// The `message` (generic errors) or `error_description` (OAuth errors) of an error body; the
// raw text when it is not JSON. Trimmed and cut to 300 characters.
std::string ErrorMessage(std::string_view body);

// "1.0.5" >= "1.0.5"? Compares dotted numbers; a leading 'v' and any suffix after '-' are
// ignored. nullopt if `version` has no number in it.
std::optional<bool> VersionAtLeast(std::string_view version, std::string_view minimum);

// `catalog://ID/VERSION` or `vm://NAME`.
struct ImageRef {
  enum class Kind { kCatalog, kTemplateVm } kind = Kind::kCatalog;
  std::string catalog_id;  // kCatalog
  std::string version;     // kCatalog
  std::string vm_name;     // kTemplateVm
};
Result<ImageRef> ParseImage(std::string_view image);

// Base64 (standard alphabet, padding optional) -> bytes; empty on malformed input.
std::string DecodeBase64(std::string_view text);

// The credential pieces inside a catalog connection string (`host=USER:PASS@...`,
// `password=...`, `api_key=...`, storage keys), for redaction.
std::vector<std::string> CatalogConnectionSecrets(std::string_view connection);

// Percent-encodes one path segment.
std::string EncodePathSegment(std::string_view segment);

}  // namespace flotilla::providers::parallels
