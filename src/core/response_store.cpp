#include "core/response_store.h"

#include <sqlite3.h>

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
  int step() { return sqlite3_step(stmt_); }
  std::string column(int index) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
    return text ? std::string(text, sqlite3_column_bytes(stmt_, index)) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

std::unique_ptr<ResponseStore> ResponseStore::open(const std::string& path, Error* error) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    *error = make_error(ErrorCode::INTERNAL, "cannot open the response store " + path + ": " +
                                                 (db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return nullptr;
  }
  const char* schema =
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=FULL;"
      "CREATE TABLE IF NOT EXISTS responses ("
      "  id TEXT PRIMARY KEY,"
      "  response TEXT NOT NULL,"
      "  conversation TEXT NOT NULL,"
      "  created_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));";
  char* message = nullptr;
  if (sqlite3_exec(db, schema, nullptr, nullptr, &message) != SQLITE_OK) {
    *error = make_error(ErrorCode::INTERNAL, std::string("cannot prepare the response store: ") +
                                                 (message ? message : "unknown error"));
    sqlite3_free(message);
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 5000);
  return std::unique_ptr<ResponseStore>(new ResponseStore(db));
}

ResponseStore::~ResponseStore() {
  sqlite3_close(db_);
}

Error ResponseStore::put(const StoredResponse& response) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement stmt(db_,
                 "INSERT OR REPLACE INTO responses (id, response, conversation) VALUES (?, ?, ?)");
  if (stmt.ok()) {
    stmt.bind(1, response.id);
    stmt.bind(2, response.response_json);
    stmt.bind(3, response.conversation_json);
    if (stmt.step() == SQLITE_DONE) return {};
  }
  return make_error(ErrorCode::INTERNAL,
                    std::string("could not store the response: ") + sqlite3_errmsg(db_));
}

std::optional<StoredResponse> ResponseStore::get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement stmt(db_, "SELECT response, conversation FROM responses WHERE id = ?");
  if (!stmt.ok()) return std::nullopt;
  stmt.bind(1, id);
  if (stmt.step() != SQLITE_ROW) return std::nullopt;
  return StoredResponse{id, stmt.column(0), stmt.column(1)};
}

bool ResponseStore::remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement stmt(db_, "DELETE FROM responses WHERE id = ?");
  if (!stmt.ok()) return false;
  stmt.bind(1, id);
  return stmt.step() == SQLITE_DONE && sqlite3_changes(db_) > 0;
}

}  // namespace allm
