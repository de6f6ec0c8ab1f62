#include "core/postgres_store.h"

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "core/metrics.h"
#include "core/store_location.h"

namespace allm {

namespace {

// Connections the pool opens at most; requests beyond wait for a free one.
constexpr int kPoolSize = 8;
constexpr auto kAcquireTimeout = std::chrono::seconds(10);
// How long one statement may run on the server before it is cancelled (SQLSTATE 57014).
constexpr int kStatementTimeoutSeconds = 10;
// How often a store that cannot reach its database tries again.
constexpr auto kReconnectPeriod = std::chrono::seconds(1);
// The advisory lock that keeps replicas starting together from migrating at the same time.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7308604897077538157)";

// Defaults that a URI's own parameters override (libpq lets later keywords win, and the URI
// comes last); keepalives notice a database host that went away without closing the connection.
constexpr const char* kConnectDefaults[][2] = {{"connect_timeout", "5"},
                                               {"application_name", "allm"},
                                               {"keepalives_idle", "10"},
                                               {"keepalives_interval", "5"},
                                               {"keepalives_count", "3"}};

const std::vector<SchemaMigration> kMigrations = {
    {1,
     "CREATE SEQUENCE allm_response_order;"
     "CREATE TABLE allm_responses ("
     "  id text PRIMARY KEY,"
     "  response text NOT NULL,"
     "  conversation text NOT NULL,"
     "  created_at timestamptz NOT NULL DEFAULT now(),"
     "  seq bigint NOT NULL DEFAULT nextval('allm_response_order'));"
     "CREATE INDEX allm_responses_by_age ON allm_responses (created_at);"
     "CREATE INDEX allm_responses_by_order ON allm_responses (seq);"},
    {2,
     "CREATE TABLE allm_background_leases ("
     "  id text PRIMARY KEY,"
     "  owner text NOT NULL,"
     "  heartbeat timestamptz NOT NULL DEFAULT now(),"
     "  cancel_requested boolean NOT NULL DEFAULT false);"},
};

struct PreparedStatement {
  const char* name;
  const char* sql;
};
// Prepared on every connection once the schema is there. A replaced response is new again
// (like SQLite's INSERT OR REPLACE): its age and its place in the order restart.
constexpr PreparedStatement kPut = {
    "allm_put",
    "INSERT INTO allm_responses (id, response, conversation) VALUES ($1, $2, $3) "
    "ON CONFLICT (id) DO UPDATE SET response = EXCLUDED.response, "
    "conversation = EXCLUDED.conversation, created_at = now(), "
    "seq = nextval('allm_response_order')"};
constexpr PreparedStatement kGet = {
    "allm_get", "SELECT response, conversation FROM allm_responses WHERE id = $1"};
constexpr PreparedStatement kDelete = {"allm_delete", "DELETE FROM allm_responses WHERE id = $1"};
constexpr PreparedStatement kPruneAge = {
    "allm_prune_age",
    "DELETE FROM allm_responses WHERE created_at < now() - make_interval(secs => $1::float8)"};
// The size of a response is that of its row as stored (pg_column_size: after compression,
// indexes and dead rows not counted); the newest are kept while their sum fits.
constexpr PreparedStatement kPruneSize = {
    "allm_prune_size",
    "DELETE FROM allm_responses WHERE seq IN (SELECT seq FROM (SELECT seq, "
    "sum(pg_column_size(r.*)) OVER (ORDER BY seq DESC) AS kept FROM allm_responses r) "
    "newest_first WHERE kept > $1::bigint)"};
// Leases of background responses: only their owner renews one (another owner's is left as it
// is, and no row comes back).
constexpr PreparedStatement kHoldLease = {
    "allm_hold_lease",
    "INSERT INTO allm_background_leases (id, owner) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE "
    "SET heartbeat = now() WHERE allm_background_leases.owner = EXCLUDED.owner "
    "RETURNING cancel_requested"};
constexpr PreparedStatement kLease = {
    "allm_lease",
    "SELECT owner, extract(epoch FROM now() - heartbeat)::float8, cancel_requested "
    "FROM allm_background_leases WHERE id = $1"};
constexpr PreparedStatement kRequestCancel = {
    "allm_request_cancel",
    "UPDATE allm_background_leases SET cancel_requested = true WHERE id = $1"};
constexpr PreparedStatement kDropLease = {"allm_drop_lease",
                                          "DELETE FROM allm_background_leases WHERE id = $1"};
constexpr PreparedStatement kStatements[] = {
    kPut, kGet, kDelete, kPruneAge, kPruneSize, kHoldLease, kLease, kRequestCancel, kDropLease};

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

Result exec(PGconn* conn, const char* sql) {
  return Result(PQexec(conn, sql), &PQclear);
}

Result exec_prepared(PGconn* conn, const PreparedStatement& statement,
                     const std::vector<std::string>& params) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  for (const std::string& p : params) {
    values.push_back(p.c_str());
    lengths.push_back(static_cast<int>(p.size()));
  }
  return Result(PQexecPrepared(conn, statement.name, static_cast<int>(params.size()), values.data(),
                               lengths.data(), nullptr, 0),
                &PQclear);
}

// Notices (e.g. "relation already exists, skipping" of a migration) go to the debug log, not to
// stderr.
void log_notice(void*, const char* message) {
  ALLM_LOG_DEBUG("postgres: %s", message);
}

// libpq's message on one line (it spreads hints over several).
std::string one_line(const char* message) {
  std::string text;
  for (const char* c = message ? message : ""; *c; ++c) {
    const bool space = *c == '\n' || *c == '\t' || *c == ' ';
    if (!space || (!text.empty() && text.back() != ' ')) text += space ? ' ' : *c;
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text.empty() ? "no answer from the database" : text;
}

std::string sqlstate(const PGresult* result) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  return state ? state : "";
}

// Whether the connection is gone: closed, or the server going down (class 08: connection
// exceptions; 57P01-57P03: shut down, crashed, not accepting connections yet).
bool connection_lost(PGconn* conn, const PGresult* result) {
  if (PQstatus(conn) == CONNECTION_BAD) return true;
  const std::string state = sqlstate(result);
  if (state.empty()) return result == nullptr;
  return state.compare(0, 2, "08") == 0 || state == "57P01" || state == "57P02" || state == "57P03";
}

// What one try on a connection came to: `lost` when the connection went (the try may be made
// again on another).
struct Attempt {
  Error error;
  bool lost = false;
};

Attempt check(PGconn* conn, const PGresult* result, const std::string& what) {
  const ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return {};
  const std::string message =
      one_line(result ? PQresultErrorMessage(result) : PQerrorMessage(conn));
  if (connection_lost(conn, result)) return {store_unavailable(message), true};
  if (sqlstate(result) == "57014") {
    return {store_unavailable("the database did not answer within " +
                              std::to_string(kStatementTimeoutSeconds) + " s"),
            false};
  }
  return {make_error(ErrorCode::INTERNAL, what + ": " + message), false};
}

// Creates or migrates the schema in one transaction, under a lock that other replicas wait on.
Error migrate(PGconn* conn) {
  Attempt step = check(conn, exec(conn, "BEGIN").get(), "cannot migrate the store's schema");
  if (!step.error) step = check(conn, exec(conn, kMigrationLock).get(), "cannot lock the schema");
  if (!step.error) {
    step = check(conn,
                 exec(conn,
                      "CREATE TABLE IF NOT EXISTS allm_schema_version (version integer PRIMARY "
                      "KEY, applied_at timestamptz NOT NULL DEFAULT now())")
                     .get(),
                 "cannot create allm_schema_version");
  }
  int version = 0;
  if (!step.error) {
    Result current = exec(conn, "SELECT coalesce(max(version), 0) FROM allm_schema_version");
    step = check(conn, current.get(), "cannot read allm_schema_version");
    if (!step.error) version = std::atoi(PQgetvalue(current.get(), 0, 0));
  }
  std::vector<SchemaMigration> pending;
  if (!step.error) step.error = pending_migrations(version, &pending);
  for (const SchemaMigration& m : pending) {
    if (step.error) break;
    const std::string what = "schema migration " + std::to_string(m.version) + " failed";
    step = check(conn, exec(conn, m.sql).get(), what);
    if (!step.error) {
      const std::string record =
          "INSERT INTO allm_schema_version (version) VALUES (" + std::to_string(m.version) + ")";
      step = check(conn, exec(conn, record.c_str()).get(), what);
    }
  }
  if (!step.error) step = check(conn, exec(conn, "COMMIT").get(), "cannot migrate the schema");
  if (step.error) exec(conn, "ROLLBACK");
  if (!step.error && !pending.empty()) {
    ALLM_LOG_INFO("response store: schema migrated from version %d to %d", version,
                  pending.back().version);
  }
  return step.error;
}

class PostgresResponseStore : public ResponseStore {
 public:
  PostgresResponseStore(std::string uri, const StoreRetention& retention)
      : ResponseStore(retention), uri_(std::move(uri)), shown_(mask_password(uri_)) {}
  ~PostgresResponseStore() override;

