// Qwen2 / Qwen2.5: the llama-family layer with biases on the q, k and v projections.
#include "model.h"

namespace stcpp {

std::unique_ptr<Architecture> make_qwen2() {
  return std::make_unique<LlamaFamily>(/*qkv_bias=*/true, /*qk_norm=*/false);
}

}  // namespace stcpp
