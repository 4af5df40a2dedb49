#pragma once

// The Parallels DevOps API's wire formats (reference sections 3-6), parsed into provider types.
// Unknown fields are ignored; a missing required field is an error naming it, never a crash.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/provider.h"
#include "providers/secrets.h"
#include "reconciler/model/result.h"

namespace flotilla::providers::parallels {

// Maps a Parallels/prlctl state string onto VmState (case-insensitive). Strings that end in
// "ing" and are not "running" are transitional; anything unrecognised is kUnknown.
VmState ParseVmState(std::string_view raw);

// The catalog's NormalizeString (prl-devops-service helpers/strings.go:95-103): lower case,
// with space and ,:;()[]{}'"/\|<>=+*&^%$#@!`~? each replaced by '_'. The Parallels catalog
// stores ids and versions so (catalog/main.go:142-144), and hosts cache them so.
std::string NormalizeCatalogName(std::string_view name);

// The key of an image in HostFacts::cached_images: "catalog://ID/VERSION" with ID and VERSION
// normalised (NormalizeCatalogName), so that "catalog://MACOS_BASE/v1" is the cached
// "catalog://macos_base/v1"; any other reference as it is.
std::string ImageCacheKey(std::string_view image);

// "8192Mb", "64Gb", "512 MB", "1024" (plain numbers are MB, the service's unit) -> bytes.
// Units b, Kb, Mb, Gb, Tb are powers of 1024, case-insensitive. nullopt on anything else.
std::optional<uint64_t> ParseSize(std::string_view text);

// A number given as a JSON number or a numeric string, if it is a whole number in range.
std::optional<uint64_t> JsonUnsigned(const nlohmann::json& value);

// A ParallelsVM object. `ID` and `Name` are required; a VM without `State` is kUnknown.
Result<VmInfo> ParseVm(const nlohmann::json& vm);
// A list of ParallelsVM objects, sorted by name.
Result<std::vector<VmInfo>> ParseVmList(const nlohmann::json& list);
// A SystemUsageResponse (GET /config/hardware). Disk comes from the Parallels home's statfs
// (total_available.prl_home_free_size and prl_home_total_size, 1.0.0+); `disk_count` is not
// used: the service fills it from the Used column of `df -h /`, the sealed system volume on
// macOS 11+ (audit #1). Without the prl_home fields the disk is unknown. `running_macos_vms`
// is left 0: mac_vms_running also counts any VM with "mac" in its name (audit #14); the
// provider counts from the VM list instead.
Result<HostFacts> ParseHardware(const nlohmann::json& usage);
// `{"manifests":[{"catalog_id","version","architecture",...}]}` (GET /cache) -> sorted
// ImageCacheKey()s of the entries for `arch` (entries are kept per architecture).
std::vector<std::string> ParseCachedImages(const nlohmann::json& cache, std::optional<Arch> arch);

struct Job {
  std::string id;
  std::string state;  // init, pending, running, completed, failed, skipped
  int progress = 0;
  std::string error;               // set when failed
  std::string result_record_id;    // the VM id once completed
  std::string result_record_name;  // the VM's name once completed
  std::string type;                // "machines" for a VM create (job_type)
  std::string operation;           // "create" (job_operation)
  // The step under way, in words: "Downloading pack file 45% (9.0 of 20.0 GiB, 1m20s left)";
  // empty when the job says nothing more than its state.
  std::string step;
};
Result<Job> ParseJob(const nlohmann::json& job);

// The `message` (generic errors) or `error_description` (OAuth errors) of an error body; the
// raw text when it is not JSON. Secrets known to `redactor` are replaced first, then the text is
// put on one line and cut to 300 characters.
std::string ErrorMessage(std::string_view body, const Redactor& redactor,
                         const Redactor* more = nullptr);

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

// The command sent to `/machines/{id}/execute` for a script and its environment. The service
// runs it as `env K='V' bash -c '<command>'`, so the command must hold no single quote, and
// without environment variables it is not run by a shell at all. So the script, preceded by
// `export` lines for `env`, travels base64-encoded and is decoded and piped to bash in the guest;
// the caller always passes at least one environment variable (see kExecMarkerVariable) so that
// the service's `bash -c` form applies. InvalidArgument if an env name is not a shell name.
Result<std::string> ExecCommand(std::string_view script,
                                const std::map<std::string, std::string>& env);
inline constexpr const char* kExecMarkerVariable = "FLOTILLA_EXEC";

// The credential pieces inside a catalog connection string (`host=USER:PASS@...`,
// `password=...`, `api_key=...`, storage keys), for redaction.
std::vector<std::string> CatalogConnectionSecrets(std::string_view connection);

}  // namespace flotilla::providers::parallels
