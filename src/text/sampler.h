// Token sampling from a logits row, independent of the backend that produced it.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "text/backend.h"

struct llama_sampler;
struct llama_token_data;

namespace allm {

class TokenGrammar;

// What Sampler::sample answers when a grammar allows no token at all.
constexpr Token kNoToken = -1;

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy
  float top_p = 1.0f;
  int top_k = 0;  // 0: off
  float min_p = 0.0f;
  // OpenAI's penalties over the tokens generated so far in this request (not the prompt).
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::optional<uint64_t> seed;  // absent: a random one
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

  // The scores the next token is chosen from: `logits` less, for every token sampled so far,
  // count × frequency_penalty + presence_penalty (OpenAI's definition). `logits` itself when
  // there is nothing to subtract; otherwise valid until the next call.
  const float* scores(const float* logits);
  // Chooses a token from `scores` and counts it for the penalties. With a grammar the token is
  // one it allows: the draw is checked, and only a refused draw is repeated over the tokens the
  // grammar allows (checking one token costs far less than checking the vocabulary, as in
  // llama.cpp's common sampler). kNoToken when the grammar allows none.
  Token sample(const float* scores, const TokenGrammar* grammar = nullptr);
  // Log-probabilities under the distribution `scores` gives (its softmax): the chosen token's,
  // and the `top_n` most likely tokens.
  static TokenChoice logprob_of(const float* scores, int vocab_size, Token token);
  static std::vector<TokenChoice> top_logprobs(const float* scores, int vocab_size, int top_n);

 private:
  Token choose(const float* scores);
  Token draw(const llama_token_data* candidates, size_t count);

  SamplingParams params_;
  llama_sampler* chain_;  // greedy, or the truncations and temperature before the draw
  int vocab_size_;
  std::vector<llama_token_data> candidates_;
  std::vector<float> penalized_;
  std::vector<float> masked_;                 // scores less the tokens a grammar refuses
  std::unordered_map<Token, int> generated_;  // token → times sampled
  std::mt19937_64 rng_;
};

}  // namespace allm
