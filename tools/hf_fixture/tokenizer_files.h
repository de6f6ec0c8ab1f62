// The Hugging Face tokenizer files of a fixture: tokenizer.json (byte-level BPE, GPT-2 style
// pre-tokenizer and decoder, specials as added tokens) and tokenizer_config.json (ChatML).
#pragma once

#include <string>

#include "demo/tiny_gguf.h"
#include "nlohmann/json.hpp"

namespace allm::fixture {

nlohmann::ordered_json tokenizer_json(const ByteLevelVocabulary& vocab);
nlohmann::ordered_json tokenizer_config_json(const ByteLevelVocabulary& vocab,
                                             int model_max_length);

// A real model's tokenizer files (tokenizer.json, tokenizer_config.json in `dir`), for fixtures
// that carry them instead of the tiny vocabulary.
struct TokenizerFiles {
  std::string tokenizer_json;  // the file's bytes, written back unchanged
  nlohmann::ordered_json config;
  // Every id's token text and GGUF type (3 for special added tokens, 1 otherwise, 5 for ids
  // neither the model nor the added tokens name); bos/eos from the config. No merges.
  ByteLevelVocabulary vocab;
};
bool read_tokenizer_files(const std::string& dir, TokenizerFiles* out, std::string* error);

}  // namespace allm::fixture