  // Tries to reach the database once, then keeps trying in a thread while it cannot.
  void start();

  Error put(const StoredResponse& response) override;
  Error get(const std::string& id, std::optional<StoredResponse>* found) override;
  Error remove(const std::string& id, bool* removed) override;
  Error prune(int64_t* deleted) override;
  bool available() override { return available_; }
  bool shared() const override { return true; }
  Error hold_lease(const std::string& id, const std::string& owner,
                   bool* cancel_requested) override;
  Error lease(const std::string& id, std::optional<BackgroundLease>* found) override;
  Error request_cancel(const std::string& id) override;
  Error drop_lease(const std::string& id) override;

 private:
  // A new connection, set up (statement timeout, the schema migrated once, statements
  // prepared); null with `*why` when the database cannot be reached or set up.
  PGconn* connect(std::string* why);
  bool reach(std::string* why);  // connects, then the store is available
  void keep_reaching();
  // A free connection, or a new one; null with `*why` (and `*unreachable` when the database
  // could not be reached) otherwise.
  PGconn* acquire(std::string* why, bool* unreachable);
  void release(PGconn* conn, bool lost);
  void mark_unavailable(const std::string& why);
  // Runs `work` on a pooled connection; when the connection turns out lost, once more on a new
  // one. Failures are counted under `op`.
  Error with_connection(const char* op, const std::function<Attempt(PGconn*)>& work);
  // One prepared statement on a pooled connection; `read` sees its result when it succeeded.
  Error run(const char* op, const PreparedStatement& statement,
            const std::vector<std::string>& params, const std::string& what,
            const std::function<void(PGresult*)>& read = nullptr);
  Error failure(const char* op, Error error);

