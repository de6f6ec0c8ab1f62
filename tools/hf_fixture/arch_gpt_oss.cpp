// gpt-oss fixtures: biased attention with sinks, alternating sliding-window and full layers, YaRN
// rope, and a mixture of experts whose weights are MXFP4 (U8 blocks + scales in the checkpoint,
// ggml MXFP4 in the GGUF, the same codes and exponents in both).
#include "hf_fixture/arch_gpt_oss.h"

#include <cmath>
#include <cstring>
#include <random>

#include "gguf.h"
#include "hf_fixture/families.h"
#include "hf_fixture/gguf_export.h"

namespace allm::fixture {

namespace {

constexpr int kBlockValues = 32, kHfBlockBytes = 16;
// Small enough that the parity prompt and its decode steps cross the window.
constexpr int kSlidingWindow = 8;

void set_spec(ModelSpec* s, Arch) {
  s->model_type = "gpt_oss", s->hf_architecture = "GptOssForCausalLM", s->gguf_arch = "gpt-oss";
  s->config_has_head_dim = true;
  s->hidden = 64, s->intermediate = 64;  // MXFP4 rows hold whole blocks of 32
  s->heads = 4, s->kv_heads = 2, s->head_dim = 16;
  s->experts = 4, s->experts_used = 2;
  s->sliding_window = kSlidingWindow;
  s->rms_norm_eps = 1e-5, s->rope_theta = 150000.0, s->max_position_embeddings = 131072;
  s->yarn_rope = YarnRopeScaling{32.0, 4096, /*truncate=*/false};
}

std::vector<TensorDesc> layer_tensors(const ModelSpec& s, int layer) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  const int64_t h = s.hidden, q = int64_t{s.heads} * s.head_dim;
  const int64_t kv = int64_t{s.kv_heads} * s.head_dim, ff = s.intermediate, n = s.experts;
  return {{p + "input_layernorm.weight", {h}},
          {p + "self_attn.q_proj.weight", {q, h}},
          {p + "self_attn.q_proj.bias", {q}},
          {p + "self_attn.k_proj.weight", {kv, h}},
          {p + "self_attn.k_proj.bias", {kv}},
          {p + "self_attn.v_proj.weight", {kv, h}},
          {p + "self_attn.v_proj.bias", {kv}},
          {p + "self_attn.o_proj.weight", {h, q}},
          {p + "self_attn.o_proj.bias", {h}},
          {p + "self_attn.sinks", {s.heads}},
          {p + "post_attention_layernorm.weight", {h}},
          {p + "mlp.router.weight", {n, h}},
          {p + "mlp.router.bias", {n}},
          {p + "mlp.experts.gate_up_proj_bias", {n, 2 * ff}},
          {p + "mlp.experts.down_proj_bias", {n, h}}};
}

std::vector<TensorDesc> final_norm_tensors(const ModelSpec& s) {
  return {{"model.norm.weight", {s.hidden}}};
}

void adjust_config(const ModelSpec& s, nlohmann::ordered_json* c) {
  (*c)["attention_bias"] = true;
  (*c)["num_local_experts"] = s.experts;
  (*c)["num_experts_per_tok"] = s.experts_used;
  (*c)["experts_per_token"] = s.experts_used;
  (*c)["sliding_window"] = s.sliding_window;
  nlohmann::ordered_json types = nlohmann::ordered_json::array();
  for (int l = 0; l < s.layers; ++l)
    types.push_back(l % 2 == 0 ? "sliding_attention" : "full_attention");
  (*c)["layer_types"] = types;
  (*c)["swiglu_limit"] = 7.0;
  (*c)["initial_context_length"] = s.yarn_rope->original_max_position_embeddings;
  (*c)["quantization_config"] = {
      {"modules_to_not_convert",
       {"model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"}},
      {"quant_method", "mxfp4"}};
}

void write_hparams(gguf_context* g, const ModelSpec& s) {
  const std::string a = s.gguf_arch + ".";
  gguf_set_val_u32(g, (a + "expert_count").c_str(), s.experts);
  gguf_set_val_u32(g, (a + "expert_used_count").c_str(), s.experts_used);
  gguf_set_val_u32(g, (a + "expert_feed_forward_length").c_str(), s.intermediate);
  gguf_set_val_u32(g, (a + "attention.sliding_window").c_str(), s.sliding_window);
}

// gpt-oss's post_attention_layernorm is the MoE's pre-norm, which llama.cpp's gpt-oss names
// post_attention_norm; the rest follows gguf-py's tensor map.
std::string gguf_name(const ModelSpec&, const std::string& hf_name) {
  static const std::pair<std::string, std::string> kNames[] = {
      {".post_attention_layernorm.weight", ".post_attention_norm.weight"},
      {".self_attn.o_proj.bias", ".attn_output.bias"},
      {".self_attn.sinks", ".attn_sinks.weight"},
      {".mlp.router.weight", ".ffn_gate_inp.weight"},
      {".mlp.router.bias", ".ffn_gate_inp.bias"},
  };
  for (const auto& [hf, gguf] : kNames) {
    const size_t at = hf_name.rfind(hf);
    if (at == std::string::npos || at + hf.size() != hf_name.size()) continue;
    const std::string block = gguf_tensor_name(hf_name.substr(0, at) + ".input_layernorm.weight");
    return block.substr(0, block.size() - std::string(".attn_norm.weight").size()) + gguf;
  }
  return gguf_tensor_name(hf_name);
}

// "model.layers.N.<suffix>" → "blk.N."
std::string gguf_block(const std::string& hf_name) {
  const std::string layer = hf_name.substr(0, hf_name.find(".mlp."));
  const std::string name = gguf_tensor_name(layer + ".input_layernorm.weight");
  return name.substr(0, name.size() - std::string("attn_norm.weight").size());
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Random bytes of FP4 codes, and exponents around the one giving weights of RMS 1/sqrt(fan_in)
// (the FP4 values' own RMS is about 2.9).
Tensor random_blocks(const std::string& name, int64_t experts, int64_t rows, int64_t in,
                     std::mt19937_64* rng) {
  Tensor t{name + "_blocks", {experts, rows, in / kBlockValues, kHfBlockBytes}, {}, {}};
  t.raw.resize(static_cast<size_t>(experts * rows * in / 2));
  for (size_t i = 0; i < t.raw.size(); i += 8) {
    const uint64_t bits = (*rng)();
    std::memcpy(t.raw.data() + i, &bits, std::min<size_t>(8, t.raw.size() - i));
  }
  return t;
}

Tensor random_scales(const std::string& name, int64_t experts, int64_t rows, int64_t in,
                     std::mt19937_64* rng) {
  Tensor t{name + "_scales", {experts, rows, in / kBlockValues}, {}, {}};
  const int exponent = 127 + static_cast<int>(std::lround(std::log2(1.0 / (2.9 * std::sqrt(in)))));
  std::uniform_int_distribution<int> jitter(-1, 0);
  t.raw.resize(static_cast<size_t>(experts * rows * (in / kBlockValues)));
  for (uint8_t& e : t.raw) e = static_cast<uint8_t>(exponent + jitter(*rng));
  return t;
}

// llama.cpp's GptOssModel.transform_nibble_layout for one 16-byte block: Hugging Face packs
// elements (2i, 2i + 1) into byte i's (low, high) nibbles, ggml elements (j, j + 16) into byte j's.
void transform_nibble_layout(const uint8_t* hf, uint8_t* out) {
  uint8_t swapped[16];
  for (int i = 0; i < 16; ++i) swapped[i] = static_cast<uint8_t>((hf[i] << 4) | (hf[i] >> 4));
  for (int i = 0; i < 8; ++i) {
    const uint8_t a = swapped[i], b = swapped[8 + i];
    const uint8_t a0 = a & 0xF0, a1 = static_cast<uint8_t>(a << 4);  // blk_a: elements in high
    const uint8_t b0 = b >> 4, b1 = b & 0x0F;                        // blk_b: elements in low
    const uint8_t o0 = a0 | b0, o1 = a1 | b1;
    out[2 * i] = static_cast<uint8_t>((o0 >> 4) | (o0 << 4));  // "swap once more"
    out[2 * i + 1] = static_cast<uint8_t>((o1 >> 4) | (o1 << 4));
  }
}

// repack_mxfp4: concatenates each block's scale and transformed codes ([..., blocks, 17]).
std::vector<uint8_t> repack_mxfp4(const Tensor& blocks, const Tensor& scales, int64_t first_row,
                                  int64_t row_step) {
  const int64_t experts = blocks.shape[0], rows = blocks.shape[1], n_blocks = blocks.shape[2];
  std::vector<uint8_t> out;
  for (int64_t e = 0; e < experts; ++e) {
    for (int64_t r = first_row; r < rows; r += row_step) {
      for (int64_t b = 0; b < n_blocks; ++b) {
        const int64_t block = (e * rows + r) * n_blocks + b;
        uint8_t ggml_block[1 + kHfBlockBytes];
        ggml_block[0] = scales.raw[block];
        transform_nibble_layout(&blocks.raw[block * kHfBlockBytes], ggml_block + 1);
        out.insert(out.end(), ggml_block, ggml_block + sizeof(ggml_block));
      }
    }
  }
  return out;
}

const Tensor& find_tensor(const Fixture& f, const std::string& name) {
  for (const Tensor& t : f.tensors) {
    if (t.name == name) return t;
  }
  static const Tensor none;
  return none;
}

void add_tensor(gguf_context* g, ggml_tensor* t, const std::string& name, const void* data) {
  ggml_set_name(t, name.c_str());
  std::memcpy(t->data, data, ggml_nbytes(t));
  gguf_add_tensor(g, t);
}

// An expert matrix as MXFP4 [in, out, experts], from rows first_row, first_row + step, ...
void add_expert_matrix(ggml_context* ctx, gguf_context* g, const Fixture& f,
                       const std::string& hf_base, const std::string& gguf_name, int64_t first_row,
                       int64_t row_step) {
  const Tensor& blocks = find_tensor(f, hf_base + "_blocks");
  const Tensor& scales = find_tensor(f, hf_base + "_scales");
  const int64_t in = blocks.shape[2] * kBlockValues, out = blocks.shape[1] / row_step;
  const std::vector<uint8_t> data = repack_mxfp4(blocks, scales, first_row, row_step);
  add_tensor(g, ggml_new_tensor_3d(ctx, GGML_TYPE_MXFP4, in, out, blocks.shape[0]), gguf_name,
             data.data());
}

// Columns first, first + step, ... of a [rows, cols] F32 tensor, as ggml [cols / step, rows].
void add_strided_columns(ggml_context* ctx, gguf_context* g, const Tensor& t,
                         const std::string& name, int64_t first, int64_t step) {
  const int64_t rows = t.shape[0], cols = t.shape[1];
  std::vector<float> out;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = first; c < cols; c += step) out.push_back(t.values[r * cols + c]);
  }
  add_tensor(g, ggml_new_tensor_2d(ctx, GGML_TYPE_F32, cols / step, rows), name, out.data());
}

}  // namespace

