// Phi-3 / Phi-3.5 (model_type "phi3"): the llama-family layer with the q/k/v projections fused
// into qkv_proj (rows [q; k; v]) and gate/up into gate_up_proj (rows [gate; up]), both kept
// fused and split by views of the matmul result. LongRoPE ("su"/"longrope") scaling comes from
// config.json through rope_params_for; config.sliding_window limits attention in the mask.
#include "model.h"

namespace stcpp {

namespace {

class Phi3 : public LlamaFamily {
 public:
  Phi3() : LlamaFamily(/*qkv_bias=*/false, /*qk_norm=*/false) {}
  Failure load(WeightStore& store, const ModelConfig& config, ModelWeights* weights) override;
};

void load_layer(WeightStore& s, const ModelConfig& c, const std::string& p, LayerWeights* w) {
  const int64_t h = c.hidden_size, ff = c.intermediate_size;
  const int64_t q = int64_t{c.num_attention_heads} * c.head_dim;
  const int64_t kv = int64_t{c.num_key_value_heads} * c.head_dim;
  w->attn_norm = s.vector_f32(p + "input_layernorm.weight", {h});
  w->wqkv = s.matrix(p + "self_attn.qkv_proj.weight", {q + 2 * kv, h});
  w->wo = s.matrix(p + "self_attn.o_proj.weight", {h, q});
  w->ffn_norm = s.vector_f32(p + "post_attention_layernorm.weight", {h});
  w->w_gate_up = s.matrix(p + "mlp.gate_up_proj.weight", {2 * ff, h});
  w->w_down = s.matrix(p + "mlp.down_proj.weight", {h, ff});
}

Failure Phi3::load(WeightStore& s, const ModelConfig& c, ModelWeights* w) {
  load_embeddings_and_head(s, c, w);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    load_layer(s, c, "model.layers." + std::to_string(l) + ".", &w->layers[l]);
  }
  return s.failure();
}

}  // namespace

std::unique_ptr<Architecture> make_phi3() {
  return std::make_unique<Phi3>();
}

}  // namespace stcpp
