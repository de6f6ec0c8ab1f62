// Anthropic Messages answers from generation events: the block sequence of a stream (thinking,
// text, tool calls), stop reasons and usage. The e2e tests drive the real SDK; these cover the
// kinds of output a random-weight model does not produce (reasoning) and exact event order.
#include "api/message_events.h"

#include <gtest/gtest.h>

#include <sstream>

namespace allm {
namespace {

// The `data:` payloads of server-sent events, checked against their `event:` names.
std::vector<json> parse_events(const std::string& text) {
  std::vector<json> out;
  std::istringstream lines(text);
  std::string line, name;
  while (std::getline(lines, line)) {
    if (line.rfind("event: ", 0) == 0) name = line.substr(7);
    if (line.rfind("data: ", 0) != 0) continue;
    json data = json::parse(line.substr(6));
    EXPECT_EQ(data["type"], name);
    out.push_back(std::move(data));
  }
  return out;
}

TextEvent delta_event(const std::string& reasoning, const std::string& content,
                      std::vector<ToolCallDelta> calls = {}) {
  TextEvent event;
  event.delta.reasoning = reasoning;
  event.delta.content = content;
  event.delta.tool_calls = std::move(calls);
  return event;
}

TextEvent done_event(FinishReason finish, const std::string& stop = "") {
  TextEvent event;
  event.done = true;
  event.finish = finish;
  event.stop_sequence = stop;
  event.usage = {10, 5, 4};
  return event;
}

TEST(MessageEvents, BlocksOpenAndCloseByKindWithIncreasingIndices) {
  MessageEvents events({"msg_1", "m", {}});
  std::string text = events.start(10);
  text += events.on_event(delta_event("Let me ", ""));
  text += events.on_event(delta_event("think.", ""));
  text += events.on_event(delta_event("", "Calling."));
  text += events.on_event(delta_event("", "", {{0, "call_a", "f", "{\"x\":"}}));
  text += events.on_event(delta_event("", "", {{0, "", "", "1}"}, {1, "call_b", "g", "{}"}}));
  TextEvent done = done_event(FinishReason::STOP);
  done.message.tool_calls = {{"call_a", "f", "{\"x\":1}"}, {"call_b", "g", "{}"}};
  text += events.on_event(done);

  const std::vector<json> e = parse_events(text);
  std::vector<std::string> types;
  for (const json& event : e) types.push_back(event["type"]);
  const std::vector<std::string> want = {"message_start",       "ping",
                                         "content_block_start", "content_block_delta",
                                         "content_block_delta", "content_block_stop",
                                         "content_block_start", "content_block_delta",
                                         "content_block_stop",  "content_block_start",
                                         "content_block_delta", "content_block_delta",
                                         "content_block_stop",  "content_block_start",
                                         "content_block_delta", "content_block_stop",
                                         "message_delta",       "message_stop"};
  ASSERT_EQ(types, want);
  EXPECT_EQ(e[0]["message"]["id"], "msg_1");
  EXPECT_EQ(e[0]["message"]["usage"]["input_tokens"], 10);
  EXPECT_EQ(e[2]["content_block"]["type"], "thinking");
  EXPECT_EQ(e[3]["delta"], json({{"type", "thinking_delta"}, {"thinking", "Let me "}}));
  EXPECT_EQ(e[6]["content_block"]["type"], "text");
  EXPECT_EQ(e[7]["delta"]["text"], "Calling.");
  EXPECT_EQ(
      e[9]["content_block"],
      json({{"type", "tool_use"}, {"id", "call_a"}, {"name", "f"}, {"input", json::object()}}));
  EXPECT_EQ(e[10]["delta"]["partial_json"].get<std::string>() +
                e[11]["delta"]["partial_json"].get<std::string>(),
            "{\"x\":1}");
  EXPECT_EQ(e[13]["content_block"]["id"], "call_b");
  for (size_t i = 2, index = 0; i < 16; ++i) {
    EXPECT_EQ(e[i]["index"], index) << i;
    if (e[i]["type"] == "content_block_stop") ++index;
  }
  EXPECT_EQ(e[16]["delta"]["stop_reason"], "tool_use");
  EXPECT_EQ(e[16]["usage"]["output_tokens"], 5);
}

TEST(MessageEvents, StopReasonNamesOnlyTheClientsStopSequences) {
  const MessageHeader header{"msg_2", "m", {"END"}};
  EXPECT_EQ(message_json(header, "", "a", done_event(FinishReason::STOP, "END"))["stop_sequence"],
            "END");
  EXPECT_EQ(message_json(header, "", "a", done_event(FinishReason::STOP, "END"))["stop_reason"],
            "stop_sequence");
  // A stop string of the chat template is the end of the turn.
  const json turn = message_json(header, "", "a", done_event(FinishReason::STOP, "<|im_end|>"));
  EXPECT_EQ(turn["stop_reason"], "end_turn");
  EXPECT_TRUE(turn["stop_sequence"].is_null());
  EXPECT_EQ(message_json(header, "", "a", done_event(FinishReason::LENGTH))["stop_reason"],
            "max_tokens");
}

TEST(MessageEvents, MessageHasThinkingTextAndToolUseBlocksAndSplitUsage) {
  TextEvent done = done_event(FinishReason::STOP);
  done.message.tool_calls = {{"call_a", "f", "{\"x\":1}"}};
  const json message = message_json({"msg_3", "m", {}}, "hm", "ok", done);
  EXPECT_EQ(message["content"], json::parse(R"([{"type":"thinking","thinking":"hm","signature":""},
                            {"type":"text","text":"ok"},
                            {"type":"tool_use","id":"call_a","name":"f","input":{"x":1}}])"));
  EXPECT_EQ(message["stop_reason"], "tool_use");
  EXPECT_EQ(message["usage"], json::parse(R"({"input_tokens":6,"cache_creation_input_tokens":0,
                                              "cache_read_input_tokens":4,"output_tokens":5})"));
}

TEST(MessageEvents, AFailureIsAnErrorEvent) {
  MessageEvents events({"msg_4", "m", {}});
  TextEvent done = done_event(FinishReason::ERROR);
  done.error = make_error(ErrorCode::TIMEOUT, "too slow");
  const std::vector<json> e = parse_events(events.on_event(done));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["error"]["type"], "api_error");
  EXPECT_EQ(e[0]["error"]["message"], "too slow");
}

}  // namespace
}  // namespace allm
