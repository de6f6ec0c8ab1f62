// A generation request as the scheduler sees it, and what it reports back.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "text/backend.h"
#include "text/sampler.h"

namespace allm {

enum class FinishReason { STOP, LENGTH, CANCELLED, ERROR };

struct TokenLogprob {
  std::string bytes;  // the token's raw bytes
  float logprob = 0.0f;
  std::vector<std::pair<std::string, float>> top;  // bytes and logprob of the likeliest tokens
};

// Called on the scheduler thread; must return quickly.
struct GenerationSink {
  // New text (already stop-filtered and UTF-8 safe) plus the tokens sampled since the last call.
  std::function<void(const std::string& text, std::vector<TokenLogprob>&& logprobs)> on_text;
  // `cached_tokens`: prompt tokens that were already in the cache (prefix reuse).
  std::function<void(FinishReason reason, const Error& error, int completion_tokens,
                     int cached_tokens)>
      on_finish;
  // Called once per generated token as it is sampled (latency metrics); may be empty.
  std::function<void()> on_token;
  // Called before on_finish when the output ended at a stop sequence, with that sequence; may
  // be empty.
  std::function<void(const std::string& stop)> on_stop_sequence;
  // With GenerationJob::prompt_logprobs: the log probabilities of prompt tokens (in order, from
  // the second), before the first on_text.
  std::function<void(std::vector<TokenLogprob>&& logprobs)> on_prompt_logprobs;
};

// Constrained decoding: the sampled text must follow a grammar (GBNF, llama.cpp's grammar format).
struct GrammarTrigger {
  enum class Kind { WORD, PATTERN, PATTERN_FULL, TOKEN };
  Kind kind = Kind::WORD;
  std::string value;  // the word or regular expression; for TOKEN the token's text
  Token token = -1;   // for TOKEN
};

struct GrammarConstraint {
  std::string gbnf;   // empty: unconstrained
  bool lazy = false;  // constrain only from the first trigger on (tool_choice auto)
  std::vector<GrammarTrigger> triggers;
  // Text the prompt already ends with that the grammar reads before the first sampled token
  // (common_chat_params.generation_prompt, for the tool-call grammars that start with it); only
  // for grammars that are not lazy, as llama.cpp's common sampler does.
  std::string prefill;
  bool empty() const { return gbnf.empty(); }
};

struct GenerationJob {
  std::vector<Token> prompt;
  SamplingParams sampling;
  int max_tokens = 0;  // 0: until the context is full
  std::vector<std::string> stop;
  int top_logprobs = -1;  // -1: no logprobs
  // Also each prompt token's log probability given those before it (with top_logprobs
  // alternatives), for legacy completions' echo; the whole prompt is then decoded, none of it
  // reused from the cache.
  bool prompt_logprobs = false;
  GrammarConstraint grammar;
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  // Past it the job ends with TIMEOUT, waiting or running (max(): no limit).
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  GenerationSink sink;
};

}  // namespace allm
