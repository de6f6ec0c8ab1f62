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

}  // namespace allm::fixture
