// What the parity tests share: every architecture's fixture and a deterministic prompt.
#pragma once

#include <cstdint>
#include <vector>

#include "hf_fixture/hf_fixture.h"
#include "text/backend.h"

namespace allm::testing_util {

struct ArchitectureCase {
  const char* name;
  fixture::Arch arch;
};

inline const std::vector<ArchitectureCase>& all_architectures() {
  using fixture::Arch;
  static const std::vector<ArchitectureCase> cases = {
      {"llama", Arch::Llama},   {"llama3", Arch::Llama3},     {"mistral", Arch::Mistral},
      {"qwen2", Arch::Qwen2},   {"qwen3", Arch::Qwen3},       {"gemma", Arch::Gemma},
      {"gemma2", Arch::Gemma2}, {"nemotron", Arch::Nemotron}, {"gpt_oss", Arch::GptOss},
      {"phi", Arch::Phi},       {"phi3", Arch::Phi3},
  };
  return cases;
}

// Deterministic token ids spread over the vocabulary (xorshift; `salt` picks another sequence).
inline std::vector<Token> prompt_tokens(int n, int vocab, int salt) {
  std::vector<Token> tokens;
  uint32_t x = 2463534242u + salt;
  for (int i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    tokens.push_back(static_cast<Token>(x % vocab));
  }
  return tokens;
}

}  // namespace allm::testing_util
