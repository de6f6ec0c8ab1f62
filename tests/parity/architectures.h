// What the parity tests share: every architecture's fixture and a deterministic prompt.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
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

// Two sequences of `ctx_per_sequence` tokens with an F32 KV cache (no flash attention in
// llama.cpp): the settings under which the two engines agree most closely.
inline BackendParams exact_params(int ctx_per_sequence) {
  BackendParams params;
  params.ctx_per_sequence = ctx_per_sequence;
  params.sequences = 2;
  params.threads = 2;
  params.f32_cache = true;
  return params;
}

// Writes the fixture `options` describes and opens its GGUF with llama.cpp and its folder with
// safetensors.cpp, each with `params` (call with ASSERT_NO_FATAL_FAILURE).
inline void open_fixture_pair(const fixture::FixtureOptions& options, const BackendParams& params,
                              std::unique_ptr<TextBackend>* llama,
                              std::unique_ptr<TextBackend>* ours) {
  std::string problem;
  ASSERT_TRUE(fixture::write_hf_fixture(options, &problem)) << problem;
  Error error;
  *llama = open_llama_backend(options.gguf_path, params, &error);
  ASSERT_TRUE(*llama) << error.message;
  *ours = open_safetensors_backend(options.out_dir, params, &error);
  ASSERT_TRUE(*ours) << error.message;
}

}  // namespace allm::testing_util
