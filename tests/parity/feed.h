// Decoding one sequence in the parity tests.
#pragma once

#include <gtest/gtest.h>

#include <vector>

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

}  // namespace allm::testing_util
