// The sampler on fixed logits: presence and frequency penalties as OpenAI defines them, and
// seeds that use all 64 bits.
#include "text/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace allm {
namespace {

constexpr int kVocab = 16;

// Token 3 leads by far; the rest fall away in steps of 0.37.
std::vector<float> peaked_logits() {
  std::vector<float> logits(kVocab);
  for (int i = 0; i < kVocab; ++i) logits[i] = -0.37f * static_cast<float>(i);
  logits[3] = 4.0f;
  return logits;
}

std::vector<Token> sample_many(const SamplingParams& params, const std::vector<float>& logits,
                               int n) {
  Sampler sampler(params, kVocab);
  std::vector<Token> out;
  for (int i = 0; i < n; ++i) out.push_back(sampler.sample(sampler.scores(logits.data())));
  return out;
}

TEST(Sampler, WithoutPenaltiesGreedyRepeatsTheLeader) {
  SamplingParams greedy;
  greedy.temperature = 0;
  EXPECT_EQ(sample_many(greedy, peaked_logits(), 6), std::vector<Token>(6, 3));
}

TEST(Sampler, PenaltiesSubtractCountTimesFrequencyPlusPresence) {
  SamplingParams params;
  params.temperature = 0;
  params.frequency_penalty = 0.6f;
  params.presence_penalty = 1.5f;
  const std::vector<float> logits = peaked_logits();
  Sampler sampler(params, kVocab);
  std::map<Token, int> counts;
  std::vector<Token> chosen;
  for (int step = 0; step < 12; ++step) {
    const float* scores = sampler.scores(logits.data());
    for (Token t = 0; t < kVocab; ++t) {
      const int c = counts.count(t) ? counts[t] : 0;
      const float expected =
          logits[t] - (c * params.frequency_penalty + (c > 0 ? params.presence_penalty : 0.0f));
      ASSERT_FLOAT_EQ(scores[t], expected) << "token " << t << " at step " << step;
    }
    chosen.push_back(sampler.sample(scores));
    ++counts[chosen.back()];
  }
  // Token 3 (4.0) leads until its fifth use takes it to 4 - (5 × 0.6 + 1.5) = -0.5; from then
  // on it comes back each time the next untried token falls below it.
  EXPECT_EQ(chosen, (std::vector<Token>{3, 3, 3, 3, 3, 0, 1, 3, 2, 3, 4, 3}));
}

TEST(Sampler, LargeFrequencyPenaltyStopsGreedyRepetition) {
  SamplingParams params;
  params.temperature = 0;
  params.frequency_penalty = 2.0f;
  params.presence_penalty = 2.0f;
  // All logits within 2.5 of each other: one use (a penalty of 4) puts a token behind the rest.
  std::vector<float> logits(kVocab);
  for (int i = 0; i < kVocab; ++i) logits[i] = -0.1f * static_cast<float>(i);
  logits[7] = 1.0f;
  const std::vector<Token> out = sample_many(params, logits, kVocab);
  std::map<Token, int> counts;
  for (Token t : out) ++counts[t];
  EXPECT_EQ(counts.size(), static_cast<size_t>(kVocab)) << "every token once before any repeats";
}

TEST(Sampler, NegativePenaltiesFavourRepetition) {
  SamplingParams params;
  params.temperature = 0;
  params.presence_penalty = -2.0f;
  std::vector<float> flat(kVocab, 0.0f);
  flat[5] = 0.01f;
  EXPECT_EQ(sample_many(params, flat, 8), std::vector<Token>(8, 5));
}

TEST(Sampler, LogprobsFollowThePenalizedScores) {
  SamplingParams params;
  params.temperature = 0;
  params.frequency_penalty = 1.0f;
  const std::vector<float> logits = peaked_logits();
  Sampler sampler(params, kVocab);
  sampler.sample(sampler.scores(logits.data()));  // token 3 once
  const float* scores = sampler.scores(logits.data());
  const float raw_gap = Sampler::logprob_of(logits.data(), kVocab, 3).logprob -
                        Sampler::logprob_of(logits.data(), kVocab, 0).logprob;
  const float penalized_gap = Sampler::logprob_of(scores, kVocab, 3).logprob -
                              Sampler::logprob_of(scores, kVocab, 0).logprob;
  EXPECT_NEAR(raw_gap - penalized_gap, 1.0f, 1e-5f);
}

std::vector<Token> seeded(uint64_t seed) {
  SamplingParams params;
  params.seed = seed;
  return sample_many(params, std::vector<float>(kVocab, 0.0f), 64);
}

TEST(Sampler, EverySeedIsReproducible) {
  // 0xFFFFFFFF is llama.cpp's "random seed"; -1 as a 64-bit value is not special either.
  for (uint64_t seed : {uint64_t{0}, uint64_t{1234}, uint64_t{0xFFFFFFFF}, ~uint64_t{0}}) {
    EXPECT_EQ(seeded(seed), seeded(seed)) << "seed " << seed;
  }
}

TEST(Sampler, TheHighBitsOfTheSeedCount) {
  EXPECT_NE(seeded(7), seeded(7 + (uint64_t{1} << 32)));
  EXPECT_NE(seeded(7), seeded(7 | (uint64_t{1} << 63)));
}

TEST(Sampler, SamplingFollowsTheDistribution) {
  SamplingParams params;
  params.seed = 99;
  std::vector<float> logits(kVocab, -30.0f);
  logits[2] = std::log(3.0f);  // p = 0.75
  logits[9] = 0.0f;            // p = 0.25
  int twos = 0;
  const std::vector<Token> out = sample_many(params, logits, 4000);
  for (Token t : out) {
    ASSERT_TRUE(t == 2 || t == 9) << t;
    twos += t == 2;
  }
  EXPECT_NEAR(twos / 4000.0, 0.75, 0.03);
}

}  // namespace
}  // namespace allm
