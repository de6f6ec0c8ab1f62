#include "core/text_manager.h"

#include <algorithm>

#include "base/byte_size.h"
#include "base/log.h"
#include "base/rpc_workers.h"
#include "core/cpu_threads.h"
#include "core/metrics.h"
#include "text/embeddings.h"
#include "text/scheduler.h"
#include "text/text_memory.h"
#include "text/utf8.h"

namespace allm {

bool TextStream::next(TextEvent* event, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!ready_.wait_for(lock, timeout, [this] { return !events_.empty(); })) return false;
  *event = std::move(events_.front());
  events_.pop_front();
  return true;
}

void TextStream::push(TextEvent event) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(std::move(event));
  }
  ready_.notify_one();
}

struct TextManager::LoadedModel {
  std::unique_ptr<ChatFormatter> formatter;
  std::unique_ptr<Scheduler> scheduler;
};

TextManager::TextManager(ModelRegistry& registry, ModelLifecycle& lifecycle,
                         TextManagerConfig config)
    : config_(config),
      models_(registry, lifecycle, Modality::TEXT,
              [this](const ModelEntry& entry) { return loader_for(entry); }) {}

TextManager::~TextManager() = default;

ModelLoader<TextManager::LoadedModel> TextManager::loader_for(const ModelEntry& entry) {
  // What the estimate found out about the model's files is what the load opens.
  auto resolved = std::make_shared<ResolvedFormat>();
  return {[this, entry, resolved](MemoryEstimate* estimate) {
            *resolved =
                resolve_format(probe_model_path(entry.path), entry.registered_format, entry.id);
            if (!resolved->error) {
              *estimate = estimate_text_model(resolved->format, resolved->file, config_.ctx_size,
                                              config_.parallel, 2,
                                              entry.quantization.value_or(Quantization::NONE),
                                              config_.device != "none" && config_.gpu_layers != 0);
            }
            return resolved->error;
          },
          [this, entry, resolved](Error* load_error, uint64_t* measured) {
            return load(entry, *resolved, load_error, measured);
          },
          [](const LoadedModel& model) { return model.scheduler->backend().healthy(); }};
}

std::shared_ptr<TextManager::LoadedModel> TextManager::load(const ModelEntry& entry,
                                                            const ResolvedFormat& resolved,
                                                            Error* error,
                                                            uint64_t* measured_bytes) {
  const auto started = Clock::now();
  ALLM_LOG_INFO("loading model '%s' (%s) from %s", entry.id.c_str(),
                model_format_name(resolved.format), resolved.file.c_str());
  BackendParams params;
  params.ctx_per_sequence = config_.ctx_size;
  params.sequences = config_.parallel;
  params.threads = threads_per_job(config_.threads, 1);
  params.quantization = entry.quantization.value_or(Quantization::NONE);
  const bool cpu_only = config_.device == "none";
  params.gpu_layers = cpu_only ? 0 : config_.gpu_layers;
  params.device = cpu_only ? "" : config_.device;
  params.tensor_split = config_.tensor_split;
  if (params.gpu_layers != 0) {
    if (Error unreachable = check_rpc_workers()) {
      ALLM_LOG_ERROR("model '%s' failed to load: %s", entry.id.c_str(),
                     unreachable.message.c_str());
      *error = unreachable;
      return nullptr;
    }
  }
  // Which worker, if any, went away while the model was placed on them.
  const RpcPlacement workers = params.gpu_layers != 0 ? watch_rpc_workers() : RpcPlacement();
  std::unique_ptr<TextBackend> backend =
      resolved.format == ModelFormat::GGUF
          ? open_llama_backend(resolved.file.string(), params, error)
          : open_safetensors_backend(resolved.file.string(), params, error);
  if (const std::string lost = workers.lost_worker(); !lost.empty()) {
    *error = make_error(ErrorCode::LOAD_FAILED,
                        "the RPC worker " + lost + " was lost while the model loaded");
    backend.reset();
  }
  if (!backend) {
    ALLM_LOG_ERROR("model '%s' failed to load: %s", entry.id.c_str(), error->message.c_str());
    return nullptr;
  }
  auto model = std::make_shared<LoadedModel>();
  model->formatter = ChatFormatter::create(backend->chat_template(), backend->bos_text(),
                                           backend->eos_text(), error);
  if (!model->formatter) return nullptr;
  *measured_bytes = backend->memory_bytes();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const std::string placement = backend->placement();
  ALLM_LOG_INFO("model '%s' loaded in %.2f s (%s, %d sequences x %d tokens%s%s)", entry.id.c_str(),
                seconds, format_bytes(backend->memory_bytes()).c_str(), backend->max_sequences(),
                backend->context_per_sequence(), placement.empty() ? "" : ", ", placement.c_str());
  model->scheduler = std::make_unique<Scheduler>(std::move(backend), config_.queue_size);
  return model;
}

