#include "core/text_manager.h"

#include <algorithm>

#include "core/log.h"
#include "core/memory_estimate.h"
#include "core/metrics.h"
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

// What the scheduler thread updates when requests end: kept apart from LoadedModel so that a
// finishing job never holds (and so never destroys) the model it runs on.
struct TextManager::Activity {
  std::atomic<int> requests{0};  // started and not yet finished
  std::atomic<int64_t> last_used{0};

  void touch() { last_used = Clock::now().time_since_epoch().count(); }
  double idle_seconds() const {
    return std::chrono::duration<double>(Clock::now().time_since_epoch() -
                                         Clock::duration(last_used.load()))
        .count();
  }
};

struct TextManager::LoadedModel {
  std::string id;
  uint64_t charged_bytes = 0;  // the larger of the estimate and what the backend reports
  std::shared_ptr<Activity> activity = std::make_shared<Activity>();
  std::unique_ptr<ChatFormatter> formatter;
  std::unique_ptr<Scheduler> scheduler;
};

TextManager::TextManager(ModelRegistry& registry, TextManagerConfig config)
    : registry_(registry), config_(config) {
  Metrics::global().set("allm_memory_budget_bytes", {},
                        static_cast<double>(config_.max_memory_bytes));
  if (config_.keep_alive_seconds > 0)
    keep_alive_thread_ = std::thread([this] { keep_alive_loop(); });
}

TextManager::~TextManager() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_keep_alive_.notify_all();
  if (keep_alive_thread_.joinable()) keep_alive_thread_.join();
}

Error TextManager::preload(const std::string& model_id) {
  Error error;
  auto model = acquire(model_id, &error);
  if (model) {
    model->activity->requests--;
    model->activity->touch();
  }
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
  // Counting the request under mutex_ is what keeps the unloader (which checks the count under
  // mutex_) from taking the model away before the job is queued.
  auto lease = [](const std::shared_ptr<LoadedModel>& model) {
    if (model) model->activity->requests++;
    return model;
  };
  for (;;) {
    if (auto it = loaded_.find(model_id); it != loaded_.end()) return lease(it->second);
    auto it = loading_.find(model_id);
    if (it == loading_.end()) break;
    auto pending = it->second;
    lock.unlock();
    const LoadOutcome& outcome = pending.get();
    lock.lock();
    if (!outcome.first) {
      *error = outcome.second;
      return nullptr;
    }
    // Loaded by another request; look again (it may have been unloaded in between).
  }
  std::promise<LoadOutcome> promise;
  loading_[model_id] = promise.get_future().share();
  lock.unlock();
  auto model = load(*entry, error);
  lock.lock();
  if (model) {
    model->activity->touch();
    loaded_[model_id] = model;
  }
  loading_.erase(model_id);
  promise.set_value({model, *error});
  return lease(model);
}

uint64_t TextManager::charged_bytes() const {
  uint64_t total = 0;
  for (const auto& [id, model] : loaded_) total += model->charged_bytes;
  return total;
}

// mutex_ held. The model is taken out of the map; the caller destroys it after unlocking.
std::shared_ptr<TextManager::LoadedModel> TextManager::take_lru_idle(const std::string& reason) {
  auto lru = loaded_.end();
  for (auto it = loaded_.begin(); it != loaded_.end(); ++it) {
    if (it->second->activity->requests.load() > 0) continue;
    if (lru == loaded_.end() ||
        it->second->activity->last_used.load() < lru->second->activity->last_used.load()) {
      lru = it;
    }
  }
  if (lru == loaded_.end()) return nullptr;
  auto model = lru->second;
  loaded_.erase(lru);
  ALLM_LOG_INFO("unloading model '%s' (%s, idle for %.1f s, %s)", model->id.c_str(), reason.c_str(),
                model->activity->idle_seconds(), format_bytes(model->charged_bytes).c_str());
  Metrics::global().add("allm_model_unloads_total", {{"model", model->id}, {"reason", reason}});
  return model;
}

