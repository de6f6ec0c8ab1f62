#include "graph.h"

#include <cmath>

namespace stcpp {

Graph::Graph(const Model& model, KvCache& cache, std::vector<TokenGroup> groups, int n_tokens,
             int n_outputs, size_t max_nodes)
    : model_(model), cache_(cache), groups_(std::move(groups)) {
  ggml_init_params params{
      ggml_tensor_overhead() * max_nodes + ggml_graph_overhead_custom(max_nodes, false), nullptr,
      true};
  ctx_ = ggml_init(params);
  gf_ = ggml_new_graph_custom(ctx_, max_nodes, false);
  tokens_ = ggml_new_tensor_1d(ctx_, GGML_TYPE_I32, n_tokens);
  positions_ = ggml_new_tensor_1d(ctx_, GGML_TYPE_I32, n_tokens);
  output_ids_ = ggml_new_tensor_1d(ctx_, GGML_TYPE_I32, n_outputs);
  for (ggml_tensor* t : {tokens_, positions_, output_ids_}) ggml_set_input(t);
  for (TokenGroup& g : groups_) {
    g.mask = ggml_new_tensor_2d(ctx_, GGML_TYPE_F32, g.pos0 + g.count, g.count);
    ggml_set_input(g.mask);
  }
}

Graph::~Graph() {
  ggml_free(ctx_);
}

ggml_tensor* Graph::embed(ggml_tensor* table) {
  return ggml_get_rows(ctx_, table, tokens_);
}

ggml_tensor* Graph::rms_norm(ggml_tensor* x, ggml_tensor* weight, float eps) {
  return ggml_mul(ctx_, ggml_rms_norm(ctx_, x, eps), weight);
}

ggml_tensor* Graph::linear(ggml_tensor* x, ggml_tensor* weight, ggml_tensor* bias) {
  ggml_tensor* y = ggml_mul_mat(ctx_, weight, x);
  return bias ? ggml_add(ctx_, y, bias) : y;
}

ggml_tensor* Graph::rope(ggml_tensor* x) {
  const RopeParams& r = model_.rope;
  return ggml_rope_ext(ctx_, x, positions_, model_.weights.rope_factors, r.n_dims, r.mode,
                       r.n_ctx_orig, r.freq_base, r.freq_scale, r.ext_factor, r.attn_factor,
                       r.beta_fast, r.beta_slow);
}

// Writes this batch's keys and values into each sequence's cells.
void Graph::store_kv(ggml_tensor* k, ggml_tensor* v, int layer) {
  for (const TokenGroup& g : groups_) {
    for (auto [src, cache] : {std::pair{k, cache_.k(layer)}, std::pair{v, cache_.v(layer)}}) {
      ggml_tensor* rows = ggml_view_2d(ctx_, src, src->ne[0] * src->ne[1], g.count, src->nb[2],
                                       g.first * src->nb[2]);
      const size_t cell = static_cast<size_t>(g.seq) * cache_.ctx_per_seq() + g.pos0;
      ggml_tensor* dst =
          ggml_view_2d(ctx_, cache, cache->ne[0], g.count, cache->nb[1], cell * cache->nb[1]);
      ggml_build_forward_expand(gf_, ggml_cpy(ctx_, rows, dst));
    }
  }
}

// Attention of one group's queries over its sequence's cached keys and values.
ggml_tensor* Graph::attend(ggml_tensor* q, const TokenGroup& g, int layer) {
  const ModelConfig& c = model_.config;
  const int64_t hd = c.head_dim, n_kv_head = c.num_key_value_heads;
  const int64_t n_kv = g.pos0 + g.count;
  const size_t cell0 = static_cast<size_t>(g.seq) * cache_.ctx_per_seq();
  ggml_tensor* qg =
      ggml_view_3d(ctx_, q, hd, q->ne[1], g.count, q->nb[1], q->nb[2], g.first * q->nb[2]);
  qg = ggml_permute(ctx_, qg, 0, 2, 1, 3);  // [hd, tokens, heads]
  ggml_tensor* kc = cache_.k(layer);
  ggml_tensor* k = ggml_view_3d(ctx_, kc, hd, n_kv_head, n_kv, ggml_row_size(kc->type, hd),
                                kc->nb[1], cell0 * kc->nb[1]);
  k = ggml_permute(ctx_, k, 0, 2, 1, 3);        // [hd, n_kv, kv heads]
  ggml_tensor* kq = ggml_mul_mat(ctx_, k, qg);  // [n_kv, tokens, heads]
  ggml_mul_mat_set_prec(kq, GGML_PREC_F32);
  kq = ggml_soft_max_ext(ctx_, kq, g.mask, 1.0f / std::sqrt(static_cast<float>(hd)), 0.0f);
  ggml_tensor* vc = cache_.v(layer);
  ggml_tensor* v = ggml_view_3d(ctx_, vc, hd, n_kv_head, n_kv, ggml_row_size(vc->type, hd),
                                vc->nb[1], cell0 * vc->nb[1]);
  v = ggml_cont(ctx_, ggml_permute(ctx_, v, 1, 2, 0, 3));  // [n_kv, hd, kv heads]
  ggml_tensor* kqv = ggml_mul_mat(ctx_, v, kq);            // [hd, tokens, heads]
  kqv = ggml_permute(ctx_, kqv, 0, 2, 1, 3);               // [hd, heads, tokens]
  return ggml_cont_2d(ctx_, kqv, hd * q->ne[1], g.count);
}

ggml_tensor* Graph::self_attention(ggml_tensor* x, const LayerWeights& w, int layer) {
  const ModelConfig& c = model_.config;
  const int64_t n_tokens = x->ne[1];
  ggml_tensor* q =
      ggml_reshape_3d(ctx_, linear(x, w.wq, w.bq), c.head_dim, c.num_attention_heads, n_tokens);
  ggml_tensor* k =
      ggml_reshape_3d(ctx_, linear(x, w.wk, w.bk), c.head_dim, c.num_key_value_heads, n_tokens);
  ggml_tensor* v =
      ggml_reshape_3d(ctx_, linear(x, w.wv, w.bv), c.head_dim, c.num_key_value_heads, n_tokens);
  if (w.q_norm) q = rms_norm(q, w.q_norm, c.rms_norm_eps);
  if (w.k_norm) k = rms_norm(k, w.k_norm, c.rms_norm_eps);
  q = rope(q);
  k = rope(k);
  store_kv(k, v, layer);
  ggml_tensor* out = nullptr;
  for (const TokenGroup& g : groups_) {
    ggml_tensor* part = attend(q, g, layer);
    out = out ? ggml_concat(ctx_, out, part, 1) : part;
  }
  return linear(out, w.wo, w.bo);
}

ggml_tensor* Graph::swiglu_mlp(ggml_tensor* x, const LayerWeights& w) {
  ggml_tensor* gated = ggml_swiglu_split(ctx_, linear(x, w.w_gate), linear(x, w.w_up));
  return linear(gated, w.w_down);
}

ggml_tensor* Graph::llama_layer(ggml_tensor* x, const LayerWeights& w, int layer) {
  const float eps = model_.config.rms_norm_eps;
  x = ggml_add(ctx_, x, self_attention(rms_norm(x, w.attn_norm, eps), w, layer));
  return ggml_add(ctx_, x, swiglu_mlp(rms_norm(x, w.ffn_norm, eps), w));
}

ggml_tensor* Graph::logits(ggml_tensor* x) {
  x = ggml_get_rows(ctx_, x, output_ids_);
  x = rms_norm(x, model_.weights.output_norm, model_.config.rms_norm_eps);
  return ggml_mul_mat(ctx_, model_.weights.output, x);
}

}  // namespace stcpp
