#include "hf_fixture/architectures.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "hf_fixture/dtype.h"
#include "hf_fixture/families.h"

namespace allm::fixture {

namespace {

// Qwen checkpoints pad vocab_size past the tokenizer; the extra ids have embedding rows but no
// token. One architecture does so, so both backends meet padding in the parity tests.
int padded_vocab_size(int tokenizer_size) {
  return (tokenizer_size / 64 + 1) * 64;
}

void set_family(ModelSpec* s, Arch arch) {
  if (const Family* family = family_of(arch)) return family->set_spec(s, arch);
  switch (arch) {
    case Arch::Llama:
      s->model_type = "llama", s->hf_architecture = "LlamaForCausalLM", s->gguf_arch = "llama";
      s->permute_qk = true;
      break;
    case Arch::Llama3:
      s->model_type = "llama", s->hf_architecture = "LlamaForCausalLM", s->gguf_arch = "llama";
      s->permute_qk = true, s->config_has_head_dim = true;
      s->rope_theta = 500000.0, s->max_position_embeddings = 131072;
      s->llama3_rope = Llama3RopeScaling{};
      break;
    case Arch::Mistral:
      s->model_type = "mistral", s->hf_architecture = "MistralForCausalLM";
      s->gguf_arch = "llama";
      s->permute_qk = true, s->config_has_head_dim = true;
      s->rope_theta = 1000000.0, s->max_position_embeddings = 32768;
      break;
    case Arch::Qwen2:
      s->model_type = "qwen2", s->hf_architecture = "Qwen2ForCausalLM", s->gguf_arch = "qwen2";
      s->qkv_bias = true;
      s->rms_norm_eps = 1e-6, s->rope_theta = 1000000.0, s->max_position_embeddings = 32768;
      break;
    case Arch::Qwen3:
      s->model_type = "qwen3", s->hf_architecture = "Qwen3ForCausalLM", s->gguf_arch = "qwen3";
      s->qk_norm = true, s->config_has_head_dim = true;
      s->head_dim = 32;  // differs from hidden / heads = 16, as in real Qwen3 models
      s->rms_norm_eps = 1e-6, s->rope_theta = 1000000.0, s->max_position_embeddings = 40960;
      break;
  }
}

std::vector<TensorDesc> layer_tensors(const ModelSpec& s, int layer) {
  if (const Family* family = family_of(s.arch)) return family->layer_tensors(s, layer);
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  const int64_t h = s.hidden, q = int64_t{s.heads} * s.head_dim;
  const int64_t kv = int64_t{s.kv_heads} * s.head_dim, ff = s.intermediate;
  std::vector<TensorDesc> out = {{p + "input_layernorm.weight", {h}},
                                 {p + "self_attn.q_proj.weight", {q, h}},
                                 {p + "self_attn.k_proj.weight", {kv, h}},
                                 {p + "self_attn.v_proj.weight", {kv, h}}};
  if (s.qkv_bias) {
    out.push_back({p + "self_attn.q_proj.bias", {q}});
    out.push_back({p + "self_attn.k_proj.bias", {kv}});
    out.push_back({p + "self_attn.v_proj.bias", {kv}});
  }
  if (s.qk_norm) {
    out.push_back({p + "self_attn.q_norm.weight", {s.head_dim}});
    out.push_back({p + "self_attn.k_norm.weight", {s.head_dim}});
  }
  out.push_back({p + "self_attn.o_proj.weight", {h, q}});
  out.push_back({p + "post_attention_layernorm.weight", {h}});
  out.push_back({p + "mlp.gate_proj.weight", {ff, h}});
  out.push_back({p + "mlp.up_proj.weight", {ff, h}});
  out.push_back({p + "mlp.down_proj.weight", {h, ff}});
  return out;
}

std::vector<TensorDesc> checkpoint_layout(const ModelSpec& s) {
  std::vector<TensorDesc> out = {{"model.embed_tokens.weight", {s.vocab_size, s.hidden}}};
  for (int l = 0; l < s.layers; ++l) {
    for (TensorDesc& t : layer_tensors(s, l)) out.push_back(std::move(t));
  }
  const Family* family = family_of(s.arch);
  if (family) {
    for (TensorDesc& t : family->final_norm_tensors(s)) out.push_back(std::move(t));
  } else {
    out.push_back({"model.norm.weight", {s.hidden}});
  }
  if (!s.tie_embeddings) out.push_back({"lm_head.weight", {s.vocab_size, s.hidden}});
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<float> random_values(const TensorDesc& desc, std::mt19937_64* rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  size_t n = 1;
  for (int64_t d : desc.shape) n *= static_cast<size_t>(d);
  const bool is_norm = desc.shape.size() == 1 && !ends_with(desc.name, ".bias");
  float mean = 0.0f, scale = 0.1f;  // biases
  if (is_norm) {
    mean = 1.0f;
  } else if (desc.shape.size() == 2) {
    scale = 1.0f / std::sqrt(static_cast<float>(desc.shape[1]));  // fan-in keeps activations O(1)
  }
  std::vector<float> values(n);
  for (float& v : values) v = mean + scale * normal(*rng);
  return values;
}

void zero_rows_of_non_text_tokens(const ByteLevelVocabulary& vocab, Tensor* lm_head) {
  const int64_t rows = lm_head->shape[0];
  const int64_t cols = lm_head->shape.size() == 2 ? lm_head->shape[1] : 1;  // weight or bias
  for (int64_t id = 0; id < rows; ++id) {
    const bool text = id < static_cast<int64_t>(vocab.types.size()) && vocab.types[id] == 1;
    if (!text) std::fill_n(lm_head->values.begin() + id * cols, cols, 0.0f);
  }
}

}  // namespace

std::optional<Arch> parse_arch(const std::string& name) {
  if (name == "llama") return Arch::Llama;
  if (name == "llama3") return Arch::Llama3;
  if (name == "mistral") return Arch::Mistral;
  if (name == "qwen2") return Arch::Qwen2;
  if (name == "qwen3") return Arch::Qwen3;
  if (name == "gemma") return Arch::Gemma;
  if (name == "gemma2") return Arch::Gemma2;
  if (name == "nemotron") return Arch::Nemotron;
  if (name == "gpt-oss") return Arch::GptOss;
  if (name == "phi") return Arch::Phi;
  if (name == "phi3") return Arch::Phi3;
  return std::nullopt;
}

ModelSpec model_spec(Arch arch, int tokenizer_size, bool tie_embeddings) {
  ModelSpec s;
  s.arch = arch;
  set_family(&s, arch);
  s.vocab_size = arch == Arch::Qwen2 ? padded_vocab_size(tokenizer_size) : tokenizer_size;
  s.tie_embeddings = s.tie_embeddings || tie_embeddings;  // gemma always ties
  return s;
}

void scale_to_1b(ModelSpec* s) {
  s->hidden = 2048;
  s->intermediate = 8192;
  s->layers = 16;
  s->heads = 32;
  s->kv_heads = 8;
  s->head_dim = 64;
  s->vocab_size = 32000;
}

std::vector<Tensor> random_weights(const ModelSpec& spec, const ByteLevelVocabulary& vocab,
                                   DType dtype, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Tensor> tensors;
  for (const TensorDesc& desc : checkpoint_layout(spec)) {
    Tensor t{desc.name, desc.shape, random_values(desc, &rng)};
    if (t.name == "lm_head.weight" || t.name == "lm_head.bias") {  // phi biases its lm_head
      zero_rows_of_non_text_tokens(vocab, &t);
    }
    for (float& v : t.values) v = round_to_dtype(dtype, v);
    tensors.push_back(std::move(t));
  }
  return tensors;
}

nlohmann::ordered_json hf_config(const ModelSpec& s, const ByteLevelVocabulary& vocab,
                                 DType dtype) {
  nlohmann::ordered_json c;
  c["architectures"] = {s.hf_architecture};
  c["model_type"] = s.model_type;
  c["hidden_size"] = s.hidden;
  c["intermediate_size"] = s.intermediate;
  c["num_hidden_layers"] = s.layers;
  c["num_attention_heads"] = s.heads;
  c["num_key_value_heads"] = s.kv_heads;
  if (s.config_has_head_dim) c["head_dim"] = s.head_dim;
  c["hidden_act"] = "silu";
  c["rms_norm_eps"] = s.rms_norm_eps;
  c["rope_theta"] = s.rope_theta;
  if (s.llama3_rope) {
    const Llama3RopeScaling& r = *s.llama3_rope;
    c["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", r.factor},
                         {"low_freq_factor", r.low_freq_factor},
                         {"high_freq_factor", r.high_freq_factor},
                         {"original_max_position_embeddings", r.original_max_position_embeddings}};
  } else if (s.yarn_rope) {
    const YarnRopeScaling& r = *s.yarn_rope;
    c["rope_scaling"] = {{"beta_fast", 32.0},
                         {"beta_slow", 1.0},
                         {"factor", r.factor},
                         {"original_max_position_embeddings", r.original_max_position_embeddings},
                         {"rope_type", "yarn"},
                         {"truncate", r.truncate}};
  } else {
    c["rope_scaling"] = nullptr;
  }
  c["max_position_embeddings"] = s.max_position_embeddings;
  c["tie_word_embeddings"] = s.tie_embeddings;
  c["vocab_size"] = s.vocab_size;
  c["bos_token_id"] = vocab.bos;
  c["eos_token_id"] = vocab.eos;
  c["torch_dtype"] = torch_dtype_name(dtype);
  c["attention_bias"] = s.qkv_bias;
  c["attention_dropout"] = 0.0;
  c["initializer_range"] = 0.02;
  c["use_cache"] = true;
  if (s.model_type == "llama") c["mlp_bias"] = false, c["pretraining_tp"] = 1;
  if (s.model_type == "mistral") c["sliding_window"] = nullptr;
  if (s.model_type == "qwen2" || s.model_type == "qwen3") {
    c["use_sliding_window"] = false;
    c["sliding_window"] = nullptr;
    c["max_window_layers"] = s.layers;
  }
  if (const Family* family = family_of(s.arch)) family->adjust_config(s, &c);
  c["transformers_version"] = "4.51.0";
  return c;
}

nlohmann::ordered_json hf_generation_config(const ByteLevelVocabulary& vocab) {
  return {
      {"bos_token_id", vocab.bos}, {"eos_token_id", vocab.eos}, {"transformers_version", "4.51.0"}};
}

}  // namespace allm::fixture
