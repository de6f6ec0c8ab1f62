// --store values, password masking, the PostgreSQL schema's migration bookkeeping, and what a
// store whose database cannot be reached answers.
#include "core/store_location.h"

#include <gtest/gtest.h>

#include "core/postgres_store.h"

namespace allm {
namespace {

StoreLocation parsed(const std::string& text) {
  StoreLocation location;
  std::string why;
  EXPECT_TRUE(parse_store_location(text, "/data/responses.db", &location, &why)) << why;
  return location;
}

TEST(StoreLocation, SqliteIsTheDefaultAndTakesAPath) {
  EXPECT_EQ(parsed("").kind, StoreLocation::Kind::SQLITE);
  EXPECT_EQ(parsed("").target, "/data/responses.db");
  EXPECT_EQ(parsed("sqlite:/srv/r.db").kind, StoreLocation::Kind::SQLITE);
  EXPECT_EQ(parsed("sqlite:/srv/r.db").target, "/srv/r.db");
}

TEST(StoreLocation, PostgresUrisInBothSchemes) {
  for (const char* uri :
       {"postgres://u@db:5432/allm", "postgresql://u:pw@db/allm?sslmode=require"}) {
    EXPECT_EQ(parsed(uri).kind, StoreLocation::Kind::POSTGRES) << uri;
    EXPECT_EQ(parsed(uri).target, uri);
  }
}

TEST(StoreLocation, OtherValuesAreRefusedWithoutShowingThePassword) {
  StoreLocation location;
  std::string why;
  EXPECT_FALSE(parse_store_location("sqlite:", "", &location, &why));
  EXPECT_NE(why.find("path"), std::string::npos) << why;
  EXPECT_FALSE(parse_store_location("mysql://u:hunter2@db/x", "", &location, &why));
  EXPECT_NE(why.find("postgres://"), std::string::npos) << why;
  EXPECT_EQ(why.find("hunter2"), std::string::npos) << why;
}

TEST(StoreLocation, MasksPasswordsInTheUserPartAndTheQuery) {
  EXPECT_EQ(mask_password("postgres://u:hunter2@db:5432/allm"), "postgres://u:***@db:5432/allm");
  // A password may hold '@' and ':' (percent-encoding them is optional for libpq).
  EXPECT_EQ(mask_password("postgres://u:p@ss:w@db/allm"), "postgres://u:***@db/allm");
  EXPECT_EQ(mask_password("postgres://db/allm?user=u&password=hunter2&sslmode=require"),
            "postgres://db/allm?user=u&password=***&sslmode=require");
  EXPECT_EQ(mask_password("postgres://db/allm?password=hunter2"),
            "postgres://db/allm?password=***");
  // Nothing to mask.
  EXPECT_EQ(mask_password("postgres://u@db/allm"), "postgres://u@db/allm");
  EXPECT_EQ(mask_password("postgres://db/allm?passfile=/x"), "postgres://db/allm?passfile=/x");
}

TEST(SchemaMigrations, VersionsCountUpFromOne) {
  const auto& migrations = schema_migrations();
  ASSERT_FALSE(migrations.empty());
  for (size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, static_cast<int>(i) + 1);
  }
}

TEST(SchemaMigrations, PendingAreThoseAfterTheDatabasesVersion) {
  const auto& migrations = schema_migrations();
  const int latest = migrations.back().version;
  std::vector<SchemaMigration> pending;
  EXPECT_FALSE(pending_migrations(0, &pending));
  EXPECT_EQ(pending.size(), migrations.size());
  EXPECT_FALSE(pending_migrations(latest, &pending));
  EXPECT_TRUE(pending.empty());
  Error newer = pending_migrations(latest + 1, &pending);
  EXPECT_TRUE(newer);
  EXPECT_NE(newer.message.find("newer"), std::string::npos) << newer.message;
}

TEST(PostgresStore, AnUnparsableUriIsAnErrorWithoutThePassword) {
  Error error;
  EXPECT_FALSE(open_postgres_store("postgres://u:hunter2@db/allm?nosuchoption=1", {}, &error));
  EXPECT_TRUE(error);
  EXPECT_EQ(error.message.find("hunter2"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("nosuchoption"), std::string::npos) << error.message;
}

// Nothing listens on port 1: the store opens unavailable and answers 503-style errors.
TEST(PostgresStore, AnUnreachableDatabaseMakesTheStoreUnavailable) {
  Error error;
  auto store = open_postgres_store("postgres://u:hunter2@127.0.0.1:1/allm", {}, &error);
  ASSERT_TRUE(store) << error.message;
  EXPECT_FALSE(store->available());
  std::optional<StoredResponse> found;
  Error get = store->get("resp_1", &found);
  EXPECT_EQ(get.request_code, "store_unavailable");
  EXPECT_EQ(get.message.find("hunter2"), std::string::npos) << get.message;
  EXPECT_EQ(store->put({"resp_1", "{}", "[]"}).request_code, "store_unavailable");
  bool removed = true;
  EXPECT_EQ(store->remove("resp_1", &removed).request_code, "store_unavailable");
  EXPECT_FALSE(removed);
}

}  // namespace
}  // namespace allm