  const std::string uri_;
  const std::string shown_;  // the URI, password masked
  std::atomic<bool> available_{false};
  std::atomic<bool> migrated_{false};

  std::mutex pool_mutex_;
  std::condition_variable pool_freed_;
  std::vector<PGconn*> idle_;
  int open_ = 0;  // connections out of the pool or idle in it

  std::mutex keeper_mutex_;
  std::condition_variable keeper_wake_;
  bool stopping_ = false;
  std::thread keeper_;
};

PostgresResponseStore::~PostgresResponseStore() {
  stop_pruning();
  {
    std::lock_guard<std::mutex> lock(keeper_mutex_);
    stopping_ = true;
  }
  keeper_wake_.notify_all();
  if (keeper_.joinable()) keeper_.join();
  for (PGconn* conn : idle_) PQfinish(conn);
}

void PostgresResponseStore::start() {
  std::string why;
  if (!reach(&why)) {
    ALLM_LOG_WARN(
        "the response store %s cannot be used (%s); stateful requests get 503 until it can "
        "(tried every second)",
        shown_.c_str(), why.c_str());
  }
  keeper_ = std::thread([this] { keep_reaching(); });
}

PGconn* PostgresResponseStore::connect(std::string* why) {
  std::vector<const char*> keywords, values;
  for (const auto& [keyword, value] : kConnectDefaults) {
    keywords.push_back(keyword);
    values.push_back(value);
  }
  keywords.insert(keywords.end(), {"dbname", nullptr});
  values.insert(values.end(), {uri_.c_str(), nullptr});
  PGconn* conn = PQconnectdbParams(keywords.data(), values.data(), 1);
  PQsetNoticeProcessor(conn, log_notice, nullptr);
  Error error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = store_unavailable(one_line(PQerrorMessage(conn)));
  } else {
    const std::string timeout =
        "SET statement_timeout = " + std::to_string(kStatementTimeoutSeconds * 1000);
    error = check(conn, exec(conn, timeout.c_str()).get(), "cannot set up the connection").error;
  }
  if (!error && !migrated_) {
    error = migrate(conn);
    migrated_ = !error;
  }
  for (const PreparedStatement& s : kStatements) {
    if (error) break;
    error = check(conn, Result(PQprepare(conn, s.name, s.sql, 0, nullptr), &PQclear).get(),
                  std::string("cannot prepare ") + s.name)
                .error;
  }
  if (error) {
    *why = error.message;
    PQfinish(conn);
    return nullptr;
  }
  return conn;
}

