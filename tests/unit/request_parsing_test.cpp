// The endpoints' request parsers on bodies the fuzz targets found (tests/fuzz): a wrongly typed
// field is a 400 naming it, never an exception (which the server would answer with a 500).
#include "api/request_parsing.h"

#include <gtest/gtest.h>

#include "core/response_store.h"

namespace allm {
namespace {

int status_of(const Error& error) {
  return error ? http_status(error) : 200;
}

TEST(RequestParsing, ChatContentPartWithNumericType) {
  const json body =
      json::parse(R"({"model":"m","messages":[{"role":"user","content":[{"type":3}]}]})");
  const Error error = check_chat_completions_request(body);
  EXPECT_EQ(status_of(error), 400);
  EXPECT_EQ(error.param, "messages[0].content[0]");
}

TEST(RequestParsing, ResponsesItemsWithNumericTypes) {
  Error open_error;
  auto store = ResponseStore::open(":memory:", &open_error);
  ASSERT_TRUE(store);
  const json item =
      json::parse(R"({"model":"m","input":[{"type":1,"role":"user","content":"x"}]})");
  Error error = check_responses_request(item, *store);
  EXPECT_EQ(status_of(error), 400);
  EXPECT_EQ(error.param, "input[0].type");
  const json part =
      json::parse(R"({"model":"m","input":[{"role":"user","content":[{"type":[]}]}]})");
  error = check_responses_request(part, *store);
  EXPECT_EQ(status_of(error), 400);
  EXPECT_EQ(error.param, "input[0].content[0].type");
}

TEST(RequestParsing, ValidBodiesPass) {
  Error open_error;
  auto store = ResponseStore::open(":memory:", &open_error);
  ASSERT_TRUE(store);
  EXPECT_FALSE(check_chat_completions_request(json::parse(
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]})")));
  EXPECT_FALSE(check_responses_request(json::parse(R"({"model":"m","input":"hi"})"), *store));
}

}  // namespace
}  // namespace allm