// The prompt's tokens, with the bos the model wants unless the prompt has it; `bos_added` says
// whether it was added.
static std::vector<Token> tokenize_prompt(const TextBackend& backend, const std::string& prompt,
                                          bool* bos_added = nullptr) {
  const std::string bos = backend.bos_text();
  const bool template_has_bos = !bos.empty() && prompt.compare(0, bos.size(), bos) == 0;
  const bool add_bos = backend.adds_bos() && !template_has_bos;
  if (bos_added) *bos_added = add_bos;
  return backend.tokenize(prompt, add_bos);
}

namespace {

// The prompt of `messages` without the `dropped` messages that follow the first `kept_leading`.
Error format_without(const ChatFormatter& formatter, const TextBackend& backend,
                     const TextRequest& request, size_t dropped, FormattedChat* chat,
                     std::vector<Token>* prompt) {
  std::vector<ChatMessage> messages = request.messages;
  const auto first = messages.begin() + static_cast<std::ptrdiff_t>(request.kept_leading);
  messages.erase(first, first + static_cast<std::ptrdiff_t>(dropped));
  *chat = FormattedChat{};
  if (Error e = formatter.format(messages, request.chat, chat)) return e;
  *prompt = tokenize_prompt(backend, chat->prompt);
  return {};
}

// Formats and tokenizes the request. With truncation, the fewest oldest messages are dropped that
// make the prompt fit (found by bisection: fewer messages never make a longer prompt); when even
// the newest alone does not fit, that prompt is returned and refused by the caller.
Error format_fitting(const ChatFormatter& formatter, const TextBackend& backend,
                     const TextRequest& request, FormattedChat* chat, std::vector<Token>* prompt) {
  const auto fits = [&] {
    return static_cast<int>(prompt->size()) < backend.context_per_sequence();
  };
  if (Error e = format_without(formatter, backend, request, 0, chat, prompt)) return e;
  const size_t kept = request.kept_leading + 1;
  if (fits() || !request.truncate || request.messages.size() <= kept) return {};
  size_t too_few = 0, enough = request.messages.size() - kept;  // drop counts
  while (enough - too_few > 1) {
    const size_t middle = too_few + (enough - too_few) / 2;
    if (Error e = format_without(formatter, backend, request, middle, chat, prompt)) return e;
    (fits() ? enough : too_few) = middle;
  }
  return format_without(formatter, backend, request, enough, chat, prompt);
}

// What legacy completions show of a raw prompt.
struct RawPromptText {
  std::string text;         // the prompt as text (token ids turned back into text)
  std::string first_token;  // the first token's bytes; empty when it is a bos added to the text
};

// Fill-in-the-middle prompts: prefix marker, prefix, suffix marker, suffix, middle marker, in the
// spellings of the model families that have them.
struct FimMarkers {
  const char* prefix;
  const char* suffix;
  const char* middle;
};
constexpr FimMarkers kFimMarkers[] = {
    {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"},  // Qwen2.5-Coder, Qwen3
    {"<fim_prefix>", "<fim_suffix>", "<fim_middle>"},        // StarCoder, SantaCoder
    {"<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"},  // DeepSeek-Coder
};

// The text of a fill-in-the-middle prompt in the first format whose markers are single tokens of
// the model's vocabulary.
Error fim_prompt(const TextBackend& backend, const RawPrompt& raw, const std::string& param,
                 std::string* text) {
  const auto is_token = [&](const char* marker) {
    return backend.tokenize(marker, false).size() == 1;
  };
  for (const FimMarkers& fim : kFimMarkers) {
    if (is_token(fim.prefix) && is_token(fim.suffix) && is_token(fim.middle)) {
      *text = fim.prefix + raw.text + fim.suffix + raw.suffix + fim.middle;
      return {};
    }
  }
  return unsupported_error("the model has no fill-in-the-middle tokens, so 'suffix' is not offered",
                           param);
}

// A raw prompt's tokens (no chat template) and the plain parser its output goes through; token
// ids must be in the vocabulary.
Error raw_prompt_tokens(const TextBackend& backend, const TextRequest& request, FormattedChat* chat,
                        std::vector<Token>* prompt, RawPromptText* shown) {
  const RawPrompt& raw = *request.raw_prompt;
  chat->parser = plain_text_parser();
  if (raw.tokens.empty()) {
    std::string text = raw.text;
    if (!raw.suffix.empty()) {
      if (Error e = fim_prompt(backend, raw, "suffix", &text)) return e;
    }
    bool bos_added = false;
    *prompt = tokenize_prompt(backend, text, &bos_added);
    shown->text = raw.text;
    if (!bos_added && !prompt->empty()) shown->first_token = backend.token_bytes(prompt->front());
    return {};
  }
  for (Token token : raw.tokens) {
    if (token < 0 || token >= backend.vocab_size()) {
      return request_error("token id " + std::to_string(token) +
                               " is not in the model's vocabulary (0 to " +
                               std::to_string(backend.vocab_size() - 1) + ")",
                           request.prompt_param);
    }
    shown->text += backend.token_bytes(token);
  }
  shown->text = sanitize_utf8(shown->text);
  shown->first_token = backend.token_bytes(raw.tokens.front());
  *prompt = raw.tokens;
  return {};
}

// The request's prompt: raw (with what is shown of it in `raw_shown`) or through the chat
// template.
Error prompt_of(const ChatFormatter& formatter, const TextBackend& backend,
                const TextRequest& request, FormattedChat* chat, std::vector<Token>* prompt,
                RawPromptText* raw_shown) {
  if (request.raw_prompt) return raw_prompt_tokens(backend, request, chat, prompt, raw_shown);
  return format_fitting(formatter, backend, request, chat, prompt);
}

// Per-request timing for the latency histograms, updated on the scheduler thread.
struct TokenClock {
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last;
  double first_token_seconds = -1;

  void on_token(const std::string& model) {
    const auto now = std::chrono::steady_clock::now();
    if (first_token_seconds < 0) {
      first_token_seconds = std::chrono::duration<double>(now - started).count();
      Metrics::global().observe("allm_time_to_first_token_seconds", {{"model", model}},
                                first_token_seconds);
    } else {
      Metrics::global().observe("allm_time_per_output_token_seconds", {{"model", model}},
                                std::chrono::duration<double>(now - last).count());
    }
    last = now;
  }
};

// The request's output limit under the --max-output-tokens cap.
Error apply_output_cap(const TextRequest& request, int cap, int* max_tokens) {
  *max_tokens = request.max_tokens;
  if (cap <= 0) return {};
  if (request.max_tokens > cap) {
    return request_error("'" + request.max_tokens_param + "' is " +
                             std::to_string(request.max_tokens) +
                             " but this server allows at most " + std::to_string(cap) +
                             " output tokens (--max-output-tokens)",
                         request.max_tokens_param);
  }
  if (*max_tokens == 0) *max_tokens = cap;
  return {};
}

}  // namespace

std::shared_ptr<TextStream> TextManager::start(const TextRequest& request, Error* error) {
  const auto clock = std::make_shared<TokenClock>();
  if (request.received) clock->started = *request.received;
  int max_tokens = 0;
  if ((*error = apply_output_cap(request, config_.max_output_tokens, &max_tokens))) return nullptr;
  ModelLease<LoadedModel> model = models_.acquire(request.model, error);
  if (!model) return nullptr;
  auto give_up = [&](Error e) {
    *error = std::move(e);
    return nullptr;
  };
  FormattedChat chat;
  const TextBackend& backend = model->scheduler->backend();
  auto job = std::make_shared<GenerationJob>();
  RawPromptText raw_shown;
  if (Error e = prompt_of(*model->formatter, backend, request, &chat, &job->prompt, &raw_shown)) {
    return give_up(e);
  }
  const int prompt_tokens = static_cast<int>(job->prompt.size());
  if (prompt_tokens == 0)
    return give_up(request_error("the prompt is empty", request.prompt_param));
  if (prompt_tokens >= backend.context_per_sequence()) {
    return give_up(request_error("the prompt has " + std::to_string(prompt_tokens) +
                                     " tokens but the model's context holds " +
                                     std::to_string(backend.context_per_sequence()) +
                                     " per request (--ctx-size); shorten the input",
                                 request.prompt_param, "context_length_exceeded"));
  }
  job->sampling = request.sampling;
  job->max_tokens = max_tokens;
  job->stop = request.stop;
  job->stop.insert(job->stop.end(), chat.extra_stops.begin(), chat.extra_stops.end());
  job->top_logprobs = request.top_logprobs;
  job->prompt_logprobs = request.prompt_logprobs && request.raw_prompt;
  // A request that calls tools follows the tool-call grammar (which holds the response format
  // too when the model may answer instead).
  job->grammar = chat.grammar.empty() ? request.grammar : std::move(chat.grammar);
  if (config_.request_timeout_seconds > 0) {
    job->deadline =
        clock->started + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(config_.request_timeout_seconds));
  }

