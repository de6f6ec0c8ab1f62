// Token sampling from a logits row, independent of the backend that produced it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "text/backend.h"

struct llama_sampler;
struct llama_token_data;

namespace allm {

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy
  float top_p = 1.0f;
  int top_k = 0;  // 0: off
  float min_p = 0.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int64_t seed = -1;  // -1: random
};

struct TokenChoice {
  Token token;
  float logprob;
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int vocab_size);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  Token sample(const float* logits);
  // Log-probabilities under the model's distribution (softmax of the raw logits): the chosen
  // token's, and the `top_n` most likely tokens.
  static TokenChoice logprob_of(const float* logits, int vocab_size, Token token);
  static std::vector<TokenChoice> top_logprobs(const float* logits, int vocab_size, int top_n);

 private:
  llama_sampler* chain_;
  int vocab_size_;
  std::vector<llama_token_data> candidates_;
};

}  // namespace allm
