#include "vae.h"

namespace dcpp {

namespace {

const std::string kPrefix = "first_stage_model.";

}  // namespace

VaeResBlock load_vae_block(Weights& w, const std::string& p, int64_t in, int64_t out) {
  VaeResBlock b;
  b.norm1 = load_norm(w, p + "norm1", in);
  b.conv1 = load_conv(w, p + "conv1", in, out, 3);
  b.norm2 = load_norm(w, p + "norm2", out);
  b.conv2 = load_conv(w, p + "conv2", out, out, 3);
  if (w.has(p + "nin_shortcut.weight")) b.shortcut = load_conv(w, p + "nin_shortcut", in, out, 1);
  return b;
}

VaeAttention load_vae_attention(Weights& w, const std::string& p, int64_t ch) {
  VaeAttention a;
  a.norm = load_norm(w, p + "norm", ch);
  a.q = load_linear(w, p + "q", ch, ch);
  a.k = load_linear(w, p + "k", ch, ch);
  a.v = load_linear(w, p + "v", ch, ch);
  a.out = load_linear(w, p + "proj_out", ch, ch);
  return a;
}

ggml_tensor* vae_res_block(ggml_context* ctx, ggml_tensor* x, const VaeResBlock& b) {
  ggml_tensor* h = conv2d(ctx, ggml_silu(ctx, group_norm(ctx, x, b.norm1, kVaeEps)), b.conv1);
  h = conv2d(ctx, ggml_silu(ctx, group_norm(ctx, h, b.norm2, kVaeEps)), b.conv2);
  return ggml_add(ctx, b.shortcut.w ? conv2d(ctx, x, b.shortcut) : x, h);
}

// One head over all channels.
ggml_tensor* vae_attention(ggml_context* ctx, ggml_tensor* x, const VaeAttention& a) {
  const int64_t w = x->ne[0], h = x->ne[1];
  ggml_tensor* t = image_to_tokens(ctx, group_norm(ctx, x, a.norm, kVaeEps));
  t = attention(ctx, linear(ctx, t, a.q), linear(ctx, t, a.k), linear(ctx, t, a.v), 1);
  return ggml_add(ctx, x, tokens_to_image(ctx, linear(ctx, t, a.out), w, h));
}

bool load_vae_decoder(Weights& w, VaeDecoder* m, Failure* failure) {
  const std::string p = kPrefix + "decoder.";
  if (!w.has(p + "conv_in.weight")) {
    *failure =
        fail(DIFFUSION_UNSUPPORTED, "no VAE decoder found (expected first_stage_model.decoder.*)");
    return false;
  }
  m->latent_channels = dim(w, p + "conv_in.weight", 1);
  int64_t ch = dim(w, p + "conv_in.weight", 0);
  if (w.has(kPrefix + "post_quant_conv.weight")) {
    m->post_quant =
        load_conv(w, kPrefix + "post_quant_conv", m->latent_channels, m->latent_channels, 1);
  }
  m->conv_in = load_conv(w, p + "conv_in", m->latent_channels, ch, 3);
  m->mid1 = load_vae_block(w, p + "mid.block_1.", ch, ch);
  m->mid_attention = load_vae_attention(w, p + "mid.attn_1.", ch);
  m->mid2 = load_vae_block(w, p + "mid.block_2.", ch, ch);
  int n_levels = 0;
  while (w.has(p + "up." + std::to_string(n_levels) + ".block.0.conv1.weight")) ++n_levels;
  m->levels.resize(n_levels);
  for (int i = n_levels - 1; i >= 0; --i) {
    const std::string l = p + "up." + std::to_string(i) + ".";
    for (int j = 0; w.has(l + "block." + std::to_string(j) + ".conv1.weight"); ++j) {
      const std::string b = l + "block." + std::to_string(j) + ".";
      const int64_t out = dim(w, b + "conv1.weight", 0);
      m->levels[i].blocks.push_back(load_vae_block(w, b, ch, out));
      ch = out;
    }
    if (w.has(l + "upsample.conv.weight"))
      m->levels[i].upsample = load_conv(w, l + "upsample.conv", ch, ch, 3);
  }
  m->norm_out = load_norm(w, p + "norm_out", ch);
  m->conv_out = load_conv(w, p + "conv_out", ch, 3, 3);
  if (w.failure()) {
    *failure = w.failure();
    return false;
  }
  if (n_levels == 0) {
    *failure = fail(DIFFUSION_MODEL_CORRUPT, "the VAE decoder has no up blocks");
    return false;
  }
  return true;
}

ggml_tensor* build_vae_decoder(ggml_context* ctx, const VaeDecoder& m, ggml_tensor* z) {
  if (m.post_quant.w) z = conv2d(ctx, z, m.post_quant);
  ggml_tensor* x = conv2d(ctx, z, m.conv_in);
  x = vae_res_block(ctx, x, m.mid1);
  x = vae_attention(ctx, x, m.mid_attention);
  x = vae_res_block(ctx, x, m.mid2);
  for (int i = static_cast<int>(m.levels.size()) - 1; i >= 0; --i) {
    for (const VaeResBlock& b : m.levels[i].blocks) x = vae_res_block(ctx, x, b);
    if (m.levels[i].upsample.w) {
      x = conv2d(ctx, ggml_upscale(ctx, x, 2, GGML_SCALE_MODE_NEAREST), m.levels[i].upsample);
    }
  }
  x = ggml_silu(ctx, group_norm(ctx, x, m.norm_out, kVaeEps));
  return conv2d(ctx, x, m.conv_out);
}

}  // namespace dcpp
