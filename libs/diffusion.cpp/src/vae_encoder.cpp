// The VAE encoder (first_stage_model.encoder.*, quant_conv): conv_in, the down blocks (read from
// encoder.down.N.block.M and their shapes; LDM's downsampling pads right and bottom by one and
// convolves with stride 2), the mid block, then mean and log-variance, of which the mean is kept.
#include "vae.h"

namespace dcpp {

namespace {

const std::string kPrefix = "first_stage_model.";

}  // namespace

bool load_vae_encoder(Weights& w, VaeEncoder* m, Failure* failure) {
  const std::string p = kPrefix + "encoder.";
  if (!w.has(p + "conv_in.weight")) return false;
  int64_t ch = dim(w, p + "conv_in.weight", 0);
  m->conv_in = load_conv(w, p + "conv_in", 3, ch, 3);
  for (int i = 0; w.has(p + "down." + std::to_string(i) + ".block.0.conv1.weight"); ++i) {
    const std::string l = p + "down." + std::to_string(i) + ".";
    VaeDownLevel level;
    for (int j = 0; w.has(l + "block." + std::to_string(j) + ".conv1.weight"); ++j) {
      const std::string b = l + "block." + std::to_string(j) + ".";
      const int64_t out = dim(w, b + "conv1.weight", 0);
      level.blocks.push_back(load_vae_block(w, b, ch, out));
      ch = out;
    }
    if (w.has(l + "downsample.conv.weight")) {
      level.downsample = load_conv(w, l + "downsample.conv", ch, ch, 3, 2);
      level.downsample.pad = 0;
    }
    m->levels.push_back(level);
  }
  m->mid1 = load_vae_block(w, p + "mid.block_1.", ch, ch);
  m->mid_attention = load_vae_attention(w, p + "mid.attn_1.", ch);
  m->mid2 = load_vae_block(w, p + "mid.block_2.", ch, ch);
  m->norm_out = load_norm(w, p + "norm_out", ch);
  const int64_t moments = dim(w, p + "conv_out.weight", 0);
  m->conv_out = load_conv(w, p + "conv_out", ch, moments, 3);
  m->latent_channels = moments / 2;
  if (w.has(kPrefix + "quant_conv.weight")) {
    m->quant = load_conv(w, kPrefix + "quant_conv", moments, moments, 1);
  }
  if (w.failure()) {
    *failure = w.failure();
    return false;
  }
  if (m->levels.empty() || moments <= 0 || moments % 2 != 0) {
    *failure = fail(DIFFUSION_MODEL_CORRUPT, "the VAE encoder's blocks do not fit together");
    return false;
  }
  return true;
}

ggml_tensor* build_vae_encoder(ggml_context* ctx, const VaeEncoder& m, ggml_tensor* image) {
  ggml_tensor* x = conv2d(ctx, image, m.conv_in);
  for (const VaeDownLevel& level : m.levels) {
    for (const VaeResBlock& b : level.blocks) x = vae_res_block(ctx, x, b);
    if (level.downsample.w) x = conv2d(ctx, ggml_pad(ctx, x, 1, 1, 0, 0), level.downsample);
  }
  x = vae_res_block(ctx, x, m.mid1);
  x = vae_attention(ctx, x, m.mid_attention);
  x = vae_res_block(ctx, x, m.mid2);
  x = conv2d(ctx, ggml_silu(ctx, group_norm(ctx, x, m.norm_out, kVaeEps)), m.conv_out);
  if (m.quant.w) x = conv2d(ctx, x, m.quant);
  // The mean: the first half of the channels.
  return ggml_cont(ctx, ggml_view_4d(ctx, x, x->ne[0], x->ne[1], m.latent_channels, x->ne[3],
                                     x->nb[1], x->nb[2], x->nb[3], 0));
}

}  // namespace dcpp
