#include "text/scheduler.h"

#include <algorithm>

#include "base/log.h"
#include "text/grammar.h"
#include "text/text_streamer.h"

namespace allm {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kBurstWindow{20};
// The shortest prefix worth copying from another sequence's cache rather than decoding: a copy
// moves a whole sequence's cache, decoding a few tokens costs about as much.
constexpr size_t kMinCopiedPrefix = 16;

struct Scheduler::Slot {
  int sequence = 0;
  std::shared_ptr<GenerationJob> job;  // null while free
  std::vector<Token> cached;           // the tokens in this sequence's cache, by position
  size_t prompt_done = 0;              // prompt tokens already in the cache
  int reused = 0;                      // of which were reused from an earlier request
  int position = 0;                    // where the next token goes
  Token last_token = 0;
  int generated = 0;
  uint64_t last_used = 0;  // admission counter when a job last took this slot
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<TextStreamer> streamer;
  std::unique_ptr<TokenGrammar> grammar;      // null: unconstrained
  Error failure;                              // set when the job cannot run (its grammar failed)
  std::vector<TokenLogprob> prompt_logprobs;  // scored prompt tokens not yet emitted

  bool generating() const { return job && prompt_done == job->prompt.size(); }
};

static Error timeout_error() {
  return make_error(ErrorCode::TIMEOUT,
                    "the request ran past its time limit (--request-timeout) and was stopped");
}

Scheduler::Scheduler(std::unique_ptr<TextBackend> backend, int queue_limit)
    : backend_(std::move(backend)), queue_limit_(queue_limit) {
  for (int i = 0; i < backend_->max_sequences(); ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->sequence = i;
  }
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  Error shutdown = make_error(ErrorCode::CANCELLED, "the model was unloaded");
  for (auto& slot : slots_) {
    if (slot->job) finish(*slot, FinishReason::CANCELLED, shutdown);
  }
  for (auto& job : waiting_) job->sink.on_finish(FinishReason::CANCELLED, shutdown, 0, 0);
}

bool Scheduler::submit(std::shared_ptr<GenerationJob> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const int capacity = static_cast<int>(slots_.size()) + queue_limit_;
    if (active_ + static_cast<int>(waiting_.size()) >= capacity) return false;
    waiting_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

int Scheduler::active_sequences() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return active_;
}

int Scheduler::waiting_jobs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(waiting_.size());
}

void Scheduler::cancel_all() {
  cancel_all_ = true;
  wake_.notify_all();
}

void Scheduler::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !waiting_.empty() || active_ > 0; });
      if (stopping_) return;
      // Requests sent together reach us a few milliseconds apart (parsing, chat template,
      // tokenizing: 8 at once on 2 busy cores spread over ~10 ms). Starting from idle, the rest
      // of such a burst gets this long to arrive so that their prompts share one batch instead
      // of the first prompt being read alone while the others wait.
      if (active_ == 0) {
        wake_.wait_for(lock, kBurstWindow, [this] { return stopping_; });
        if (stopping_) return;
      }
    }
    expire_waiting_jobs();
    admit_waiting_jobs();
    drop_cancelled_and_expired();
    std::vector<LogitsUse> uses;
    std::vector<BatchToken> batch = build_batch(&uses);
    if (batch.empty()) continue;
    Error error;
    run_on_decode_thread([&] { error = backend_->decode(batch); });
    if (error) {
      ALLM_LOG_ERROR("decode failed: %s", error.message.c_str());
      for (auto& slot : slots_) {
        if (slot->job) finish(*slot, FinishReason::ERROR, error);
      }
      continue;
    }
    for (size_t i = 0, used = 0; i < batch.size(); ++i) {
      if (!batch[i].want_logits) continue;
      const LogitsUse& use = uses[used++];
      if (use.prompt_index >= 0) {
        score_prompt_token(*use.slot, static_cast<int>(i), use.prompt_index);
      } else {
        sample_and_emit(*use.slot, static_cast<int>(i));
      }
    }
    for (auto& slot : slots_) {
      if (slot->job) emit_prompt_logprobs(*slot);
    }
  }
}

