// Phi-2 and Phi-3 fixtures. Phi-2 (model_type "phi", GGUF phi2): LayerNorms with biases, biased
// q/k/v/dense and fc1/fc2, partial rotary, biased lm_head. Phi-3 (GGUF phi3): fused qkv_proj and
// gate_up_proj (kept fused in the GGUF), LongRoPE short/long factors that llama.cpp reads as
// rope_factors_short/long tensors, original_max_position_embeddings, a sliding window.
#include <cmath>

#include "gguf.h"
#include "hf_fixture/families.h"
#include "hf_fixture/gguf_export.h"

namespace allm::fixture {

namespace {

// Phi-3: contexts above kOriginalContext use the long factors, so the parity tests reach both
// sets by their context size; max / original = 32 makes the attention factor 1.27.
constexpr int kOriginalContext = 256;
constexpr int kMaxContext = 8192;
// As large as Phi-3-mini-128k's: llama.cpp ignores phi3's window, so it must not bind here.
constexpr int kSlidingWindow = 262144;

bool is_phi2(const ModelSpec& s) {
  return s.arch == Arch::Phi;
}

void set_spec(ModelSpec* s, Arch arch) {
  if (arch == Arch::Phi) {
    s->model_type = "phi", s->hf_architecture = "PhiForCausalLM", s->gguf_arch = "phi2";
    s->kv_heads = s->heads;           // Phi-2 has no GQA
    s->intermediate = 4 * s->hidden;  // the converter writes 4 · hidden as the MLP width
    s->partial_rotary_factor = 0.5;   // Phi-2: 0.4 of 80; here 8 of 16 dimensions
    s->max_position_embeddings = 2048;
  } else {
    s->model_type = "phi3", s->hf_architecture = "Phi3ForCausalLM", s->gguf_arch = "phi3";
    s->max_position_embeddings = kMaxContext;
  }
  s->rms_norm_eps = 1e-5;  // Phi-2 writes it as layer_norm_eps
  s->rope_theta = 10000.0;
}

int rotary_dims(const ModelSpec& s) {
  return static_cast<int>(s.partial_rotary_factor * s.hidden) / s.heads;  // as the converter
}

// Exactly representable, increasing with wavelength like Phi-3's, and unlike 1.
std::vector<float> longrope_factors(const ModelSpec& s, bool long_factors) {
  std::vector<float> out;
  for (int i = 0; i < rotary_dims(s) / 2; ++i)
    out.push_back(long_factors ? 1.0f + 4.5f * i : 1.0f + 0.125f * i);
  return out;
}

std::vector<TensorDesc> biased(const std::string& name, int64_t rows, int64_t cols) {
  return {{name + ".weight", {rows, cols}}, {name + ".bias", {rows}}};
}

void append(std::vector<TensorDesc>* out, std::vector<TensorDesc> more) {
  for (TensorDesc& t : more) out->push_back(std::move(t));
}

std::vector<TensorDesc> layer_tensors(const ModelSpec& s, int layer) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  const int64_t h = s.hidden, q = int64_t{s.heads} * s.head_dim;
  const int64_t kv = int64_t{s.kv_heads} * s.head_dim, ff = s.intermediate;
  std::vector<TensorDesc> out = {{p + "input_layernorm.weight", {h}}};
  if (is_phi2(s)) {
    out.push_back({p + "input_layernorm.bias", {h}});
    append(&out, biased(p + "self_attn.q_proj", q, h));
    append(&out, biased(p + "self_attn.k_proj", kv, h));
    append(&out, biased(p + "self_attn.v_proj", kv, h));
    append(&out, biased(p + "self_attn.dense", h, q));
    append(&out, biased(p + "mlp.fc1", ff, h));
    append(&out, biased(p + "mlp.fc2", h, ff));
    return out;
  }
  append(&out, {{p + "self_attn.qkv_proj.weight", {q + 2 * kv, h}},
                {p + "self_attn.o_proj.weight", {h, q}},
                {p + "post_attention_layernorm.weight", {h}},
                {p + "mlp.gate_up_proj.weight", {2 * ff, h}},
                {p + "mlp.down_proj.weight", {h, ff}}});
  return out;
}

// Phi-2's final LayerNorm, and its lm_head bias (the lm_head weight follows in the layout).
std::vector<TensorDesc> final_norm_tensors(const ModelSpec& s) {
  if (!is_phi2(s)) return {{"model.norm.weight", {s.hidden}}};
  return {{"model.final_layernorm.weight", {s.hidden}},
          {"model.final_layernorm.bias", {s.hidden}},
          {"lm_head.bias", {s.vocab_size}}};
}

void adjust_phi2_config(const ModelSpec& s, nlohmann::ordered_json* c) {
  (*c)["hidden_act"] = "gelu_new";
  for (const char* key : {"rms_norm_eps", "attention_bias"}) c->erase(key);
  (*c)["layer_norm_eps"] = s.rms_norm_eps;
  (*c)["partial_rotary_factor"] = s.partial_rotary_factor;
  (*c)["qk_layernorm"] = false;
  (*c)["embd_pdrop"] = 0.0, (*c)["resid_pdrop"] = 0.1;
}

void adjust_config(const ModelSpec& s, nlohmann::ordered_json* c) {
  if (is_phi2(s)) return adjust_phi2_config(s, c);
  (*c)["original_max_position_embeddings"] = kOriginalContext;
  (*c)["rope_scaling"] = {{"long_factor", longrope_factors(s, true)},
                          {"short_factor", longrope_factors(s, false)},
                          {"type", "longrope"}};
  (*c)["sliding_window"] = kSlidingWindow;
  (*c)["embd_pdrop"] = 0.0, (*c)["resid_pdrop"] = 0.0;
}

float longrope_attn_factor(const ModelSpec& s) {
  const double scale = static_cast<double>(s.max_position_embeddings) / kOriginalContext;
  return scale > 1.0
             ? static_cast<float>(std::sqrt(1 + std::log(scale) / std::log(kOriginalContext)))
             : 1.0f;
}

void write_hparams(gguf_context* g, const ModelSpec& s) {
  const std::string a = s.gguf_arch + ".";
  if (is_phi2(s)) {
    gguf_set_val_f32(g, (a + "attention.layer_norm_epsilon").c_str(),
                     static_cast<float>(s.rms_norm_eps));
    return;
  }
  // llama.cpp sets special-token attributes for names containing "phi3"/"phi-3" and fails
  // without <s>, </s>, <unk>; the tiny vocabulary has none of them.
  gguf_set_val_str(g, "general.name", "allm-hf-fixture-longrope-mini");
  gguf_set_val_u32(g, (a + "rope.scaling.original_context_length").c_str(), kOriginalContext);
  gguf_set_val_u32(g, (a + "attention.sliding_window").c_str(), kSlidingWindow);
  gguf_set_val_f32(g, (a + "rope.scaling.attn_factor").c_str(), longrope_attn_factor(s));
}

std::string gguf_name(const ModelSpec&, const std::string& hf_name) {
  static const std::pair<std::string, std::string> kNames[] = {
      {"model.final_layernorm.weight", "output_norm.weight"},
      {"model.final_layernorm.bias", "output_norm.bias"},
      {"lm_head.bias", "output.bias"},
  };
  static const std::pair<std::string, std::string> kLayerNames[] = {
      {".input_layernorm.bias", ".attn_norm.bias"},
      {".self_attn.dense.weight", ".attn_output.weight"},
      {".self_attn.dense.bias", ".attn_output.bias"},
      {".mlp.fc1.weight", ".ffn_up.weight"},
      {".mlp.fc1.bias", ".ffn_up.bias"},
      {".mlp.fc2.weight", ".ffn_down.weight"},
      {".mlp.fc2.bias", ".ffn_down.bias"},
      {".self_attn.qkv_proj.weight", ".attn_qkv.weight"},
      {".mlp.gate_up_proj.weight", ".ffn_up.weight"},
  };
  for (const auto& [hf, gguf] : kNames) {
    if (hf_name == hf) return gguf;
  }
  for (const auto& [hf, gguf] : kLayerNames) {
    const size_t at = hf_name.rfind(hf);
    if (at == std::string::npos || at + hf.size() != hf_name.size()) continue;
    const std::string block = gguf_tensor_name(hf_name.substr(0, at) + ".input_layernorm.weight");
    return block.substr(0, block.size() - std::string(".attn_norm.weight").size()) + gguf;
  }
  return gguf_tensor_name(hf_name);
}

// The converter generates Phi-3's LongRoPE factors as F32 tensors.
std::vector<Tensor> gguf_extra_tensors(const ModelSpec& s) {
  if (is_phi2(s)) return {};
  const int64_t pairs = rotary_dims(s) / 2;
  return {{"rope_factors_long.weight", {pairs}, longrope_factors(s, true)},
          {"rope_factors_short.weight", {pairs}, longrope_factors(s, false)}};
}

}  // namespace

const Family kPhiFamily = {set_spec,      layer_tensors, final_norm_tensors, adjust_config,
                           write_hparams, gguf_name,     gguf_extra_tensors};

}  // namespace allm::fixture
