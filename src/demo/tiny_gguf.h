// Writes small llama-architecture GGUF models with random weights, a byte-level BPE vocabulary
// and a ChatML template: the demo model and the test fixture. Nothing binary is committed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

// The tiny models' byte-level BPE vocabulary: GPT-2's 256 byte symbols, merged tokens for common
// words, then the control tokens <|endoftext|> (bos), <|im_start|>, <|im_end|> (eos). Shared with
// the Hugging Face fixture generator so both formats tokenize alike.
struct ByteLevelVocabulary {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;       // GGUF token types: 1 normal, 3 control
  std::vector<std::string> merges;  // "left right", in priority order
  int32_t bos = 0, eos = 0;
};

ByteLevelVocabulary tiny_byte_level_vocabulary();

// The ChatML template the tiny models carry.
const char* tiny_chatml_template();

bool write_tiny_llama_gguf(const std::string& path, const TinyLlamaSpec& spec, std::string* error);

}  // namespace allm
