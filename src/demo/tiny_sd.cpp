// The tensor plan of a Stable Diffusion checkpoint: every tensor under its single-file name
// (CompVis/LDM and OpenCLIP module paths) and its diffusers name (UNet2DConditionModel,
// AutoencoderKL, transformers' CLIPTextModel), written out module by module on both sides.
#include "demo/tiny_sd.h"

#include <filesystem>

namespace allm {

namespace {

class Plan {
 public:
  explicit Plan(SdPart part) : part_(part) {}
  void part(SdPart part) { part_ = part; }
  void add(const std::string& name, const std::string& hf, std::vector<int64_t> shape, SdInit init,
           std::vector<int64_t> hf_shape = {}) {
    tensors.push_back({name, hf.empty() ? std::vector<std::string>{} : std::vector{hf},
                       std::move(shape), std::move(hf_shape), init, part_});
  }
  void linear(const std::string& p, const std::string& h, int64_t in, int64_t out,
              bool bias = true) {
    add(p + ".weight", w(h), {out, in}, SdInit::WEIGHT);
    if (bias) add(p + ".bias", b(h), {out}, SdInit::BIAS);
  }
  void conv(const std::string& p, const std::string& h, int64_t in, int64_t out, int64_t k) {
    add(p + ".weight", w(h), {out, in, k, k}, SdInit::WEIGHT);
    add(p + ".bias", b(h), {out}, SdInit::BIAS);
  }
  // A 1x1 convolution in the single file that diffusers stores as a linear layer.
  void conv_as_linear(const std::string& p, const std::string& h, int64_t ch) {
    add(p + ".weight", w(h), {ch, ch, 1, 1}, SdInit::WEIGHT, {ch, ch});
    add(p + ".bias", b(h), {ch}, SdInit::BIAS);
  }
  void norm(const std::string& p, const std::string& h, int64_t ch) {
    add(p + ".weight", w(h), {ch}, SdInit::NORM);
    add(p + ".bias", b(h), {ch}, SdInit::BIAS);
  }
  std::vector<SdTensor> tensors;

