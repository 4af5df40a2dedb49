#pragma once

#include <memory>
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

// What CheckFleet found for the documents of earlier calls. With it, a call checks a VMSet
// again only when the set's document or its pool's document is not the one of the last call,
// and a pool against its provider only when its document changed; what else it found is
// replayed. Parsed files share their documents across revisions (source::ParseCache), so an
// unchanged file brings the very same documents, and entries hold on to theirs: an entry can
// only match the document it was made from. The checks that compare every pool or every set
// with the others (names, hosts, capacity) are cheap and run in full. Results are exactly those
// of a call without a memo. Keeps what the last call used. Not thread-safe.
class CheckMemo {
 public:
  CheckMemo();
  ~CheckMemo();
  CheckMemo(CheckMemo&&) noexcept;
  CheckMemo& operator=(CheckMemo&&) noexcept;

  size_t set_checks() const;   // sets checked since construction, not replayed
  size_t pool_checks() const;  // pools checked by their provider since construction

  struct Entries;  // defined in semantic.cc
  // For CheckFleet: the entries, emptied when `rules` are not those of the last call.
  Entries& For(const ProviderRulesList& rules);

 private:
  std::unique_ptr<Entries> entries_;
  ProviderRulesList rules_;  // held: entries stay tied to these very rules
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
// `memo`, when given, makes a call after a small change cheap (see CheckMemo).
void CheckFleet(std::vector<Declared<HostPool>>& pools, std::vector<Declared<VMSet>>& sets,
                const ProviderRulesList& rules, const InvalidNames& invalid,
                Diagnostics& diagnostics, CheckMemo* memo = nullptr);

}  // namespace flotilla::manifest
