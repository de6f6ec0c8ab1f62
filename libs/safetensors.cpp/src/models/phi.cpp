// Phi-2 (model_type "phi"): one LayerNorm feeds attention and the MLP in parallel,
// x + attn(ln x) + mlp(ln x); rope over the first partial_rotary_factor · head_dim dimensions;
// biases on every projection; a tanh-GELU MLP (fc1, fc2); final LayerNorm and a biased lm_head.
#include "graph.h"
#include "model.h"

namespace stcpp {

namespace {

class Phi : public Architecture {
 public:
  Failure load(WeightStore& store, const ModelConfig& config, ModelWeights* weights) override;
  ggml_tensor* build(Graph& graph) const override;
};

void load_projection(WeightStore& s, const std::string& name, int64_t rows, int64_t cols,
                     ggml_tensor** weight, ggml_tensor** bias) {
  *weight = s.matrix(name + ".weight", {rows, cols});
  *bias = s.vector_f32(name + ".bias", {rows});
}

void load_layer(WeightStore& s, const ModelConfig& c, const std::string& p, LayerWeights* w) {
  const int64_t h = c.hidden_size, ff = c.intermediate_size;
  const int64_t q = int64_t{c.num_attention_heads} * c.head_dim;
  const int64_t kv = int64_t{c.num_key_value_heads} * c.head_dim;
  w->attn_norm = s.vector_f32(p + "input_layernorm.weight", {h});
  w->attn_norm_b = s.vector_f32(p + "input_layernorm.bias", {h});
  load_projection(s, p + "self_attn.q_proj", q, h, &w->wq, &w->bq);
  load_projection(s, p + "self_attn.k_proj", kv, h, &w->wk, &w->bk);
  load_projection(s, p + "self_attn.v_proj", kv, h, &w->wv, &w->bv);
  load_projection(s, p + "self_attn.dense", h, q, &w->wo, &w->bo);
  load_projection(s, p + "mlp.fc1", ff, h, &w->w_up, &w->b_up);
  load_projection(s, p + "mlp.fc2", h, ff, &w->w_down, &w->b_down);
}

Failure Phi::load(WeightStore& s, const ModelConfig& c, ModelWeights* w) {
  const int64_t h = c.hidden_size, vocab = c.vocab_size;
  load_embeddings_and_output(s, c, /*tied=*/false, w);
  w->output_b = s.vector_f32("lm_head.bias", {vocab});
  w->output_norm = s.vector_f32("model.final_layernorm.weight", {h});
  w->output_norm_b = s.vector_f32("model.final_layernorm.bias", {h});
  w->layers.resize(c.num_hidden_layers);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    load_layer(s, c, "model.layers." + std::to_string(l) + ".", &w->layers[l]);
  }
  return s.failure();
}

// (attn + mlp) + x, summed in llama.cpp's order. The last layer's attention output, norm output
// and residual keep only the rows that want logits, as llama.cpp does before the MLP.
ggml_tensor* parallel_layer(Graph& g, ggml_tensor* x, const LayerWeights& w, int layer) {
  ggml_tensor* h = g.layer_norm(x, w.attn_norm, w.attn_norm_b, g.model().config.norm_eps);
  ggml_tensor* attn = g.self_attention(h, w, layer);
  if (layer + 1 == g.model().config.num_hidden_layers) {
    attn = ggml_get_rows(g.ctx(), attn, g.output_ids());
    h = ggml_get_rows(g.ctx(), h, g.output_ids());
    x = g.output_rows(x);
  }
  return ggml_add(g.ctx(), ggml_add(g.ctx(), attn, g.gelu_mlp(h, w)), x);
}

ggml_tensor* Phi::build(Graph& g) const {
  const ModelWeights& w = g.model().weights;
  ggml_tensor* x = g.embed(w.tok_embd);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    x = parallel_layer(g, x, w.layers[l], static_cast<int>(l));
  }
  x = g.layer_norm(g.output_rows(x), w.output_norm, w.output_norm_b, g.model().config.norm_eps);
  return g.lm_head(x, w.output_b);
}

}  // namespace

std::unique_ptr<Architecture> make_phi() {
  return std::make_unique<Phi>();
}

}  // namespace stcpp
