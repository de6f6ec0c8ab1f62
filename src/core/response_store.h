// Stored Responses API objects (store: true), kept where they survive restarts (a SQLite file, or
// a PostgreSQL database that several replicas share), and pruned by age and size so that the
// store cannot grow without bound.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/error.h"

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

// Who runs a background response on a store that replicas share.
struct BackgroundLease {
  std::string owner;       // the replica running it
  double age_seconds = 0;  // since its owner last renewed it
  bool cancel_requested = false;
};

// The error of a store that cannot be reached now (a database that is down): the request may be
// retried later (503 with Retry-After).
Error store_unavailable(const std::string& why);

// Every failure is also counted in allm_store_errors_total{op}.
class ResponseStore {
 public:
  // A SQLite file. One that is not a usable database is an error that says how to recover; a
  // read-only one opens (reads work, every write fails).
  static std::unique_ptr<ResponseStore> open(const std::string& path, Error* error,
                                             const StoreRetention& retention = {});
  explicit ResponseStore(const StoreRetention& retention) : retention_(retention) {}
  virtual ~ResponseStore();  // a store's own destructor calls stop_pruning() first

  // Durable on success (synchronous commit); all or nothing.
  virtual Error put(const StoredResponse& response) = 0;
  // `*found` stays empty, with no error, when there is no such response.
  virtual Error get(const std::string& id, std::optional<StoredResponse>* found) = 0;
  virtual Error remove(const std::string& id, bool* removed) = 0;
  // Deletes what the retention no longer keeps: responses past the age, then the oldest until
  // the rest fits the size. `*deleted`: how many.
  virtual Error prune(int64_t* deleted) = 0;
  // Prunes now and then in a thread of its own: every tenth of the age (1 s to 1 min) and as
  // soon as a put passes the size. Nothing to do without a retention or on a read-only file.
  void start_pruning();
  // Whether the store can be reached now (false while its database is down).
  virtual bool available() { return true; }

  // Background responses on a store that several replicas share (a store of one server has no
  // leases: what runs is known locally). The owner holds (and renews) a lease on each response
  // it runs; another replica reads it, and asks the owner to cancel through it.
  virtual bool shared() const { return false; }
  // Takes or renews the lease of `id` for `owner`; `*cancel_requested`: another replica asked
  // to cancel. A lease that another owner holds is left alone.
  virtual Error hold_lease(const std::string& id, const std::string& owner, bool* cancel_requested);
  // `*found` stays empty when nobody holds a lease on `id`.
  virtual Error lease(const std::string& id, std::optional<BackgroundLease>* found);
  virtual Error request_cancel(const std::string& id);
  virtual Error drop_lease(const std::string& id);

 protected:
  const StoreRetention& retention() const { return retention_; }
  // A put found the store past max_bytes: prune soon.
  void prune_soon();
  // Ends the pruning thread (before the store it prunes goes).
  void stop_pruning();

 private:
  void prune_periodically();

  const StoreRetention retention_;
  std::mutex pruning_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool over_size_ = false;
  std::thread pruner_;
};

}  // namespace allm
