#pragma once

// The prl-devops-service's wire shapes that every part of a simulated host shares: lenient body
// parsing, the error bodies of reference §1.1, and the X-Filter header. Internal to hostsim.

#include <chrono>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "providers/hostsim/sim_host.h"

namespace flotilla::hostsim {

inline constexpr int kAppleVmLimit = 2;
inline constexpr uint64_t kDefaultCpus = 2;
inline constexpr uint64_t kDefaultMemoryMb = 2048;

std::string Rfc3339(std::chrono::system_clock::time_point tp);

// A JSON body parsed leniently: discarded (is_discarded()) when it is not valid JSON.
nlohmann::json ParseBody(std::string_view body);

// A string field, or "" when absent or not a string.
std::string StringField(const nlohmann::json& j, const char* key);

// A positive integer given as a JSON number or a decimal string ("4", "8192").
std::optional<uint64_t> PositiveInt(const nlohmann::json& j);

// "amd64" -> "x86_64", "arm"/"aarch64" -> "arm64"; "" when unknown.
std::string NormalizeArch(std::string_view arch);

// The catalog's NormalizeString (helpers/strings.go:95-103): lower case, with space and
// ,:;()[]{}'"/\|<>=+*&^%$#@!`~? each replaced by '_'. Catalog ids and versions are stored so
// (catalog/main.go:142-144), and the host cache keeps them so.
// Written here again rather than taken from the model's NormalizeCatalogName (which the provider
// uses): the simulator follows the service's source on its own, so that a mistake in the
// provider's copy is not mirrored and hidden.
std::string NormalizeCatalogName(std::string_view name);

// The guest family hostsim gives an image nobody described (--catalog without os=): macOS for
// ids naming macOS, iOS or Xcode on an arm64 host, else Linux.
GuestOs GuessImageOs(std::string_view catalog_id, std::string_view host_arch);

// A state in which a VM holds its cpu and memory and counts for Apple's limit.
bool IsAlive(std::string_view state);

// "Start", "Stop", ...: the `operation` of a state change's answer.
std::string OperationTitle(StateOp op);

nlohmann::json OAuthError(std::string_view description);

// The diagnostics error of auth/token and auth/token/validate (§1.1 shape 3).
Reply Diagnostics(int code, std::string_view message, std::string_view operation);

Reply VmNotFound();
Reply InvalidBody(std::string_view what);
// A failed pull's job error: "error 400: Error pulling manifest: \n\n<what>".
std::string PullError(std::string_view what);

// An X-Filter "<prop>=<regex>[,i]" (§1): property path and compiled regex.
struct VmFilter {
  std::vector<std::string> path;
  std::regex regex;
};
std::optional<VmFilter> ParseFilter(const std::string& text, std::string* error);
bool FilterMatches(const VmFilter& filter, const nlohmann::json& vm);

}  // namespace flotilla::hostsim
