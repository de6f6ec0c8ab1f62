// Llama 1/2/3: the plain llama-family layer; Llama 3's rope scaling comes from config.json.
#include "model.h"

namespace stcpp {

std::unique_ptr<Architecture> make_llama() {
  return std::make_unique<LlamaFamily>(/*qkv_bias=*/false, /*qk_norm=*/false);
}

}  // namespace stcpp