  auto stream = std::make_shared<TextStream>();
  stream->model_ = request.model;
  stream->prompt_text_ = std::move(raw_shown.text);
  stream->unscored_prompt_token_ = std::move(raw_shown.first_token);
  stream->prompt_tokens_ = prompt_tokens;
  job->cancelled = stream->cancelled_;
  std::shared_ptr<ChatOutputParser> parser = std::move(chat.parser);
  const std::weak_ptr<TextStream> reader = stream;
  job->sink.on_text = [reader, parser](const std::string& text, std::vector<TokenLogprob>&& lp) {
    const std::shared_ptr<TextStream> live = reader.lock();
    if (!live) return;  // nobody reads it: the job is cancelled
    TextEvent event;
    event.delta = parser->push(text);
    event.logprobs = std::move(lp);
    if (!event.delta.empty() || !event.logprobs.empty()) live->push(std::move(event));
  };
  const std::string model_id = request.model;
  job->sink.on_token = [clock, model_id] { clock->on_token(model_id); };
  job->sink.on_prompt_logprobs = [reader](std::vector<TokenLogprob>&& logprobs) {
    const std::shared_ptr<TextStream> live = reader.lock();
    if (!live) return;
    TextEvent event;
    event.prompt_logprobs = std::move(logprobs);
    live->push(std::move(event));
  };
  auto stop_sequence = std::make_shared<std::string>();
  job->sink.on_stop_sequence = [stop_sequence](const std::string& stop) { *stop_sequence = stop; };
  // The job's end ends the request; until it is queued, the lease does.
  std::shared_ptr<ModelActivity> activity = model.release();
  job->sink.on_finish = [reader, parser, prompt_tokens, model_id, activity, clock, stop_sequence](
                            FinishReason reason, const Error& err, int completion_tokens,
                            int cached_tokens) {
    TextEvent event;
    event.done = true;
    event.stop_sequence = *stop_sequence;
    event.delta = parser->finish();
    event.finish = reason;
    event.error = err;
    event.usage = {prompt_tokens, completion_tokens, cached_tokens};
    event.message = parser->message();
    event.time_to_first_token = clock->first_token_seconds;
    if (reason == FinishReason::CANCELLED) {
      ALLM_LOG_INFO("model '%s': request cancelled after %d tokens (%s)", model_id.c_str(),
                    completion_tokens, err.message.c_str());
    }
    Metrics& metrics = Metrics::global();
    metrics.add("allm_tokens_input_total", {{"model", model_id}}, prompt_tokens);
    metrics.add("allm_tokens_cached_total", {{"model", model_id}}, cached_tokens);
    metrics.add("allm_tokens_output_total", {{"model", model_id}}, completion_tokens);
    activity->end();
    if (const std::shared_ptr<TextStream> live = reader.lock()) live->push(std::move(event));
  };
  if (!model->scheduler->submit(job)) {
    activity->end();
    Metrics::global().add("allm_rejected_requests_total",
                          {{"model", model_id}, {"reason", "queue_full"}});
    return give_up(request_error("model '" + model_id +
                                     "' is busy: " + std::to_string(config_.parallel) +
                                     " running and " + std::to_string(config_.queue_size) +
                                     " waiting (--parallel, --queue-size); retry shortly",
                                 "", "rate_limit_exceeded"));
  }
  return stream;
}

