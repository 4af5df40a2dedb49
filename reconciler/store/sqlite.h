#pragma once

// A thin RAII layer over SQLite's C API, internal to the store: a connection (Db), a prepared
// statement (Statement) with typed binding and column readers, row readers (ReadAll, ReadFirst,
// AnyRow) and an IMMEDIATE transaction. Every failure becomes a Status that names the file and
// what was being done ("<file>: <what>: <SQLite's message>"), coded so that callers can tell a
// busy file (Unavailable, retry) from a broken or unwritable one.
//
// Times are bound and read as INTEGER milliseconds since the Unix epoch.
//
// Thread-safety: none. A Db and its statements are used by one thread at a time (the store
// serialises every use of its connection).

#include <sqlite3.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "reconciler/model/result.h"
#include "reconciler/model/status.h"

namespace flotilla::store::sqlite {

using Time = std::chrono::system_clock::time_point;

int64_t ToMillis(Time t);
Time FromMillis(int64_t ms);

// SQLite's LIMIT for "at most `limit` rows, 0 meaning all": negative means none.
int64_t SqlLimit(size_t limit);

// The Status for a failed SQLite call: "<file>: <what>: <SQLite's message>", coded so that
// callers can tell a busy file (retry) from a broken or unwritable one.
Status SqliteStatus(int rc, const std::string& path, std::string_view what,
                    std::string_view detail);

class Statement;

// One connection; closed when destroyed.
class Db {
 public:
  Db(sqlite3* handle, std::string path) : db_(handle), path_(std::move(path)) {}
  ~Db() {
    for (auto& [sql, stmt] : statements_) {
      sqlite3_finalize(stmt);  // a no-op on nullptr (one in use: no Statement outlives its Db)
    }
    sqlite3_close_v2(db_);  // a no-op on nullptr
  }
  Db(Db&& other) noexcept
      : db_(std::exchange(other.db_, nullptr)),
        path_(std::move(other.path_)),
        statements_(std::move(other.statements_)),
        storage_failure_(std::move(other.storage_failure_)),
        storage_failures_(other.storage_failures_) {}
  Db& operator=(Db&&) = delete;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  const std::string& path() const { return path_; }

  // The Status of a failed call; a failure of the file itself (full, I/O error, read-only,
  // corrupt) is also remembered as storage_failure().
  Status Error(int rc, std::string_view what) {
    Status status = SqliteStatus(rc, path_, what, sqlite3_errmsg(db_));
    if (IsStorageFailure(rc)) {
      storage_failure_ = status;
      ++storage_failures_;
    }
    return status;
  }

  // Runs one or more statements that return no rows.
  Status Exec(const std::string& sql, std::string_view what) {
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : Error(rc, what);
  }

