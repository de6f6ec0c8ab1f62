// The VAE decoder (first_stage_model.*): post_quant_conv, mid block with one attention, the up
// blocks (read from decoder.up.N.block.M and their shapes), the output convolution.
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

bool load_vae_decoder(Weights& weights, VaeDecoder* model, Failure* failure);

// z [W, H, C, N] (already divided by the scale factor) -> the image [8W, 8H, 3, N] in [-1, 1].
ggml_tensor* build_vae_decoder(ggml_context* ctx, const VaeDecoder& model, ggml_tensor* z);

}  // namespace dcpp
