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

}  // namespace
}  // namespace allm