bool PostgresResponseStore::reach(std::string* why) {
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    ++open_;
  }
  PGconn* conn = connect(why);
  if (!conn) {
    release(nullptr, true);
    ALLM_LOG_DEBUG("response store %s: %s", shown_.c_str(), why->c_str());
    return false;
  }
  release(conn, false);
  if (!available_.exchange(true)) {
    ALLM_LOG_INFO("the response store %s is reachable", shown_.c_str());
  }
  return true;
}

// Every second: a store that is available checks that its database still answers (so that
// /health tells before a request fails), one that is not tries to reach it.
void PostgresResponseStore::keep_reaching() {
  std::unique_lock<std::mutex> lock(keeper_mutex_);
  while (!keeper_wake_.wait_for(lock, kReconnectPeriod, [this] { return stopping_; })) {
    lock.unlock();
    if (available_) {
      with_connection("ping", [](PGconn* conn) {
        return check(conn, exec(conn, "SELECT 1").get(), "the database does not answer");
      });
    } else {
      std::string why;
      reach(&why);
    }
    lock.lock();
  }
}

PGconn* PostgresResponseStore::acquire(std::string* why, bool* unreachable) {
  *unreachable = false;
  {
    std::unique_lock<std::mutex> lock(pool_mutex_);
    if (!pool_freed_.wait_for(lock, kAcquireTimeout,
                              [this] { return !idle_.empty() || open_ < kPoolSize; })) {
      *why = "all " + std::to_string(kPoolSize) + " connections stayed busy for " +
             std::to_string(kAcquireTimeout.count()) + " s";
      return nullptr;
    }
    if (!idle_.empty()) {
      PGconn* conn = idle_.back();
      idle_.pop_back();
      return conn;
    }
    ++open_;
  }
  PGconn* conn = connect(why);
  if (!conn) {
    *unreachable = true;
    release(nullptr, true);
  }
  return conn;
}

void PostgresResponseStore::release(PGconn* conn, bool lost) {
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (lost) {
      --open_;
    } else {
      idle_.push_back(conn);
    }
  }
  if (lost && conn) PQfinish(conn);
  pool_freed_.notify_one();
}

void PostgresResponseStore::mark_unavailable(const std::string& why) {
  std::vector<PGconn*> stale;
  {
    // The idle connections went with the database.
    std::lock_guard<std::mutex> lock(pool_mutex_);
    stale.swap(idle_);
    open_ -= static_cast<int>(stale.size());
  }
  for (PGconn* conn : stale) PQfinish(conn);
  pool_freed_.notify_all();
  if (available_.exchange(false)) {
    ALLM_LOG_WARN(
        "the response store %s is unavailable (%s); stateful requests get 503 until it is "
        "reached again (tried every second)",
        shown_.c_str(), why.c_str());
  }
}

Error PostgresResponseStore::failure(const char* op, Error error) {
  Metrics::global().add("allm_store_errors_total", {{"op", op}});
  return error;
}

Error PostgresResponseStore::with_connection(const char* op,
                                             const std::function<Attempt(PGconn*)>& work) {
  if (!available_) {
    return failure(op, store_unavailable("its database " + shown_ + " cannot be reached"));
  }
  for (int tries = 1;; ++tries) {
    std::string why;
    bool unreachable = false;
    PGconn* conn = acquire(&why, &unreachable);
    if (!conn) {
      if (unreachable) mark_unavailable(why);
      return failure(op, store_unavailable(why));
    }
    Attempt attempt = work(conn);
    release(conn, attempt.lost);
    if (!attempt.lost) return attempt.error ? failure(op, attempt.error) : Error{};
    if (tries == 2) {
      mark_unavailable(attempt.error.message);
      return failure(op, attempt.error);
    }
  }
}

Error PostgresResponseStore::run(const char* op, const PreparedStatement& statement,
                                 const std::vector<std::string>& params, const std::string& what,
                                 const std::function<void(PGresult*)>& read) {
  return with_connection(op, [&](PGconn* conn) {
    Result result = exec_prepared(conn, statement, params);
    Attempt attempt = check(conn, result.get(), what);
    if (!attempt.error && read) read(result.get());
    return attempt;
  });
}

