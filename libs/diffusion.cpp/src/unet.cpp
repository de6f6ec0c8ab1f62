#include "unet.h"

namespace dcpp {

namespace {

const std::string kPrefix = "model.diffusion_model.";
constexpr float kGroupNormEps = 1e-5f;
constexpr float kTransformerGroupNormEps = 1e-6f;
constexpr float kLayerNormEps = 1e-5f;

ResBlock load_res(Weights& w, const std::string& p, int64_t in, int64_t out, int64_t emb_dim) {
  ResBlock r;
  r.in_norm = load_norm(w, p + "in_layers.0", in);
  r.in_conv = load_conv(w, p + "in_layers.2", in, out, 3);
  r.emb = load_linear(w, p + "emb_layers.1", emb_dim, out);
  r.out_norm = load_norm(w, p + "out_layers.0", out);
  r.out_conv = load_conv(w, p + "out_layers.3", out, out, 3);
  if (w.has(p + "skip_connection.weight")) r.skip = load_conv(w, p + "skip_connection", in, out, 1);
  return r;
}

Linear load_attention_part(Weights& w, const std::string& p, int64_t in, int64_t out) {
  return load_linear(w, p, in, out, false);
}

SpatialTransformer load_transformer(Weights& w, const std::string& p, int64_t ch,
                                    int64_t context_dim) {
  SpatialTransformer st;
  st.norm = load_norm(w, p + "norm", ch);
  // SD 1.x: 8 heads; SD 2.x (linear projections): 64 channels per head.
  const bool linear_proj = w.shape(p + "proj_in.weight").size() == 2;
  st.heads = linear_proj ? static_cast<int>(std::max<int64_t>(1, ch / 64)) : 8;
  st.proj_in = load_linear(w, p + "proj_in", ch, ch);
  st.proj_out = load_linear(w, p + "proj_out", ch, ch);
  for (int i = 0; w.has(p + "transformer_blocks." + std::to_string(i) + ".norm1.weight"); ++i) {
    const std::string b = p + "transformer_blocks." + std::to_string(i) + ".";
    TransformerBlock t;
    t.norm1 = load_norm(w, b + "norm1", ch);
    t.norm2 = load_norm(w, b + "norm2", ch);
    t.norm3 = load_norm(w, b + "norm3", ch);
    t.q1 = load_attention_part(w, b + "attn1.to_q", ch, ch);
    t.k1 = load_attention_part(w, b + "attn1.to_k", ch, ch);
    t.v1 = load_attention_part(w, b + "attn1.to_v", ch, ch);
    t.out1 = load_linear(w, b + "attn1.to_out.0", ch, ch);
    t.q2 = load_attention_part(w, b + "attn2.to_q", ch, ch);
    t.k2 = load_attention_part(w, b + "attn2.to_k", context_dim, ch);
    t.v2 = load_attention_part(w, b + "attn2.to_v", context_dim, ch);
    t.out2 = load_linear(w, b + "attn2.to_out.0", ch, ch);
    const int64_t inner = dim(w, b + "ff.net.2.weight", 1);
    t.ff_in = load_linear(w, b + "ff.net.0.proj", ch, 2 * inner);
    t.ff_out = load_linear(w, b + "ff.net.2", inner, ch);
    st.blocks.push_back(t);
  }
  return st;
}

// Reads the layers of one block (a ResBlock, then maybe attention, then maybe a resampler).
class BlockReader {
 public:
  BlockReader(Weights& w, int64_t emb_dim, int64_t context_dim)
      : w_(w), emb_dim_(emb_dim), context_dim_(context_dim) {}

  bool exists(const std::string& p) const {
    return w_.has(p + "0.op.weight") || w_.has(p + "0.in_layers.0.weight");
  }

