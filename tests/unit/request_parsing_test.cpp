// The endpoints' request parsers on bodies the fuzz targets found (tests/fuzz): a wrongly typed
// field is a 400 naming it, never an exception (which the server would answer with a 500).
#include "api/request_parsing.h"

#include <gtest/gtest.h>

#include "core/conversation_service.h"
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
  ConversationService conversations(*store);
  const json item =
      json::parse(R"({"model":"m","input":[{"type":1,"role":"user","content":"x"}]})");
  Error error = check_responses_request(item, conversations);
  EXPECT_EQ(status_of(error), 400);
  EXPECT_EQ(error.param, "input[0].type");
  const json part =
      json::parse(R"({"model":"m","input":[{"role":"user","content":[{"type":[]}]}]})");
  error = check_responses_request(part, conversations);
  EXPECT_EQ(status_of(error), 400);
  EXPECT_EQ(error.param, "input[0].content[0].type");
}

// `depth` arrays around `leaf`, built without recursion.
json nested_array(int depth, json leaf) {
  json value = std::move(leaf);
  for (int i = 0; i < depth; ++i) value = json::array({std::move(value)});
  return value;
}

// A deep non-string `type` was printed into the error message with a recursive dump, which
// overflowed the stack (the server died on a 200 KB body).
TEST(RequestParsing, DeepTypeIsQuotedAsAFlatExcerpt) {
  Error open_error;
  auto store = ResponseStore::open(":memory:", &open_error);
  ASSERT_TRUE(store);
  ConversationService conversations(*store);
  json body = {{"model", "m"}, {"input", json::array({{{"type", nested_array(200000, 1)}}})}};
  Error error = check_responses_request(body, conversations);
  EXPECT_EQ(status_of(error), 400);
  EXPECT_EQ(error.param, "input[0].type");
  EXPECT_LT(error.message.size(), 120u) << error.message;
  EXPECT_NE(error.message.find("[...]"), std::string::npos) << error.message;
}

TEST(RequestParsing, LongStringsAreQuotedShort) {
  Error open_error;
  auto store = ResponseStore::open(":memory:", &open_error);
  ASSERT_TRUE(store);
  ConversationService conversations(*store);
  const json body = {{"model", "m"},
                     {"input", json::array({{{"type", std::string(100000, 'x')}}})}};
  const Error error = check_responses_request(body, conversations);
  EXPECT_EQ(status_of(error), 400);
  EXPECT_LT(error.message.size(), 160u);
}

TEST(JsonNesting, CountsBracketsOutsideStrings) {
  EXPECT_FALSE(json_nesting_exceeds("{}", 1));
  EXPECT_TRUE(json_nesting_exceeds("{\"a\":[]}", 1));
  EXPECT_FALSE(json_nesting_exceeds("{\"a\":[]}", 2));
  // Brackets inside strings, and escaped quotes that do not end them, do not count.
  EXPECT_FALSE(json_nesting_exceeds(R"({"a":"[[[{{{"})", 1));
  EXPECT_FALSE(json_nesting_exceeds(R"({"a":"\"[[[\\"})", 1));
  EXPECT_TRUE(json_nesting_exceeds(R"({"a":"\\",  "b":[[1]]})", 2));
  const std::string deep = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_FALSE(json_nesting_exceeds(deep, kMaxJsonDepth));
  EXPECT_TRUE(json_nesting_exceeds("[" + deep + "]", kMaxJsonDepth));
}

TEST(JsonNesting, DeepBodiesAreRefusedBeforeParsing) {
  const std::string deep = R"({"model":"m","input":[{"type":)" + std::string(100000, '[') +
                           std::string(100000, ']') + "}]}";
  json body;
  Error error;
  EXPECT_FALSE(parse_json_object(deep, &body, &error));
  EXPECT_EQ(status_of(error), 400);
  EXPECT_EQ(error.request_code, "invalid_json");
  EXPECT_TRUE(body.is_null());
  EXPECT_TRUE(parse_json_object(R"({"model":"m","x":[[[1]]]})", &body, &error));
}

TEST(RequestParsing, ValidBodiesPass) {
  Error open_error;
  auto store = ResponseStore::open(":memory:", &open_error);
  ASSERT_TRUE(store);
  ConversationService conversations(*store);
  EXPECT_FALSE(check_chat_completions_request(json::parse(
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]})")));
  EXPECT_FALSE(
      check_responses_request(json::parse(R"({"model":"m","input":"hi"})"), conversations));
}

}  // namespace
}  // namespace allm
