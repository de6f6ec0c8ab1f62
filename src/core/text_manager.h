// TextManager: owns the loaded text models (GGUF through llama.cpp, safetensors through
// safetensors.cpp), loads them on first use, and runs chat requests on their schedulers.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "core/manager_models.h"
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
  int gpu_layers = -1;                   // decoder layers on the GPU (-1: all, 0: none)
  std::string device;                    // the ggml device ("": the first GPU; "none": CPU only)
  std::vector<float> tensor_split;       // each device's share of the layers (empty: free memory)
};

class Metrics;

// A prompt given as it is, without the chat template (legacy completions): its text, or token ids.
struct RawPrompt {
  std::string text;
  std::vector<Token> tokens;  // when not empty, the prompt (no bos is added); else `text`
  // Fill in the middle: the text goes between `text` and this, in the model's FIM format (a
  // model without FIM tokens refuses it).
  std::string suffix;
};

struct TextRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  std::optional<RawPrompt> raw_prompt;  // set: the prompt, and `messages` and `chat` are unused
  SamplingParams sampling;
  int max_tokens = 0;  // 0: until the context is full
  std::vector<std::string> stop;
  int top_logprobs = -1;  // -1: no logprobs
  bool prompt_logprobs =
      false;                  // raw prompts: also the prompt tokens' (TextEvent::prompt_logprobs)
  GrammarConstraint grammar;  // structured outputs: the answer follows it
  ChatOptions chat;           // function tools and the reasoning effort, for the chat template
  // Truncation ("auto" on /v1/responses): while the prompt does not fit the context, the oldest
  // messages go, except the first `kept_leading` (the instructions) and the last (the newest
  // input). Off: a prompt past the context is a context_length_exceeded error.
  bool truncate = false;
  size_t kept_leading = 0;
  std::string prompt_param = "messages";        // the request field a too-long prompt is blamed on
  std::string max_tokens_param = "max_tokens";  // the field an over-the-cap limit is blamed on
  // When the server accepted the request: --request-timeout and the time to first token count
  // from here. Unset: when start() is called.
  std::optional<std::chrono::steady_clock::time_point> received;
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
  // With TextRequest::prompt_logprobs, before any output: the prompt's tokens from the second on,
  // each given those before it (TextStream::unscored_prompt_token is the first).
  std::vector<TokenLogprob> prompt_logprobs;
  // Set when done:
  FinishReason finish = FinishReason::STOP;
  Error error;
  TextUsage usage;
  ChatMessage message;
  std::string stop_sequence;        // the stop sequence the output ended at; empty when none
  double time_to_first_token = -1;  // seconds from start() to the first token; -1: none
};

// The events of one running request, in order; the consumer may cancel it at any time. The job
// holds its stream only weakly: a stream nobody holds any more (an HTTP response never written)
// cancels its job, which frees the sequence.
class TextStream {
 public:
  TextStream() = default;
  TextStream(const TextStream&) = delete;
  TextStream& operator=(const TextStream&) = delete;
  ~TextStream() { cancel(); }
  // Waits up to `timeout` for the next event; false on timeout.
  bool next(TextEvent* event, std::chrono::milliseconds timeout);
  void cancel() { cancelled_->store(true); }
  const std::string& model() const { return model_; }
  // A raw prompt as text (token ids turned back into text), for legacy completions' echo.
  const std::string& prompt_text() const { return prompt_text_; }
  // The prompt's tokens, known once start() returned the stream.
  int prompt_tokens() const { return prompt_tokens_; }
  // A raw prompt's first token (its bytes), which has no log probability: nothing comes before
  // it; empty when that token is a bos the model adds, which echo does not show.
  const std::string& unscored_prompt_token() const { return unscored_prompt_token_; }

 private:
  friend class TextManager;
  void push(TextEvent event);

  std::string model_;
  std::string prompt_text_;
  int prompt_tokens_ = 0;
  std::string unscored_prompt_token_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<TextEvent> events_;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
};

// One input of an embeddings request: text, or token ids the client tokenized itself.
struct EmbeddingInput {
  std::string param = "input";  // the request field it came from, for errors ("input[2]")
  bool is_tokens = false;
  std::string text;
  std::vector<Token> tokens;
};

struct EmbeddingRequest {
  std::string model;
  std::vector<EmbeddingInput> inputs;  // at least one
  int dimensions = 0;                  // > 0: truncate to this many and normalise again
};

struct EmbeddingResult {
  std::vector<std::vector<float>> vectors;  // one per input, in order
  int prompt_tokens = 0;
};

// A loaded text model's scheduler now.
struct TextQueueState {
  int active_sequences = 0;  // requests being decoded
  int waiting = 0;           // requests waiting for a free sequence
};

class TextManager {
 public:
  // Models load, stay and go through `lifecycle` (shared with the other managers).
  TextManager(ModelRegistry& registry, ModelLifecycle& lifecycle, TextManagerConfig config);
  ~TextManager();

  // Loads the model now (the --preload flag); later requests find it ready.
  Error preload(const std::string& model_id) { return models_.preload(model_id); }
  // Formats, tokenizes and queues the request; errors before generation starts return here.
  std::shared_ptr<TextStream> start(const TextRequest& request, Error* error);
  // Embeds every input with the model's pooling; request problems (a token id out of the
  // vocabulary, an input past the context, `dimensions` the model cannot give) are 400s naming
  // the field.
  Error embed(const EmbeddingRequest& request, EmbeddingResult* result);
  // The prompt tokens `request` would be given (its chat template, tools and all), without
  // generating; loads the model if need be.
  Error count_prompt_tokens(const TextRequest& request, int* tokens);
  // Sets the gauges about loaded text models' queues (queue depth, active sequences).
  void publish_metrics(Metrics& metrics);
  // Each loaded text model's queue, by id.
  std::map<std::string, TextQueueState> queue_states();
  // Where each loaded model's blocks are (GET /v1/models, /v1/admin/models).
  std::map<std::string, std::vector<DeviceLayers>> placements();
  // Ends every running and waiting generation with CANCELLED (shutdown past its grace).
  void cancel_all();

 private:
  struct LoadedModel;
  using Clock = std::chrono::steady_clock;
  ModelLoader<LoadedModel> loader_for(const ModelEntry& entry);
  std::shared_ptr<LoadedModel> load(const ModelEntry& entry, const ResolvedFormat& resolved,
                                    Error* error, uint64_t* measured_bytes);

  TextManagerConfig config_;
  ManagerModels<LoadedModel> models_;
};

}  // namespace allm