Error TextManager::make_room(const std::string& model_id, uint64_t need,
                             const std::string& breakdown) {
  const uint64_t budget = config_.max_memory_bytes;
  if (budget > 0 && need > budget) {
    return make_error(ErrorCode::OOM_RAM, "model '" + model_id + "' needs about " +
                                              format_bytes(need) + " (" + breakdown +
                                              "), more than the memory budget of " +
                                              format_bytes(budget) + " (--max-memory)");
  }
  std::vector<std::shared_ptr<LoadedModel>> evicted;
  Error error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    while (budget > 0 && charged_bytes() + reserved_bytes_ + need > budget) {
      auto model = take_lru_idle("memory");
      if (!model) {
        error = make_error(ErrorCode::OOM_RAM,
                           "model '" + model_id + "' needs about " + format_bytes(need) +
                               " but the memory budget (" + format_bytes(budget) +
                               ", --max-memory) is held by models that are busy; retry later");
        break;
      }
      evicted.push_back(std::move(model));
    }
    const std::optional<uint64_t> available = available_memory_bytes();
    uint64_t freed = 0;
    for (const auto& model : evicted) freed += model->charged_bytes;
    while (!error && available && *available + freed < reserved_bytes_ + need) {
      auto model = take_lru_idle("memory");
      if (!model) {
        error = make_error(ErrorCode::OOM_RAM, "model '" + model_id + "' needs about " +
                                                   format_bytes(need) + " (" + breakdown +
                                                   ") but only " + format_bytes(*available) +
                                                   " of RAM is available");
        break;
      }
      freed += model->charged_bytes;
      evicted.push_back(std::move(model));
    }
    if (!error) reserved_bytes_ += need;
  }
  evicted.clear();  // unloads, outside the lock
  return error;
}

std::shared_ptr<TextManager::LoadedModel> TextManager::load(const ModelEntry& entry, Error* error) {
  const ResolvedFormat resolved =
      resolve_format(probe_model_path(entry.path), entry.registered_format, entry.id);
  if (resolved.error) {
    *error = resolved.error;
    return nullptr;
  }
  const MemoryEstimate estimate =
      estimate_text_model(resolved.format, resolved.file, config_.ctx_size, config_.parallel, 2);
  const std::string breakdown = "weights " + format_bytes(estimate.weights) + ", KV cache " +
                                format_bytes(estimate.kv_cache) + ", compute " +
                                format_bytes(estimate.compute);
  if ((*error = make_room(entry.id, estimate.total(), breakdown))) {
    ALLM_LOG_ERROR("model '%s' not loaded: %s", entry.id.c_str(), error->message.c_str());
    Metrics::global().add("allm_model_loads_total", {{"model", entry.id}, {"result", "error"}});
    return nullptr;
  }
  const auto started = Clock::now();
  ALLM_LOG_INFO("loading model '%s' (%s) from %s, estimated %s (%s)", entry.id.c_str(),
                model_format_name(resolved.format), resolved.file.c_str(),
                format_bytes(estimate.total()).c_str(), breakdown.c_str());
  BackendParams params;
  params.ctx_per_sequence = config_.ctx_size;
  params.sequences = config_.parallel;
  params.threads = config_.threads;
  std::unique_ptr<TextBackend> backend =
      resolved.format == ModelFormat::GGUF
          ? open_llama_backend(resolved.file.string(), params, error)
          : open_safetensors_backend(resolved.file.string(), params, error);
  std::shared_ptr<LoadedModel> model;
  if (!backend) {
    ALLM_LOG_ERROR("model '%s' failed to load: %s", entry.id.c_str(), error->message.c_str());
  } else {
    model = std::make_shared<LoadedModel>();
    model->id = entry.id;
    model->formatter = ChatFormatter::create(backend->chat_template(), backend->bos_text(),
                                             backend->eos_text(), error);
    if (!model->formatter) model.reset();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reserved_bytes_ -= estimate.total();
  }
  Metrics::global().add("allm_model_loads_total",
                        {{"model", entry.id}, {"result", model ? "ok" : "error"}});
  if (!model) return nullptr;
  model->charged_bytes = std::max<uint64_t>(estimate.total(), backend->memory_bytes());
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  ALLM_LOG_INFO("model '%s' loaded in %.2f s (%s, %d sequences x %d tokens)", entry.id.c_str(),
                seconds, format_bytes(backend->memory_bytes()).c_str(), backend->max_sequences(),
                backend->context_per_sequence());
  model->scheduler = std::make_unique<Scheduler>(std::move(backend), config_.queue_size);
  return model;
}