 private:
  static std::string w(const std::string& h) { return h.empty() ? "" : h + ".weight"; }
  static std::string b(const std::string& h) { return h.empty() ? "" : h + ".bias"; }
  SdPart part_;
};

std::string str(int i) {
  return std::to_string(i);
}

// A text encoder's dimensions and where the single file keeps it.
struct ClipShape {
  std::string prefix;  // the single file's, ending with a dot
  int64_t hidden, layers, ff, vocab;
};

// OpenAI CLIP in transformers' names under PREFIX.transformer (SD 1.x; SDXL's first encoder).
void plan_openai_clip(Plan& c, const ClipShape& s) {
  const std::string p = s.prefix + "transformer.text_model.", h = "text_model.";
  const int64_t d = s.hidden;
  c.add(p + "embeddings.token_embedding.weight", h + "embeddings.token_embedding.weight",
        {s.vocab, d}, SdInit::EMBEDDING);
  c.add(p + "embeddings.position_embedding.weight", h + "embeddings.position_embedding.weight",
        {77, d}, SdInit::EMBEDDING);
  c.add(p + "embeddings.position_ids", h + "embeddings.position_ids", {1, 77},
        SdInit::POSITION_IDS);
  for (int i = 0; i < s.layers; ++i) {
    const std::string l = p + "encoder.layers." + str(i) + ".";
    const std::string hl = h + "encoder.layers." + str(i) + ".";
    c.norm(l + "layer_norm1", hl + "layer_norm1", d);
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      c.linear(l + "self_attn." + proj, hl + "self_attn." + proj, d, d);
    }
    c.norm(l + "layer_norm2", hl + "layer_norm2", d);
    c.linear(l + "mlp.fc1", hl + "mlp.fc1", d, s.ff);
    c.linear(l + "mlp.fc2", hl + "mlp.fc2", s.ff, d);
  }
  c.norm(p + "final_layer_norm", h + "final_layer_norm", d);
}

// OpenCLIP names under PREFIX.model, the fused in_proj split in diffusers. SD 2.x: diffusers'
// CLIPTextModel drops the last layer (SD 2.x conditions on the penultimate one) and the unused
// projection. SDXL's ViT-bigG (`projection` > 0): CLIPTextModelWithProjection keeps every layer
// and the projection, stored transposed as a linear.
void plan_openclip(Plan& c, const ClipShape& s, int64_t projection) {
  const std::string p = s.prefix + "model.", h = "text_model.";
  const int64_t d = s.hidden;
  c.add(p + "token_embedding.weight", h + "embeddings.token_embedding.weight", {s.vocab, d},
        SdInit::EMBEDDING);
  c.add(p + "positional_embedding", h + "embeddings.position_embedding.weight", {77, d},
        SdInit::EMBEDDING);
  for (int i = 0; i < s.layers; ++i) {
    const std::string l = p + "transformer.resblocks." + str(i) + ".";
    const bool in_hf = projection > 0 || i + 1 < s.layers;
    const std::string hl = in_hf ? h + "encoder.layers." + str(i) + "." : "";
    auto name = [&](const char* n) { return hl.empty() ? std::string() : hl + n; };
    c.norm(l + "ln_1", name("layer_norm1"), d);
    for (const char* part : {"weight", "bias"}) {
      const bool w = std::string(part) == "weight";
      c.add(l + "attn.in_proj_" + part, "", w ? std::vector<int64_t>{3 * d, d} : std::vector{3 * d},
            w ? SdInit::WEIGHT : SdInit::BIAS);
      if (!hl.empty()) {
        c.tensors.back().hf = {hl + "self_attn.q_proj." + part, hl + "self_attn.k_proj." + part,
                               hl + "self_attn.v_proj." + part};
      }
    }
    c.linear(l + "attn.out_proj", name("self_attn.out_proj"), d, d);
    c.norm(l + "ln_2", name("layer_norm2"), d);
    c.linear(l + "mlp.c_fc", name("mlp.fc1"), d, s.ff);
    c.linear(l + "mlp.c_proj", name("mlp.fc2"), s.ff, d);
  }
  c.norm(p + "ln_final", h + "final_layer_norm", d);
  if (projection > 0) {
    c.add(p + "text_projection", "text_projection.weight", {d, projection}, SdInit::WEIGHT,
          {projection, d});
    c.tensors.back().hf_transposed = true;
  } else {
    c.add(p + "text_projection", "", {d, d}, SdInit::WEIGHT);  // unused by Stable Diffusion
  }
}

void plan_res(Plan& c, const std::string& p, const std::string& h, int64_t in, int64_t out,
              int64_t emb) {
  c.norm(p + "in_layers.0", h + "norm1", in);
  c.conv(p + "in_layers.2", h + "conv1", in, out, 3);
  c.linear(p + "emb_layers.1", h + "time_emb_proj", emb, out);
  c.norm(p + "out_layers.0", h + "norm2", out);
  c.conv(p + "out_layers.3", h + "conv2", out, out, 3);
  if (in != out) c.conv(p + "skip_connection", h + "conv_shortcut", in, out, 1);
}

// The names inside a transformer are the same in both layouts.
void plan_transformer(Plan& c, const std::string& p, const std::string& h, int64_t ch, int64_t ctx,
                      bool linear_proj, int depth) {
  c.norm(p + "norm", h + "norm", ch);
  auto proj = [&](const char* name) {
    if (linear_proj) {
      c.linear(p + name, h + name, ch, ch);
    } else {
      c.conv(p + name, h + name, ch, ch, 1);
    }
  };
  proj("proj_in");
  for (int k = 0; k < depth; ++k) {
    const std::string b = "transformer_blocks." + str(k) + ".";
    for (int i = 1; i <= 3; ++i) c.norm(p + b + "norm" + str(i), h + b + "norm" + str(i), ch);
    for (const std::string attn : {"attn1", "attn2"}) {
      const int64_t kv_in = attn == "attn1" ? ch : ctx;
      const std::string a = b + attn;
      c.linear(p + a + ".to_q", h + a + ".to_q", ch, ch, false);
      c.linear(p + a + ".to_k", h + a + ".to_k", kv_in, ch, false);
      c.linear(p + a + ".to_v", h + a + ".to_v", kv_in, ch, false);
      c.linear(p + a + ".to_out.0", h + a + ".to_out.0", ch, ch);
    }
    c.linear(p + b + "ff.net.0.proj", h + b + "ff.net.0.proj", ch, ch * 8);  // GEGLU: 2 x 4ch
    c.linear(p + b + "ff.net.2", h + b + "ff.net.2", ch * 4, ch);
  }
  proj("proj_out");
}

// The LDM UNet's block numbering (input_blocks with conv_in first, middle_block, output_blocks)
// beside diffusers' (down_blocks.L.resnets.R, mid_block, up_blocks from the deepest level).
void plan_unet(Plan& c, const TinySdSpec& s) {
  const std::string p = "model.diffusion_model.";
  const int64_t mc = s.model_channels, emb = mc * 4;
  const int64_t ctx = s.clip_hidden + (s.sdxl ? s.clip2_hidden : 0);
  const bool linear_proj = s.sd2 || s.sdxl;
  const int levels = static_cast<int>(s.channel_mult.size());
  c.linear(p + "time_embed.0", "time_embedding.linear_1", mc, emb);
  c.linear(p + "time_embed.2", "time_embedding.linear_2", emb, emb);
  if (s.sdxl) {  // the pooled text and six 256-wide size embeddings
    c.linear(p + "label_emb.0.0", "add_embedding.linear_1", s.clip2_projection + 6 * 256, emb);
    c.linear(p + "label_emb.0.2", "add_embedding.linear_2", emb, emb);
  }
  c.conv(p + "input_blocks.0.0", "conv_in", s.inpainting ? 9 : 4, mc, 3);
  std::vector<int64_t> skips = {mc};
  int64_t ch = mc;
  int index = 1;
  for (int l = 0; l < levels; ++l) {
    const std::string down = "down_blocks." + str(l) + ".";
    for (int r = 0; r < s.res_blocks; ++r, ++index) {
      const std::string b = p + "input_blocks." + str(index) + ".";
      plan_res(c, b + "0.", down + "resnets." + str(r) + ".", ch, mc * s.channel_mult[l], emb);
      ch = mc * s.channel_mult[l];
      if (s.attention[l]) {
        plan_transformer(c, b + "1.", down + "attentions." + str(r) + ".", ch, ctx, linear_proj,
                         s.transformer_depth[l]);
      }
      skips.push_back(ch);
    }
    if (l + 1 < levels) {
      c.conv(p + "input_blocks." + str(index++) + ".0.op", down + "downsamplers.0.conv", ch, ch, 3);
      skips.push_back(ch);
    }
  }
  plan_res(c, p + "middle_block.0.", "mid_block.resnets.0.", ch, ch, emb);
  plan_transformer(c, p + "middle_block.1.", "mid_block.attentions.0.", ch, ctx, linear_proj,
                   s.transformer_depth.back());
  plan_res(c, p + "middle_block.2.", "mid_block.resnets.1.", ch, ch, emb);
  index = 0;
  for (int l = levels - 1; l >= 0; --l) {
    const std::string up = "up_blocks." + str(levels - 1 - l) + ".";
    for (int r = 0; r <= s.res_blocks; ++r, ++index) {
      const std::string b = p + "output_blocks." + str(index) + ".";
      const int64_t out = mc * s.channel_mult[l];
      plan_res(c, b + "0.", up + "resnets." + str(r) + ".", ch + skips.back(), out, emb);
      skips.pop_back();
      ch = out;
      int next = 1;
      if (s.attention[l]) {
        plan_transformer(c, b + str(next++) + ".", up + "attentions." + str(r) + ".", ch, ctx,
                         linear_proj, s.transformer_depth[l]);
      }
      if (l > 0 && r == s.res_blocks) {
        c.conv(b + str(next) + ".conv", up + "upsamplers.0.conv", ch, ch, 3);
      }
    }
  }
  c.norm(p + "out.0", "conv_norm_out", ch);
  c.conv(p + "out.2", "conv_out", ch, 4, 3);
}

void plan_vae_block(Plan& c, const std::string& p, const std::string& h, int64_t in, int64_t out) {
  c.norm(p + "norm1", h + "norm1", in);
  c.conv(p + "conv1", h + "conv1", in, out, 3);
  c.norm(p + "norm2", h + "norm2", out);
  c.conv(p + "conv2", h + "conv2", out, out, 3);
  if (in != out) c.conv(p + "nin_shortcut", h + "conv_shortcut", in, out, 1);
}

// The mid block: diffusers stores the attention's 1x1 convolutions as linears (to_q, ...).
void plan_vae_mid(Plan& c, const std::string& p, const std::string& h, int64_t ch) {
  plan_vae_block(c, p + "mid.block_1.", h + "mid_block.resnets.0.", ch, ch);
  c.norm(p + "mid.attn_1.norm", h + "mid_block.attentions.0.group_norm", ch);
  const std::string a = h + "mid_block.attentions.0.";
  for (const auto& [ldm, hf] : {std::pair{"q", "to_q"}, std::pair{"k", "to_k"},
                                std::pair{"v", "to_v"}, std::pair{"proj_out", "to_out.0"}}) {
    c.conv_as_linear(p + "mid.attn_1." + ldm, a + hf, ch);
  }
  plan_vae_block(c, p + "mid.block_2.", h + "mid_block.resnets.1.", ch, ch);
}

void plan_vae_decoder(Plan& c, const TinySdSpec& s) {
  const std::string p = "first_stage_model.decoder.", h = "decoder.";
  const int levels = static_cast<int>(s.vae_mult.size());
  int64_t ch = s.vae_channels * s.vae_mult.back();
  c.conv("first_stage_model.post_quant_conv", "post_quant_conv", 4, 4, 1);
  c.conv(p + "conv_in", h + "conv_in", 4, ch, 3);
  plan_vae_mid(c, p, h, ch);
  for (int l = levels - 1; l >= 0; --l) {
    const std::string u = p + "up." + str(l) + ".", hu = h + "up_blocks." + str(levels - 1 - l);
    const int64_t out = s.vae_channels * s.vae_mult[l];
    for (int j = 0; j <= s.vae_res_blocks; ++j) {
      plan_vae_block(c, u + "block." + str(j) + ".", hu + ".resnets." + str(j) + ".", ch, out);
      ch = out;
    }
    if (l > 0) c.conv(u + "upsample.conv", hu + ".upsamplers.0.conv", ch, ch, 3);
  }
  c.norm(p + "norm_out", h + "conv_norm_out", ch);
  c.conv(p + "conv_out", h + "conv_out", ch, 3, 3);
}

void plan_vae_encoder(Plan& c, const TinySdSpec& s) {
  const std::string p = "first_stage_model.encoder.", h = "encoder.";
  const int levels = static_cast<int>(s.vae_mult.size());
  int64_t ch = s.vae_channels;
  c.conv(p + "conv_in", h + "conv_in", 3, ch, 3);
  for (int l = 0; l < levels; ++l) {
    const std::string d = p + "down." + str(l) + ".", hd = h + "down_blocks." + str(l) + ".";
    const int64_t out = s.vae_channels * s.vae_mult[l];
    for (int j = 0; j < s.vae_res_blocks; ++j) {
      plan_vae_block(c, d + "block." + str(j) + ".", hd + "resnets." + str(j) + ".", ch, out);
      ch = out;
    }
    if (l + 1 < levels) c.conv(d + "downsample.conv", hd + "downsamplers.0.conv", ch, ch, 3);
  }
  plan_vae_mid(c, p, h, ch);
  c.norm(p + "norm_out", h + "conv_norm_out", ch);
  c.conv(p + "conv_out", h + "conv_out", ch, 8, 3);  // mean and log-variance of 4 channels
  c.conv("first_stage_model.quant_conv", "quant_conv", 8, 8, 1);
}

}  // namespace

