#pragma once

#include <set>
#include <string>
#include <vector>

#include "reconciler/manifest/diagnostics.h"
#include "reconciler/manifest/yaml_reader.h"
#include "reconciler/model/provider_rules.h"
#include "reconciler/model/types.h"

namespace flotilla::manifest {

// A decoded object with the document it came from, for locating messages. The document is
// shared: parsed files are cached and reused across revisions without copying.
template <typename T>
struct Declared {
  T object;
  std::shared_ptr<const YamlDocument> source;
};

// Names of documents that failed their schema: checks that refer to them stay quiet rather
// than piling a second error on the first.
struct InvalidNames {
  std::set<std::string> pools;
};

// Checks that span documents, after each passed its schema:
//   - names unique per kind; host names and addresses unique within and across pools;
//   - a pool passes its provider's own checks (ProviderRules::CheckPool: parallels wants
//     credentialsRef and http(s) addresses), placed at file:line:col in its document;
//   - a VMSet's image is one its pool's provider takes (ProviderRules::CheckImage), and the
//     set's image_cache_key is filled from that provider (ProviderRules::ImageCacheKey);
//   - a VMSet's pool exists, its selector matches some host of the pool, its template fits
//     at least one of those hosts (arch, cpu, memory, disk, where hosts declare them), and its
//     VM names stay within 63 characters;
//   - warnings: every fitting host cordoned; a pool whose sets want more VMs than its
//     schedulable hosts' maxVMs allow; the provider's own warnings.
// Pools whose provider `rules` lacks were refused by their schema and are not here.
// Duplicates are dropped from `pools`/`sets` (the first stays). REQUIRES: objects normalised.
void CheckFleet(std::vector<Declared<HostPool>>& pools, std::vector<Declared<VMSet>>& sets,
                const ProviderRulesList& rules, const InvalidNames& invalid,
                Diagnostics& diagnostics);

}  // namespace flotilla::manifest
