#pragma once

// The controller's view of the fleet at its latest observation, as it publishes it (for the
// API, the dashboard and `flotilla status`). A snapshot is immutable once published; readers hold
// it by shared_ptr while they render, so a pass in progress never changes what a request is
// reading.

#include <chrono>
#include <string>

#include "reconciler/model/observed.h"
#include "reconciler/model/plan.h"
#include "reconciler/model/types.h"

namespace flotilla::controller {

struct Snapshot {
  std::chrono::system_clock::time_point observed_at;
  std::string sha;           // the revision in force
  bool fail_static = false;  // the newest revision could not be used; deletions are held
  std::string problem;       // why, when fail_static
  Desired desired;           // at `sha`, filtered to this loop's pools
  Observed observed;         // every host of `desired`
  Ledger ledger;             // what this loop owns
  Plan plan;                 // what the next pass would do
};

}  // namespace flotilla::controller
