#include "clip.h"

#include <cmath>

namespace dcpp {

namespace {

constexpr float kLayerNormEps = 1e-5f;
const std::string kOpenAiPrefix = "cond_stage_model.transformer.text_model.";
const std::string kOpenClipPrefix = "cond_stage_model.model.";

int count_layers(const Weights& weights, const std::string& prefix, const std::string& suffix) {
  int n = 0;
  while (weights.has(prefix + std::to_string(n) + suffix)) ++n;
  return n;
}

void load_openai(Weights& w, ClipTextModel* m) {
  const std::string p = kOpenAiPrefix;
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

void load_openclip(Weights& w, ClipTextModel* m) {
  const std::string p = kOpenClipPrefix;
  m->vocab = dim(w, p + "token_embedding.weight", 0);
  m->hidden = dim(w, p + "token_embedding.weight", 1);
  m->context = dim(w, p + "positional_embedding", 0);
  m->token_embedding = w.matrix(p + "token_embedding.weight", {m->vocab, m->hidden});
  m->position_embedding = w.vector(p + "positional_embedding", {m->context, m->hidden});
  // SD 2.x conditions on the penultimate layer (with ln_final): the last one is never used, and
  // is left out as diffusers' conversion leaves it out, so that clip_skip means the same in both
  // layouts.
  const int n_layers = count_layers(w, p + "transformer.resblocks.", ".ln_1.weight") - 1;
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

}  // namespace

bool load_clip(Weights& weights, ClipTextModel* model, Failure* failure) {
  if (weights.has(kOpenAiPrefix + "embeddings.token_embedding.weight")) {
    load_openai(weights, model);
  } else if (weights.has(kOpenClipPrefix + "token_embedding.weight")) {
    load_openclip(weights, model);
  } else {
    *failure =
        fail(DIFFUSION_UNSUPPORTED,
             "no CLIP text encoder found (expected cond_stage_model.transformer.text_model.* "
             "for SD 1.x or cond_stage_model.model.* for SD 2.x)");
    return false;
  }
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
                        int clip_skip) {
  ggml_context* ctx = run.ctx();
  const int64_t tokens = static_cast<int64_t>(ids.size());
  ggml_tensor* x = ggml_get_rows(ctx, model.token_embedding, run.input_i32(ids));
  ggml_tensor* pos = model.position_embedding;
  x = ggml_add(ctx, x, ggml_view_2d(ctx, pos, pos->ne[0], tokens, pos->nb[1], 0));
  const int skip = std::max(1, clip_skip);
  const int n_layers = std::max(1, static_cast<int>(model.layers.size()) - (skip - 1));
  for (int i = 0; i < n_layers; ++i) {
    const ClipLayer& layer = model.layers[i];
    x = ggml_add(ctx, x,
                 causal_self_attention(ctx, layer_norm(ctx, x, layer.ln1, kLayerNormEps), layer,
                                       model.heads));
    ggml_tensor* h = linear(ctx, layer_norm(ctx, x, layer.ln2, kLayerNormEps), layer.fc1);
    // quick_gelu written out: ggml's own may use an F16 table.
    h = model.quick_gelu ? ggml_mul(ctx, h, ggml_sigmoid(ctx, ggml_scale(ctx, h, 1.702f)))
                         : ggml_gelu_erf(ctx, h);
    x = ggml_add(ctx, x, linear(ctx, h, layer.fc2));
  }
  return layer_norm(ctx, x, model.final_norm, kLayerNormEps);
}

}  // namespace dcpp
