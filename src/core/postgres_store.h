// The response store in PostgreSQL (libpq), shared by every replica that names the same
// database. Its schema is created and migrated at start; a database that cannot be reached
// makes the store unavailable (store_unavailable() errors, 503) until it is reached again, which
// a thread of the store tries every second.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "core/response_store.h"

namespace allm {

// One step of the schema: applied once, in order, in the transaction that records `version` in
// allm_schema_version.
struct SchemaMigration {
  int version;
  const char* sql;
};

// Every migration, versions 1, 2, … in order.
const std::vector<SchemaMigration>& schema_migrations();

// What a database at schema `version` (0: none yet) still needs; an error when it is newer than
// this server knows (a newer server migrated it).
Error pending_migrations(int version, std::vector<SchemaMigration>* pending);

// `uri`: a libpq connection URI (postgres://…); an error only when libpq cannot parse it.
std::unique_ptr<ResponseStore> open_postgres_store(const std::string& uri,
                                                   const StoreRetention& retention, Error* error);

}  // namespace allm