  // The last failure of the file itself, until a later write commits: while it is set, the
  // store cannot be trusted to record anything. OK when there is none.
  const Status& storage_failure() const { return storage_failure_; }
  // How many such failures there have been since the connection opened.
  uint64_t storage_failures() const { return storage_failures_; }
  // A write that changed rows committed (outside a transaction, or the transaction's COMMIT):
  // the file takes writes again.
  void NoteWritten() {
    if (!InTransaction()) {
      storage_failure_ = Status::Ok();
    }
  }
  // Whether the file was unlinked or renamed since it was opened (SQLITE_FCNTL_HAS_MOVED):
  // writes would then go to a file nobody will read again.
  bool HasMoved() {
    int moved = 0;
    return sqlite3_file_control(db_, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
           moved != 0;
  }
  sqlite3* handle() { return db_; }

  // A statement with `args` bound to ?1, ?2, ... Each SQL text is prepared once per connection
  // and kept (up to kKeptStatements of them): the store runs the same few statements over and
  // over, and preparing one costs more than running a small one. A kept statement is reset when
  // its Statement ends, so it holds no lock and no row meanwhile; a second use of the same text
  // while the first is under way prepares a statement of its own.
  template <typename... Args>
  Result<Statement> Prepare(std::string_view sql, std::string_view what, const Args&... args);

  // Prepares, binds and runs a statement that returns no rows.
  template <typename... Args>
  Status Run(std::string_view sql, std::string_view what, const Args&... args);

  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
  int64_t Changes() const { return sqlite3_changes(db_); }
  // Rows inserted, changed or deleted through this connection since it opened.
  int64_t TotalChanges() const { return sqlite3_total_changes64(db_); }
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

 private:
  static bool IsStorageFailure(int rc) {
    switch (rc & 0xff) {
      case SQLITE_FULL:
      case SQLITE_IOERR:
      case SQLITE_READONLY:
      case SQLITE_CANTOPEN:
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
      case SQLITE_PERM:
        return true;
      default:
        return false;
    }
  }

  static constexpr size_t kKeptStatements = 64;

  sqlite3* db_;
  std::string path_;
  // Kept statements by their SQL text; null while that one is in use. std::map: a Statement
  // holds the address of its slot, which must not move.
  std::map<std::string, sqlite3_stmt*, std::less<>> statements_;
  Status storage_failure_;
  uint64_t storage_failures_ = 0;
};

// One prepared statement; finalized when destroyed. Column readers record the first value they
// cannot make sense of in `error()` instead of failing on the spot, so that row readers
// stay plain sequences of assignments.
class Statement {
 public:
  // `slot`: where its Db keeps it when it ends (null: finalized then).
  Statement(Db& db, sqlite3_stmt* stmt, std::string_view what, sqlite3_stmt** slot = nullptr)
      : db_(&db), stmt_(stmt), slot_(slot), what_(what) {}
  ~Statement() {
    if (stmt_ != nullptr && slot_ != nullptr && *slot_ == nullptr) {
      sqlite3_reset(stmt_);  // ends its read of the file; its result was reported by Step
      sqlite3_clear_bindings(stmt_);
      *slot_ = stmt_;
      return;
    }
    sqlite3_finalize(stmt_);  // a no-op on nullptr
  }
  Statement(Statement&& other) noexcept
      : db_(other.db_),
        stmt_(std::exchange(other.stmt_, nullptr)),
        slot_(std::exchange(other.slot_, nullptr)),
        what_(std::move(other.what_)),
        error_(std::move(other.error_)) {}
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  template <typename... Args>
  void Bind(const Args&... args) {
    int index = 0;
    (BindOne(++index, args), ...);
  }

  // Advances to the next row: true when there is one, false when there are no more.
  Result<bool> Step() {
    if (!error_.ok()) {
      return error_;
    }
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc == SQLITE_DONE) {
      if (sqlite3_stmt_readonly(stmt_) == 0 && db_->Changes() > 0) {
        db_->NoteWritten();
      }
      return false;
    }
    return db_->Error(rc, what_);
  }

  // Runs a statement that returns no rows.
  Status Run() {
    Result<bool> row = Step();
    return row.ok() ? Status::Ok() : row.status();
  }