namespace {

// The input's tokens as the model reads them: text tokenized with the model's special tokens
// (bos, and eos where its tokenizer appends one, as llama-server does), token ids as given.
Error embedding_tokens(const TextBackend& backend, const EmbeddingInput& input,
                       std::vector<Token>* tokens) {
  const std::string& param = input.param;
  *tokens = input.is_tokens ? input.tokens : backend.tokenize(input.text, backend.adds_bos());
  for (size_t i = 0; i < tokens->size(); ++i) {
    const Token token = (*tokens)[i];
    if (token < 0 || token >= backend.vocab_size()) {
      return request_error("token id " + std::to_string(token) + " at " + param + "[" +
                               std::to_string(i) + "] is not in the model's vocabulary of " +
                               std::to_string(backend.vocab_size()) + " tokens",
                           param);
    }
  }
  if (tokens->empty()) return request_error("'" + param + "' has no tokens", param);
  if (static_cast<int>(tokens->size()) > backend.context_per_sequence()) {
    return request_error(param + " has " + std::to_string(tokens->size()) +
                             " tokens but the model's context holds " +
                             std::to_string(backend.context_per_sequence()) +
                             " (--ctx-size); shorten the input",
                         param, "context_length_exceeded");
  }
  return {};
}

}  // namespace

