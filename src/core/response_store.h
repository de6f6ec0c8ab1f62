// Stored Responses API objects (store: true), kept in SQLite so they survive restarts, and
// pruned by age and size so that the database cannot grow without bound.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/error.h"

struct sqlite3;

namespace allm {

struct StoredResponse {
  std::string id;
  std::string response_json;      // the response object as returned to the client
  std::string conversation_json;  // every message so far, this response's answer included
};

// What the store keeps (0: no limit).
struct StoreRetention {
  double max_age_seconds = 0;  // older responses are deleted
  uint64_t max_bytes = 0;      // past it the oldest responses are deleted
};

// Every failure is also counted in allm_store_errors_total{op}.
class ResponseStore {
 public:
  // A file that is not a usable SQLite database is an error that says how to recover; a
  // read-only one opens (reads work, every write fails).
  static std::unique_ptr<ResponseStore> open(const std::string& path, Error* error,
                                             const StoreRetention& retention = {});
  ~ResponseStore();

  // Durable on success (synchronous commit).
  Error put(const StoredResponse& response);
  // `*found` stays empty, with no error, when there is no such response.
  Error get(const std::string& id, std::optional<StoredResponse>* found);
  Error remove(const std::string& id, bool* removed);
  // Deletes what the retention no longer keeps: responses past the age, then the oldest until
  // the pages in use fit the size. `*deleted`: how many.
  Error prune(int64_t* deleted);
  // Prunes now and then in a thread of its own: every tenth of the age (1 s to 1 min) and as
  // soon as a put passes the size. Nothing to do without a retention or on a read-only file.
  void start_pruning();

 private:
  ResponseStore(sqlite3* db, const StoreRetention& retention) : db_(db), retention_(retention) {}
  Error failure(const char* op, const std::string& what);  // mutex_ held
  uint64_t used_bytes();                                   // mutex_ held
  Error delete_expired(int64_t* deleted);                  // mutex_ held
  Error delete_oldest_past_size(int64_t* deleted);         // mutex_ held
  void prune_periodically();

  sqlite3* db_;
  const StoreRetention retention_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool over_size_ = false;  // a put found the store past max_bytes
  std::thread pruner_;
};

}  // namespace allm
