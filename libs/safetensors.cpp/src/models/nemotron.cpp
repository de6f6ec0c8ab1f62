// Nemotron-3/4 and Minitron: pre-norm layers with LayerNorm1P (LayerNorm with bias, weight
// applied as 1 + w), a squared-ReLU MLP without gate, rope over the first
// partial_rotary_factor · head_dim dimensions, an untied lm_head.
#include "graph.h"
#include "model.h"

namespace stcpp {

namespace {

class Nemotron : public Architecture {
 public:
  Failure load(WeightStore& store, const ModelConfig& config, ModelWeights* weights) override;
  ggml_tensor* build(Graph& graph) const override;
};

// A LayerNorm1P: weight as 1 + w, and its bias.
void load_norm(WeightStore& s, const std::string& name, int64_t h, ggml_tensor** weight,
               ggml_tensor** bias) {
  *weight = s.norm_plus_one(name + ".weight", {h});
  *bias = s.vector_f32(name + ".bias", {h});
}

void load_relu2_mlp(WeightStore& s, const ModelConfig& c, const std::string& p, LayerWeights* w) {
  const int64_t h = c.hidden_size, ff = c.intermediate_size;
  w->w_up = s.matrix(p + "mlp.up_proj.weight", {ff, h});
  w->w_down = s.matrix(p + "mlp.down_proj.weight", {h, ff});
  if (c.mlp_bias) {
    w->b_up = s.vector_f32(p + "mlp.up_proj.bias", {ff});
    w->b_down = s.vector_f32(p + "mlp.down_proj.bias", {h});
  }
}

Failure Nemotron::load(WeightStore& s, const ModelConfig& c, ModelWeights* w) {
  const int64_t h = c.hidden_size;
  load_embeddings_and_output(s, c, c.tie_word_embeddings, w);
  load_norm(s, "model.norm", h, &w->output_norm, &w->output_norm_b);
  w->layers.resize(c.num_hidden_layers);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights& layer = w->layers[l];
    load_norm(s, p + "input_layernorm", h, &layer.attn_norm, &layer.attn_norm_b);
    load_attention(s, c, p, /*qkv_bias=*/false, /*qk_norm=*/false, &layer);
    load_norm(s, p + "post_attention_layernorm", h, &layer.ffn_norm, &layer.ffn_norm_b);
    load_relu2_mlp(s, c, p, &layer);
  }
  return s.failure();
}

ggml_tensor* Nemotron::build(Graph& g) const {
  const ModelWeights& w = g.model().weights;
  const float eps = g.model().config.norm_eps;
  ggml_tensor* x = g.embed(w.tok_embd);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    ggml_tensor* h = g.layer_norm(x, lw.attn_norm, lw.attn_norm_b, eps);
    x = g.rows_after_attention(ggml_add(g.ctx(), x, g.self_attention(h, lw, static_cast<int>(l))),
                               static_cast<int>(l));
    h = g.layer_norm(x, lw.ffn_norm, lw.ffn_norm_b, eps);
    x = ggml_add(g.ctx(), x, g.relu2_mlp(h, lw));
  }
  x = g.layer_norm(g.output_rows(x), w.output_norm, w.output_norm_b, eps);
  return g.lm_head(x);
}

}  // namespace

std::unique_ptr<Architecture> make_nemotron() {
  return std::make_unique<Nemotron>();
}

}  // namespace stcpp
