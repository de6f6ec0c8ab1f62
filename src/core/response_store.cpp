#include "core/response_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <mutex>

#include "base/log.h"
#include "core/metrics.h"

namespace allm {

namespace {

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return stmt_ != nullptr; }
  void bind(int index, const std::string& text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void bind(int index, double value) { sqlite3_bind_double(stmt_, index, value); }
  int step() { return sqlite3_step(stmt_); }
  std::string column(int index) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
    return text ? std::string(text, sqlite3_column_bytes(stmt_, index)) : std::string();
  }
  int64_t integer(int index) { return sqlite3_column_int64(stmt_, index); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// journal_size_limit: the WAL file is cut back to 4 MiB after a checkpoint (by default it keeps
// its largest size).
constexpr const char* kSchema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "PRAGMA journal_size_limit=4194304;"
    "CREATE TABLE IF NOT EXISTS responses ("
    "  id TEXT PRIMARY KEY,"
    "  response TEXT NOT NULL,"
    "  conversation TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
    "CREATE INDEX IF NOT EXISTS responses_by_age ON responses (created_at);";
// A read-only file can only be read: what must be there to do so.
constexpr const char* kReadOnlyCheck = "SELECT id, response, conversation FROM responses LIMIT 0;";

Error open_failure(const std::string& path, const std::string& why) {
  return make_error(ErrorCode::INTERNAL,
                    "cannot use the response store " + path + ": " + why +
                        ". If the file is damaged, move it away (mv " + path + " " + path +
                        ".broken; the server then starts with an empty store) or restore it "
                        "from a backup; stored responses are lost otherwise");
}

// How often expired responses are looked for: a tenth of the age, between 1 s and a minute.
std::chrono::milliseconds prune_period(double max_age_seconds) {
  const double seconds = std::clamp(max_age_seconds / 10, 1.0, 60.0);
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// Responses in a SQLite file, one connection used under a mutex.
class SqliteResponseStore : public ResponseStore {
 public:
  SqliteResponseStore(sqlite3* db, const StoreRetention& retention)
      : ResponseStore(retention), db_(db) {}
  ~SqliteResponseStore() override;

  Error put(const StoredResponse& response) override;
  Error get(const std::string& id, std::optional<StoredResponse>* found) override;
  Error remove(const std::string& id, bool* removed) override;
  Error prune(int64_t* deleted) override;

 private:
  Error failure(const char* op, const std::string& what);  // mutex_ held
  uint64_t used_bytes();                                   // mutex_ held
  Error delete_expired(int64_t* deleted);                  // mutex_ held
  Error delete_oldest_past_size(int64_t* deleted);         // mutex_ held

  sqlite3* db_;
  std::mutex mutex_;
};

}  // namespace

Error store_unavailable(const std::string& why) {
  return Error{
      ErrorCode::INTERNAL, "the response store is unavailable: " + why, {}, "store_unavailable"};
}

ResponseStore::~ResponseStore() {
  stop_pruning();
}

Error ResponseStore::hold_lease(const std::string&, const std::string&, bool* cancel_requested) {
  *cancel_requested = false;
  return {};
}

Error ResponseStore::lease(const std::string&, std::optional<BackgroundLease>* found) {
  found->reset();
  return {};
}

Error ResponseStore::request_cancel(const std::string&) {
  return {};
}

Error ResponseStore::drop_lease(const std::string&) {
  return {};
}

void ResponseStore::start_pruning() {
  if (pruner_.joinable()) return;
  if (retention_.max_age_seconds > 0 || retention_.max_bytes > 0) {
    pruner_ = std::thread([this] { prune_periodically(); });
  }
}

void ResponseStore::prune_soon() {
  {
    std::lock_guard<std::mutex> lock(pruning_mutex_);
    over_size_ = true;
  }
  wake_.notify_all();
}

void ResponseStore::stop_pruning() {
  {
    std::lock_guard<std::mutex> lock(pruning_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (pruner_.joinable()) pruner_.join();
}

void ResponseStore::prune_periodically() {
  const auto period = prune_period(retention_.max_age_seconds);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(pruning_mutex_);
      over_size_ = false;
    }
    int64_t deleted = 0;
    if (Error e = prune(&deleted)) {
      ALLM_LOG_ERROR("%s", e.message.c_str());
    } else if (deleted > 0) {
      Metrics::global().add("allm_store_pruned_total", {}, static_cast<double>(deleted));
      ALLM_LOG_DEBUG(
          "response store: deleted %lld response(s) past --store-max-age or "
          "--store-max-bytes",
          static_cast<long long>(deleted));
    }
    std::unique_lock<std::mutex> lock(pruning_mutex_);
    const auto woken = [this] { return stopping_ || over_size_; };
    if (retention_.max_age_seconds > 0) {
      wake_.wait_for(lock, period, woken);
    } else {
      wake_.wait(lock, woken);
    }
    if (stopping_) return;
  }
}

std::unique_ptr<ResponseStore> ResponseStore::open(const std::string& path, Error* error,
                                                   const StoreRetention& retention) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    *error = open_failure(path, db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return nullptr;
  }
  // Every statement below reads the file's header first: a file that is not a database, or is
  // damaged there, fails here rather than on the first request.
  const bool read_only = sqlite3_db_readonly(db, "main") == 1;
  char* message = nullptr;
  if (sqlite3_exec(db, read_only ? kReadOnlyCheck : kSchema, nullptr, nullptr, &message) !=
      SQLITE_OK) {
    *error = open_failure(path, message ? message : sqlite3_errmsg(db));
    sqlite3_free(message);
    sqlite3_close(db);
    return nullptr;
  }
  if (read_only) {
    ALLM_LOG_WARN(
        "the response store %s is read-only: stored responses can be read, but new "
        "ones are not stored (they answer store: false) and deletions fail",
        path.c_str());
  }
  sqlite3_busy_timeout(db, 5000);
  // Nothing can be deleted from a read-only file.
  return std::make_unique<SqliteResponseStore>(db, read_only ? StoreRetention{} : retention);
}

SqliteResponseStore::~SqliteResponseStore() {
  stop_pruning();
  sqlite3_close(db_);
}

Error SqliteResponseStore::failure(const char* op, const std::string& what) {
  Metrics::global().add("allm_store_errors_total", {{"op", op}});
  return make_error(ErrorCode::INTERNAL, what + ": " + sqlite3_errmsg(db_));
}

uint64_t SqliteResponseStore::used_bytes() {
  Statement pages(db_,
                  "SELECT page_count - freelist_count, page_size FROM pragma_page_count(), "
                  "pragma_freelist_count(), pragma_page_size()");
  if (!pages.ok() || pages.step() != SQLITE_ROW) return 0;
  return static_cast<uint64_t>(pages.integer(0)) * static_cast<uint64_t>(pages.integer(1));
}

Error SqliteResponseStore::put(const StoredResponse& response) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement stmt(db_,
                 "INSERT OR REPLACE INTO responses (id, response, conversation) VALUES (?, ?, ?)");
  if (!stmt.ok()) return failure("put", "could not store the response");
  stmt.bind(1, response.id);
  stmt.bind(2, response.response_json);
  stmt.bind(3, response.conversation_json);
  if (stmt.step() != SQLITE_DONE) return failure("put", "could not store the response");
  if (retention().max_bytes > 0 && used_bytes() > retention().max_bytes) prune_soon();
  return {};
}