// Waiting jobs that were cancelled or ran out of time leave the queue without a slot.
void Scheduler::expire_waiting_jobs() {
  std::vector<std::shared_ptr<GenerationJob>> expired, cancelled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = Clock::now();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (cancel_all_ || (*it)->cancelled->load()) {
        cancelled.push_back(std::move(*it));
      } else if (now >= (*it)->deadline) {
        expired.push_back(std::move(*it));
      } else {
        ++it;
        continue;
      }
      it = waiting_.erase(it);
    }
  }
  for (auto& job : expired) job->sink.on_finish(FinishReason::ERROR, timeout_error(), 0, 0);
  const Error gone = make_error(ErrorCode::CANCELLED, "the request was cancelled while waiting");
  for (auto& job : cancelled) job->sink.on_finish(FinishReason::CANCELLED, gone, 0, 0);
}

static size_t common_prefix(const std::vector<Token>& prompt, const std::vector<Token>& cached) {
  const size_t limit = std::min(cached.size(), prompt.size());
  const auto end = std::mismatch(prompt.begin(), prompt.begin() + limit, cached.begin()).first;
  return static_cast<size_t>(end - prompt.begin());
}

// Of the slots `eligible` accepts, the one whose cache shares the longest prefix with the
// prompt; null when none shares a token.
Scheduler::Slot* Scheduler::longest_prefix(const std::vector<Token>& prompt, size_t* shared,
                                           const std::function<bool(const Slot&)>& eligible) {
  Slot* best = nullptr;
  *shared = 0;
  for (auto& slot : slots_) {
    if (!eligible(*slot)) continue;
    const size_t len = common_prefix(prompt, slot->cached);
    if (len > *shared) best = slot.get(), *shared = len;
  }
  return best;
}

Scheduler::Slot* Scheduler::least_recently_used_free_slot() {
  Slot* oldest = nullptr;
  for (auto& slot : slots_) {
    if (!slot->job && (!oldest || slot->last_used < oldest->last_used)) oldest = slot.get();
  }
  return oldest;
}

// Jobs are admitted in arrival order, as many as there are free slots. Those that find at least
// half of their prompt cached in a free slot take that slot first; the others then take the
// least recently used free slots, so that a job with no real match (a shared system prompt at
// most) does not overwrite a cache that a job admitted with it could reuse whole.
void Scheduler::admit_waiting_jobs() {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t free = 0;
  for (auto& slot : slots_) free += slot->job ? 0 : 1;
  const size_t count = std::min(free, waiting_.size());
  std::vector<std::shared_ptr<GenerationJob>> unplaced;
  for (size_t i = 0; i < count; ++i) {
    std::shared_ptr<GenerationJob> job = std::move(waiting_.front());
    waiting_.pop_front();
    size_t shared = 0;
    Slot* slot = longest_prefix(job->prompt, &shared, [](const Slot& s) { return !s.job; });
    if (slot && 2 * shared >= job->prompt.size()) {
      place(*slot, std::move(job), shared);
    } else {
      unplaced.push_back(std::move(job));
    }
  }
  for (auto& job : unplaced) {
    Slot* slot = least_recently_used_free_slot();
    const size_t shared = common_prefix(job->prompt, slot->cached);
    place(*slot, std::move(job), shared);
  }
}

