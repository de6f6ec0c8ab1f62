// Stored Responses API objects (store: true), kept in SQLite so they survive restarts.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/error.h"

struct sqlite3;

namespace allm {

struct StoredResponse {
  std::string id;
  std::string response_json;      // the response object as returned to the client
  std::string conversation_json;  // every message so far, this response's answer included
};

class ResponseStore {
 public:
  static std::unique_ptr<ResponseStore> open(const std::string& path, Error* error);
  ~ResponseStore();

  // Durable on return (synchronous commit).
  Error put(const StoredResponse& response);
  std::optional<StoredResponse> get(const std::string& id);
  bool remove(const std::string& id);  // false when there was no such response

 private:
  explicit ResponseStore(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::mutex mutex_;
};

}  // namespace allm
