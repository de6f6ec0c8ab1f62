// The VAE (first_stage_model.*). Decoder: post_quant_conv, mid block with one attention, the up
// blocks (read from decoder.up.N.block.M and their shapes), the output convolution. Encoder
// (vae_encoder.cpp): the down blocks, the same mid block, quant_conv.
#pragma once

#include <vector>

#include "nn.h"

namespace dcpp {

struct VaeResBlock {
  Norm norm1, norm2;
  Conv conv1, conv2;
  Conv shortcut;  // 1x1 when the channel count changes
};

struct VaeAttention {
  Norm norm;
  Linear q, k, v, out;  // 1x1 convolutions (or linears in converted checkpoints)
};

struct VaeUpLevel {
  std::vector<VaeResBlock> blocks;
  Conv upsample;  // w null on the last level
};

struct VaeDecoder {
  int64_t latent_channels = 0;
  float scale_factor = 0.18215f;  // SD 1.x and 2.x
  Conv post_quant;
  Conv conv_in;
  VaeResBlock mid1, mid2;
  VaeAttention mid_attention;
  std::vector<VaeUpLevel> levels;  // applied from the last stored index down to 0
  Norm norm_out;
  Conv conv_out;
};

struct VaeDownLevel {
  std::vector<VaeResBlock> blocks;
  Conv downsample;  // stride 2 after padding right and bottom by one; w null on the last level
};

struct VaeEncoder {
  int64_t latent_channels = 0;
  Conv conv_in;
  std::vector<VaeDownLevel> levels;
  VaeResBlock mid1, mid2;
  VaeAttention mid_attention;
  Norm norm_out;
  Conv conv_out;  // to mean and log-variance
  Conv quant;     // quant_conv; w null when absent
};

// The parts both halves share. `p` ends with a dot.
VaeResBlock load_vae_block(Weights& w, const std::string& p, int64_t in, int64_t out);
VaeAttention load_vae_attention(Weights& w, const std::string& p, int64_t channels);
ggml_tensor* vae_res_block(ggml_context* ctx, ggml_tensor* x, const VaeResBlock& b);
ggml_tensor* vae_attention(ggml_context* ctx, ggml_tensor* x, const VaeAttention& a);
constexpr float kVaeEps = 1e-6f;

bool load_vae_decoder(Weights& weights, VaeDecoder* model, Failure* failure);
// False without a failure when the checkpoint has no encoder (it is optional).
bool load_vae_encoder(Weights& weights, VaeEncoder* model, Failure* failure);

// z [W, H, C, N] (already divided by the scale factor) -> the image [8W, 8H, 3, N] in [-1, 1].
ggml_tensor* build_vae_decoder(ggml_context* ctx, const VaeDecoder& model, ggml_tensor* z);
// image [8W, 8H, 3, N] in [-1, 1] -> the latent mean [W, H, C, N] (not yet scaled).
ggml_tensor* build_vae_encoder(ggml_context* ctx, const VaeEncoder& model, ggml_tensor* image);

}  // namespace dcpp