TinySdSpec sd15_dimensions() {
  TinySdSpec s;
  s.model_channels = 320;
  s.channel_mult = {1, 2, 4, 4};
  s.attention = {true, true, true, false};
  s.res_blocks = 2;
  s.clip_hidden = 768;
  s.clip_layers = 12;
  s.clip_ff = 3072;
  s.clip_vocab = 49408;
  s.vae_channels = 128;
  s.vae_mult = {1, 2, 4, 4};
  s.vae_res_blocks = 2;
  s.weights = SdWeightType::F16;
  return s;
}

TinySdSpec sdxl_dimensions() {
  TinySdSpec s = sd15_dimensions();
  s.sdxl = true;
  s.channel_mult = {1, 2, 4};
  s.attention = {false, true, true};
  s.transformer_depth = {0, 2, 10};
  s.clip2_hidden = 1280;
  s.clip2_layers = 32;
  s.clip2_ff = 5120;
  s.clip2_projection = 1280;
  return s;
}

TinySdSpec tiny_sd2() {
  TinySdSpec s;
  s.sd2 = true;
  s.model_channels = 64;
  s.clip_layers = 3;  // diffusers keeps 2
  return s;
}

TinySdSpec tiny_sdxl() {
  TinySdSpec s;
  s.sdxl = true;
  s.model_channels = 64;
  s.channel_mult = {1, 1, 2};
  s.attention = {false, true, true};
  s.transformer_depth = {0, 1, 2};  // SDXL: 0, 2, 10
  s.res_blocks = 2;
  s.clip_hidden = 64;
  s.clip_layers = 3;          // clip_skip 2 still leaves one layer of the penultimate's two
  s.vae_mult = {1, 1, 1, 1};  // 32 channels throughout: 1024x1024, SDXL's default, decodes fast
  return s;
}

