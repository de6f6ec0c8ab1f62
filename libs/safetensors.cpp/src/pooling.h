// The pooling a sentence-transformers folder declares: modules.json lists the modules run after
// the transformer, 1_Pooling/config.json (or the Pooling module's path) says how token states
// become one vector.
#pragma once

#include <string>

#include "safetensors.h"

namespace stcpp {

struct SentencePooling {
  stcpp_pooling pooling = STCPP_POOLING_LAST;
  bool normalize = true;
  std::string problem;  // why the declared modules cannot be run; "" when they can
};

// Without modules.json: the last token, L2-normalised (the usual for decoder embedding models,
// and what llama-server answers for a GGUF that declares last-token pooling).
SentencePooling read_sentence_pooling(const std::string& folder);

}  // namespace stcpp