Error SqliteResponseStore::get(const std::string& id, std::optional<StoredResponse>* found) {
  std::lock_guard<std::mutex> lock(mutex_);
  found->reset();
  Statement stmt(db_, "SELECT response, conversation FROM responses WHERE id = ?");
  if (!stmt.ok()) return failure("get", "could not read the response store");
  stmt.bind(1, id);
  const int rc = stmt.step();
  if (rc == SQLITE_ROW) {
    *found = StoredResponse{id, stmt.column(0), stmt.column(1)};
  } else if (rc != SQLITE_DONE) {
    return failure("get", "could not read the response store");
  }
  return {};
}

Error SqliteResponseStore::remove(const std::string& id, bool* removed) {
  std::lock_guard<std::mutex> lock(mutex_);
  *removed = false;
  Statement stmt(db_, "DELETE FROM responses WHERE id = ?");
  if (!stmt.ok()) return failure("delete", "could not delete the response");
  stmt.bind(1, id);
  if (stmt.step() != SQLITE_DONE) return failure("delete", "could not delete the response");
  *removed = sqlite3_changes(db_) > 0;
  return {};
}

Error SqliteResponseStore::delete_expired(int64_t* deleted) {
  Statement stmt(
      db_, "DELETE FROM responses WHERE created_at < CAST(strftime('%s','now') AS INTEGER) - ?");
  if (!stmt.ok()) return failure("prune", "could not prune the response store");
  stmt.bind(1, retention().max_age_seconds);
  if (stmt.step() != SQLITE_DONE) return failure("prune", "could not prune the response store");
  *deleted += sqlite3_changes(db_);
  return {};
}

// Row ids grow with every insert (INSERT OR REPLACE makes a new row), so the smallest is the
// oldest response. One at a time: a response may be a good part of the size.
Error SqliteResponseStore::delete_oldest_past_size(int64_t* deleted) {
  while (used_bytes() > retention().max_bytes) {
    Statement stmt(db_, "DELETE FROM responses WHERE rowid = (SELECT min(rowid) FROM responses)");
    if (!stmt.ok() || stmt.step() != SQLITE_DONE) {
      return failure("prune", "could not prune the response store");
    }
    if (sqlite3_changes(db_) == 0) break;  // empty: the schema alone is past the limit
    ++*deleted;
  }
  return {};
}

Error SqliteResponseStore::prune(int64_t* deleted) {
  std::lock_guard<std::mutex> lock(mutex_);
  *deleted = 0;
  // One transaction: one sync for the whole pruning instead of one per statement.
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return failure("prune", "could not prune the response store");
  }
  Error error;
  if (retention().max_age_seconds > 0) error = delete_expired(deleted);
  if (!error && retention().max_bytes > 0) error = delete_oldest_past_size(deleted);
  if (!error && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    error = failure("prune", "could not prune the response store");
  }
  if (error) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    *deleted = 0;
  }
  return error;
}

}  // namespace allm