  UnetBlock read(const std::string& p, int64_t in, int64_t* ch) {
    UnetBlock block;
    for (int j = 0;; ++j) {
      const std::string l = p + std::to_string(j) + ".";
      UnetLayer layer{};
      if (w_.has(l + "in_layers.0.weight")) {
        const int64_t out = dim(w_, l + "out_layers.3.weight", 0);
        layer.kind = UnetLayer::RES;
        layer.res = load_res(w_, l, in, out, emb_dim_);
        in = *ch = out;
      } else if (w_.has(l + "proj_in.weight")) {
        layer.kind = UnetLayer::ATTENTION;
        layer.attention = load_transformer(w_, l, in, context_dim_);
      } else if (w_.has(l + "op.weight")) {
        layer.kind = UnetLayer::DOWNSAMPLE;
        layer.conv = load_conv(w_, l + "op", in, in, 3, 2);
      } else if (w_.has(l + "conv.weight")) {
        layer.kind = UnetLayer::UPSAMPLE;
        layer.conv = load_conv(w_, l + "conv", in, in, 3);
      } else {
        break;
      }
      block.push_back(layer);
    }
    return block;
  }

 private:
  Weights& w_;
  int64_t emb_dim_, context_dim_;
};

bool has_kind(const UnetBlock& block, UnetLayer::Kind kind) {
  for (const UnetLayer& l : block) {
    if (l.kind == kind) return true;
  }
  return false;
}

int64_t find_context_dim(const Weights& w) {
  for (const auto& name : {"input_blocks.1.1.", "input_blocks.4.1.", "middle_block.1."}) {
    const int64_t d = dim(w, kPrefix + name + "transformer_blocks.0.attn2.to_k.weight", 1);
    if (d > 0) return d;
  }
  return -1;
}

}  // namespace

bool load_unet(Weights& w, UnetModel* m, Failure* failure) {
  const std::string p = kPrefix;
  if (!w.has(p + "input_blocks.0.0.weight") || !w.has(p + "time_embed.0.weight")) {
    *failure = fail(DIFFUSION_UNSUPPORTED,
                    "no UNet found (expected model.diffusion_model.* as in the published "
                    "single-file Stable Diffusion checkpoints)");
    return false;
  }
  m->model_channels = dim(w, p + "input_blocks.0.0.weight", 0);
  m->in_channels = dim(w, p + "input_blocks.0.0.weight", 1);
  m->context_dim = find_context_dim(w);
  const int64_t emb_dim = dim(w, p + "time_embed.0.weight", 0);
  m->time1 = load_linear(w, p + "time_embed.0", m->model_channels, emb_dim);
  m->time2 = load_linear(w, p + "time_embed.2", emb_dim, emb_dim);
  if (w.has(p + "label_emb.0.0.weight")) {
    m->adm_in = dim(w, p + "label_emb.0.0.weight", 1);
    m->label1 = load_linear(w, p + "label_emb.0.0", m->adm_in, emb_dim);
    m->label2 = load_linear(w, p + "label_emb.0.2", emb_dim, emb_dim);
  }
  m->conv_in = load_conv(w, p + "input_blocks.0.0", m->in_channels, m->model_channels, 3);
  BlockReader reader(w, emb_dim, m->context_dim);
  int64_t ch = m->model_channels;
  std::vector<int64_t> skips = {ch};
  for (int i = 1; reader.exists(p + "input_blocks." + std::to_string(i) + "."); ++i) {
    m->input_blocks.push_back(reader.read(p + "input_blocks." + std::to_string(i) + ".", ch, &ch));
    if (has_kind(m->input_blocks.back(), UnetLayer::DOWNSAMPLE)) ++m->downsamples;
    skips.push_back(ch);
  }
  m->middle = reader.read(p + "middle_block.", ch, &ch);
  for (int i = 0; reader.exists(p + "output_blocks." + std::to_string(i) + "."); ++i) {
    if (skips.empty()) {
      *failure = fail(DIFFUSION_MODEL_CORRUPT, "the UNet has more output blocks than input blocks");
      return false;
    }
    const int64_t in = ch + skips.back();
    skips.pop_back();
    m->output_blocks.push_back(
        reader.read(p + "output_blocks." + std::to_string(i) + ".", in, &ch));
  }
  m->out_channels = dim(w, p + "out.2.weight", 0);
  m->out_norm = load_norm(w, p + "out.0", ch);
  m->conv_out = load_conv(w, p + "out.2", ch, m->out_channels, 3);
  if (w.failure()) {
    *failure = w.failure();
    return false;
  }
  if (!skips.empty() || m->input_blocks.empty() || m->context_dim <= 0 ||
      m->model_channels % kGroups != 0) {
    *failure = fail(DIFFUSION_MODEL_CORRUPT,
                    "the UNet's blocks do not fit together (input/output blocks or channels)");
    return false;
  }
  return true;
}

void set_attention_heads(UnetModel* m, const std::map<int64_t, int>& heads) {
  auto apply = [&](UnetBlock& block) {
    for (UnetLayer& layer : block) {
      if (layer.kind != UnetLayer::ATTENTION) continue;
      auto it = heads.find(layer.attention.norm.w->ne[0]);
      if (it != heads.end() && it->second > 0 && layer.attention.norm.w->ne[0] % it->second == 0) {
        layer.attention.heads = it->second;
      }
    }
  };
  for (UnetBlock& block : m->input_blocks) apply(block);
  apply(m->middle);
  for (UnetBlock& block : m->output_blocks) apply(block);
}

namespace {

struct UnetGraph {
  ggml_context* ctx;
  ggml_tensor* emb;      // silu(time embedding) [emb_dim, N]
  ggml_tensor* context;  // [context_dim, T, N]
  AttentionKernel attention;
};

ggml_tensor* res_block(const UnetGraph& g, ggml_tensor* x, const ResBlock& r) {
  ggml_context* ctx = g.ctx;
  ggml_tensor* h = ggml_silu(ctx, group_norm(ctx, x, r.in_norm, kGroupNormEps));
  h = conv2d(ctx, h, r.in_conv);
  ggml_tensor* e = linear(ctx, g.emb, r.emb);  // [out, N]
  h = ggml_add(ctx, h, ggml_reshape_4d(ctx, e, 1, 1, e->ne[0], e->ne[1]));
  h = ggml_silu(ctx, group_norm(ctx, h, r.out_norm, kGroupNormEps));
  h = conv2d(ctx, h, r.out_conv);
  return ggml_add(ctx, r.skip.w ? conv2d(ctx, x, r.skip) : x, h);
}

ggml_tensor* transformer_block(const UnetGraph& g, ggml_tensor* x, const TransformerBlock& t,
                               int heads) {
  ggml_context* ctx = g.ctx;
  ggml_tensor* h = layer_norm(ctx, x, t.norm1, kLayerNormEps);
  h = attention(ctx, linear(ctx, h, t.q1), linear(ctx, h, t.k1), linear(ctx, h, t.v1), heads,
                g.attention);
  x = ggml_add(ctx, x, linear(ctx, h, t.out1));
  h = layer_norm(ctx, x, t.norm2, kLayerNormEps);
  h = attention(ctx, linear(ctx, h, t.q2), linear(ctx, g.context, t.k2),
                linear(ctx, g.context, t.v2), heads, g.attention);
  x = ggml_add(ctx, x, linear(ctx, h, t.out2));
  h = linear(ctx, layer_norm(ctx, x, t.norm3, kLayerNormEps), t.ff_in);
  h = ggml_geglu_erf_swapped(ctx, h);  // first half * gelu(second half), as diffusers' GEGLU
  return ggml_add(ctx, x, linear(ctx, h, t.ff_out));
}

ggml_tensor* spatial_transformer(const UnetGraph& g, ggml_tensor* x, const SpatialTransformer& st) {
  ggml_context* ctx = g.ctx;
  const int64_t w = x->ne[0], h = x->ne[1];
  ggml_tensor* t = image_to_tokens(ctx, group_norm(ctx, x, st.norm, kTransformerGroupNormEps));
  t = linear(ctx, t, st.proj_in);
  for (const TransformerBlock& block : st.blocks) t = transformer_block(g, t, block, st.heads);
  t = linear(ctx, t, st.proj_out);
  return ggml_add(ctx, x, tokens_to_image(ctx, t, w, h));
}

// `skip`: the skip connection the next block concatenates; upsampling meets its size, so that
// latent sides need only be even where SD's own sizes would be (as diffusers does).
ggml_tensor* run_block(const UnetGraph& g, ggml_tensor* x, const UnetBlock& block,
                       const ggml_tensor* skip = nullptr) {
  for (const UnetLayer& layer : block) {
    switch (layer.kind) {
      case UnetLayer::RES: x = res_block(g, x, layer.res); break;
      case UnetLayer::ATTENTION: x = spatial_transformer(g, x, layer.attention); break;
      case UnetLayer::DOWNSAMPLE: x = conv2d(g.ctx, x, layer.conv); break;
      case UnetLayer::UPSAMPLE:
        x = skip ? ggml_interpolate(g.ctx, x, skip->ne[0], skip->ne[1], x->ne[2], x->ne[3],
                                    GGML_SCALE_MODE_NEAREST)
                 : ggml_upscale(g.ctx, x, 2, GGML_SCALE_MODE_NEAREST);
        x = conv2d(g.ctx, x, layer.conv);
        break;
    }
  }
  return x;
}

}  // namespace

namespace {

// SDXL's added conditioning: pooled [P, N] and the numbers [K, N] -> [emb_dim, N].
ggml_tensor* added_embedding(ggml_context* ctx, const UnetModel& m, ggml_tensor* pooled,
                             ggml_tensor* sizes) {
  const int64_t k = sizes->ne[0], n = sizes->ne[1];
  ggml_tensor* e = ggml_timestep_embedding(ctx, ggml_reshape_1d(ctx, sizes, k * n),
                                           kSizeEmbeddingDim, 10000);  // [256, K * N]
  e = ggml_reshape_2d(ctx, e, kSizeEmbeddingDim * k, n);
  e = ggml_concat(ctx, pooled, e, 0);  // [adm_in, N]
  return linear(ctx, ggml_silu(ctx, linear(ctx, e, m.label1)), m.label2);
}

}  // namespace

ggml_tensor* build_unet(ggml_context* ctx, const UnetModel& m, ggml_tensor* x,
                        ggml_tensor* timesteps, ggml_tensor* context, ggml_tensor* pooled,
                        ggml_tensor* sizes, AttentionKernel attention) {
  ggml_tensor* emb =
      ggml_timestep_embedding(ctx, timesteps, static_cast<int>(m.model_channels), 10000);
  emb = linear(ctx, ggml_silu(ctx, linear(ctx, emb, m.time1)), m.time2);
  if (m.adm_in > 0) emb = ggml_add(ctx, emb, added_embedding(ctx, m, pooled, sizes));
  const UnetGraph g{ctx, ggml_silu(ctx, emb), context, attention};
  x = conv2d(ctx, x, m.conv_in);
  std::vector<ggml_tensor*> skips = {x};
  for (const UnetBlock& block : m.input_blocks) {
    x = run_block(g, x, block);
    skips.push_back(x);
  }
  x = run_block(g, x, m.middle);
  for (const UnetBlock& block : m.output_blocks) {
    x = ggml_concat(ctx, x, skips.back(), 2);
    skips.pop_back();
    x = run_block(g, x, block, skips.empty() ? nullptr : skips.back());
  }
  x = ggml_silu(ctx, group_norm(ctx, x, m.out_norm, kGroupNormEps));
  return conv2d(ctx, x, m.conv_out);
}

}  // namespace dcpp
