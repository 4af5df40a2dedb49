#pragma once

// What core code may know about a provider, in provider-neutral terms: the settings a HostPool
// of that provider carries, the checks its pools must pass, the images it can make VMs from
// and how its hosts name a cached image. Each provider's factory hands one of these to the
// manifest layer (schemas, `validate`) and, through VMSet::image_cache_key, to the planner;
// neither ever compares a provider's name or spells its vocabulary.
//
// Implementations are immutable and thread-safe.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/types.h"

namespace flotilla {

// One finding of ProviderRules::CheckPool, placed by the manifest layer at a file:line:col.
struct PoolProblem {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  // Empty: `pointer` is a JSON pointer into the HostPool document ("/spec",
  // "/spec/tls/caFile"). Otherwise the name of a host of the pool, and `pointer` points into
  // that host's entry ("/address").
  std::string host;
  std::string pointer;
  bool at_key = false;  // place the message at the key, not at its value
  std::string message;  // names the pool or host and what to do; never a secret
};

class ProviderRules {
 public:
  virtual ~ProviderRules() = default;

  // The provider's name as pools spell it (`spec.provider`).
  virtual std::string_view name() const = 0;

  // A JSON Schema (draft-07) fragment for the keys this provider adds to a HostPool's `spec`,
  // besides the provider-neutral ones (provider, credentialsRef, defaults, hosts):
  //   {"properties": {"tls": {...}, ...}, "required": [...], "definitions": {...},
  //    "host": {"properties": {"address": {"pattern": ...}}}}
  // `host` narrows the neutral keys of each host (merged over them as a JSON merge patch: an
  // address's form, say). Its `$ref`s may name the HostPool schema's definitions
  // (#/definitions/ref). The manifest
  // layer merges it into the pool's schema, so unknown keys, types and positions are reported
  // exactly as for the neutral keys. HostPool::settings holds what it describes.
  virtual std::string_view settings_schema() const = 0;

  // Checks that need more than a schema (an address's form, a setting one key requires of
  // another). Appends problems; runs after the pool passed its schema.
  virtual void CheckPool(const HostPool& pool, std::vector<PoolProblem>& problems) const = 0;

  // Empty when the provider can make VMs from `image` (VMTemplate::image as written);
  // otherwise why not, for a person ("provider parallels takes catalog://ID/VERSION or
  // vm://NAME").
  virtual std::string CheckImage(std::string_view image) const = 0;

  // How this provider's hosts name `image` in HostFacts::cached_images, or empty when hosts
  // do not cache it (no prepull, no preference for hosts that hold it). REQUIRES: CheckImage
  // accepted `image`.
  virtual std::string ImageCacheKey(std::string_view image) const = 0;
};

using ProviderRulesList = std::vector<std::shared_ptr<const ProviderRules>>;

// The rules named `name`, or null.
const ProviderRules* FindRules(const ProviderRulesList& rules, std::string_view name);

}  // namespace flotilla
