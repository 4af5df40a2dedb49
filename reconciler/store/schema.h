#pragma once

// The store's schema (store.h describes its tables): the migrations that take a file from one
// `PRAGMA user_version` to the next, the connection settings every writer uses, and a testing
// hook. Store::Open migrates a file forward one version at a time, each step in its own
// transaction that also sets `PRAGMA user_version`; MigrateForTesting stops part way so that a
// test can check the upgrade from every earlier version.

#include <string>

#include "reconciler/model/result.h"
#include "reconciler/model/status.h"
#include "reconciler/store/store.h"

namespace flotilla::store {

namespace sqlite {
class Db;
}  // namespace sqlite

// Creates (or migrates) the SQLite file at `path` so that it has schema `version`, exactly as
// the build that wrote that version left it. Version 0 is an empty file.
// REQUIRES: 0 <= version <= kSchemaVersion (otherwise InvalidArgument). Fails with
// FailedPrecondition when the file already has a newer schema than `version`.
Status MigrateForTesting(const std::string& path, int version);

// Switches `db` to WAL journaling (FailedPrecondition where the file system cannot have it),
// turns foreign keys on and sets synchronous to `durability`.
Status ConfigureFile(sqlite::Db& db, Durability durability = Durability::kFull);

// The file's `PRAGMA user_version`: 0 for a new file.
Result<int> UserVersion(sqlite::Db& db);

// The FailedPrecondition for a file whose schema `version` is newer than kSchemaVersion.
Status NewerSchema(const sqlite::Db& db, int version);

// Applies migrations until the file is at `target`, one transaction per version, and returns the
// version reached. FailedPrecondition when the file is already past `target`.
// REQUIRES: target <= kSchemaVersion.
Result<int> MigrateTo(sqlite::Db& db, int target);

}  // namespace flotilla::store
