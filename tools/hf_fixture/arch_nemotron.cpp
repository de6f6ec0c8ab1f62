// Nemotron fixtures (Nemotron-3/4, Minitron): LayerNorm1P with biases, squared-ReLU MLP without
// gate, partial rotary, norm_eps, an untied lm_head.
#include "gguf.h"
#include "hf_fixture/families.h"
#include "hf_fixture/gguf_export.h"

namespace allm::fixture {

namespace {

void set_spec(ModelSpec* s, Arch) {
  s->model_type = "nemotron", s->hf_architecture = "NemotronForCausalLM";
  s->gguf_arch = "nemotron";
  s->config_has_head_dim = true;  // = hidden / heads, which llama.cpp's nemotron requires
  s->partial_rotary_factor = 0.5;
  s->rms_norm_eps = 1e-5;  // written as norm_eps
  s->norm_plus_one = true;
}

std::vector<TensorDesc> norm(const std::string& name, int64_t h) {
  return {{name + ".weight", {h}}, {name + ".bias", {h}}};
}

std::vector<TensorDesc> layer_tensors(const ModelSpec& s, int layer) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  const int64_t h = s.hidden, q = int64_t{s.heads} * s.head_dim;
  const int64_t kv = int64_t{s.kv_heads} * s.head_dim, ff = s.intermediate;
  std::vector<TensorDesc> out = norm(p + "input_layernorm", h);
  out.push_back({p + "self_attn.q_proj.weight", {q, h}});
  out.push_back({p + "self_attn.k_proj.weight", {kv, h}});
  out.push_back({p + "self_attn.v_proj.weight", {kv, h}});
  out.push_back({p + "self_attn.o_proj.weight", {h, q}});
  for (TensorDesc& t : norm(p + "post_attention_layernorm", h)) out.push_back(std::move(t));
  out.push_back({p + "mlp.up_proj.weight", {ff, h}});
  out.push_back({p + "mlp.down_proj.weight", {h, ff}});
  return out;
}

std::vector<TensorDesc> final_norm_tensors(const ModelSpec& s) {
  return norm("model.norm", s.hidden);
}

void adjust_config(const ModelSpec& s, nlohmann::ordered_json* c) {
  (*c)["hidden_act"] = "relu2";
  c->erase("rms_norm_eps");
  c->erase("rope_scaling");
  (*c)["norm_eps"] = s.rms_norm_eps;
  (*c)["partial_rotary_factor"] = s.partial_rotary_factor;
  (*c)["mlp_bias"] = false;
}

void write_hparams(gguf_context* g, const ModelSpec& s) {
  const std::string a = s.gguf_arch + ".";
  gguf_set_val_f32(g, (a + "attention.layer_norm_epsilon").c_str(),
                   static_cast<float>(s.rms_norm_eps));
  gguf_set_val_u32(g, (a + "vocab_size").c_str(), s.vocab_size);
  gguf_set_val_str(g, (a + "rope.scaling.type").c_str(), "none");
}

// Biases sit beside their weights: "X.bias" is named as "X.weight" is, with bias.
std::string gguf_name(const ModelSpec&, const std::string& hf_name) {
  const std::string bias = ".bias";
  if (hf_name.size() < bias.size() ||
      hf_name.compare(hf_name.size() - bias.size(), bias.size(), bias) != 0) {
    return gguf_tensor_name(hf_name);
  }
  const std::string stem = hf_name.substr(0, hf_name.size() - bias.size());
  const std::string weight = gguf_tensor_name(stem + ".weight");
  return weight.empty() ? ""
                        : weight.substr(0, weight.size() - std::string(".weight").size()) + bias;
}

}  // namespace

const Family kNemotronFamily = {set_spec,      layer_tensors, final_norm_tensors,
                                adjust_config, write_hparams, gguf_name};

}  // namespace allm::fixture
