// Qwen3: the llama-family layer with an RMSNorm over each head's queries and keys before rope,
// and head_dim given by config.json rather than hidden / heads.
#include "model.h"

namespace stcpp {

std::unique_ptr<Architecture> make_qwen3() {
  return std::make_unique<LlamaFamily>(/*qkv_bias=*/false, /*qk_norm=*/true);
}

}  // namespace stcpp
