#pragma once

// Creates a Git repository with one commit, for `flotilla dev`'s local fleet repository.

#include <map>
#include <string>

#include "reconciler/model/status.h"

namespace flotilla::source {

// Writes `files` (path relative to the work tree -> content) into a new repository at `path`
// whose branch `branch` has one commit holding exactly them, by "flotilla dev". The folder may
// exist but must not hold a repository (FailedPrecondition). REQUIRES: a live GitLibrary.
Status SeedRepository(const std::string& path, const std::string& branch,
                      const std::map<std::string, std::string>& files, const std::string& message);

}  // namespace flotilla::source
