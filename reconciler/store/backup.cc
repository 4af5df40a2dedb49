// BackupStore (store.h): a consistent copy of a live store file with SQLite's online backup API.

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <thread>

#include "reconciler/store/sqlite.h"
#include "reconciler/store/store.h"

namespace flotilla::store {
namespace {

namespace fs = std::filesystem;

// fsync of a file or a folder (for a rename to last).
Status SyncPath(const std::string& path, bool folder) {
  const int fd = ::open(path.c_str(), (folder ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    return Status::FailedPrecondition(
        path + ": cannot open to sync: " + std::generic_category().message(errno));
  }
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) {
    return Status::FailedPrecondition(path +
                                      ": cannot sync: " + std::generic_category().message(error));
  }
  return Status::Ok();
}

// Copies every page of `source` into `target` in one step (one read transaction, so one moment
// of the file); a writer holding the file only briefly makes it wait and try again.
Status CopyPages(sqlite::Db& source, sqlite::Db& target) {
  for (int tries = 0;; ++tries) {
    sqlite3_backup* backup = sqlite3_backup_init(target.handle(), "main", source.handle(), "main");
    if (backup == nullptr) {
      return target.Error(sqlite3_errcode(target.handle()), "start the backup");
    }
    const int step = sqlite3_backup_step(backup, -1);
    const int finish = sqlite3_backup_finish(backup);
    if (step == SQLITE_DONE && finish == SQLITE_OK) {
      return Status::Ok();
    }
    const int rc = step == SQLITE_DONE ? finish : step;
    if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && tries < 100) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    return sqlite::SqliteStatus(rc, source.path(), "copy to " + target.path(), sqlite3_errstr(rc));
  }
}

}  // namespace

Status BackupStore(const std::string& path, const std::string& destination, bool replace) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return Status::NotFound(path + ": no store file there");
  }
  if (fs::exists(destination, ec)) {
    if (fs::equivalent(path, destination, ec)) {
      return Status::InvalidArgument(destination + " is the store itself");
    }
    if (!replace) {
      return Status::AlreadyExists(destination + " exists; --force replaces it");
    }
  }
  const std::string temporary = destination + ".partial-" + std::to_string(::getpid());
  fs::remove(temporary, ec);
  Status copied = [&]() -> Status {
    Result<sqlite::Db> source = sqlite::OpenDb(path, std::chrono::seconds(5), /*read_only=*/true);
    if (!source.ok()) {
      return source.status();
    }
    Result<sqlite::Db> target = sqlite::OpenDb(temporary, std::chrono::seconds(5));
    if (!target.ok()) {
      return target.status();
    }
    if (Status s = CopyPages(*source, *target); !s.ok()) {
      return s;
    }
    // The copy must open on its own: check it before it replaces anything.
    Result<std::vector<std::string>> check =
        sqlite::ReadAll<std::string>(target->Prepare("PRAGMA quick_check", "check the copy"),
                                     [](sqlite::Statement& s) { return s.Text(0); });
    if (!check.ok()) {
      return check.status();
    }
    if (check->size() != 1 || check->front() != "ok") {
      return Status::FailedPrecondition(path + ": the copy does not pass a quick check (" +
                                        check->front() + "); run 'flotilla store check'");
    }
    return Status::Ok();
  }();  // both connections are closed here: the copy's WAL is folded into the file
  if (copied.ok()) {
    copied = SyncPath(temporary, /*folder=*/false);
  }
  if (copied.ok()) {
    fs::rename(temporary, destination, ec);
    if (ec) {
      copied = Status::FailedPrecondition(destination +
                                          ": cannot put the copy in place: " + ec.message());
    }
  }
  if (!copied.ok()) {
    fs::remove(temporary, ec);
    fs::remove(temporary + "-wal", ec);
    fs::remove(temporary + "-shm", ec);
    return copied;
  }
  const fs::path folder = fs::absolute(destination, ec).parent_path();
  return SyncPath(folder.string(), /*folder=*/true);
}

}  // namespace flotilla::store
