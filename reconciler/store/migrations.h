#pragma once

// Testing hook for the store's schema migrations (store.h). Store::Open migrates a file forward
// one version at a time, each step in its own transaction that also sets `PRAGMA user_version`;
// this hook stops part way so that a test can check the upgrade from every earlier version.

#include <string>

#include "reconciler/model/status.h"

namespace flotilla::store {

// Creates (or migrates) the SQLite file at `path` so that it has schema `version`, exactly as
// the build that wrote that version left it. Version 0 is an empty file.
// REQUIRES: 0 <= version <= kSchemaVersion (otherwise InvalidArgument). Fails with
// FailedPrecondition when the file already has a newer schema than `version`.
Status MigrateForTesting(const std::string& path, int version);

}  // namespace flotilla::store
