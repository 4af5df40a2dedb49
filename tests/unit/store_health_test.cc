// The store when its file lets it down (store.h: Health, BackupStore, the damaged-file error):
// writes refused by the file system, a file removed under the store, a file that is not a
// database, and backups taken while another connection writes.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>

#include "reconciler/store/store.h"
#include "tests/support/process.h"
#include "tests/support/status.h"

// A namespace of its own: the unity build compiles this file with store_test.cc.
namespace flotilla::store::health_test {
namespace {

const Time kT0 = Time{std::chrono::milliseconds{1'750'000'000'123}};

class StoreHealthTest : public ::testing::Test {
 protected:
  std::string DbPath() const { return (dir_.path() / "state" / "flotilla.db").string(); }

  std::unique_ptr<Store> OpenStore() {
    Result<std::unique_ptr<Store>> store = Store::Open(DbPath());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  flotilla::testing::ScratchDir dir_;
};

// Events with a long message: each one grows the WAL.
Status AddBigEvents(Store& store, int n) {
  for (int i = 0; i < n; ++i) {
    Status s = store.AddEvent(
        EventRecord{.at = kT0, .level = "info", .kind = "x", .message = std::string(4000, 'm')});
    if (!s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

// While it lives, no file of this process may grow past `bytes` (writes past it fail with
// EFBIG instead of a signal): a file system that has run out of room, for this process only.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  sighandler_t old_handler_ = SIG_DFL;
};

TEST_F(StoreHealthTest, AFailedWriteMarksTheStoreUnwritableUntilAWriteSucceeds) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(AddBigEvents(*store, 2));
  EXPECT_TRUE(store->Health().writable);
  Status failed;
  {
    const FileSizeLimit full(rlim_t{256} * 1024);
    failed = AddBigEvents(*store, 200);
  }
  ASSERT_FALSE(failed.ok()) << "the writes fit after all";
  const StoreHealth sick = store->Health();
  EXPECT_FALSE(sick.writable);
  EXPECT_FALSE(sick.moved);
  EXPECT_GE(sick.failures, 1U);
  EXPECT_NE(sick.problem.find(DbPath()), std::string::npos) << sick.problem;
  // Reads still work, and say nothing about the file being writable again.
  ASSERT_TRUE(store->Events(1).ok());
  EXPECT_FALSE(store->Health().writable);

  // Room again: the next write that commits clears it.
  ASSERT_OK(AddBigEvents(*store, 1));
  const StoreHealth well = store->Health();
  EXPECT_TRUE(well.writable) << well.problem;
  EXPECT_TRUE(well.problem.empty());
  EXPECT_EQ(well.failures, sick.failures);  // the count stays, for the metric
}

TEST_F(StoreHealthTest, AFileRemovedUnderTheStoreIsReportedAsMoved) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(AddBigEvents(*store, 1));
  EXPECT_FALSE(store->Health().moved);
  std::filesystem::remove_all(dir_.path() / "state");
  // Writes still "work": they go to a file nobody will read again.
  EXPECT_OK(AddBigEvents(*store, 1));
  const StoreHealth health = store->Health();
  EXPECT_TRUE(health.moved);
  EXPECT_FALSE(health.writable);
  EXPECT_NE(health.problem.find("removed or replaced"), std::string::npos) << health.problem;
}

TEST_F(StoreHealthTest, AFileThatIsNotADatabaseIsRefusedWithTheWayOut) {
  std::filesystem::create_directories(dir_.path() / "state");
  std::ofstream(DbPath()) << std::string(4096, 'G');
  for (const bool read_only : {false, true}) {
    Result<std::unique_ptr<Store>> store =
        Store::Open(DbPath(), StoreOptions{.read_only = read_only});
    ASSERT_FALSE(store.ok());
    const std::string& message = store.status().message();
    EXPECT_NE(message.find(DbPath()), std::string::npos) << message;
    EXPECT_NE(message.find("damaged"), std::string::npos) << message;
    EXPECT_NE(message.find("flotilla store backup"), std::string::npos) << message;
  }
}

TEST_F(StoreHealthTest, ABackupIsOneConsistentMomentWhileAnotherConnectionWrites) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 50; ++i) {
    ASSERT_OK(store->UpsertLedger(LedgerEntry{.vm = "vm-" + std::to_string(i),
                                              .vmset = "ci",
                                              .pool = "macs",
                                              .host = "mini-01",
                                              .provider_id = "id-" + std::to_string(i),
                                              .template_hash = "h"},
                                  kT0));
  }
  // A writer that keeps going during the backups.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      (void)store->AddEvent(EventRecord{.at = kT0, .level = "info", .kind = "w"});
    }
  });
  const std::string copy = (dir_.path() / "copy.db").string();
  Status first = BackupStore(DbPath(), copy, /*replace=*/false);
  Status again = BackupStore(DbPath(), copy, /*replace=*/false);
  Status forced = BackupStore(DbPath(), copy, /*replace=*/true);
  stop = true;
  writer.join();
  ASSERT_OK(first);
  EXPECT_EQ(again.code(), Status::Code::kAlreadyExists) << again.ToString();
  ASSERT_OK(forced);
  EXPECT_FALSE(std::filesystem::exists(copy + "-wal"));  // one self-contained file
  Result<std::unique_ptr<Store>> restored = Store::Open(copy, StoreOptions{.read_only = true});
  ASSERT_OK(restored);
  EXPECT_OK((*restored)->CheckIntegrity());
  Result<Ledger> ledger = (*restored)->LoadLedger();
  ASSERT_OK(ledger);
  EXPECT_EQ(ledger->entries.size(), 50U);

  EXPECT_TRUE(BackupStore(DbPath(), DbPath(), true).IsInvalidArgument());
  EXPECT_TRUE(BackupStore((dir_.path() / "none.db").string(), copy, true).IsNotFound());
}

}  // namespace
}  // namespace flotilla::store::health_test
