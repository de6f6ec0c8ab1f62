// Gemma: pre-norm layers with RMSNorm applied as (1 + w), embeddings scaled by √hidden,
// GeGLU MLP with tanh GELU, head_dim from config.json, lm_head tied to the embeddings.
#include "models/gemma.h"

#include <cmath>

#include "graph.h"

namespace stcpp {

Failure Gemma::load(WeightStore& s, const ModelConfig& c, ModelWeights* w) {
  const int64_t h = c.hidden_size;
  // Gemma always ties; a stray lm_head (some exports) goes unused.
  load_embeddings_and_output(s, c, /*tied=*/true, w);
  w->output_norm = s.norm_plus_one("model.norm.weight", {h});
  w->layers.resize(c.num_hidden_layers);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights& layer = w->layers[l];
    layer.attn_norm = s.norm_plus_one(p + "input_layernorm.weight", {h});
    load_attention(s, c, p, /*qkv_bias=*/false, /*qk_norm=*/false, &layer);
    load_mlp(s, c, p, &layer);
    if (post_norms_) {  // Gemma2 names the norm after attention post_attention_layernorm
      layer.attn_post_norm = s.norm_plus_one(p + "post_attention_layernorm.weight", {h});
      layer.ffn_norm = s.norm_plus_one(p + "pre_feedforward_layernorm.weight", {h});
      layer.ffn_post_norm = s.norm_plus_one(p + "post_feedforward_layernorm.weight", {h});
    } else {
      layer.ffn_norm = s.norm_plus_one(p + "post_attention_layernorm.weight", {h});
    }
  }
  return s.failure();
}

ggml_tensor* Gemma::scaled_embeddings(Graph& g) {
  const float scale = std::sqrt(static_cast<float>(g.model().config.hidden_size));
  return ggml_scale(g.ctx(), g.embed(g.model().weights.tok_embd), scale);
}

ggml_tensor* Gemma::build(Graph& g) const {
  const ModelWeights& w = g.model().weights;
  const float eps = g.model().config.rms_norm_eps;
  AttentionOptions attention;
  attention.scale_queries = true;
  ggml_tensor* x = scaled_embeddings(g);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    ggml_tensor* h = g.rms_norm(x, lw.attn_norm, eps);
    x = g.rows_after_attention(
        ggml_add(g.ctx(), x, g.self_attention(h, lw, static_cast<int>(l), attention)),
        static_cast<int>(l));
    x = ggml_add(g.ctx(), x, g.geglu_mlp(g.rms_norm(x, lw.ffn_norm, eps), lw));
  }
  return g.logits(x);
}

std::unique_ptr<Architecture> make_gemma() {
  return std::make_unique<Gemma>();
}

}  // namespace stcpp
