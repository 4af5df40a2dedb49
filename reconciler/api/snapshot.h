#pragma once

// What the API serves about the fleet: the controller's view at its latest observation. A
// snapshot is immutable once published; readers hold it by shared_ptr while they render, so a
// pass in progress never changes what a request is reading.

#include <chrono>
#include <string>

#include "reconciler/model/observed.h"
#include "reconciler/model/plan.h"
#include "reconciler/model/types.h"

namespace flotilla::api {

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

}  // namespace flotilla::api
