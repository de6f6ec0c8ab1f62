// Comparing two backends' logits as log-probabilities (shifts of all logits cancel out).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace allm::testing_util {

inline std::vector<double> log_softmax(const float* logits, int n) {
  const float max = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  std::vector<double> out(n);
  for (int i = 0; i < n; ++i) out[i] = logits[i] - max - std::log(sum);
  return out;
}

inline int argmax(const float* logits, int n) {
  return static_cast<int>(std::max_element(logits, logits + n) - logits);
}

// Largest |log p_a - log p_b| over the vocabulary.
inline double max_logprob_diff(const float* a, const float* b, int n) {
  const std::vector<double> x = log_softmax(a, n), y = log_softmax(b, n);
  double worst = 0;
  for (int i = 0; i < n; ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

}  // namespace allm::testing_util
