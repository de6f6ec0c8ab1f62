#include "core/store_location.h"

#include "core/postgres_store.h"

namespace allm {

namespace {

constexpr const char* kSqlitePrefix = "sqlite:";
constexpr const char* kPostgresSchemes[] = {"postgres://", "postgresql://"};

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// Replaces the value of every `password=` parameter in a URI's query with "***".
void mask_query_passwords(std::string* uri) {
  const size_t query = uri->find('?');
  if (query == std::string::npos) return;
  const std::string key = "password=";
  for (size_t at = query; (at = uri->find(key, at)) != std::string::npos;) {
    const char before = (*uri)[at - 1];
    at += key.size();
    if (before != '?' && before != '&') continue;
    const size_t end = uri->find('&', at);
    uri->replace(at, (end == std::string::npos ? uri->size() : end) - at, "***");
  }
}

}  // namespace

bool parse_store_location(const std::string& text, const std::string& default_sqlite_path,
                          StoreLocation* location, std::string* why) {
  if (text.empty()) {
    *location = {StoreLocation::Kind::SQLITE, default_sqlite_path};
    return true;
  }
  if (starts_with(text, kSqlitePrefix)) {
    const std::string path = text.substr(std::string(kSqlitePrefix).size());
    if (path.empty()) {
      *why = "sqlite: needs the path of the database file, e.g. sqlite:/var/lib/allm/responses.db";
      return false;
    }
    *location = {StoreLocation::Kind::SQLITE, path};
    return true;
  }
  for (const char* scheme : kPostgresSchemes) {
    if (starts_with(text, scheme)) {
      *location = {StoreLocation::Kind::POSTGRES, text};
      return true;
    }
  }
  *why = "expected sqlite:PATH or a postgres://user@host:port/database URI, got '" +
         mask_password(text) + "'";
  return false;
}

std::string mask_password(const std::string& uri) {
  std::string masked = uri;
  const size_t scheme_end = masked.find("://");
  if (scheme_end != std::string::npos) {
    // The user part ends at the last '@' of the authority (a password may hold an '@').
    const size_t authority = scheme_end + 3;
    const size_t authority_end = masked.find_first_of("/?#", authority);
    const size_t at =
        masked.rfind('@', authority_end == std::string::npos ? std::string::npos : authority_end);
    if (at != std::string::npos && at >= authority) {
      const size_t colon = masked.find(':', authority);
      if (colon != std::string::npos && colon < at) {
        masked.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  mask_query_passwords(&masked);
  return masked;
}

std::string describe(const StoreLocation& location) {
  return location.kind == StoreLocation::Kind::SQLITE ? location.target
                                                      : mask_password(location.target);
}

std::unique_ptr<ResponseStore> open_response_store(const StoreLocation& location,
                                                   const StoreRetention& retention, Error* error) {
  if (location.kind == StoreLocation::Kind::SQLITE) {
    return ResponseStore::open(location.target, error, retention);
  }
  return open_postgres_store(location.target, retention, error);
}

}  // namespace allm
