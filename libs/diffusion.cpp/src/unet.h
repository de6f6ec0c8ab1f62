// The LDM UNet (model.diffusion_model.*): time embedding, ResBlocks, SpatialTransformers with
// self- and cross-attention, down/upsampling. The block layout is read from the checkpoint's
// tensor names (input_blocks.N.M, middle_block.M, output_blocks.N.M) and the channel counts
// from their shapes, so SD 1.x, SD 2.x and small test checkpoints take the same path.
#pragma once

#include <map>
#include <vector>

#include "compute.h"
#include "nn.h"

namespace dcpp {

struct ResBlock {
  Norm in_norm, out_norm;
  Conv in_conv, out_conv;
  Linear emb;
  Conv skip;  // 1x1, when the channel count changes; w null otherwise
};

struct TransformerBlock {
  Norm norm1, norm2, norm3;
  Linear q1, k1, v1, out1;  // self-attention
  Linear q2, k2, v2, out2;  // cross-attention on the text
  Linear ff_in, ff_out;     // GEGLU feed-forward
};

struct SpatialTransformer {
  Norm norm;
  Linear proj_in, proj_out;  // 1x1 convolutions (SD 1.x) or linears (SD 2.x)
  std::vector<TransformerBlock> blocks;
  int heads = 8;
};

struct UnetLayer {
  enum Kind { RES, ATTENTION, DOWNSAMPLE, UPSAMPLE } kind;
  ResBlock res;
  SpatialTransformer attention;
  Conv conv;
};

using UnetBlock = std::vector<UnetLayer>;

struct UnetModel {
  int64_t in_channels = 0, model_channels = 0, out_channels = 0, context_dim = 0;
  Linear time1, time2;
  // SDXL's added conditioning (label_emb.0.0 / .0.2): a vector [adm_in] (the pooled text, then
  // the size and crop numbers, each as a 256-wide timestep embedding) mapped into the time
  // embedding by linear, SiLU, linear. adm_in 0: none.
  int64_t adm_in = 0;
  Linear label1, label2;
  Conv conv_in;
  std::vector<UnetBlock> input_blocks;  // after conv_in
  UnetBlock middle;
  std::vector<UnetBlock> output_blocks;
  Norm out_norm;
  Conv conv_out;
  int downsamples = 0;
};

bool load_unet(Weights& weights, UnetModel* model, Failure* failure);
// Attention heads by channel count, where a config states them (diffusers); the rest keep what
// the shapes imply (8 heads with 1x1-convolution projections, as SD 1.x; 64 channels per head
// with linear ones, as SD 2.x).
void set_attention_heads(UnetModel* model, const std::map<int64_t, int>& heads);

// The width of the embedding of each size and crop number in SDXL's added conditioning.
constexpr int kSizeEmbeddingDim = 256;

// x [W, H, C, N], timesteps [N], context [context_dim, T, N] -> the prediction [W, H, C, N].
// With added conditioning (adm_in > 0): pooled [P, N] and the numbers [K, N] (SDXL: original
// height and width, crop top and left, target height and width), P + 256 K = adm_in.
ggml_tensor* build_unet(ggml_context* ctx, const UnetModel& model, ggml_tensor* x,
                        ggml_tensor* timesteps, ggml_tensor* context, ggml_tensor* pooled,
                        ggml_tensor* sizes, AttentionKernel attention);

}  // namespace dcpp
