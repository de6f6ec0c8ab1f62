// Layers shared by the text encoder, the UNet and the VAE: their weights (loaded with the
// shapes checked) and the ggml ops that apply them. Images are ggml tensors [W, H, C, N]
// (PyTorch's NCHW reversed); token sequences are [C, T, N].
#pragma once

#include <string>

#include "ggml.h"
#include "tensors.h"

namespace dcpp {

struct Linear {
  ggml_tensor* w = nullptr;  // [out, in] or a 1x1 kernel [out, in, 1, 1]
  ggml_tensor* b = nullptr;
};

struct Norm {
  ggml_tensor* w = nullptr;
  ggml_tensor* b = nullptr;
};

struct Conv {
  ggml_tensor* w = nullptr;  // [out, in, k, k]
  ggml_tensor* b = nullptr;
  int stride = 1;
  int pad = 1;
};

// The dimension sizes of a stored tensor, or -1 where absent (for shape inference).
int64_t dim(const Weights& weights, const std::string& name, size_t index);

// `in` < 0 accepts any input size. A linear may also be stored as a 1x1 convolution kernel.
Linear load_linear(Weights& weights, const std::string& prefix, int64_t in, int64_t out,
                   bool bias = true);
Norm load_norm(Weights& weights, const std::string& prefix, int64_t channels);
Conv load_conv(Weights& weights, const std::string& prefix, int64_t in, int64_t out, int kernel,
               int stride = 1);

ggml_tensor* linear(ggml_context* ctx, ggml_tensor* x, const Linear& layer);
ggml_tensor* layer_norm(ggml_context* ctx, ggml_tensor* x, const Norm& norm, float eps);
// 32 groups, as every SD UNet and VAE uses.
ggml_tensor* group_norm(ggml_context* ctx, ggml_tensor* x, const Norm& norm, float eps);
ggml_tensor* conv2d(ggml_context* ctx, ggml_tensor* x, const Conv& conv);
// Adds a per-channel vector [C] to an image [W, H, C, N].
ggml_tensor* add_channel_bias(ggml_context* ctx, ggml_tensor* x, ggml_tensor* bias);

ggml_tensor* image_to_tokens(ggml_context* ctx, ggml_tensor* x);  // [W,H,C,N] -> [C, W*H, N]
ggml_tensor* tokens_to_image(ggml_context* ctx, ggml_tensor* x, int64_t w, int64_t h);

// How attention is computed (diffusion_attention in diffusion.h says when each is faster). The
// score matrix is only used while small next to the VAE decode's buffers, which set the peak.
enum class AttentionKernel { flash, score_matrix_when_small };
// The largest score matrix computed whole (SD 1.5 at 512x512: 1 GiB; SDXL at 1024x1024: 1.25 GiB).
constexpr double kMaxScoreMatrixBytes = 1.5 * 1024 * 1024 * 1024;
bool uses_score_matrix(AttentionKernel kernel, int64_t tq, int64_t tk, int heads, int64_t n);

// Multi-head attention without a mask: q [D, Tq, N], k and v [D, Tk, N] -> [D, Tq, N].
ggml_tensor* attention(ggml_context* ctx, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads,
                       AttentionKernel kernel = AttentionKernel::flash);

constexpr int kGroups = 32;

}  // namespace dcpp
