// The TextManager on the tiny random GGUF model (the test fixture, written here): what happens to
// a request whose stream nobody reads.
#include "core/text_manager.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "core/metrics.h"
#include "demo/tiny_gguf.h"
#include "unchecked_memory.h"

namespace fs = std::filesystem;

namespace allm {
namespace {

class TextManagerTest : public ::testing::Test {
 protected:
  static constexpr const char* kModel = "dropped-stream-tiny";

  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("allm-text-manager-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    std::string error;
    ASSERT_TRUE(write_tiny_llama_gguf((dir_ / "tiny.gguf").string(), {}, &error)) << error;
    registry_ = std::make_unique<ModelRegistry>(
        dir_ / "none", std::vector<ModelEntry>{{kModel, dir_ / "tiny.gguf", {}, Modality::TEXT}});
    lifecycle_ = std::make_unique<ModelLifecycle>(LifecycleConfig{}, memory_);
    TextManagerConfig config;
    config.ctx_size = 1024;
    config.parallel = 1;
    text_ = std::make_unique<TextManager>(*registry_, *lifecycle_, config);
  }

  void TearDown() override {
    text_.reset();
    lifecycle_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  TextRequest greedy(int max_tokens) {
    TextRequest request;
    request.model = kModel;
    request.messages = {{"user", "Tell me a long story", ""}};
    request.sampling.temperature = 0;
    request.max_tokens = max_tokens;
    return request;
  }

  double counted(const char* metric) {
    return Metrics::global().value(metric, {{"model", kModel}});
  }

  fs::path dir_;
  UncheckedMemory memory_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<ModelLifecycle> lifecycle_;
  std::unique_ptr<TextManager> text_;
};

TEST_F(TextManagerTest, AStreamNobodyHoldsCancelsItsJob) {
  constexpr int kTokens = 400;
  // Read to the end, this request runs to its limit: the model does not stop by itself earlier.
  Error error;
  std::shared_ptr<TextStream> read = text_->start(greedy(kTokens), &error);
  ASSERT_TRUE(read) << error.message;
  TextEvent event;
  while (!event.done) ASSERT_TRUE(read->next(&event, std::chrono::seconds(60)));
  ASSERT_EQ(event.finish, FinishReason::LENGTH) << event.error.message;
  ASSERT_EQ(event.usage.completion_tokens, kTokens);
  read.reset();

  // The same request, its stream dropped unread (an HTTP response that is never written): the job
  // ends at once and its sequence is free again.
  const double inputs = counted("allm_tokens_input_total");
  const double outputs = counted("allm_tokens_output_total");
  ASSERT_TRUE(text_->start(greedy(kTokens), &error)) << error.message;
  for (int i = 0; i < 3000 && counted("allm_tokens_input_total") == inputs; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GT(counted("allm_tokens_input_total"), inputs) << "the job has not ended";
  EXPECT_LT(counted("allm_tokens_output_total") - outputs, kTokens);
  text_->publish_metrics(Metrics::global());
  EXPECT_EQ(counted("allm_active_sequences"), 0);
  EXPECT_EQ(counted("allm_queue_depth"), 0);
}

// The prompt tokens of `request` (-1 when it does not fit the context).
int prompt_tokens(TextManager& text, const TextRequest& request) {
  Error error;
  std::shared_ptr<TextStream> stream = text.start(request, &error);
  if (!stream) {
    EXPECT_EQ(error.request_code, "context_length_exceeded") << error.message;
    return -1;
  }
  TextEvent event;
  while (!event.done) EXPECT_TRUE(stream->next(&event, std::chrono::seconds(60)));
  return event.usage.prompt_tokens;
}

TEST_F(TextManagerTest, TruncationDropsTheFewestOldestMessagesKeepingInstructionsAndNewest) {
  TextRequest request = greedy(1);
  std::vector<ChatMessage> middle;
  for (int i = 0; i < 30; ++i) {
    middle.push_back({i % 2 ? "assistant" : "user",
                      "message " + std::to_string(i) +
                          " with some words to take up room in "
                          "the context of this small model",
                      ""});
  }
  const ChatMessage instructions{"system", "Answer briefly and politely.", ""};
  const ChatMessage newest{"user", "The newest question", ""};
  const auto conversation = [&](size_t dropped) {
    std::vector<ChatMessage> messages = {instructions};
    messages.insert(messages.end(), middle.begin() + static_cast<std::ptrdiff_t>(dropped),
                    middle.end());
    messages.push_back(newest);
    return messages;
  };
  // Without truncation: the whole conversation does not fit; find the fewest oldest to drop.
  request.messages = conversation(0);
  ASSERT_EQ(prompt_tokens(*text_, request), -1) << "the conversation must be past the context";
  size_t fewest = 0;
  int expected = -1;
  while (expected < 0 && fewest < middle.size()) {
    request.messages = conversation(++fewest);
    expected = prompt_tokens(*text_, request);
  }
  ASSERT_GT(expected, 0);
  ASSERT_LT(fewest, middle.size()) << "some middle messages must still fit";

  request.messages = conversation(0);
  request.truncate = true;
  request.kept_leading = 1;
  EXPECT_EQ(prompt_tokens(*text_, request), expected);

  // The newest message alone past the context stays refused.
  request.messages = {instructions, {"user", std::string(20000, 'x'), ""}};
  EXPECT_EQ(prompt_tokens(*text_, request), -1);
}

}  // namespace
}  // namespace allm