Error TextManager::embed(const EmbeddingRequest& request, EmbeddingResult* result) {
  Error error;
  ModelLease<LoadedModel> model = models_.acquire(request.model, &error);
  if (!model) return error;
  const TextBackend& backend = model->scheduler->backend();
  if (request.dimensions > 0 && !backend.normalizes_embeddings()) {
    return request_error(
        "this model's embeddings are not normalised (its modules.json has no Normalize module), "
        "so they cannot be shortened; leave out 'dimensions'",
        "dimensions");
  }
  std::vector<std::vector<Token>> inputs(request.inputs.size());
  result->prompt_tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (Error e = embedding_tokens(backend, request.inputs[i], &inputs[i])) return e;
    result->prompt_tokens += static_cast<int>(inputs[i].size());
  }
  if (Error e = model->scheduler->embed(inputs, &result->vectors)) return e;
  if (!result->vectors.empty() &&
      request.dimensions > static_cast<int>(result->vectors.front().size())) {
    return request_error("'dimensions' is " + std::to_string(request.dimensions) +
                             " but this model's embeddings have " +
                             std::to_string(result->vectors.front().size()),
                         "dimensions");
  }
  if (request.dimensions > 0) {
    for (std::vector<float>& v : result->vectors) truncate_normalized(&v, request.dimensions);
  }
  Metrics::global().add("allm_tokens_input_total", {{"model", request.model}},
                        result->prompt_tokens);
  return {};
}

Error TextManager::count_prompt_tokens(const TextRequest& request, int* tokens) {
  Error error;
  ModelLease<LoadedModel> model = models_.acquire(request.model, &error);
  if (!model) return error;
  FormattedChat chat;
  std::vector<Token> prompt;
  RawPromptText raw_shown;
  if (Error e = prompt_of(*model->formatter, model->scheduler->backend(), request, &chat, &prompt,
                          &raw_shown)) {
    return e;
  }
  *tokens = static_cast<int>(prompt.size());
  return {};
}

std::map<std::string, TextQueueState> TextManager::queue_states() {
  std::map<std::string, TextQueueState> out;
  for (const auto& [id, model] : models_.loaded())
    out[id] = {model->scheduler->active_sequences(), model->scheduler->waiting_jobs()};
  return out;
}

std::map<std::string, std::vector<DeviceLayers>> TextManager::placements() {
  std::map<std::string, std::vector<DeviceLayers>> out;
  for (const auto& [id, model] : models_.loaded()) out[id] = model->scheduler->backend().devices();
  return out;
}

void TextManager::publish_metrics(Metrics& metrics) {
  for (const char* name : {"allm_queue_depth", "allm_active_sequences"}) metrics.reset(name);
  for (const auto& [id, queue] : queue_states()) {
    metrics.set("allm_queue_depth", {{"model", id}}, queue.waiting);
    metrics.set("allm_active_sequences", {{"model", id}}, queue.active_sequences);
  }
}

void TextManager::cancel_all() {
  for (const auto& [id, model] : models_.loaded()) model->scheduler->cancel_all();
}

}  // namespace allm
