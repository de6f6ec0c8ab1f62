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
#include <thread>
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
  int queue_size = 64;                   // requests waiting per model beyond `parallel`; then 429
  double request_timeout_seconds = 600;  // per request, waiting and loading included; 0: none
  int max_output_tokens = 0;             // cap on max_output_tokens / max_tokens; 0: the context
  double keep_alive_seconds = 0;         // unload models idle this long; 0: keep them
  uint64_t max_memory_bytes = 0;         // budget for loaded models; 0: only free RAM limits
};

class Metrics;

struct TextRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  SamplingParams sampling;
  int max_tokens = 0;  // 0: until the context is full
  std::vector<std::string> stop;
  int top_logprobs = -1;                        // -1: no logprobs
  std::string prompt_param = "messages";        // the request field a too-long prompt is blamed on
  std::string max_tokens_param = "max_tokens";  // the field an over-the-cap limit is blamed on
};

struct TextUsage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;  // prompt tokens reused from the cache, not recomputed
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
  double time_to_first_token = -1;  // seconds from start() to the first token; -1: none
};

// The events of one running request, in order; the consumer may cancel it at any time.
class TextStream {
 public:
  // Waits up to `timeout` for the next event; false on timeout.
  bool next(TextEvent* event, std::chrono::milliseconds timeout);
  void cancel() { cancelled_->store(true); }
  const std::string& model() const { return model_; }

 private:
  friend class TextManager;
  void push(TextEvent event);

  std::string model_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<TextEvent> events_;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
};

struct LoadedModelInfo {
  std::string id;
  size_t memory_bytes = 0;
  int active_sequences = 0;
  int waiting_requests = 0;
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
  // Sets the gauges about loaded text models (memory, queue depth, active sequences).
  void publish_metrics(Metrics& metrics);
  // Ends every running and waiting generation with CANCELLED (shutdown past its grace).
  void cancel_all();

 private:
  struct LoadedModel;
  struct Activity;
  using Clock = std::chrono::steady_clock;
  // The model with one more request counted against it (so it is not unloaded meanwhile).
  std::shared_ptr<LoadedModel> acquire(const std::string& model_id, Error* error);
  std::shared_ptr<LoadedModel> load(const ModelEntry& entry, Error* error);
  // Makes room for `need` bytes under the budget and in free RAM by unloading idle models,
  // least recently used first; OOM_RAM when it cannot. Reserves `need` until the load ends.
  Error make_room(const std::string& model_id, uint64_t need, const std::string& breakdown);
  std::shared_ptr<LoadedModel> take_lru_idle(const std::string& reason);
  uint64_t charged_bytes() const;  // loaded models' memory; mutex_ held
  void unload_idle_models();       // the --keep-alive thread's work
  void keep_alive_loop();

  ModelRegistry& registry_;
  TextManagerConfig config_;
  std::mutex mutex_;
  uint64_t reserved_bytes_ = 0;  // for loads in progress
  std::condition_variable stop_keep_alive_;
  bool stopping_ = false;
  std::thread keep_alive_thread_;
  // One load per model even when its first requests arrive together.
  using LoadOutcome = std::pair<std::shared_ptr<LoadedModel>, Error>;
  std::map<std::string, std::shared_future<LoadOutcome>> loading_;
  std::map<std::string, std::shared_ptr<LoadedModel>> loaded_;
};

}  // namespace allm