Error PostgresResponseStore::put(const StoredResponse& response) {
  Error error = run("put", kPut, {response.id, response.response_json, response.conversation_json},
                    "could not store the response");
  if (!error && retention().max_bytes > 0) prune_soon();  // the pruner sums the sizes
  return error;
}

Error PostgresResponseStore::get(const std::string& id, std::optional<StoredResponse>* found) {
  found->reset();
  return run("get", kGet, {id}, "could not read the response store", [&](PGresult* r) {
    if (PQntuples(r) == 1) *found = StoredResponse{id, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1)};
  });
}

Error PostgresResponseStore::remove(const std::string& id, bool* removed) {
  *removed = false;
  return run("delete", kDelete, {id}, "could not delete the response",
             [&](PGresult* r) { *removed = std::atoll(PQcmdTuples(r)) > 0; });
}

Error PostgresResponseStore::prune(int64_t* deleted) {
  *deleted = 0;
  return with_connection("prune", [&](PGconn* conn) {
    const std::string what = "could not prune the response store";
    int64_t count = 0;
    Attempt attempt = check(conn, exec(conn, "BEGIN").get(), what);
    if (!attempt.error && retention().max_age_seconds > 0) {
      Result result = exec_prepared(conn, kPruneAge, {std::to_string(retention().max_age_seconds)});
      attempt = check(conn, result.get(), what);
      if (!attempt.error) count += std::atoll(PQcmdTuples(result.get()));
    }
    if (!attempt.error && retention().max_bytes > 0) {
      Result result = exec_prepared(conn, kPruneSize, {std::to_string(retention().max_bytes)});
      attempt = check(conn, result.get(), what);
      if (!attempt.error) count += std::atoll(PQcmdTuples(result.get()));
    }
    if (!attempt.error) attempt = check(conn, exec(conn, "COMMIT").get(), what);
    if (attempt.error && !attempt.lost) exec(conn, "ROLLBACK");
    if (!attempt.error) *deleted = count;
    return attempt;
  });
}

Error PostgresResponseStore::hold_lease(const std::string& id, const std::string& owner,
                                        bool* cancel_requested) {
  *cancel_requested = false;
  return run("lease", kHoldLease, {id, owner}, "could not renew a background response's lease",
             [&](PGresult* r) {
               if (PQntuples(r) == 1) *cancel_requested = PQgetvalue(r, 0, 0)[0] == 't';
             });
}

Error PostgresResponseStore::lease(const std::string& id, std::optional<BackgroundLease>* found) {
  found->reset();
  return run("lease", kLease, {id}, "could not read a background response's lease",
             [&](PGresult* r) {
               if (PQntuples(r) == 1) {
                 *found = BackgroundLease{PQgetvalue(r, 0, 0), std::atof(PQgetvalue(r, 0, 1)),
                                          PQgetvalue(r, 0, 2)[0] == 't'};
               }
             });
}

Error PostgresResponseStore::request_cancel(const std::string& id) {
  return run("lease", kRequestCancel, {id},
             "could not ask for a background response's cancellation");
}

Error PostgresResponseStore::drop_lease(const std::string& id) {
  return run("lease", kDropLease, {id}, "could not drop a background response's lease");
}

}  // namespace

const std::vector<SchemaMigration>& schema_migrations() {
  return kMigrations;
}

Error pending_migrations(int version, std::vector<SchemaMigration>* pending) {
  pending->clear();
  const int latest = kMigrations.empty() ? 0 : kMigrations.back().version;
  if (version > latest) {
    return make_error(ErrorCode::INTERNAL,
                      "the store's schema is version " + std::to_string(version) +
                          ", newer than this server knows (" + std::to_string(latest) +
                          "): a newer allm migrated it; run that version");
  }
  for (const SchemaMigration& m : kMigrations) {
    if (m.version > version) pending->push_back(m);
  }
  return {};
}

std::unique_ptr<ResponseStore> open_postgres_store(const std::string& uri,
                                                   const StoreRetention& retention, Error* error) {
  char* message = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &message);
  if (!options) {
    *error = make_error(ErrorCode::INTERNAL, "cannot use the response store " + mask_password(uri) +
                                                 ": " + one_line(message));
    PQfreemem(message);
    return nullptr;
  }
  PQconninfoFree(options);
  auto store = std::make_unique<PostgresResponseStore>(uri, retention);
  store->start();
  return store;
}

}  // namespace allm
