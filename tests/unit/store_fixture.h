#pragma once

// What the store's tests share (store_test.cc, store_data_test.cc): a store in a scratch folder,
// a raw second connection to its file, and ledger and journal records to write.
// A named namespace: the unity build compiles those files together.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "reconciler/store/store.h"
#include "tests/support/process.h"
#include "tests/support/raw_db.h"

namespace flotilla::store::store_test {

// Times with millisecond precision: the store keeps milliseconds.
inline const Time kT0 = Time{std::chrono::milliseconds{1'750'000'000'123}};

using flotilla::testing::RawDb;

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
