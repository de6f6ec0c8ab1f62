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
  EXPECT_FALSE(check_completions_request(json::parse(
      R"({"model":"m","prompt":["a",[1,2]],"n":2,"best_of":3,"logprobs":2,"echo":true})")));
  EXPECT_FALSE(check_messages_request(json::parse(R"({"model":"m","max_tokens":2048,
      "system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],
      "messages":[{"role":"user","content":"q"},
                  {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":""},
                      {"type":"tool_use","id":"toolu_1","name":"f","input":{}}]},
                  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1",
                      "content":"r","is_error":true},{"type":"text","text":"go on"}]}],
      "tools":[{"name":"f","input_schema":{"type":"object"}}],
      "tool_choice":{"type":"tool","name":"f"},"thinking":{"type":"enabled","budget_tokens":1024}})")));
}

// Anthropic Messages: what the SDK may send that is not offered, or wrong, names its field.
TEST(RequestParsing, MessagesRefusalsNameTheField) {
  const auto param_of = [](const char* body) {
    return check_messages_request(json::parse(body)).param;
  };
  EXPECT_EQ(param_of(R"({"model":"m","messages":[{"role":"user","content":"q"}]})"), "max_tokens");
  EXPECT_EQ(param_of(R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":[
                {"type":"image","source":{}}]}]})"),
            "messages[0].content[0].type");
  EXPECT_EQ(param_of(R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":[
                {"type":"tool_result","tool_use_id":"nope","content":"r"}]}]})"),
            "messages[0].content[0].tool_use_id");
  EXPECT_EQ(param_of(R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":"q"}],
                "thinking":{"type":"enabled","budget_tokens":2048}})"),
            "thinking.budget_tokens");  // not below max_tokens
  EXPECT_EQ(param_of(R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":"q"}],
                "mcp_servers":[]})"),
            "mcp_servers");
}

// Structured outputs: the format objects of both endpoints, and a schema keyword we cannot
// enforce named by its full path.
TEST(RequestParsing, OutputFormats) {
  Error open_error;
  auto store = ResponseStore::open(":memory:", &open_error);
  ASSERT_TRUE(store);
  ConversationService conversations(*store);
  auto chat = [](const char* format) {
    json body = json::parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
    body["response_format"] = json::parse(format);
    return check_chat_completions_request(body);
  };
  auto responses = [&](const char* text) {
    json body = json::parse(R"({"model":"m","input":"hi"})");
    body["text"] = json::parse(text);
    return check_responses_request(body, conversations);
  };
  const char* schema = R"({"type":"object","properties":{"a":{"type":"integer"}}})";
  EXPECT_FALSE(chat(R"({"type":"text"})"));
  EXPECT_FALSE(chat(R"({"type":"json_object"})"));
  EXPECT_FALSE(chat((std::string(R"({"type":"json_schema","json_schema":{"name":"x","strict":true,
                        "schema":)") +
                     schema + "}}")
                        .c_str()));
  EXPECT_FALSE(responses(R"({"format":{"type":"text"}})"));
  EXPECT_FALSE(responses(R"({"format":{"type":"json_object"}})"));
  EXPECT_FALSE(responses(
      (std::string(R"({"format":{"type":"json_schema","name":"x","schema":)") + schema + "}}")
          .c_str()));

  const char* bad_schema =
      R"({"type":"object","properties":{"age":{"type":"integer","multipleOf":2}}})";
  Error error = chat((std::string(R"({"type":"json_schema","json_schema":{"name":"x","schema":)") +
                      bad_schema + "}}")
                         .c_str());
  EXPECT_EQ(status_of(error), 400);
  EXPECT_EQ(error.param, "response_format.json_schema.schema.properties.age.multipleOf");
  error = responses(
      (std::string(R"({"format":{"type":"json_schema","name":"x","schema":)") + bad_schema + "}}")
          .c_str());
  EXPECT_EQ(status_of(error), 400);
  EXPECT_EQ(error.param, "text.format.schema.properties.age.multipleOf");

  EXPECT_EQ(chat(R"({"type":"xml"})").param, "response_format.type");
  EXPECT_EQ(chat(R"({"type":"json_schema"})").param, "response_format.json_schema");
  EXPECT_EQ(chat(R"({"type":"json_object","extra":1})").param, "response_format.extra");
  EXPECT_EQ(chat(R"({"type":"json_schema","json_schema":{"name":"a b","schema":{}}})").param,
            "response_format.json_schema.name");
  EXPECT_EQ(responses(R"({"format":{"type":"json_schema","name":"x"}})").param,
            "text.format.schema");
  EXPECT_EQ(
      responses(R"({"format":{"type":"json_schema","name":"x","schema":{},"strict":1}})").param,
      "text.format.strict");
  EXPECT_EQ(chat(R"({"type":"json_object","extra":1})").request_code, "unknown_parameter");
  error = responses(R"({"verbosity":"low"})");
  EXPECT_EQ(error.param, "text.verbosity");
  EXPECT_EQ(error.code, ErrorCode::UNSUPPORTED);
  EXPECT_EQ(responses(R"("json")").param, "text");
}

}  // namespace
}  // namespace allm
