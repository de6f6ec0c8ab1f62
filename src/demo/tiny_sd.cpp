#include "demo/tiny_sd.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include "ggml.h"
#include "nlohmann/json.hpp"

namespace allm {

namespace fs = std::filesystem;

namespace {

// How a tensor's random values are drawn.
enum class Init { WEIGHT, NORM, BIAS, EMBEDDING };

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  Init init;
};

class CheckpointPlan {
 public:
  void weight(const std::string& name, std::vector<int64_t> shape) {
    tensors.push_back({name, std::move(shape), Init::WEIGHT});
  }
  void linear(const std::string& p, int64_t in, int64_t out, bool bias = true) {
    weight(p + ".weight", {out, in});
    if (bias) tensors.push_back({p + ".bias", {out}, Init::BIAS});
  }
  void conv(const std::string& p, int64_t in, int64_t out, int64_t k) {
    weight(p + ".weight", {out, in, k, k});
    tensors.push_back({p + ".bias", {out}, Init::BIAS});
  }
  void norm(const std::string& p, int64_t channels) {
    tensors.push_back({p + ".weight", {channels}, Init::NORM});
    tensors.push_back({p + ".bias", {channels}, Init::BIAS});
  }
  std::vector<TensorSpec> tensors;
};

void plan_clip(CheckpointPlan& c, const TinySdSpec& s, int vocab) {
  const std::string p = "cond_stage_model.transformer.text_model.";
  const int64_t d = s.clip_hidden;
  c.tensors.push_back({p + "embeddings.token_embedding.weight", {vocab, d}, Init::EMBEDDING});
  c.tensors.push_back({p + "embeddings.position_embedding.weight", {77, d}, Init::EMBEDDING});
  for (int i = 0; i < s.clip_layers; ++i) {
    const std::string l = p + "encoder.layers." + std::to_string(i) + ".";
    c.norm(l + "layer_norm1", d);
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      c.linear(l + "self_attn." + proj, d, d);
    }
    c.norm(l + "layer_norm2", d);
    c.linear(l + "mlp.fc1", d, s.clip_ff);
    c.linear(l + "mlp.fc2", s.clip_ff, d);
  }
  c.norm(p + "final_layer_norm", d);
}

void plan_res(CheckpointPlan& c, const std::string& p, int64_t in, int64_t out, int64_t emb) {
  c.norm(p + "in_layers.0", in);
  c.conv(p + "in_layers.2", in, out, 3);
  c.linear(p + "emb_layers.1", emb, out);
  c.norm(p + "out_layers.0", out);
  c.conv(p + "out_layers.3", out, out, 3);
  if (in != out) c.conv(p + "skip_connection", in, out, 1);
}

void plan_transformer(CheckpointPlan& c, const std::string& p, int64_t ch, int64_t ctx) {
  c.norm(p + "norm", ch);
  c.conv(p + "proj_in", ch, ch, 1);
  const std::string b = p + "transformer_blocks.0.";
  for (int i = 1; i <= 3; ++i) c.norm(b + "norm" + std::to_string(i), ch);
  for (const char* attn : {"attn1", "attn2"}) {
    const int64_t kv_in = std::string(attn) == "attn1" ? ch : ctx;
    c.linear(b + attn + ".to_q", ch, ch, false);
    c.linear(b + attn + ".to_k", kv_in, ch, false);
    c.linear(b + attn + ".to_v", kv_in, ch, false);
    c.linear(b + attn + ".to_out.0", ch, ch);
  }
  c.linear(b + "ff.net.0.proj", ch, ch * 8);  // GEGLU: 2 x (4 x ch)
  c.linear(b + "ff.net.2", ch * 4, ch);
  c.conv(p + "proj_out", ch, ch, 1);
}