  // Runs it again with `args` bound instead (one statement prepared for many rows).
  template <typename... Args>
  Status RunAgain(const Args&... args) {
    sqlite3_reset(stmt_);  // its result is the last step's, already reported
    error_ = Status::Ok();
    Bind(args...);
    return Run();
  }

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool Bool(int column) const { return Int(column) != 0; }
  Time TimeAt(int column) const { return FromMillis(Int(column)); }
  std::optional<Time> OptionalTime(int column) const {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) {
      return std::nullopt;
    }
    return TimeAt(column);
  }
  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) {
      return "";
    }
    return {reinterpret_cast<const char*>(text),
            static_cast<size_t>(sqlite3_column_bytes(stmt_, column))};
  }

  // The enum value whose ToString() is the column's text.
  template <typename E, size_t N>
  E Enum(int column, const std::array<E, N>& values) {
    const std::string text = Text(column);
    for (E value : values) {
      if (ToString(value) == text) {
        return value;
      }
    }
    if (error_.ok()) {
      error_ = Status::FailedPrecondition(db_->path() + ": " + what_ + ": column " +
                                          sqlite3_column_name(stmt_, column) +
                                          " holds an unknown value \"" + text + "\"");
    }
    return values[0];
  }

  // The first problem met while binding or reading; OK when none.
  const Status& error() const { return error_; }

 private:
  template <typename T>
  void BindOne(int index, const T& value) {
    int rc = SQLITE_OK;
    if constexpr (std::is_same_v<T, bool>) {
      rc = sqlite3_bind_int(stmt_, index, value ? 1 : 0);
    } else if constexpr (std::is_integral_v<T>) {
      rc = sqlite3_bind_int64(stmt_, index, static_cast<sqlite3_int64>(value));
    } else if constexpr (std::is_same_v<T, Time>) {
      rc = sqlite3_bind_int64(stmt_, index, ToMillis(value));
    } else if constexpr (std::is_same_v<T, std::optional<Time>>) {
      rc = value ? sqlite3_bind_int64(stmt_, index, ToMillis(*value))
                 : sqlite3_bind_null(stmt_, index);
    } else {
      const std::string_view text(value);
      // A null pointer would bind SQL NULL; an empty string must stay ''.
      rc = sqlite3_bind_text64(stmt_, index, text.data() == nullptr ? "" : text.data(), text.size(),
                               SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    if (rc != SQLITE_OK && error_.ok()) {
      error_ = db_->Error(rc, what_);
    }
  }

  Db* db_;
  sqlite3_stmt* stmt_;
  sqlite3_stmt** slot_;
  std::string what_;
  Status error_;
};

template <typename... Args>
Result<Statement> Db::Prepare(std::string_view sql, std::string_view what, const Args&... args) {
  auto kept = statements_.find(sql);
  if (kept == statements_.end() && statements_.size() < kKeptStatements) {
    kept = statements_.emplace(std::string(sql), nullptr).first;
  }
  sqlite3_stmt** slot = kept != statements_.end() ? &kept->second : nullptr;
  sqlite3_stmt* stmt = slot != nullptr ? std::exchange(*slot, nullptr) : nullptr;
  int rc = SQLITE_OK;
  if (stmt == nullptr) {
    rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                            slot != nullptr ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  }
  Statement statement(*this, stmt, what, slot);
  if (rc != SQLITE_OK) {
    return Error(rc, what);
  }
  statement.Bind(args...);
  return statement;
}

template <typename... Args>
Status Db::Run(std::string_view sql, std::string_view what, const Args&... args) {
  Result<Statement> statement = Prepare(sql, what, args...);
  if (!statement.ok()) {
    return statement.status();
  }
  return statement->Run();
}

// Every row of `statement`, each turned into a T by `read`.
template <typename T, typename Read>
Result<std::vector<T>> ReadAll(Result<Statement> statement, Read read) {
  if (!statement.ok()) {
    return statement.status();
  }
  std::vector<T> rows;
  while (true) {
    Result<bool> row = statement->Step();
    if (!row.ok()) {
      return row.status();
    }
    if (!*row) {
      return rows;
    }
    T value = read(*statement);
    if (!statement->error().ok()) {
      return statement->error();
    }
    rows.push_back(std::move(value));
  }
}

// The first row of `statement` as a T, or nullopt when there is none.
template <typename T, typename Read>
Result<std::optional<T>> ReadFirst(Result<Statement> statement, Read read) {
  Result<std::vector<T>> rows = ReadAll<T>(std::move(statement), read);
  if (!rows.ok()) {
    return rows.status();
  }
  if (rows->empty()) {
    return std::optional<T>();
  }
  return std::optional<T>(std::move(rows->front()));
}

// Whether `statement` yields any row.
Result<bool> AnyRow(Result<Statement> statement);

// BEGIN IMMEDIATE ... COMMIT, rolled back when destroyed uncommitted. IMMEDIATE takes the write
// lock at once: a deferred transaction that reads and then writes can fail with SQLITE_BUSY
// half way when another connection wrote in between, and busy_timeout does not help there.
class Transaction {
 public:
  explicit Transaction(Db& db) : db_(db) {}
  ~Transaction() {
    if (db_.InTransaction()) {
      db_.Exec("ROLLBACK", "roll back");
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Status Begin() {
    changes_at_begin_ = db_.TotalChanges();
    return db_.Run("BEGIN IMMEDIATE", "begin a transaction");
  }
  Status Commit() {
    Status status = db_.Run("COMMIT", "commit");
    if (status.ok() && db_.TotalChanges() > changes_at_begin_) {
      db_.NoteWritten();  // rows reached the file: it takes writes again
    }
    return status;
  }

 private:
  Db& db_;
  int64_t changes_at_begin_ = 0;
};

// The SQLite library this process runs with ("3.40.1").
std::string SqliteVersion();

// Opens (creating it and its folder unless `read_only`) the file at `path`, with no SQLite mutex:
// the caller serialises every use of the connection. ":memory:" opens a private in-memory file.
Result<Db> OpenDb(const std::string& path, std::chrono::milliseconds busy_timeout,
                  bool read_only = false);

}  // namespace flotilla::store::sqlite