static std::vector<Token> tokenize_prompt(const TextBackend& backend, const std::string& prompt) {
  const std::string bos = backend.bos_text();
  const bool template_has_bos = !bos.empty() && prompt.compare(0, bos.size(), bos) == 0;
  return backend.tokenize(prompt, backend.adds_bos() && !template_has_bos);
}

namespace {

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
  int max_tokens = 0;
  if ((*error = apply_output_cap(request, config_.max_output_tokens, &max_tokens))) return nullptr;
  std::shared_ptr<LoadedModel> model = acquire(request.model, error);
  if (!model) return nullptr;
  std::shared_ptr<Activity> activity = model->activity;
  auto give_up = [&](Error e) {
    activity->requests--;
    activity->touch();
    *error = std::move(e);
    return nullptr;
  };
  FormattedChat chat;
  if (Error e = model->formatter->format(request.messages, &chat)) return give_up(e);
  const TextBackend& backend = model->scheduler->backend();
  auto job = std::make_shared<GenerationJob>();
  job->prompt = tokenize_prompt(backend, chat.prompt);
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
  if (config_.request_timeout_seconds > 0) {
    job->deadline =
        clock->started + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(config_.request_timeout_seconds));
  }

  auto stream = std::make_shared<TextStream>();
  stream->model_ = request.model;
  job->cancelled = stream->cancelled_;
  std::shared_ptr<ChatOutputParser> parser = std::move(chat.parser);
  job->sink.on_text = [stream, parser](const std::string& text, std::vector<TokenLogprob>&& lp) {
    TextEvent event;
    event.delta = parser->push(text);
    event.logprobs = std::move(lp);
    if (!event.delta.empty() || !event.logprobs.empty()) stream->push(std::move(event));
  };
  const std::string model_id = request.model;
  job->sink.on_token = [clock, model_id] { clock->on_token(model_id); };
  job->sink.on_finish = [stream, parser, prompt_tokens, model_id, activity, clock](
                            FinishReason reason, const Error& err, int completion_tokens,
                            int cached_tokens) {
    TextEvent event;
    event.done = true;
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
    activity->touch();
    activity->requests--;
    stream->push(std::move(event));
  };
  if (!model->scheduler->submit(job)) {
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

std::vector<LoadedModelInfo> TextManager::loaded_models() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LoadedModelInfo> out;
  for (const auto& [id, model] : loaded_) {
    out.push_back({id, model->charged_bytes, model->scheduler->active_sequences(),
                   model->scheduler->waiting_jobs()});
  }
  return out;
}

void TextManager::publish_metrics(Metrics& metrics) {
  const std::vector<LoadedModelInfo> models = loaded_models();
  for (const char* name : {"allm_queue_depth", "allm_active_sequences"}) metrics.reset(name);
  for (const LoadedModelInfo& m : models) {
    metrics.set("allm_model_loaded", {{"model", m.id}, {"modality", "text"}}, 1);
    metrics.set("allm_model_memory_bytes", {{"model", m.id}}, static_cast<double>(m.memory_bytes));
    metrics.set("allm_queue_depth", {{"model", m.id}}, m.waiting_requests);
    metrics.set("allm_active_sequences", {{"model", m.id}}, m.active_sequences);
  }
}

void TextManager::cancel_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [id, model] : loaded_) model->scheduler->cancel_all();
}

void TextManager::unload_idle_models() {
  std::vector<std::shared_ptr<LoadedModel>> idle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = loaded_.begin(); it != loaded_.end();) {
      const Activity& activity = *it->second->activity;
      if (activity.requests.load() == 0 && activity.idle_seconds() >= config_.keep_alive_seconds) {
        ALLM_LOG_INFO("unloading model '%s' (idle for %.1f s, --keep-alive %.0f)",
                      it->first.c_str(), activity.idle_seconds(), config_.keep_alive_seconds);
        Metrics::global().add("allm_model_unloads_total",
                              {{"model", it->first}, {"reason", "keep_alive"}});
        idle.push_back(std::move(it->second));
        it = loaded_.erase(it);
      } else {
        ++it;
      }
    }
  }
  idle.clear();  // unloads, outside the lock
}

void TextManager::keep_alive_loop() {
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::clamp(config_.keep_alive_seconds / 4, 0.05, 1.0)));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    stop_keep_alive_.wait_for(lock, period, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    unload_idle_models();
    lock.lock();
  }
}

}  // namespace allm