// The LDM UNet's block numbering: input_blocks (conv_in first), middle_block, output_blocks.
void plan_unet(CheckpointPlan& c, const TinySdSpec& s) {
  const std::string p = "model.diffusion_model.";
  const int64_t mc = s.model_channels, emb = mc * 4, ctx = s.clip_hidden;
  const int levels = static_cast<int>(s.channel_mult.size());
  c.linear(p + "time_embed.0", mc, emb);
  c.linear(p + "time_embed.2", emb, emb);
  c.conv(p + "input_blocks.0.0", 4, mc, 3);
  std::vector<int64_t> skips = {mc};
  int64_t ch = mc;
  int index = 1;
  for (int l = 0; l < levels; ++l) {
    for (int r = 0; r < s.res_blocks; ++r, ++index) {
      const std::string b = p + "input_blocks." + std::to_string(index) + ".";
      plan_res(c, b + "0.", ch, mc * s.channel_mult[l], emb);
      ch = mc * s.channel_mult[l];
      if (s.attention[l]) plan_transformer(c, b + "1.", ch, ctx);
      skips.push_back(ch);
    }
    if (l + 1 < levels) {
      c.conv(p + "input_blocks." + std::to_string(index++) + ".0.op", ch, ch, 3);
      skips.push_back(ch);
    }
  }
  plan_res(c, p + "middle_block.0.", ch, ch, emb);
  plan_transformer(c, p + "middle_block.1.", ch, ctx);
  plan_res(c, p + "middle_block.2.", ch, ch, emb);
  index = 0;
  for (int l = levels - 1; l >= 0; --l) {
    for (int r = 0; r <= s.res_blocks; ++r, ++index) {
      const std::string b = p + "output_blocks." + std::to_string(index) + ".";
      const int64_t out = mc * s.channel_mult[l];
      plan_res(c, b + "0.", ch + skips.back(), out, emb);
      skips.pop_back();
      ch = out;
      int next = 1;
      if (s.attention[l]) plan_transformer(c, b + std::to_string(next++) + ".", ch, ctx);
      if (l > 0 && r == s.res_blocks) c.conv(b + std::to_string(next) + ".conv", ch, ch, 3);
    }
  }
  c.norm(p + "out.0", ch);
  c.conv(p + "out.2", ch, 4, 3);
}

void plan_vae_block(CheckpointPlan& c, const std::string& p, int64_t in, int64_t out) {
  c.norm(p + "norm1", in);
  c.conv(p + "conv1", in, out, 3);
  c.norm(p + "norm2", out);
  c.conv(p + "conv2", out, out, 3);
  if (in != out) c.conv(p + "nin_shortcut", in, out, 1);
}

void plan_vae_decoder(CheckpointPlan& c, const TinySdSpec& s) {
  const std::string p = "first_stage_model.decoder.";
  const int levels = static_cast<int>(s.vae_mult.size());
  int64_t ch = s.vae_channels * s.vae_mult.back();
  c.conv("first_stage_model.post_quant_conv", 4, 4, 1);
  c.conv(p + "conv_in", 4, ch, 3);
  plan_vae_block(c, p + "mid.block_1.", ch, ch);
  c.norm(p + "mid.attn_1.norm", ch);
  for (const char* name : {"q", "k", "v", "proj_out"}) c.conv(p + "mid.attn_1." + name, ch, ch, 1);
  plan_vae_block(c, p + "mid.block_2.", ch, ch);
  for (int l = levels - 1; l >= 0; --l) {
    const std::string u = p + "up." + std::to_string(l) + ".";
    const int64_t out = s.vae_channels * s.vae_mult[l];
    for (int j = 0; j <= s.vae_res_blocks; ++j) {
      plan_vae_block(c, u + "block." + std::to_string(j) + ".", ch, out);
      ch = out;
    }
    if (l > 0) c.conv(u + "upsample.conv", ch, ch, 3);
  }
  c.norm(p + "norm_out", ch);
  c.conv(p + "conv_out", ch, 3, 3);
}

// --- the tokenizer: CLIP's byte alphabet, each byte also as a word end, a few merges.

std::string utf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

std::vector<std::string> byte_alphabet() {
  std::vector<std::string> out;
  int next = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    out.push_back(utf8(printable ? b : 256 + next++));
  }
  return out;
}

const std::vector<std::pair<std::string, std::string>> kMerges = {
    {"t", "h"}, {"th", "e</w>"}, {"a", "n"}, {"an", "d</w>"}, {"c", "a"},       {"ca", "t</w>"},
    {"d", "o"}, {"do", "g</w>"}, {"r", "e"}, {"e", "d</w>"},  {"o", "f</w>"},   {"i", "n"},
    {"s", "t"}, {"p", "h"},      {"o", "t"}, {"ph", "ot"},    {"phot", "o</w>"}};

