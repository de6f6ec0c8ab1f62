#include "nn.h"

#include <cmath>

namespace dcpp {

int64_t dim(const Weights& weights, const std::string& name, size_t index) {
  const std::vector<int64_t> shape = weights.shape(name);
  return index < shape.size() ? shape[index] : -1;
}

Linear load_linear(Weights& weights, const std::string& prefix, int64_t in, int64_t out,
                   bool bias) {
  Linear layer;
  const std::string name = prefix + ".weight";
  if (weights.shape(name).size() == 4) {
    layer.w = weights.matrix(name, {out, in, 1, 1});
  } else {
    layer.w = weights.matrix(name, {out, in});
  }
  if (bias) layer.b = weights.vector(prefix + ".bias", {out});
  return layer;
}

Norm load_norm(Weights& weights, const std::string& prefix, int64_t channels) {
  return Norm{weights.vector(prefix + ".weight", {channels}),
              weights.vector(prefix + ".bias", {channels})};
}

Conv load_conv(Weights& weights, const std::string& prefix, int64_t in, int64_t out, int kernel,
               int stride) {
  Conv conv;
  conv.w = weights.matrix(prefix + ".weight", {out, in, kernel, kernel});
  conv.b = weights.vector(prefix + ".bias", {out});
  conv.stride = stride;
  conv.pad = kernel / 2;
  return conv;
}

ggml_tensor* linear(ggml_context* ctx, ggml_tensor* x, const Linear& layer) {
  ggml_tensor* w = layer.w;
  if (ggml_n_dims(w) == 4) w = ggml_reshape_2d(ctx, w, w->ne[2], w->ne[3]);
  x = ggml_mul_mat(ctx, w, x);
  return layer.b ? ggml_add(ctx, x, layer.b) : x;
}

ggml_tensor* layer_norm(ggml_context* ctx, ggml_tensor* x, const Norm& norm, float eps) {
  x = ggml_norm(ctx, x, eps);
  return ggml_add(ctx, ggml_mul(ctx, x, norm.w), norm.b);
}

ggml_tensor* add_channel_bias(ggml_context* ctx, ggml_tensor* x, ggml_tensor* bias) {
  return ggml_add(ctx, x, ggml_reshape_4d(ctx, bias, 1, 1, bias->ne[0], 1));
}

ggml_tensor* group_norm(ggml_context* ctx, ggml_tensor* x, const Norm& norm, float eps) {
  x = ggml_group_norm(ctx, x, kGroups, eps);
  x = ggml_mul(ctx, x, ggml_reshape_4d(ctx, norm.w, 1, 1, norm.w->ne[0], 1));
  return add_channel_bias(ctx, x, norm.b);
}

// im2col + one matrix product, as ggml_conv_2d, but with the columns in the kernel's type
// (ggml_conv_2d always rounds them to F16, which F32 checkpoints should not suffer).
ggml_tensor* conv2d(ggml_context* ctx, ggml_tensor* x, const Conv& conv) {
  ggml_tensor* k = conv.w;
  const ggml_type col_type = k->type == GGML_TYPE_F16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
  ggml_tensor* cols = ggml_im2col(ctx, k, x, conv.stride, conv.stride, conv.pad, conv.pad, 1, 1,
                                  true, col_type);  // [N, OH, OW, IC*KH*KW]
  ggml_tensor* y = ggml_mul_mat(
      ctx, ggml_reshape_2d(ctx, cols, cols->ne[0], cols->ne[1] * cols->ne[2] * cols->ne[3]),
      ggml_reshape_2d(ctx, k, k->ne[0] * k->ne[1] * k->ne[2], k->ne[3]));        // [N*OH*OW, OC]
  y = ggml_reshape_4d(ctx, y, cols->ne[1], cols->ne[2], cols->ne[3], k->ne[3]);  // [OW,OH,N,OC]
  if (cols->ne[3] > 1)
    y = ggml_cont(ctx, ggml_permute(ctx, y, 0, 1, 3, 2));
  else
    y = ggml_reshape_4d(ctx, y, y->ne[0], y->ne[1], y->ne[3], 1);
  return conv.b ? add_channel_bias(ctx, y, conv.b) : y;
}

ggml_tensor* image_to_tokens(ggml_context* ctx, ggml_tensor* x) {
  const int64_t w = x->ne[0], h = x->ne[1], c = x->ne[2], n = x->ne[3];
  x = ggml_cont(ctx, ggml_permute(ctx, x, 1, 2, 0, 3));  // [C, W, H, N]
  return ggml_reshape_3d(ctx, x, c, w * h, n);
}

ggml_tensor* tokens_to_image(ggml_context* ctx, ggml_tensor* x, int64_t w, int64_t h) {
  x = ggml_reshape_4d(ctx, x, x->ne[0], w, h, x->ne[2]);
  return ggml_cont(ctx, ggml_permute(ctx, x, 2, 0, 1, 3));  // [W, H, C, N]
}

static ggml_tensor* split_heads(ggml_context* ctx, ggml_tensor* x, int heads) {
  const int64_t d = x->ne[0] / heads;
  x = ggml_reshape_4d(ctx, x, d, heads, x->ne[1], x->ne[2]);
  return ggml_permute(ctx, x, 0, 2, 1, 3);  // [d, T, heads, N]
}

// softmax(q k^T * scale) v with the score matrix stored: one matrix product per head for each
// side, which ggml's CPU kernels run faster than flash attention's row-by-row loop.
static ggml_tensor* score_matrix_attention(ggml_context* ctx, ggml_tensor* q, ggml_tensor* k,
                                           ggml_tensor* v, int heads, float scale) {
  const int64_t dim = q->ne[0], tq = q->ne[1], n = q->ne[2];
  ggml_tensor* qh = ggml_cont(ctx, split_heads(ctx, q, heads));  // [d, Tq, heads, N]
  ggml_tensor* kh = ggml_cont(ctx, split_heads(ctx, k, heads));  // [d, Tk, heads, N]
  v = ggml_reshape_4d(ctx, v, dim / heads, heads, v->ne[1], v->ne[2]);
  ggml_tensor* vt = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));  // [Tk, d, heads, N]
  ggml_tensor* scores = ggml_mul_mat(ctx, kh, qh);                     // [Tk, Tq, heads, N]
  scores = ggml_soft_max_ext(ctx, scores, nullptr, scale, 0.0f);
  ggml_tensor* out = ggml_mul_mat(ctx, vt, scores);          // [d, Tq, heads, N]
  out = ggml_cont(ctx, ggml_permute(ctx, out, 0, 2, 1, 3));  // [d, heads, Tq, N]
  return ggml_reshape_3d(ctx, out, dim, tq, n);
}

bool uses_score_matrix(AttentionKernel kernel, int64_t tq, int64_t tk, int heads, int64_t n) {
  const double bytes = 4.0 * static_cast<double>(tq) * static_cast<double>(tk) * heads * n;
  return kernel == AttentionKernel::score_matrix_when_small && bytes <= kMaxScoreMatrixBytes;
}

ggml_tensor* attention(ggml_context* ctx, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads,
                       AttentionKernel kernel) {
  const int64_t dim = q->ne[0], tq = q->ne[1], n = q->ne[2];
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim / heads));
  if (uses_score_matrix(kernel, tq, k->ne[1], heads, n)) {
    return score_matrix_attention(ctx, q, k, v, heads, scale);
  }
  ggml_tensor* out =
      ggml_flash_attn_ext(ctx, split_heads(ctx, q, heads), split_heads(ctx, k, heads),
                          split_heads(ctx, v, heads), nullptr, scale, 0.0f, 0.0f);
  ggml_prec_set_acc(out, GGML_PREC_F32);
  return ggml_reshape_3d(ctx, out, dim, tq, n);  // out: [d, heads, Tq, N]
}

}  // namespace dcpp
