// Where the response store lives: `--store sqlite:PATH` (a file of this server's own) or
// `--store postgres://…` (a database that several replicas share).
#pragma once

#include <memory>
#include <string>

#include "base/error.h"
#include "core/response_store.h"

namespace allm {

struct StoreLocation {
  enum class Kind { SQLITE, POSTGRES };
  Kind kind = Kind::SQLITE;
  std::string target;  // SQLITE: the file; POSTGRES: the libpq connection URI, as given
};

// Parses a --store value: "sqlite:PATH", or a "postgres://" / "postgresql://" URI. An empty
// string (the default) is the SQLite file `default_sqlite_path`. False with `*why` otherwise.
bool parse_store_location(const std::string& text, const std::string& default_sqlite_path,
                          StoreLocation* location, std::string* why);

// A connection URI fit for logs and errors: the password, in the user part or as a
// `password=` query parameter, replaced with "***".
std::string mask_password(const std::string& uri);

// What logs say about the store: the file, or the URI with its password masked.
std::string describe(const StoreLocation& location);

// Opens the store. A PostgreSQL database that cannot be reached does not fail this (the store
// starts unavailable and keeps trying to reach it); a URI libpq cannot parse does.
std::unique_ptr<ResponseStore> open_response_store(const StoreLocation& location,
                                                   const StoreRetention& retention, Error* error);

}  // namespace allm
