#pragma once

// What the store's tests share (store_test.cc, store_data_test.cc): a store in a scratch folder,
// a raw second connection to its file, and ledger and journal records to write.
// A named namespace: the unity build compiles those files together.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>

#include "reconciler/store/store.h"
#include "tests/support/process.h"

namespace flotilla::store::store_test {

// Times with millisecond precision: the store keeps milliseconds.
inline const Time kT0 = Time{std::chrono::milliseconds{1'750'000'000'123}};

// A second, raw connection to a store's file, to look under the store's API.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // Empty when it worked, SQLite's message otherwise.
  std::string Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) == SQLITE_OK) {
      return "";
    }
    std::string message = error != nullptr ? error : "failed";
    sqlite3_free(error);
    return message;
  }

  // The first column of the first row as text; "<none>" or "<error: ...>" otherwise.
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      return "<error: " + std::string(sqlite3_errmsg(db_)) + ">";
    }
    std::string value = "<none>";
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      value = text != nullptr ? reinterpret_cast<const char*>(text) : "<null>";
    }
    sqlite3_finalize(stmt);
    return value;
  }

  int64_t Int(const std::string& sql) { return std::stoll("0" + Text(sql)); }

 private:
  sqlite3* db_ = nullptr;
};

class StoreTest : public ::testing::Test {
 protected:
  // In a folder that does not exist yet: Open creates it.
  std::string DbPath() const { return (dir_.path() / "state" / "flotilla.db").string(); }

  std::unique_ptr<Store> OpenStore(const StoreOptions& options = {}) {
    Result<std::unique_ptr<Store>> store = Store::Open(DbPath(), options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  flotilla::testing::ScratchDir dir_;
};

inline LedgerEntry Entry(const std::string& vm, const std::string& host = "mini-01") {
  return LedgerEntry{.vm = vm,
                     .vmset = "ios",
                     .pool = "macs",
                     .host = host,
                     .provider_id = "uuid-" + vm,
                     .template_hash = "sha256:aaaa"};
}

inline ActionRecord Action(int64_t run_id, const std::string& vm,
                           ActionState state = ActionState::kIntended) {
  return ActionRecord{.run_id = run_id,
                      .plan_action_id = 1,
                      .kind = ActionKind::kCreate,
                      .vm = vm,
                      .vmset = "ios",
                      .pool = "macs",
                      .host = "mini-01",
                      .template_hash = "sha256:aaaa",
                      .state = state,
                      .started_at = kT0};
}

}  // namespace flotilla::store::store_test
