// Decoding one sequence in the parity tests.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "parity/logprobs.h"
#include "text/backend.h"

namespace allm::testing_util {

// Decodes `tokens` for one sequence at positions from `pos`, asking for the last logits.
inline const float* feed(TextBackend& backend, const std::vector<Token>& tokens, int pos,
                         int seq = 0) {
  std::vector<BatchToken> batch;
  for (size_t i = 0; i < tokens.size(); ++i) {
    batch.push_back({tokens[i], pos + static_cast<int>(i), seq, i + 1 == tokens.size()});
  }
  const Error error = backend.decode(batch);
  EXPECT_TRUE(error.ok()) << error.message;
  return error.ok() ? backend.logits(static_cast<int>(tokens.size()) - 1) : nullptr;
}

// Feeds `prompt` to both backends, then decodes `steps` greedy tokens chosen by `reference`,
// failing the test where `ours` would choose another; returns the largest |log p difference|.
inline double compare_greedy(TextBackend& reference, TextBackend& ours,
                             const std::vector<Token>& prompt, int steps) {
  const int n_vocab = reference.vocab_size();
  const float* expected = feed(reference, prompt, 0);
  const float* actual = feed(ours, prompt, 0);
  double worst = 0;
  int pos = static_cast<int>(prompt.size());
  for (int step = 0; expected && actual && step < steps; ++step, ++pos) {
    worst = std::max(worst, max_logprob_diff(expected, actual, n_vocab));
    const int next = argmax(expected, n_vocab);
    if (argmax(actual, n_vocab) != next) {
      ADD_FAILURE() << "greedy tokens differ at step " << step;
      break;
    }
    expected = feed(reference, {next}, pos);
    actual = feed(ours, {next}, pos);
  }
  EXPECT_TRUE(expected && actual) << "a decode failed";
  return worst;
}

}  // namespace allm::testing_util