// `shared` prompt tokens are in the slot's cache already; all but the last need no decoding
// (the last is decoded again for its logits). Where another slot holds a longer prefix (a system
// prompt that concurrent conversations share), the slot gets a copy of it instead.
void Scheduler::place(Slot& slot, std::shared_ptr<GenerationJob> job, size_t shared) {
  const size_t limit = job->prompt.empty() || job->prompt_logprobs ? 0 : job->prompt.size() - 1;
  size_t reusable = std::min(shared, limit);
  size_t elsewhere = 0;
  // Any other slot, busy or free, may hold it.
  const Slot* donor =
      longest_prefix(job->prompt, &elsewhere, [&](const Slot& s) { return &s != &slot; });
  elsewhere = std::min(elsewhere, limit);
  if (donor && elsewhere >= reusable + kMinCopiedPrefix &&
      backend_->copy_prefix(donor->sequence, slot.sequence, static_cast<int>(elsewhere))) {
    reusable = elsewhere;
    slot.cached.assign(donor->cached.begin(), donor->cached.begin() + reusable);
  } else {
    backend_->trim_sequence(slot.sequence, static_cast<int>(reusable));
    slot.cached.resize(reusable);
  }
  slot.job = std::move(job);
  slot.last_used = ++admissions_;
  slot.prompt_done = reusable;
  slot.reused = static_cast<int>(reusable);
  slot.position = static_cast<int>(reusable);
  slot.generated = 0;
  slot.sampler = std::make_unique<Sampler>(slot.job->sampling, backend_->vocab_size());
  slot.streamer = std::make_unique<TextStreamer>(slot.job->stop);
  slot.failure = {};
  slot.prompt_logprobs.clear();
  if (!slot.job->grammar.empty()) {
    if (!tokens_) tokens_ = TokenTable::read(*backend_);  // once per model, on first use
    slot.grammar = TokenGrammar::create(slot.job->grammar, tokens_, &slot.failure);
  }
  ++active_;
}

void Scheduler::drop_cancelled_and_expired() {
  const auto now = Clock::now();
  for (auto& slot : slots_) {
    if (!slot->job) continue;
    if (cancel_all_) {
      finish(*slot, FinishReason::CANCELLED,
             make_error(ErrorCode::CANCELLED, "the server is shutting down"));
    } else if (slot->job->cancelled->load()) {
      finish(*slot, FinishReason::CANCELLED,
             make_error(ErrorCode::CANCELLED, "the client cancelled the request"));
    } else if (now >= slot->job->deadline) {
      finish(*slot, FinishReason::ERROR, timeout_error());
    } else if (slot->failure) {
      finish(*slot, FinishReason::ERROR, slot->failure);
    }
  }
}

// One token per generating sequence first (they must not stall), then prompt chunks in the
// room left, so a long prompt is read over several steps alongside running streams.
std::vector<BatchToken> Scheduler::build_batch(std::vector<LogitsUse>* uses) {
  std::vector<BatchToken> batch;
  const size_t budget = static_cast<size_t>(backend_->max_batch());
  for (auto& slot : slots_) {
    if (!slot->generating() || batch.size() >= budget) continue;
    batch.push_back({slot->last_token, slot->position++, slot->sequence, true});
    slot->cached.push_back(slot->last_token);
    uses->push_back({slot.get()});
  }
  for (auto& slot : slots_) {
    if (!slot->job || slot->generating()) continue;
    const std::vector<Token>& prompt = slot->job->prompt;
    const size_t chunk = std::min(prompt.size() - slot->prompt_done, budget - batch.size());
    for (size_t i = 0; i < chunk; ++i) {
      const bool last = slot->prompt_done + 1 == prompt.size();
      const Token token = prompt[slot->prompt_done++];
      // A prompt token's logits score the next prompt token.
      const bool scores_next = !last && slot->job->prompt_logprobs;
      batch.push_back({token, slot->position++, slot->sequence, last || scores_next});
      slot->cached.push_back(token);
      if (last) uses->push_back({slot.get()});
      if (scores_next) uses->push_back({slot.get(), static_cast<int>(slot->prompt_done)});
    }
    if (batch.size() >= budget) break;
  }
  return batch;
}