const Family kGptOssFamily = {set_spec,      layer_tensors, final_norm_tensors,
                              adjust_config, write_hparams, gguf_name};

void scale_gpt_oss_to_bench(ModelSpec* s) {
  s->hidden = 2880, s->intermediate = 2880;
  s->heads = 64, s->kv_heads = 8, s->head_dim = 64;
  s->experts = 32, s->experts_used = 4;
  s->layers = 2;
  s->sliding_window = 128;
  s->vocab_size = 32000;
}

std::vector<Tensor> gpt_oss_expert_blocks(const ModelSpec& s, uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x6f7373ull);
  std::vector<Tensor> out;
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".mlp.experts.";
    out.push_back(random_blocks(p + "gate_up_proj", s.experts, 2 * s.intermediate, s.hidden, &rng));
    out.push_back(random_scales(p + "gate_up_proj", s.experts, 2 * s.intermediate, s.hidden, &rng));
    out.push_back(random_blocks(p + "down_proj", s.experts, s.hidden, s.intermediate, &rng));
    out.push_back(random_scales(p + "down_proj", s.experts, s.hidden, s.intermediate, &rng));
  }
  return out;
}

bool add_gpt_oss_gguf_tensors(ggml_context* ctx, gguf_context* g, const Fixture& f,
                              const Tensor& t) {
  const std::string& n = t.name;
  if (ends_with(n, "_scales")) return true;  // written with their blocks
  if (ends_with(n, ".mlp.experts.gate_up_proj_blocks")) {
    const std::string base = n.substr(0, n.size() - std::string("_blocks").size());
    add_expert_matrix(ctx, g, f, base, gguf_block(n) + "ffn_gate_exps.weight", 0, 2);
    add_expert_matrix(ctx, g, f, base, gguf_block(n) + "ffn_up_exps.weight", 1, 2);
  } else if (ends_with(n, ".mlp.experts.down_proj_blocks")) {
    const std::string base = n.substr(0, n.size() - std::string("_blocks").size());
    add_expert_matrix(ctx, g, f, base, gguf_block(n) + "ffn_down_exps.weight", 0, 1);
  } else if (ends_with(n, ".mlp.experts.gate_up_proj_bias")) {
    add_strided_columns(ctx, g, t, gguf_block(n) + "ffn_gate_exps.bias", 0, 2);
    add_strided_columns(ctx, g, t, gguf_block(n) + "ffn_up_exps.bias", 1, 2);
  } else if (ends_with(n, ".mlp.experts.down_proj_bias")) {
    add_strided_columns(ctx, g, t, gguf_block(n) + "ffn_down_exps.bias", 0, 1);
  } else if (ends_with(n, ".mlp.router.weight")) {  // the converter keeps FFN_GATE_INP in F32
    add_strided_columns(ctx, g, t, gguf_block(n) + "ffn_gate_inp.weight", 0, 1);
  } else {
    return false;
  }
  return true;
}

}  // namespace allm::fixture
