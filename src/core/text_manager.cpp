#include "core/text_manager.h"

#include "core/log.h"
#include "text/scheduler.h"

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
  std::string id;
  std::unique_ptr<ChatFormatter> formatter;
  std::unique_ptr<Scheduler> scheduler;
};

TextManager::TextManager(ModelRegistry& registry, TextManagerConfig config)
    : registry_(registry), config_(config) {}

TextManager::~TextManager() = default;

Error TextManager::preload(const std::string& model_id) {
  Error error;
  acquire(model_id, &error);
  return error;
}

std::shared_ptr<TextManager::LoadedModel> TextManager::acquire(const std::string& model_id,
                                                               Error* error) {
  std::optional<ModelEntry> entry = registry_.find(model_id);
  if (!entry) {
    *error =
        request_error("The model '" + model_id + "' does not exist", "model", "model_not_found");
    return nullptr;
  }
  if (entry->modality != Modality::TEXT) {
    *error = request_error("The model '" + model_id + "' is an " + modality_name(entry->modality) +
                               " model; use it with /v1/audio/transcriptions",
                           "model");
    return nullptr;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  if (auto it = loaded_.find(model_id); it != loaded_.end()) return it->second;
  if (auto it = loading_.find(model_id); it != loading_.end()) {
    auto pending = it->second;
    lock.unlock();
    const LoadOutcome& outcome = pending.get();
    if (!outcome.first) *error = outcome.second;
    return outcome.first;
  }
  std::promise<LoadOutcome> promise;
  loading_[model_id] = promise.get_future().share();
  lock.unlock();
  auto model = load(*entry, error);
  lock.lock();
  if (model) loaded_[model_id] = model;
  loading_.erase(model_id);
  promise.set_value({model, *error});
  return model;
}

std::shared_ptr<TextManager::LoadedModel> TextManager::load(const ModelEntry& entry, Error* error) {
  const ResolvedFormat resolved =
      resolve_format(probe_model_path(entry.path), entry.registered_format, entry.id);
  if (resolved.error) {
    *error = resolved.error;
    return nullptr;
  }
  const auto started = std::chrono::steady_clock::now();
  ALLM_LOG_INFO("loading model '%s' (%s) from %s", entry.id.c_str(),
                model_format_name(resolved.format), resolved.file.c_str());
  BackendParams params;
  params.ctx_per_sequence = config_.ctx_size;
  params.sequences = config_.parallel;
  params.threads = config_.threads;
  std::unique_ptr<TextBackend> backend =
      resolved.format == ModelFormat::GGUF
          ? open_llama_backend(resolved.file.string(), params, error)
          : open_safetensors_backend(resolved.file.string(), params, error);
  if (!backend) {
    ALLM_LOG_ERROR("model '%s' failed to load: %s", entry.id.c_str(), error->message.c_str());
    return nullptr;
  }
  auto model = std::make_shared<LoadedModel>();
  model->id = entry.id;
  model->formatter = ChatFormatter::create(backend->chat_template(), backend->bos_text(),
                                           backend->eos_text(), error);
  if (!model->formatter) return nullptr;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ALLM_LOG_INFO("model '%s' loaded in %.2f s (%.1f MiB, %d sequences x %d tokens)",
                entry.id.c_str(), seconds, backend->memory_bytes() / 1048576.0,
                backend->max_sequences(), backend->context_per_sequence());
  model->scheduler = std::make_unique<Scheduler>(std::move(backend));
  return model;
}

static std::vector<Token> tokenize_prompt(const TextBackend& backend, const std::string& prompt) {
  const std::string bos = backend.bos_text();
  const bool template_has_bos = !bos.empty() && prompt.compare(0, bos.size(), bos) == 0;
  return backend.tokenize(prompt, backend.adds_bos() && !template_has_bos);
}

std::shared_ptr<TextStream> TextManager::start(const TextRequest& request, Error* error) {
  std::shared_ptr<LoadedModel> model = acquire(request.model, error);
  if (!model) return nullptr;
  FormattedChat chat;
  if ((*error = model->formatter->format(request.messages, &chat))) return nullptr;
  const TextBackend& backend = model->scheduler->backend();
  auto job = std::make_shared<GenerationJob>();
  job->prompt = tokenize_prompt(backend, chat.prompt);
  const int prompt_tokens = static_cast<int>(job->prompt.size());
  if (prompt_tokens == 0) {
    *error = request_error("the prompt is empty", request.prompt_param);
    return nullptr;
  }
  if (prompt_tokens >= backend.context_per_sequence()) {
    *error = request_error("the prompt has " + std::to_string(prompt_tokens) +
                               " tokens but the model's context holds " +
                               std::to_string(backend.context_per_sequence()) +
                               " per request (--ctx-size); shorten the input",
                           request.prompt_param, "context_length_exceeded");
    return nullptr;
  }
  job->sampling = request.sampling;
  job->max_tokens = request.max_tokens;
  job->stop = request.stop;
  job->stop.insert(job->stop.end(), chat.extra_stops.begin(), chat.extra_stops.end());
  job->top_logprobs = request.top_logprobs;

  auto stream = std::make_shared<TextStream>();
  job->cancelled = stream->cancelled_;
  std::shared_ptr<ChatOutputParser> parser = std::move(chat.parser);
  job->sink.on_text = [stream, parser](const std::string& text, std::vector<TokenLogprob>&& lp) {
    TextEvent event;
    event.delta = parser->push(text);
    event.logprobs = std::move(lp);
    if (!event.delta.empty() || !event.logprobs.empty()) stream->push(std::move(event));
  };
  const std::string model_id = request.model;
  job->sink.on_finish = [stream, parser, prompt_tokens, model_id](
                            FinishReason reason, const Error& err, int completion_tokens) {
    TextEvent event;
    event.done = true;
    event.delta = parser->finish();
    event.finish = reason;
    event.error = err;
    event.usage = {prompt_tokens, completion_tokens};
    event.message = parser->message();
    if (reason == FinishReason::CANCELLED) {
      ALLM_LOG_INFO("model '%s': request cancelled after %d tokens (%s)", model_id.c_str(),
                    completion_tokens, err.message.c_str());
    }
    stream->push(std::move(event));
  };
  model->scheduler->submit(std::move(job));
  return stream;
}

std::vector<LoadedModelInfo> TextManager::loaded_models() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LoadedModelInfo> out;
  for (const auto& [id, model] : loaded_) {
    out.push_back(
        {id, model->scheduler->backend().memory_bytes(), model->scheduler->active_sequences()});
  }
  return out;
}

}  // namespace allm
