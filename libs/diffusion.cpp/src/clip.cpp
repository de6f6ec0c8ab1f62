#include "clip.h"

#include <algorithm>
#include <cmath>

namespace dcpp {

namespace {

constexpr float kLayerNormEps = 1e-5f;

int count_layers(const Weights& weights, const std::string& prefix, const std::string& suffix) {
  int n = 0;
  while (weights.has(prefix + std::to_string(n) + suffix)) ++n;
  return n;
}

void load_openai(Weights& w, const std::string& p, ClipTextModel* m) {
  m->vocab = dim(w, p + "embeddings.token_embedding.weight", 0);
  m->hidden = dim(w, p + "embeddings.token_embedding.weight", 1);
  m->context = dim(w, p + "embeddings.position_embedding.weight", 0);
  m->token_embedding = w.matrix(p + "embeddings.token_embedding.weight", {m->vocab, m->hidden});
  m->position_embedding =
      w.vector(p + "embeddings.position_embedding.weight", {m->context, m->hidden});
  const int n_layers = count_layers(w, p + "encoder.layers.", ".layer_norm1.weight");
  const int64_t d = m->hidden;
  for (int i = 0; i < n_layers; ++i) {
    const std::string l = p + "encoder.layers." + std::to_string(i) + ".";
    const int64_t ff = dim(w, l + "mlp.fc1.weight", 0);
    ClipLayer layer;
    layer.ln1 = load_norm(w, l + "layer_norm1", d);
    layer.ln2 = load_norm(w, l + "layer_norm2", d);
    layer.q = load_linear(w, l + "self_attn.q_proj", d, d);
    layer.k = load_linear(w, l + "self_attn.k_proj", d, d);
    layer.v = load_linear(w, l + "self_attn.v_proj", d, d);
    layer.out = load_linear(w, l + "self_attn.out_proj", d, d);
    layer.fc1 = load_linear(w, l + "mlp.fc1", d, ff);
    layer.fc2 = load_linear(w, l + "mlp.fc2", ff, d);
    m->layers.push_back(layer);
  }
  m->final_norm = load_norm(w, p + "final_layer_norm", d);
  m->quick_gelu = true;
}

// `keep_last`: SDXL's pooled output needs the last layer.
void load_openclip(Weights& w, const std::string& p, bool keep_last, ClipTextModel* m) {
  m->vocab = dim(w, p + "token_embedding.weight", 0);
  m->hidden = dim(w, p + "token_embedding.weight", 1);
  m->context = dim(w, p + "positional_embedding", 0);
  m->token_embedding = w.matrix(p + "token_embedding.weight", {m->vocab, m->hidden});
  m->position_embedding = w.vector(p + "positional_embedding", {m->context, m->hidden});
  // SD 2.x conditions on the penultimate layer (with ln_final): the last one is never used, and
  // is left out as diffusers' conversion leaves it out, so that clip_skip means the same in both
  // layouts.
  const int n_layers =
      count_layers(w, p + "transformer.resblocks.", ".ln_1.weight") - (keep_last ? 0 : 1);
  const int64_t d = m->hidden;
  for (int i = 0; i < n_layers; ++i) {
    const std::string l = p + "transformer.resblocks." + std::to_string(i) + ".";
    const int64_t ff = dim(w, l + "mlp.c_fc.weight", 0);
    ClipLayer layer;
    layer.ln1 = load_norm(w, l + "ln_1", d);
    layer.ln2 = load_norm(w, l + "ln_2", d);
    layer.qkv.w = w.matrix(l + "attn.in_proj_weight", {3 * d, d});
    layer.qkv.b = w.vector(l + "attn.in_proj_bias", {3 * d});
    layer.out = load_linear(w, l + "attn.out_proj", d, d);
    layer.fc1 = load_linear(w, l + "mlp.c_fc", d, ff);
    layer.fc2 = load_linear(w, l + "mlp.c_proj", ff, d);
    m->layers.push_back(layer);
  }
  m->final_norm = load_norm(w, p + "ln_final", d);
  m->quick_gelu = false;
}

// Causal self-attention of one sequence: x [D, T].
ggml_tensor* causal_self_attention(ggml_context* ctx, ggml_tensor* x, const ClipLayer& layer,
                                   int64_t heads) {
  const int64_t dim = x->ne[0], tokens = x->ne[1], d = dim / heads;
  ggml_tensor *q, *k, *v;
  if (layer.qkv.w) {
    ggml_tensor* qkv = linear(ctx, x, layer.qkv);  // [3D, T]
    q = ggml_view_2d(ctx, qkv, dim, tokens, qkv->nb[1], 0);
    k = ggml_view_2d(ctx, qkv, dim, tokens, qkv->nb[1], dim * ggml_element_size(qkv));
    v = ggml_view_2d(ctx, qkv, dim, tokens, qkv->nb[1], 2 * dim * ggml_element_size(qkv));
    q = ggml_cont(ctx, q), k = ggml_cont(ctx, k), v = ggml_cont(ctx, v);
  } else {
    q = linear(ctx, x, layer.q), k = linear(ctx, x, layer.k), v = linear(ctx, x, layer.v);
  }
  q = ggml_permute(ctx, ggml_reshape_3d(ctx, q, d, heads, tokens), 0, 2, 1, 3);  // [d, T, H]
  k = ggml_permute(ctx, ggml_reshape_3d(ctx, k, d, heads, tokens), 0, 2, 1, 3);
  v = ggml_cont(ctx, ggml_permute(ctx, ggml_reshape_3d(ctx, v, d, heads, tokens), 1, 2, 0, 3));
  ggml_tensor* kq = ggml_mul_mat(ctx, k, q);  // [Tk, Tq, H]
  kq = ggml_diag_mask_inf(ctx, kq, 0);
  kq = ggml_soft_max_ext(ctx, kq, nullptr, 1.0f / std::sqrt(static_cast<float>(d)), 0.0f);
  ggml_tensor* out = ggml_mul_mat(ctx, v, kq);               // [d, Tq, H]
  out = ggml_cont(ctx, ggml_permute(ctx, out, 0, 2, 1, 3));  // [d, H, Tq]
  return linear(ctx, ggml_reshape_2d(ctx, out, dim, tokens), layer.out);
}

// The pooled output's projection where the checkpoint has one (SDXL's second encoder).
void load_projection(Weights& w, const std::string& openai, const std::string& openclip,
                     ClipTextModel* m) {
  if (w.has(openai + "text_projection.weight")) {
    m->pooled_dim = dim(w, openai + "text_projection.weight", 0);
    m->projection = w.matrix(openai + "text_projection.weight", {m->pooled_dim, m->hidden});
  } else if (w.has(openclip + "text_projection")) {
    m->pooled_dim = dim(w, openclip + "text_projection", 1);
    m->projection = w.matrix(openclip + "text_projection", {m->hidden, m->pooled_dim});
    m->projection_transposed = true;
  }
}

ggml_tensor* clip_layer(ggml_context* ctx, ggml_tensor* x, const ClipLayer& layer,
                        const ClipTextModel& model) {
  x = ggml_add(
      ctx, x,
      causal_self_attention(ctx, layer_norm(ctx, x, layer.ln1, kLayerNormEps), layer, model.heads));
  ggml_tensor* h = linear(ctx, layer_norm(ctx, x, layer.ln2, kLayerNormEps), layer.fc1);
  // quick_gelu written out: ggml's own may use an F16 table.
  h = model.quick_gelu ? ggml_mul(ctx, h, ggml_sigmoid(ctx, ggml_scale(ctx, h, 1.702f)))
                       : ggml_gelu_erf(ctx, h);
  return ggml_add(ctx, x, linear(ctx, h, layer.fc2));
}

// x [hidden, T] after every layer -> the projected final-normed state at the first end token.
ggml_tensor* pool(GraphRun& run, const ClipTextModel& model, ggml_tensor* x,
                  const std::vector<int32_t>& ids) {
  ggml_context* ctx = run.ctx();
  const size_t end = std::max_element(ids.begin(), ids.end()) - ids.begin();
  x = layer_norm(ctx, x, model.final_norm, kLayerNormEps);
  x = ggml_view_2d(ctx, x, x->ne[0], 1, x->nb[1], end * x->nb[1]);
  ggml_tensor* p = model.projection;
  if (model.projection_transposed) p = ggml_cont(ctx, ggml_transpose(ctx, p));
  return ggml_mul_mat(ctx, p, x);  // [pooled_dim, 1]
}

}  // namespace

bool load_clip(Weights& weights, const std::string& prefix, bool sdxl, ClipTextModel* model,
               Failure* failure) {
  const std::string openai = prefix + ".transformer.text_model.", openclip = prefix + ".model.";
  if (weights.has(openai + "embeddings.token_embedding.weight")) {
    load_openai(weights, openai, model);
  } else if (weights.has(openclip + "token_embedding.weight")) {
    load_openclip(weights, openclip, sdxl, model);
  } else {
    *failure = fail(DIFFUSION_UNSUPPORTED,
                    "no CLIP text encoder found (expected " + openai + "* or " + openclip + "*)");
    return false;
  }
  model->penultimate = sdxl;
  if (sdxl) load_projection(weights, prefix + ".transformer.", openclip, model);
  if (weights.failure()) {
    *failure = weights.failure();
    return false;
  }
  model->heads = std::max<int64_t>(1, model->hidden / 64);
  if (model->layers.empty() || model->hidden % model->heads != 0) {
    *failure = fail(DIFFUSION_MODEL_CORRUPT, "the text encoder has no layers");
    return false;
  }
  return true;
}

ggml_tensor* build_clip(GraphRun& run, const ClipTextModel& model, const std::vector<int32_t>& ids,
                        int clip_skip, ggml_tensor** pooled) {
  ggml_context* ctx = run.ctx();
  const int64_t tokens = static_cast<int64_t>(ids.size());
  ggml_tensor* x = ggml_get_rows(ctx, model.token_embedding, run.input_i32(ids));
  ggml_tensor* pos = model.position_embedding;
  x = ggml_add(ctx, x, ggml_view_2d(ctx, pos, pos->ne[0], tokens, pos->nb[1], 0));
  const int skip = std::max(1, clip_skip) - 1 + (model.penultimate ? 1 : 0);
  const int all = static_cast<int>(model.layers.size());
  const int n_layers = std::max(1, all - skip);
  const bool pooling = pooled && model.projection;
  for (int i = 0; i < n_layers; ++i) x = clip_layer(ctx, x, model.layers[i], model);
  ggml_tensor* hidden = model.penultimate ? x : layer_norm(ctx, x, model.final_norm, kLayerNormEps);
  if (pooling) {
    for (int i = n_layers; i < all; ++i) x = clip_layer(ctx, x, model.layers[i], model);
    *pooled = pool(run, model, x, ids);
  }
  return hidden;
}

}  // namespace dcpp
