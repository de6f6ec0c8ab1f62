// TextManager: owns the loaded text models (GGUF through llama.cpp, safetensors through
// safetensors.cpp), loads them on first use, and runs chat requests on their schedulers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/model_registry.h"
#include "text/chat_format.h"
#include "text/generation.h"

namespace allm {

struct TextManagerConfig {
  int ctx_size = 4096;  // tokens per sequence
  int parallel = 4;     // sequences per loaded model
  int threads = 0;
};

struct TextRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  SamplingParams sampling;
  int max_tokens = 0;  // 0: until the context is full
  std::vector<std::string> stop;
  int top_logprobs = -1;                  // -1: no logprobs
  std::string prompt_param = "messages";  // the request field a too-long prompt is blamed on
};

struct TextUsage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

struct TextEvent {
  bool done = false;
  ChatDelta delta;
  std::vector<TokenLogprob> logprobs;
  // Set when done:
  FinishReason finish = FinishReason::STOP;
  Error error;
  TextUsage usage;
  ChatMessage message;
};

// The events of one running request, in order; the consumer may cancel it at any time.
class TextStream {
 public:
  // Waits up to `timeout` for the next event; false on timeout.
  bool next(TextEvent* event, std::chrono::milliseconds timeout);
  void cancel() { cancelled_->store(true); }

 private:
  friend class TextManager;
  void push(TextEvent event);

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<TextEvent> events_;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
};

struct LoadedModelInfo {
  std::string id;
  size_t memory_bytes = 0;
  int active_sequences = 0;
};

class TextManager {
 public:
  TextManager(ModelRegistry& registry, TextManagerConfig config);
  ~TextManager();

  // Loads the model now (the --preload flag); later requests find it ready.
  Error preload(const std::string& model_id);
  // Formats, tokenizes and queues the request; errors before generation starts return here.
  std::shared_ptr<TextStream> start(const TextRequest& request, Error* error);
  std::vector<LoadedModelInfo> loaded_models();

 private:
  struct LoadedModel;
  std::shared_ptr<LoadedModel> acquire(const std::string& model_id, Error* error);
  std::shared_ptr<LoadedModel> load(const ModelEntry& entry, Error* error);

  ModelRegistry& registry_;
  TextManagerConfig config_;
  std::mutex mutex_;
  // One load per model even when its first requests arrive together.
  using LoadOutcome = std::pair<std::shared_ptr<LoadedModel>, Error>;
  std::map<std::string, std::shared_future<LoadOutcome>> loading_;
  std::map<std::string, std::shared_ptr<LoadedModel>> loaded_;
};

}  // namespace allm
