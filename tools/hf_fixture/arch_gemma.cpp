// Gemma and Gemma2 fixtures: (1 + w) RMSNorms, GeGLU MLP, head_dim from config and unlike
// hidden / heads, tied embeddings; Gemma2 adds post-attention and post-MLP norms, soft-capping,
// a sliding window on even layers and query_pre_attn_scalar.
#include "gguf.h"
#include "hf_fixture/families.h"
#include "hf_fixture/gguf_export.h"

namespace allm::fixture {

namespace {

// Small enough that the parity prompt crosses the window and the caps bend the scores.
constexpr int kSlidingWindow = 8;  // Gemma2's is 4096
constexpr double kAttnLogitSoftcap = 10.0;
constexpr double kFinalLogitSoftcap = 8.0;

void set_spec(ModelSpec* s, Arch arch) {
  const bool v2 = arch == Arch::Gemma2;
  s->model_type = v2 ? "gemma2" : "gemma";
  s->hf_architecture = v2 ? "Gemma2ForCausalLM" : "GemmaForCausalLM";
  s->gguf_arch = s->model_type;
  s->config_has_head_dim = true;
  s->head_dim = 32;  // Gemma's heads are wider than hidden / heads (7B: 16 × 256 for 3072)
  s->rms_norm_eps = 1e-6, s->max_position_embeddings = 8192;
  s->rope_theta = 10000.0;  // what llama.cpp assumes: the converter writes no freq_base
  s->tie_embeddings = true, s->norm_plus_one = true, s->gguf_rope_keys = false;
  if (v2) s->sliding_window = kSlidingWindow;
}

std::vector<TensorDesc> layer_tensors(const ModelSpec& s, int layer) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  const int64_t h = s.hidden, q = int64_t{s.heads} * s.head_dim;
  const int64_t kv = int64_t{s.kv_heads} * s.head_dim, ff = s.intermediate;
  std::vector<TensorDesc> out = {
      {p + "input_layernorm.weight", {h}},      {p + "self_attn.q_proj.weight", {q, h}},
      {p + "self_attn.k_proj.weight", {kv, h}}, {p + "self_attn.v_proj.weight", {kv, h}},
      {p + "self_attn.o_proj.weight", {h, q}},  {p + "post_attention_layernorm.weight", {h}}};
  if (s.arch == Arch::Gemma2) out.push_back({p + "pre_feedforward_layernorm.weight", {h}});
  out.push_back({p + "mlp.gate_proj.weight", {ff, h}});
  out.push_back({p + "mlp.up_proj.weight", {ff, h}});
  out.push_back({p + "mlp.down_proj.weight", {h, ff}});
  if (s.arch == Arch::Gemma2) out.push_back({p + "post_feedforward_layernorm.weight", {h}});
  return out;
}

std::vector<TensorDesc> final_norm_tensors(const ModelSpec& s) {
  return {{"model.norm.weight", {s.hidden}}};
}

void adjust_config(const ModelSpec& s, nlohmann::ordered_json* c) {
  (*c)["hidden_act"] = "gelu_pytorch_tanh";
  (*c)["hidden_activation"] = "gelu_pytorch_tanh";
  c->erase("rope_scaling");
  if (s.arch != Arch::Gemma2) return;
  (*c)["query_pre_attn_scalar"] = s.head_dim;  // llama.cpp scales by 1/√head_dim regardless
  (*c)["sliding_window"] = s.sliding_window;
  (*c)["attn_logit_softcapping"] = kAttnLogitSoftcap;
  (*c)["final_logit_softcapping"] = kFinalLogitSoftcap;
  (*c)["cache_implementation"] = "hybrid";
}

void write_hparams(gguf_context* g, const ModelSpec& s) {
  if (s.arch != Arch::Gemma2) return;
  const std::string a = s.gguf_arch + ".";
  gguf_set_val_f32(g, (a + "attn_logit_softcapping").c_str(), kAttnLogitSoftcap);
  gguf_set_val_f32(g, (a + "final_logit_softcapping").c_str(), kFinalLogitSoftcap);
  gguf_set_val_u32(g, (a + "attention.sliding_window").c_str(), s.sliding_window);
}

// Gemma2's post_attention_layernorm follows attention (llama's is the MLP's pre-norm), so the
// converter's gemma2 map sends it, and the two feed-forward norms, elsewhere.
std::string gguf_name(const ModelSpec& s, const std::string& hf_name) {
  static const std::pair<std::string, std::string> kGemma2Norms[] = {
      {".post_attention_layernorm.weight", ".post_attention_norm.weight"},
      {".pre_feedforward_layernorm.weight", ".ffn_norm.weight"},
      {".post_feedforward_layernorm.weight", ".post_ffw_norm.weight"},
  };
  if (s.arch == Arch::Gemma2) {
    for (const auto& [hf, gguf] : kGemma2Norms) {
      const size_t at = hf_name.rfind(hf);
      if (at == std::string::npos || at + hf.size() != hf_name.size()) continue;
      const std::string block = gguf_tensor_name(hf_name.substr(0, at) + ".input_layernorm.weight");
      return block.substr(0, block.size() - std::string(".attn_norm.weight").size()) + gguf;
    }
  }
  return gguf_tensor_name(hf_name);
}

}  // namespace

const Family kGemmaFamily = {set_spec,      layer_tensors, final_norm_tensors,
                             adjust_config, write_hparams, gguf_name};

void scale_gemma2_to_bench(ModelSpec* s) {
  s->hidden = 2304, s->intermediate = 9216;
  s->heads = 8, s->kv_heads = 4, s->head_dim = 256;
  s->layers = 6;  // of gemma-2-2b's 26: about 1B parameters, 0.59B of them the embeddings
  s->sliding_window = 4096;
  s->vocab_size = 256000;
}

}  // namespace allm::fixture
