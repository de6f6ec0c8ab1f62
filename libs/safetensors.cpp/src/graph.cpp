#include "graph.h"

#include <algorithm>
#include <cmath>

namespace stcpp {

Graph::Graph(const Model& model, KvCache& cache, std::vector<TokenGroup> groups, int n_tokens,
             int n_outputs, size_t max_nodes, bool hidden_states)
    : model_(model), cache_(cache), groups_(std::move(groups)), hidden_states_(hidden_states) {
  ggml_init_params params{
      ggml_tensor_overhead() * max_nodes + ggml_graph_overhead_custom(max_nodes, false), nullptr,
      true};
  ctx_ = ggml_init(params);
  gf_ = ggml_new_graph_custom(ctx_, max_nodes, false);
  tokens_ = ggml_new_tensor_1d(ctx_, GGML_TYPE_I32, n_tokens);
  positions_ = ggml_new_tensor_1d(ctx_, GGML_TYPE_I32, n_tokens);
  output_ids_ = ggml_new_tensor_1d(ctx_, GGML_TYPE_I32, n_outputs);
  kv_cells_ = ggml_new_tensor_1d(ctx_, GGML_TYPE_I64, n_tokens);
  for (ggml_tensor* t : {tokens_, positions_, output_ids_, kv_cells_}) ggml_set_input(t);
  const int window = model.config.sliding_window, ctx = cache.ctx_per_seq();
  for (TokenGroup& g : groups_) {
    g.mask = ggml_new_tensor_2d(ctx_, GGML_TYPE_F16, padded_cells(g, 0, ctx), g.count);
    ggml_set_input(g.mask);
    if (window > 0) {
      g.window_first = window_first(g, window);
      g.window_mask =
          ggml_new_tensor_2d(ctx_, GGML_TYPE_F16, padded_cells(g, g.window_first, ctx), g.count);
      ggml_set_input(g.window_mask);
    }
  }
}

int window_first(const TokenGroup& g, int window) {
  return std::max(0, g.pos0 - window + 1);
}

int64_t padded_cells(const TokenGroup& g, int first, int ctx_per_seq) {
  const int64_t used = g.pos0 + g.count - first;
  const int64_t padded = (used + kKvPad - 1) / kKvPad * kKvPad;
  return std::min<int64_t>(padded, ctx_per_seq - first);
}

std::vector<int64_t> graph_shape(const std::vector<TokenGroup>& groups, int n_tokens, int n_outputs,
                                 int window, int ctx_per_seq) {
  std::vector<int64_t> shape = {n_tokens, n_outputs};
  for (const TokenGroup& g : groups) {
    const int first = window > 0 ? window_first(g, window) : 0;
    for (int64_t v :
         {int64_t{g.seq}, int64_t{g.first}, int64_t{g.count}, padded_cells(g, 0, ctx_per_seq),
          int64_t{first}, padded_cells(g, first, ctx_per_seq)}) {
      shape.push_back(v);
    }
  }
  return shape;
}

void Graph::set_positions(const std::vector<TokenGroup>& groups) {
  for (size_t i = 0; i < groups_.size(); ++i) groups_[i].pos0 = groups[i].pos0;
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

ggml_tensor* Graph::layer_norm(ggml_tensor* x, ggml_tensor* weight, ggml_tensor* bias, float eps) {
  return ggml_add(ctx_, ggml_mul(ctx_, ggml_norm(ctx_, x, eps), weight), bias);
}

ggml_tensor* Graph::linear(ggml_tensor* x, ggml_tensor* weight, ggml_tensor* bias) {
  ggml_tensor* y = ggml_mul_mat(ctx_, weight, x);
  return bias ? ggml_add(ctx_, y, bias) : y;
}

// LongRoPE keeps two sets of frequency divisors and, like llama.cpp, picks the long ones when
// the context per sequence exceeds the original training context.
ggml_tensor* Graph::rope_factors() const {
  const ModelWeights& w = model_.weights;
  const bool long_context = cache_.ctx_per_seq() > model_.rope.n_ctx_orig;
  return w.rope_factors_long && long_context ? w.rope_factors_long : w.rope_factors;
}

ggml_tensor* Graph::rope(ggml_tensor* x) {
  const RopeParams& r = model_.rope;
  return ggml_rope_ext(ctx_, x, positions_, rope_factors(), r.n_dims, r.mode, r.n_ctx_orig,
                       r.freq_base, r.freq_scale, r.ext_factor, r.attn_factor, r.beta_fast,
                       r.beta_slow);
}

// Writes this batch's keys and values into their cells, the cells given by an input (not by
// views at batch-dependent offsets): consecutive decode steps then build the same graph.
void Graph::store_kv(ggml_tensor* k, ggml_tensor* v, int layer) {
  for (auto [src, cache] : {std::pair{k, cache_.k(layer)}, std::pair{v, cache_.v(layer)}}) {
    ggml_tensor* rows = ggml_view_2d(ctx_, src, src->ne[0] * src->ne[1], src->ne[2], src->nb[2], 0);
    ggml_build_forward_expand(gf_, ggml_set_rows(ctx_, cache, rows, kv_cells_));
  }
}

float Graph::attention_scale(const AttentionOptions& options) const {
  return options.scale > 0.0f ? options.scale
                              : 1.0f / std::sqrt(static_cast<float>(model_.config.head_dim));
}

ggml_tensor* Graph::soft_cap(ggml_tensor* x, float cap) {
  return ggml_scale(ctx_, ggml_tanh(ctx_, ggml_scale(ctx_, x, 1.0f / cap)), cap);
}

// Cells [first, first + n_kv) of one group's sequence in a layer's K or V cache, as
// [head_dim, n_kv, kv heads] (a view: rows stay where they are).
ggml_tensor* Graph::cached(ggml_tensor* cache, const TokenGroup& g, int first, int64_t n_kv) {
  const ModelConfig& c = model_.config;
  const size_t cell0 = static_cast<size_t>(g.seq) * cache_.ctx_per_seq() + first;
  ggml_tensor* rows =
      ggml_view_3d(ctx_, cache, c.head_dim, c.num_key_value_heads, n_kv,
                   ggml_row_size(cache->type, c.head_dim), cache->nb[1], cell0 * cache->nb[1]);
  return ggml_permute(ctx_, rows, 0, 2, 1, 3);
}

// Attention of one group's queries over its sequence's cached keys and values, in one
// ggml_flash_attn_ext: keys and values are read in place from the cache (no copies), and scores
// are scaled, soft-capped (gemma2), masked and softmaxed tile by tile, with the learned sinks
// (gpt-oss) in the denominator. Windowed layers read only the cells within the window; the
// others would weigh exactly 0. GQA: query head h reads KV head h / (heads / kv heads).
ggml_tensor* Graph::attend(ggml_tensor* q, const TokenGroup& g, int layer,
                           const AttentionOptions& options) {
  const int64_t hd = model_.config.head_dim;
  const bool windowed = options.windowed && g.window_mask;
  const int first = windowed ? g.window_first : 0;
  const int64_t n_kv = (windowed ? g.window_mask : g.mask)->ne[0];
  ggml_tensor* qg =
      ggml_view_3d(ctx_, q, hd, q->ne[1], g.count, q->nb[1], q->nb[2], g.first * q->nb[2]);
  qg = ggml_permute(ctx_, qg, 0, 2, 1, 3);  // [hd, tokens, heads]
  ggml_tensor* k = cached(cache_.k(layer), g, first, n_kv);
  ggml_tensor* v = cached(cache_.v(layer), g, first, n_kv);
  ggml_tensor* out = ggml_flash_attn_ext(ctx_, qg, k, v, windowed ? g.window_mask : g.mask,
                                         attention_scale(options), 0.0f, options.softcap);
  ggml_flash_attn_ext_add_sinks(out, model_.weights.layers[layer].attn_sinks);
  ggml_prec_set_acc(out, GGML_PREC_F32);
  return ggml_reshape_2d(ctx_, out, hd * q->ne[1], g.count);  // out: [hd, heads, tokens]
}

// Per-group outputs [width, count] stacked in batch order into [width, tokens], each copied
// once (a chain of ggml_concat would copy the rows gathered so far again for every group).
ggml_tensor* Graph::join_rows(const std::vector<ggml_tensor*>& parts) {
  if (parts.size() == 1) return parts[0];
  int64_t rows = 0;
  for (ggml_tensor* p : parts) rows += p->ne[1];
  ggml_tensor* out = ggml_new_tensor_2d(ctx_, GGML_TYPE_F32, parts[0]->ne[0], rows);
  size_t offset = 0;
  for (ggml_tensor* p : parts) {
    out = ggml_set_2d_inplace(ctx_, out, p, out->nb[1], offset);
    offset += p->ne[1] * out->nb[1];
  }
  return out;
}

// q, k and v as views of a fused projection's rows [q; k; v], each [head_dim, heads, tokens].
void Graph::split_qkv(ggml_tensor* qkv, ggml_tensor** q, ggml_tensor** k, ggml_tensor** v) {
  const ModelConfig& c = model_.config;
  const int64_t hd = c.head_dim, n_head = c.num_attention_heads, n_kv = c.num_key_value_heads;
  const size_t head_bytes = ggml_row_size(qkv->type, hd);
  auto part = [&](int64_t heads, int64_t first_head) {
    return ggml_view_3d(ctx_, qkv, hd, heads, qkv->ne[1], head_bytes, qkv->nb[1],
                        first_head * head_bytes);
  };
  *q = part(n_head, 0);
  *k = part(n_kv, n_head);
  *v = part(n_kv, n_head + n_kv);
}

ggml_tensor* Graph::self_attention(ggml_tensor* x, const LayerWeights& w, int layer,
                                   const AttentionOptions& options) {
  const ModelConfig& c = model_.config;
  const int64_t n_tokens = x->ne[1];
  ggml_tensor *q, *k, *v;
  if (w.wqkv) {
    split_qkv(linear(x, w.wqkv), &q, &k, &v);
  } else {
    q = ggml_reshape_3d(ctx_, linear(x, w.wq, w.bq), c.head_dim, c.num_attention_heads, n_tokens);
    k = ggml_reshape_3d(ctx_, linear(x, w.wk, w.bk), c.head_dim, c.num_key_value_heads, n_tokens);
    v = ggml_reshape_3d(ctx_, linear(x, w.wv, w.bv), c.head_dim, c.num_key_value_heads, n_tokens);
  }
  if (w.q_norm) q = rms_norm(q, w.q_norm, c.rms_norm_eps);
  if (w.k_norm) k = rms_norm(k, w.k_norm, c.rms_norm_eps);
  q = rope(q);
  k = rope(k);
  store_kv(k, v, layer);
  AttentionOptions scores = options;
  if (options.scale_queries) {
    q = ggml_scale(ctx_, q, attention_scale(options));
    scores.scale = 1.0f;
  }
  std::vector<ggml_tensor*> parts;
  for (const TokenGroup& g : groups_) {
    parts.push_back(attend(q, g, layer, scores));
  }
  return linear(join_rows(parts), w.wo, w.bo);
}

ggml_tensor* Graph::swiglu_mlp(ggml_tensor* x, const LayerWeights& w) {
  // A fused projection's rows are [gate; up]: ggml_swiglu gates the second half by the first.
  ggml_tensor* gated = w.w_gate_up
                           ? ggml_swiglu(ctx_, linear(x, w.w_gate_up))
                           : ggml_swiglu_split(ctx_, linear(x, w.w_gate), linear(x, w.w_up));
  return linear(gated, w.w_down);
}

// GELU with the tanh approximation, written out as x·sigmoid(2·√(2/π)·(x + 0.044715·x³)):
// ggml_gelu reads an FP16 table, off by ~1e-3 relative, which moved logprobs by ~3e-3 against
// transformers (tests/hf_reference); this form matches it to float rounding.
ggml_tensor* Graph::gelu_tanh(ggml_tensor* x) {
  ggml_tensor* cube = ggml_mul(ctx_, ggml_sqr(ctx_, x), x);
  ggml_tensor* cubic = ggml_add(ctx_, x, ggml_scale(ctx_, cube, 0.044715f));
  return ggml_mul(ctx_, x, ggml_sigmoid(ctx_, ggml_scale(ctx_, cubic, 1.5957691216057308f)));
}

ggml_tensor* Graph::gelu_mlp(ggml_tensor* x, const LayerWeights& w) {
  return linear(gelu_tanh(linear(x, w.w_up, w.b_up)), w.w_down, w.b_down);
}

// The gate's tanh GELU times up in five ops, as exact as gelu_tanh's eight (fewer passes over
// the widest activations, and fewer thread barriers): GELU(g) = g·σ(z) with z = g·t,
// t = 2·√(2/π)·(1 + 0.044715·g²) > 0, so GELU(g)·up = z·σ(z)·(up/t) = swiglu(z, up/t).
ggml_tensor* Graph::geglu_mlp(ggml_tensor* x, const LayerWeights& w) {
  constexpr float k = 1.5957691216057308f;
  ggml_tensor* gate = linear(x, w.w_gate);
  ggml_tensor* t = ggml_scale_bias(ctx_, ggml_sqr(ctx_, gate), k * 0.044715f, k);
  ggml_tensor* z = ggml_mul(ctx_, gate, t);
  return linear(ggml_swiglu_split(ctx_, z, ggml_div(ctx_, linear(x, w.w_up), t)), w.w_down);
}

ggml_tensor* Graph::relu2_mlp(ggml_tensor* x, const LayerWeights& w) {
  ggml_tensor* up = ggml_relu(ctx_, linear(x, w.w_up, w.b_up));
  return linear(ggml_sqr(ctx_, up), w.w_down, w.b_down);
}

ggml_tensor* Graph::llama_layer(ggml_tensor* x, const LayerWeights& w, int layer) {
  const float eps = model_.config.rms_norm_eps;
  x = rows_after_attention(
      ggml_add(ctx_, x, self_attention(rms_norm(x, w.attn_norm, eps), w, layer)), layer);
  return ggml_add(ctx_, x, swiglu_mlp(rms_norm(x, w.ffn_norm, eps), w));
}

ggml_tensor* Graph::logits(ggml_tensor* x) {
  return lm_head(rms_norm(output_rows(x), model_.weights.output_norm, model_.config.rms_norm_eps));
}

// The last layer's MLP needs only the rows that want logits (as llama.cpp does, which also
// keeps the two on the same matmul kernels); selecting twice is a no-op.
ggml_tensor* Graph::output_rows(ggml_tensor* x) {
  if (outputs_selected_) return x;
  outputs_selected_ = true;
  return ggml_get_rows(ctx_, x, output_ids_);
}

ggml_tensor* Graph::rows_after_attention(ggml_tensor* x, int layer) {
  return layer + 1 == model_.config.num_hidden_layers ? output_rows(x) : x;
}

ggml_tensor* Graph::lm_head(ggml_tensor* x, ggml_tensor* bias) {
  if (hidden_states_) return x;
  ggml_tensor* logits = linear(x, model_.weights.output, bias);
  const float cap = model_.config.final_logit_softcapping;
  return cap > 0.0f ? soft_cap(logits, cap) : logits;
}

}  // namespace stcpp