// Logprobs of the distribution the token was chosen from: penalties applied, before temperature
// and truncation.
static TokenLogprob describe_token(const TextBackend& backend, const float* scores, Token token,
                                   int top_n) {
  TokenLogprob out;
  out.bytes = backend.token_bytes(token);
  out.logprob = Sampler::logprob_of(scores, backend.vocab_size(), token).logprob;
  for (const TokenChoice& choice : Sampler::top_logprobs(scores, backend.vocab_size(), top_n)) {
    out.top.emplace_back(backend.token_bytes(choice.token), choice.logprob);
  }
  return out;
}

void Scheduler::score_prompt_token(Slot& slot, int batch_index, int prompt_index) {
  const GenerationJob& job = *slot.job;
  slot.prompt_logprobs.push_back(describe_token(*backend_, backend_->logits(batch_index),
                                                job.prompt[static_cast<size_t>(prompt_index)],
                                                std::max(job.top_logprobs, 0)));
}

void Scheduler::emit_prompt_logprobs(Slot& slot) {
  if (slot.prompt_logprobs.empty()) return;
  if (slot.job->sink.on_prompt_logprobs) {
    slot.job->sink.on_prompt_logprobs(std::move(slot.prompt_logprobs));
  }
  slot.prompt_logprobs.clear();
}

void Scheduler::sample_and_emit(Slot& slot, int batch_index) {
  emit_prompt_logprobs(slot);  // the prompt's, scored in this batch, come first
  GenerationJob& job = *slot.job;
  const float* scores = slot.sampler->scores(backend_->logits(batch_index));
  const Token token = slot.sampler->sample(scores, slot.grammar.get());
  if (token == kNoToken) {
    finish(slot, FinishReason::ERROR,
           make_error(ErrorCode::INTERNAL,
                      "the output grammar allows no token of the model's vocabulary here"));
    return;
  }
  if (backend_->is_end_of_generation(token)) {
    const std::string rest = slot.streamer->finish();
    if (!rest.empty()) job.sink.on_text(rest, {});
    finish(slot, FinishReason::STOP);
    return;
  }
  std::string problem;
  if (slot.grammar && !slot.grammar->accept(token, &problem)) {
    finish(slot, FinishReason::ERROR,
           make_error(ErrorCode::INTERNAL, "the output grammar failed: " + problem));
    return;
  }
  ++slot.generated;
  if (job.sink.on_token) job.sink.on_token();
  std::vector<TokenLogprob> logprobs;
  if (job.top_logprobs >= 0) {
    logprobs.push_back(describe_token(*backend_, scores, token, job.top_logprobs));
  }
  std::string text = slot.streamer->push(backend_->token_bytes(token));
  const bool stopped = slot.streamer->stopped();
  // A grammar that is complete admits nothing more: the answer is whole.
  const bool grammar_done = slot.grammar && slot.grammar->complete();
  const bool at_limit = (job.max_tokens > 0 && slot.generated >= job.max_tokens) ||
                        slot.position >= backend_->context_per_sequence();
  if (!stopped && (grammar_done || at_limit)) text += slot.streamer->finish();
  if (!text.empty() || !logprobs.empty()) job.sink.on_text(text, std::move(logprobs));
  if (stopped && job.sink.on_stop_sequence)
    job.sink.on_stop_sequence(slot.streamer->matched_stop());
  if (stopped || grammar_done) {
    finish(slot, FinishReason::STOP);
  } else if (at_limit) {
    finish(slot, FinishReason::LENGTH);
  } else {
    slot.last_token = token;
  }
}

// The slot's cache stays for prefix reuse, except after a failed decode, when its contents are
// not trusted.
void Scheduler::finish(Slot& slot, FinishReason reason, const Error& error) {
  slot.job->sink.on_finish(reason, error, slot.generated, slot.reused);
  if (reason == FinishReason::ERROR && error.code != ErrorCode::TIMEOUT) {
    backend_->clear_sequence(slot.sequence);
    slot.cached.clear();
  }
  slot.job.reset();
  slot.sampler.reset();
  slot.streamer.reset();
  slot.grammar.reset();
  std::lock_guard<std::mutex> lock(mutex_);
  --active_;
}

}  // namespace allm
