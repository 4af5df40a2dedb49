#pragma once

// What Flotilla owns (the Ledger) and what it intends to do (the Plan). Both are plain values:
// the planner computes a Plan from Desired, Observed and the Ledger; the executor runs it; the
// store records both.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/types.h"

namespace flotilla {

// One VM Flotilla created (or adopted).
struct LedgerEntry {
  std::string vm;  // the VM's name
  std::string vmset;
  std::string pool;
  std::string host;
  std::string provider_id;
  std::string template_hash;  // of the template it was created from

  friend bool operator==(const LedgerEntry&, const LedgerEntry&) = default;
};

struct Ledger {
  std::vector<LedgerEntry> entries;
  // The `prune` each VMSet had when it was last applied; decides for VMSets that have since been
  // removed from the repository.
  std::map<std::string, bool> vmset_prune;

  const LedgerEntry* Find(std::string_view vm) const;
};

enum class ActionKind {
  kCreate,   // a new VM on `host` (stopped; a start follows if desired running)
  kReplace,  // a new VM for an existing one (outdated, drained, or on a lost host)
  kStart,
  kStop,
  kDelete,
  // Pull `templ`'s image onto `host` (no VM; `vm` is empty) so that the replacements of a
  // rolling update there copy it from the host's cache.
  kPrepull,
  // Take over the existing VM `vm` (id `vm_id`) on `host`: a ledger write, no call to the host.
  // `template_hash` is the set's when the VM's OS, cpu and memory match its template, else
  // kUnknownTemplateHash.
  kAdopt,
};
std::string_view ToString(ActionKind kind);  // "create", "replace", ...

// An action's template, or none: a value as std::optional<VMTemplate> would be (compared by
// value, read like an optional), but held immutably and shared by its copies, so that the many
// actions of a plan built from one VMSet's template share one copy of it.
class SharedTemplate {
 public:
  SharedTemplate() = default;
  // Implicit, as an optional's: `action.templ = set.templ`.
  SharedTemplate(VMTemplate templ)  // NOLINT(google-explicit-constructor)
      : templ_(std::make_shared<const VMTemplate>(std::move(templ))) {}

  bool has_value() const { return templ_ != nullptr; }
  explicit operator bool() const { return has_value(); }
  const VMTemplate& operator*() const { return *templ_; }
  const VMTemplate* operator->() const { return templ_.get(); }

  friend bool operator==(const SharedTemplate& a, const SharedTemplate& b) {
    return a.templ_ == b.templ_ ||
           (a.templ_ != nullptr && b.templ_ != nullptr && *a.templ_ == *b.templ_);
  }

 private:
  std::shared_ptr<const VMTemplate> templ_;
};

struct Action {
  int id = 0;  // 1-based position in the plan
  ActionKind kind = ActionKind::kCreate;
  std::string vm;
  std::string vmset;
  std::string pool;
  std::string host;             // where the action happens (the new host, for create and replace)
  std::string from_host;        // replace: where the predecessor is
  std::string reason;           // why, for people
  std::vector<int> depends_on;  // ids of actions that must succeed first
  // create/replace (and prepull): what to build, and its hash.
  SharedTemplate templ;
  std::string template_hash;
  // replace: the new VM is made before the predecessor is deleted (there was spare capacity);
  // false: delete first, then create.
  bool create_first = false;
  // create/replace: `host` was chosen on assumed facts (HostFacts::assumed), not on what the
  // host declares or reports: the placement may not hold.
  bool assumed_placement = false;
  // adopt: the provider's id of the VM taken over; replace (its predecessor on from_host) and
  // delete: the id the host reported for the VM, by which it is deleted (never a remembered id
  // no host reports).
  std::string vm_id;

  friend bool operator==(const Action&, const Action&) = default;
};

// A person's leave, for one pass, to go past the deletion guards (`apply --max-deletions
// --allow-empty`, `flotilla reconcile --max-deletions --allow-empty`). Recorded with the run.
struct PassApproval {
  std::optional<uint32_t> max_deletions;  // this many deletions, whatever the window holds
  bool allow_empty = false;               // this revision may delete every managed VM
  std::string by;                         // who: "local", or the API token's name

  // "local: up to 5 deletions, emptying the fleet allowed".
  std::string Describe() const;
  friend bool operator==(const PassApproval&, const PassApproval&) = default;
};

enum class FindingKind {
  kUnschedulable,  // no host fits a VM that should exist
  kConflict,       // a VM we want exists but is not ours; never touched
  kDeferred,       // a delete held back by the deletion budget
  kRefused,        // deletes refused: the revision would delete every managed VM
  kUnknown,        // the VM's host is offline; its state is unknown
  kWaiting,        // the VM is in between states; looked at again next pass
  kDrift,          // the VM differs from what is desired and self-heal is off
  kOutdated,       // the VM's template is outdated and the update strategy holds it
};
std::string_view ToString(FindingKind kind);  // "unschedulable", "conflict", ...

struct Finding {
  FindingKind kind = FindingKind::kUnschedulable;
  std::string vm;
  std::string vmset;
  std::string pool;
  std::string host;  // empty when no host is concerned
  std::string message;

  friend bool operator==(const Finding&, const Finding&) = default;
};

struct Plan {
  std::vector<Action> actions;    // in execution order where dependencies allow
  std::vector<Finding> findings;  // sorted by pool, vmset, vm, kind

  bool Empty() const { return actions.empty(); }
  size_t Count(ActionKind kind) const;
  size_t Count(FindingKind kind) const;
  // Findings of `kind` per pool (pools without any are absent).
  std::map<std::string, size_t> CountByPool(FindingKind kind) const;

  friend bool operator==(const Plan&, const Plan&) = default;
};

}  // namespace flotilla
