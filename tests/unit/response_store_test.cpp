// The response store on real SQLite files: lookups that tell "absent" from "failed", retention
// by age and by size, and files it cannot use.
#include "core/response_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/metrics.h"

namespace allm {
namespace {

namespace fs = std::filesystem;

class ResponseStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("allm-store-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string db() const { return (dir_ / "responses.db").string(); }
  std::unique_ptr<ResponseStore> open(const StoreRetention& retention = {}) {
    Error error;
    auto store = ResponseStore::open(db(), &error, retention);
    EXPECT_TRUE(store) << error.message;
    return store;
  }
  // Ages every stored response by `seconds`, as if stored that long ago.
  void age_all(int seconds) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
    const std::string sql =
        "UPDATE responses SET created_at = created_at - " + std::to_string(seconds);
    EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(raw);
  }

  fs::path dir_;
};

StoredResponse response(int i, size_t size = 16) {
  return {"resp_" + std::to_string(i), std::string(size, 'r'), std::string(size, 'c')};
}

bool has(ResponseStore& store, int i) {
  std::optional<StoredResponse> found;
  EXPECT_FALSE(store.get("resp_" + std::to_string(i), &found));
  return found.has_value();
}

TEST_F(ResponseStoreTest, PutGetRemove) {
  auto store = open();
  ASSERT_FALSE(store->put(response(1)));
  std::optional<StoredResponse> found;
  ASSERT_FALSE(store->get("resp_1", &found));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->response_json, std::string(16, 'r'));
  EXPECT_EQ(found->conversation_json, std::string(16, 'c'));
  ASSERT_FALSE(store->get("resp_2", &found));
  EXPECT_FALSE(found) << "an unknown id is found empty, not an error";
  bool removed = false;
  ASSERT_FALSE(store->remove("resp_1", &removed));
  EXPECT_TRUE(removed);
  ASSERT_FALSE(store->remove("resp_1", &removed));
  EXPECT_FALSE(removed);
}

TEST_F(ResponseStoreTest, PruneDeletesWhatIsPastTheAge) {
  auto store = open({/*max_age_seconds=*/3600, 0});
  for (int i = 0; i < 3; ++i) ASSERT_FALSE(store->put(response(i)));
  int64_t deleted = -1;
  ASSERT_FALSE(store->prune(&deleted));
  EXPECT_EQ(deleted, 0);
  age_all(7200);
  ASSERT_FALSE(store->put(response(3)));  // new: stays
  ASSERT_FALSE(store->prune(&deleted));
  EXPECT_EQ(deleted, 3);
  EXPECT_FALSE(has(*store, 0));
  EXPECT_TRUE(has(*store, 3));
}

TEST_F(ResponseStoreTest, PruneKeepsTheNewestWithinTheSize) {
  constexpr uint64_t kLimit = 256 * 1024;
  auto store = open({0, kLimit});
  for (int i = 0; i < 200; ++i) ASSERT_FALSE(store->put(response(i, 4000)));
  int64_t deleted = 0;
  ASSERT_FALSE(store->prune(&deleted));
  EXPECT_GT(deleted, 100) << "200 × 8 KB do not fit 256 KiB";
  EXPECT_FALSE(has(*store, 0)) << "the oldest go first";
  EXPECT_TRUE(has(*store, 199)) << "the newest stay";
  for (int i = 0; i < 199; ++i) {
    if (has(*store, i)) EXPECT_TRUE(has(*store, i + 1)) << "only a run of the oldest is deleted";
  }
  // Freed pages are reused: later rounds of puts and prunes do not grow the file.
  store.reset();  // checkpoints the WAL into the file
  const auto size_after_first = fs::file_size(db());
  store = open({0, kLimit});
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 100; ++i) ASSERT_FALSE(store->put(response(1000 * round + i, 4000)));
    ASSERT_FALSE(store->prune(&deleted));
  }
  store.reset();
  EXPECT_LE(fs::file_size(db()), size_after_first);
}

TEST_F(ResponseStoreTest, PrunesInTheBackgroundAtStartAndAfterPuts) {
  {
    auto store = open();
    for (int i = 0; i < 3; ++i) ASSERT_FALSE(store->put(response(i)));
  }
  age_all(7200);
  const double pruned_before = Metrics::global().value("allm_store_pruned_total", {});
  auto store = open({/*max_age_seconds=*/3600, /*max_bytes=*/64 * 1024});
  store->start_pruning();
  const auto wait_until = [&](const std::function<bool()>& done) {
    for (int i = 0; i < 200 && !done(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return done();
  };
  EXPECT_TRUE(wait_until([&] { return !has(*store, 0) && !has(*store, 2); }))
      << "expired responses are deleted at start";
  // Past the size, a put wakes the pruner at once (its age period is a minute here).
  for (int i = 10; i < 60; ++i) ASSERT_FALSE(store->put(response(i, 4000)));
  EXPECT_TRUE(wait_until([&] { return !has(*store, 10); })) << "the oldest go past the size";
  EXPECT_TRUE(has(*store, 59));
  EXPECT_GE(Metrics::global().value("allm_store_pruned_total", {}) - pruned_before, 4);
}

TEST_F(ResponseStoreTest, ACorruptFileIsRefusedWithAFix) {
  std::ofstream(db(), std::ios::binary) << std::string(8192, 'x');
  Error error;
  EXPECT_FALSE(ResponseStore::open(db(), &error));
  EXPECT_NE(error.message.find("file is not a database"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("mv " + db() + " " + db() + ".broken"), std::string::npos)
      << error.message;
}

TEST_F(ResponseStoreTest, FailuresAreErrorsAndCounted) {
  auto store = open();
  ASSERT_FALSE(store->put(response(1)));
  // Another connection drops the table under the store: every operation now fails.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "DROP TABLE responses", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto errors = [](const char* op) {
    return Metrics::global().value("allm_store_errors_total", {{"op", op}});
  };
  const double puts = errors("put"), gets = errors("get"), deletes = errors("delete");
  std::optional<StoredResponse> found;
  bool removed = true;
  EXPECT_EQ(store->put(response(2)).code, ErrorCode::INTERNAL);
  EXPECT_EQ(store->get("resp_1", &found).code, ErrorCode::INTERNAL);
  EXPECT_FALSE(found);
  EXPECT_EQ(store->remove("resp_1", &removed).code, ErrorCode::INTERNAL);
  EXPECT_FALSE(removed);
  EXPECT_EQ(errors("put"), puts + 1);
  EXPECT_EQ(errors("get"), gets + 1);
  EXPECT_EQ(errors("delete"), deletes + 1);
}

}  // namespace
}  // namespace allm