bool write_tokenizer(const fs::path& dir, int* vocab_size, std::string* error) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  const std::vector<std::string> alphabet = byte_alphabet();
  for (const std::string& c : alphabet) vocab[c] = static_cast<int>(vocab.size());
  for (const std::string& c : alphabet) vocab[c + "</w>"] = static_cast<int>(vocab.size());
  std::ofstream merges(dir / "merges.txt");
  merges << "#version: 0.2\n";
  for (const auto& [a, b] : kMerges) {
    merges << a << ' ' << b << '\n';
    if (!vocab.contains(a + b)) vocab[a + b] = static_cast<int>(vocab.size());
  }
  vocab["<|startoftext|>"] = static_cast<int>(vocab.size());
  vocab["<|endoftext|>"] = static_cast<int>(vocab.size());
  std::ofstream vocab_file(dir / "vocab.json");
  vocab_file << vocab.dump();
  *vocab_size = static_cast<int>(vocab.size());
  if (!merges || !vocab_file) {
    *error = "cannot write the tokenizer files in " + dir.string();
    return false;
  }
  return true;
}

// --- the safetensors file: 8-byte header length, JSON header, data.

int64_t elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool stored_f16(const TensorSpec& t, bool f16) {
  return f16 && t.shape.size() >= 2 && t.init != Init::EMBEDDING;
}

std::vector<float> random_values(const TensorSpec& t, std::mt19937_64& rng) {
  std::vector<float> v(elements(t.shape));
  const int64_t fan_in = t.shape.size() >= 2 ? elements(t.shape) / t.shape[0] : 1;
  const double bound = t.init == Init::WEIGHT      ? std::sqrt(3.0 / fan_in)
                       : t.init == Init::EMBEDDING ? 0.5
                                                   : 0.1;
  std::uniform_real_distribution<double> u(-bound, bound);
  for (float& x : v) x = static_cast<float>(u(rng) + (t.init == Init::NORM ? 1.0 : 0.0));
  return v;
}

bool write_safetensors(const fs::path& path, const std::vector<TensorSpec>& tensors,
                       const TinySdSpec& s, std::string* error) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  size_t offset = 0;
  for (const TensorSpec& t : tensors) {
    const size_t bytes = elements(t.shape) * (stored_f16(t, s.f16) ? 2 : 4);
    header[t.name] = {{"dtype", stored_f16(t, s.f16) ? "F16" : "F32"},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!file) {
    *error = "cannot create " + path.string();
    return false;
  }
  const uint64_t length = text.size();
  bool ok = std::fwrite(&length, 8, 1, file.get()) == 1 &&
            std::fwrite(text.data(), 1, text.size(), file.get()) == text.size();
  std::mt19937_64 rng(s.seed);
  for (const TensorSpec& t : tensors) {
    std::vector<float> values = random_values(t, rng);
    if (stored_f16(t, s.f16)) {
      std::vector<ggml_fp16_t> half(values.size());
      ggml_fp32_to_fp16_row(values.data(), half.data(), static_cast<int64_t>(values.size()));
      ok = ok && std::fwrite(half.data(), 2, half.size(), file.get()) == half.size();
    } else {
      ok = ok && std::fwrite(values.data(), 4, values.size(), file.get()) == values.size();
    }
  }
  if (!ok) *error = "cannot write " + path.string();
  return ok;
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
  s.f16 = true;
  return s;
}

bool write_tiny_sd(const std::string& dir, const TinySdSpec& spec, std::string* error) {
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "tokenizer", ec);
  int vocab = 0;
  if (!write_tokenizer(fs::path(dir) / "tokenizer", &vocab, error)) return false;
  if (spec.clip_vocab > 0) vocab = std::max(vocab, spec.clip_vocab);
  CheckpointPlan plan;
  plan_clip(plan, spec, vocab);
  plan_unet(plan, spec);
  plan_vae_decoder(plan, spec);
  return write_safetensors(fs::path(dir) / "model.safetensors", plan.tensors, spec, error);
}

}  // namespace allm
