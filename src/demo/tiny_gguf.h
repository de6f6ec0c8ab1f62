// Writes small llama-architecture GGUF models with random weights, a byte-level BPE vocabulary
// and a ChatML template: the demo model and the test fixture. Nothing binary is committed.
#pragma once

#include <cstdint>
#include <string>

namespace allm {

struct TinyLlamaSpec {
  std::string name = "allm-tiny";
  int n_embd = 64;
  int n_layer = 2;
  int n_head = 4;
  int n_head_kv = 2;
  int n_ff = 128;
  int n_ctx_train = 4096;
  uint64_t seed = 42;
};

bool write_tiny_llama_gguf(const std::string& path, const TinyLlamaSpec& spec, std::string* error);

}  // namespace allm
