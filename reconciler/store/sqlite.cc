#include "reconciler/store/sqlite.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <system_error>

namespace flotilla::store::sqlite {

int64_t ToMillis(Time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Time FromMillis(int64_t ms) { return Time{std::chrono::milliseconds{ms}}; }

int64_t SqlLimit(size_t limit) {
  return limit == 0 || limit > static_cast<size_t>(INT64_MAX) ? -1 : static_cast<int64_t>(limit);
}

Status SqliteStatus(int rc, const std::string& path, std::string_view what,
                    std::string_view detail) {
  std::string message = path + ": " + std::string(what) + ": " + std::string(detail);
  switch (rc & 0xff) {  // the primary code of an extended one
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(std::move(message));
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return Status::PermissionDenied(std::move(message));
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return Status::ResourceExhausted(std::move(message));
    case SQLITE_CANTOPEN:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CONSTRAINT:
      return Status::FailedPrecondition(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

Result<bool> AnyRow(Result<Statement> statement) {
  Result<std::optional<int64_t>> first =
      ReadFirst<int64_t>(std::move(statement), [](Statement& s) { return s.Int(0); });
  if (!first.ok()) {
    return first.status();
  }
  return first->has_value();
}

std::string SqliteVersion() { return sqlite3_libversion(); }

Result<Db> OpenDb(const std::string& path, std::chrono::milliseconds busy_timeout, bool read_only) {
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (!folder.empty() && !read_only) {
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) {
      return Status::FailedPrecondition(path + ": cannot create its folder: " + ec.message());
    }
  }
  sqlite3* handle = nullptr;
  // No SQLite mutex: the caller (Store::Impl::mu) serialises every use of the connection.
  const int flags =
      (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &handle, flags, nullptr);
  Db db(handle, path);  // owns the handle even when opening failed
  if (rc != SQLITE_OK) {
    return db.Error(rc, "cannot open");
  }
  const auto timeout_ms = std::min<int64_t>(busy_timeout.count(), INT_MAX);
  sqlite3_busy_timeout(handle, static_cast<int>(std::max<int64_t>(timeout_ms, 0)));
  return db;
}

}  // namespace flotilla::store::sqlite
