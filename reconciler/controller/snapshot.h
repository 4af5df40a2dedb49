#pragma once

// The controller's view of the fleet at its latest observation, as it publishes it (for the
// API, the dashboard and `flotilla status`). A snapshot is immutable once published; readers hold
// it by shared_ptr while they render, so a pass in progress never changes what a request is
// reading.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reconciler/model/observed.h"
#include "reconciler/model/plan.h"
#include "reconciler/model/types.h"

namespace flotilla::controller {

// A commit of the fleet's repository, for people.
struct CommitSummary {
  std::string sha;  // full hex
  std::string subject;
  std::string author;
  int64_t time = 0;  // seconds since the epoch
};

// One problem of a rejected revision, as `flotilla validate` reports it.
struct RevisionDiagnostic {
  std::string file;
  int line = 0;  // 0 when about the file as a whole
  int column = 0;
  std::string severity;  // "error", "warning"
  std::string message;
  std::string text;  // "file:line:col: severity: message (pointer)"
};

// The newest revision, when it could not be used (the loop holds the older one: fail static).
struct RejectedRevision {
  std::string sha;  // empty when the source could not be read at all
  std::optional<CommitSummary> commit;
  std::string reason;
  std::vector<RevisionDiagnostic> diagnostics;  // every one, when it was invalid
};

struct Snapshot {
  std::chrono::system_clock::time_point observed_at;
  std::string sha;                      // the revision in force
  bool fail_static = false;             // the newest revision could not be used; deletions are held
  std::string problem;                  // why, when fail_static
  std::optional<CommitSummary> commit;  // of `sha`, when the source can say
  std::optional<RejectedRevision> rejected;  // when fail_static
  Desired desired;                           // at `sha`, filtered to this loop's pools
  Observed observed;                         // every host of `desired`
  Ledger ledger;                             // what this loop owns
  Plan plan;                                 // what the next pass would do
};

}  // namespace flotilla::controller
