#include "text/sampler.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "llama.h"

namespace allm {

Sampler::Sampler(const SamplingParams& params, int vocab_size)
    : chain_(llama_sampler_chain_init(llama_sampler_chain_default_params())),
      vocab_size_(vocab_size),
      candidates_(vocab_size) {
  if (params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f) {
    llama_sampler_chain_add(
        chain_, llama_sampler_init_penalties(vocab_size, /*last_n=*/-1, 1.0f,
                                             params.frequency_penalty, params.presence_penalty));
  }
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
  const uint32_t seed =
      params.seed < 0 ? std::random_device{}() : static_cast<uint32_t>(params.seed);
  llama_sampler_chain_add(chain_, llama_sampler_init_dist(seed));
}

Sampler::~Sampler() {
  llama_sampler_free(chain_);
}

Token Sampler::sample(const float* logits) {
  for (int i = 0; i < vocab_size_; ++i) candidates_[i] = llama_token_data{i, logits[i], 0.0f};
  llama_token_data_array array{candidates_.data(), candidates_.size(), -1, false};
  llama_sampler_apply(chain_, &array);
  const Token token = array.data[array.selected].id;
  llama_sampler_accept(chain_, token);
  return token;
}

static double log_sum_exp(const float* logits, int vocab_size) {
  const float max_logit = *std::max_element(logits, logits + vocab_size);
  double sum = 0.0;
  for (int i = 0; i < vocab_size; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  return max_logit + std::log(sum);
}

TokenChoice Sampler::logprob_of(const float* logits, int vocab_size, Token token) {
  return {token, static_cast<float>(logits[token] - log_sum_exp(logits, vocab_size))};
}

std::vector<TokenChoice> Sampler::top_logprobs(const float* logits, int vocab_size, int top_n) {
  const double norm = log_sum_exp(logits, vocab_size);
  std::vector<Token> ids(vocab_size);
  for (int i = 0; i < vocab_size; ++i) ids[i] = i;
  top_n = std::min(top_n, vocab_size);
  std::partial_sort(ids.begin(), ids.begin() + top_n, ids.end(),
                    [&](Token a, Token b) { return logits[a] > logits[b]; });
  std::vector<TokenChoice> out;
  for (int i = 0; i < top_n; ++i) {
    out.push_back({ids[i], static_cast<float>(logits[ids[i]] - norm)});
  }
  return out;
}

}  // namespace allm
