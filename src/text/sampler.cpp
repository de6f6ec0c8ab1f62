#include "text/sampler.h"

#include <algorithm>
#include <cmath>

#include "llama.h"
#include "text/grammar.h"

namespace allm {

Sampler::Sampler(const SamplingParams& params, int vocab_size)
    : params_(params),
      chain_(llama_sampler_chain_init(llama_sampler_chain_default_params())),
      vocab_size_(vocab_size),
      candidates_(vocab_size),
      rng_(params.seed ? *params.seed : std::random_device{}()) {
  if (params.temperature <= 0.0f) {
    llama_sampler_chain_add(chain_, llama_sampler_init_greedy());
    return;
  }
  if (params.top_k > 0) llama_sampler_chain_add(chain_, llama_sampler_init_top_k(params.top_k));
  if (params.top_p < 1.0f)
    llama_sampler_chain_add(chain_, llama_sampler_init_top_p(params.top_p, 1));
  if (params.min_p > 0.0f)
    llama_sampler_chain_add(chain_, llama_sampler_init_min_p(params.min_p, 1));
  llama_sampler_chain_add(chain_, llama_sampler_init_temp(params.temperature));
}

Sampler::~Sampler() {
  llama_sampler_free(chain_);
}

const float* Sampler::scores(const float* logits) {
  if (generated_.empty() ||
      (params_.presence_penalty == 0.0f && params_.frequency_penalty == 0.0f)) {
    return logits;
  }
  penalized_.assign(logits, logits + vocab_size_);
  for (const auto& [token, count] : generated_) {
    penalized_[token] -=
        static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
  }
  return penalized_.data();
}

Token Sampler::sample(const float* scores, const TokenGrammar* grammar) {
  Token token = choose(scores);
  if (grammar && !grammar->allows(token)) {
    masked_.assign(scores, scores + vocab_size_);
    if (grammar->mask(masked_.data()) == 0) return kNoToken;
    token = choose(masked_.data());
  }
  ++generated_[token];
  return token;
}

Token Sampler::choose(const float* scores) {
  for (int i = 0; i < vocab_size_; ++i) candidates_[i] = llama_token_data{i, scores[i], 0.0f};
  llama_token_data_array array{candidates_.data(), candidates_.size(), -1, false};
  llama_sampler_apply(chain_, &array);
  return params_.temperature <= 0.0f ? array.data[array.selected].id : draw(array.data, array.size);
}

// A token drawn from the softmax of the candidates' (truncated, tempered) logits. Our own draw
// rather than llama.cpp's, so that all 64 bits of the seed count: llama.cpp takes a 32-bit seed
// and treats 0xFFFFFFFF as "random".
Token Sampler::draw(const llama_token_data* candidates, size_t count) {
  float max_logit = candidates[0].logit;
  for (size_t i = 1; i < count; ++i) max_logit = std::max(max_logit, candidates[i].logit);
  double total = 0.0;
  for (size_t i = 0; i < count; ++i) total += std::exp(double(candidates[i].logit) - max_logit);
  // 53 random bits give a uniform double in [0, 1), the same on every platform.
  const double target = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
  double sum = 0.0;
  for (size_t i = 0; i < count; ++i) {
    sum += std::exp(double(candidates[i].logit) - max_logit);
    if (sum > target) return candidates[i].id;
  }
  return candidates[count - 1].id;
}

static double log_sum_exp(const float* logits, int vocab_size) {
  const float max_logit = *std::max_element(logits, logits + vocab_size);
  double sum = 0.0;
  for (int i = 0; i < vocab_size; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  return max_logit + std::log(sum);
}

TokenChoice Sampler::logprob_of(const float* scores, int vocab_size, Token token) {
  return {token, static_cast<float>(scores[token] - log_sum_exp(scores, vocab_size))};
}

std::vector<TokenChoice> Sampler::top_logprobs(const float* scores, int vocab_size, int top_n) {
  const double norm = log_sum_exp(scores, vocab_size);
  std::vector<Token> ids(vocab_size);
  for (int i = 0; i < vocab_size; ++i) ids[i] = i;
  top_n = std::min(top_n, vocab_size);
  std::partial_sort(ids.begin(), ids.begin() + top_n, ids.end(),
                    [&](Token a, Token b) { return scores[a] > scores[b]; });
  std::vector<TokenChoice> out;
  for (int i = 0; i < top_n; ++i) {
    out.push_back({ids[i], static_cast<float>(scores[ids[i]] - norm)});
  }
  return out;
}

}  // namespace allm