bool write_tiny_sd(const std::string& dir, const TinySdSpec& spec, std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "tokenizer", ec);
  int vocab = 0;
  if (!write_sd_tokenizer(dir + "/tokenizer", spec.sd2, &vocab, error)) return false;
  if (spec.sdxl && spec.layout == SdLayout::DIFFUSERS) {  // the same vocabulary, padded with "!"
    fs::create_directories(fs::path(dir) / "tokenizer_2", ec);
    if (!write_sd_tokenizer(dir + "/tokenizer_2", true, &vocab, error)) return false;
  }
  if (spec.clip_vocab > 0) vocab = std::max(vocab, spec.clip_vocab);
  Plan plan(SdPart::TEXT);
  if (spec.sdxl) {
    plan_openai_clip(plan, {"conditioner.embedders.0.", spec.clip_hidden, spec.clip_layers,
                            spec.clip_ff, vocab});
    plan.part(SdPart::TEXT_2);
    plan_openclip(
        plan,
        {"conditioner.embedders.1.", spec.clip2_hidden, spec.clip2_layers, spec.clip2_ff, vocab},
        spec.clip2_projection);
  } else if (spec.sd2) {
    plan_openclip(
        plan, {"cond_stage_model.", spec.clip_hidden, spec.clip_layers, spec.clip_ff, vocab}, 0);
  } else {
    plan_openai_clip(
        plan, {"cond_stage_model.", spec.clip_hidden, spec.clip_layers, spec.clip_ff, vocab});
  }
  plan.part(SdPart::UNET);
  plan_unet(plan, spec);
  plan.part(SdPart::VAE);
  plan_vae_decoder(plan, spec);
  if (spec.vae_encoder) plan_vae_encoder(plan, spec);
  return write_sd_weights(dir, plan.tensors, spec, error) &&
         write_sd_configs(dir, spec, vocab, error);
}

}  // namespace allm
