// Gemma2: Gemma with norms after attention and after the MLP as well as before, soft-capped
// attention scores and logits, scores scaled by query_pre_attn_scalar^-1/2, and layers that
// alternate between a sliding window (even layers) and global attention.
#include <cmath>

#include "graph.h"
#include "models/gemma.h"

namespace stcpp {

namespace {

class Gemma2 : public Gemma {
 public:
  Gemma2() : Gemma(/*post_norms=*/true) {}
  ggml_tensor* build(Graph& graph) const override;

 private:
  static AttentionOptions attention_options(const ModelConfig& c, int layer);
};

AttentionOptions Gemma2::attention_options(const ModelConfig& c, int layer) {
  AttentionOptions o;
  const float scalar = c.query_pre_attn_scalar > 0.0f ? c.query_pre_attn_scalar : c.head_dim;
  o.scale = 1.0f / std::sqrt(scalar);
  o.softcap = c.attn_logit_softcapping;
  o.scale_queries = true;
  // Newer configs list layer_types; older ones leave the even/odd pattern implicit.
  o.windowed = c.sliding_layers.empty() ? layer % 2 == 0 : bool(c.sliding_layers[layer]);
  return o;
}

ggml_tensor* Gemma2::build(Graph& g) const {
  const ModelConfig& c = g.model().config;
  const ModelWeights& w = g.model().weights;
  const float eps = c.rms_norm_eps;
  ggml_tensor* x = scaled_embeddings(g);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    const int layer = static_cast<int>(l);
    ggml_tensor* h =
        g.self_attention(g.rms_norm(x, lw.attn_norm, eps), lw, layer, attention_options(c, layer));
    x = g.rows_after_attention(ggml_add(g.ctx(), x, g.rms_norm(h, lw.attn_post_norm, eps)), layer);
    h = g.geglu_mlp(g.rms_norm(x, lw.ffn_norm, eps), lw);
    x = ggml_add(g.ctx(), x, g.rms_norm(h, lw.ffn_post_norm, eps));
  }
  return g.logits(x);  // with config.final_logit_softcapping
}

}  // namespace

std::unique_ptr<Architecture> make_gemma2() {
  return std::make_unique<Gemma2>();
}

}  // namespace stcpp
