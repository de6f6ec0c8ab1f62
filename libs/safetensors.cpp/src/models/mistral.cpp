// Mistral: the llama-family layer; config.sliding_window limits attention in the mask.
#include "model.h"

namespace stcpp {

std::unique_ptr<Architecture> make_mistral() {
  return std::make_unique<LlamaFamily>(/*qkv_bias=*/false, /*qk_norm=*/false);
}

}  // namespace stcpp
