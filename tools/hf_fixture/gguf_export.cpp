#include "hf_fixture/gguf_export.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "gguf.h"
#include "hf_fixture/arch_gpt_oss.h"
#include "hf_fixture/dtype.h"
#include "hf_fixture/families.h"

namespace allm::fixture {

namespace {

constexpr int32_t kTypeUnused = 5;  // llama_token_type / gguf TokenType.UNUSED

// Hugging Face suffix inside model.layers.N → GGUF suffix inside blk.N (gguf-py tensor_mapping).
const std::map<std::string, std::string>& layer_names() {
  static const std::map<std::string, std::string> names = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  return names;
}

// Tokens and types as the converter lists them: config vocab_size entries, ids the tokenizer
// lacks become "[PAD{id}]" of type UNUSED.
void padded_tokens(const Fixture& f, std::vector<std::string>* tokens,
                   std::vector<int32_t>* types) {
  *tokens = f.vocab.tokens;
  *types = f.vocab.types;
  for (int id = static_cast<int>(tokens->size()); id < f.spec.vocab_size; ++id) {
    tokens->push_back("[PAD" + std::to_string(id) + "]");
    types->push_back(kTypeUnused);
  }
}

void set_string_array(gguf_context* ctx, const char* key, const std::vector<std::string>& values) {
  std::vector<const char*> ptrs;
  for (const std::string& s : values) ptrs.push_back(s.c_str());
  gguf_set_arr_str(ctx, key, ptrs.data(), ptrs.size());
}

uint32_t llama_file_type(DType dtype) {  // llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_BF16
  switch (dtype) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::BF16: return 32;
  }
  return 0;
}

void write_hparams(gguf_context* g, const Fixture& f) {
  const ModelSpec& s = f.spec;
  const std::string a = s.gguf_arch + ".";
  gguf_set_val_str(g, "general.architecture", s.gguf_arch.c_str());
  gguf_set_val_str(g, "general.name", ("allm-hf-fixture-" + s.model_type).c_str());
  gguf_set_val_u32(g, "general.file_type", llama_file_type(f.dtype));
  gguf_set_val_u32(g, (a + "block_count").c_str(), s.layers);
  gguf_set_val_u32(g, (a + "context_length").c_str(), s.max_position_embeddings);
  gguf_set_val_u32(g, (a + "embedding_length").c_str(), s.hidden);
  gguf_set_val_u32(g, (a + "feed_forward_length").c_str(), s.intermediate);
  gguf_set_val_u32(g, (a + "attention.head_count").c_str(), s.heads);
  gguf_set_val_u32(g, (a + "attention.head_count_kv").c_str(), s.kv_heads);
  if (s.gguf_rope_keys) {
    gguf_set_val_f32(g, (a + "rope.freq_base").c_str(), static_cast<float>(s.rope_theta));
    gguf_set_val_u32(g, (a + "rope.dimension_count").c_str(),
                     static_cast<uint32_t>(s.partial_rotary_factor * s.head_dim));
  }
  gguf_set_val_f32(g, (a + "attention.layer_norm_rms_epsilon").c_str(),
                   static_cast<float>(s.rms_norm_eps));
  // The converter writes key/value lengths whenever config.json has head_dim.
  if (s.config_has_head_dim) {
    gguf_set_val_u32(g, (a + "attention.key_length").c_str(), s.head_dim);
    gguf_set_val_u32(g, (a + "attention.value_length").c_str(), s.head_dim);
  }
  if (s.gguf_arch == "llama") gguf_set_val_u32(g, (a + "vocab_size").c_str(), s.vocab_size);
  if (s.yarn_rope) {  // llama.cpp reads no truncate flag: it always rounds (truncate = true)
    gguf_set_val_str(g, (a + "rope.scaling.type").c_str(), "yarn");
    gguf_set_val_f32(g, (a + "rope.scaling.factor").c_str(),
                     static_cast<float>(s.yarn_rope->factor));
    gguf_set_val_u32(g, (a + "rope.scaling.original_context_length").c_str(),
                     s.yarn_rope->original_max_position_embeddings);
    gguf_set_val_f32(g, (a + "rope.scaling.yarn_beta_fast").c_str(), 32.0f);
    gguf_set_val_f32(g, (a + "rope.scaling.yarn_beta_slow").c_str(), 1.0f);
  }
}

void write_tokenizer(gguf_context* g, const Fixture& f, const char* chat_template) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  padded_tokens(f, &tokens, &types);
  gguf_set_val_str(g, "tokenizer.ggml.model", "gpt2");
  // tokenizer.json pre-tokenizes with ByteLevel(use_regex) = the GPT-2 pattern.
  gguf_set_val_str(g, "tokenizer.ggml.pre", "gpt-2");
  set_string_array(g, "tokenizer.ggml.tokens", tokens);
  gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
  set_string_array(g, "tokenizer.ggml.merges", f.vocab.merges);
  gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", f.vocab.bos);
  gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", f.vocab.eos);
  gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", false);
  gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", false);
  gguf_set_val_bool(g, "tokenizer.ggml.add_space_prefix", false);
  gguf_set_val_str(g, "tokenizer.chat_template", chat_template);
}

// The values the GGUF holds for one Hugging Face tensor (permuted where the converter does).
std::vector<float> converted_values(const ModelSpec& s, DType dtype, const Tensor& t) {
  if (s.norm_plus_one && t.name.size() > 11 && t.name.rfind("norm.weight") == t.name.size() - 11) {
    // In float32 but for F16 checkpoints, which the converter keeps (and adds to) in F16.
    std::vector<float> values = t.values;
    for (float& v : values) v = round_to_dtype(dtype == DType::F16 ? dtype : DType::F32, v + 1);
    return values;
  }
  if (!s.permute_qk) return t.values;
  const bool is_q = t.name.find("self_attn.q_proj.") != std::string::npos;
  const bool is_k = t.name.find("self_attn.k_proj.") != std::string::npos;
  if (!is_q && !is_k) return t.values;
  const int64_t cols = t.shape.size() == 2 ? t.shape[1] : 1;
  return permute_rows_for_llama_rope(t.values, t.shape[0], cols, is_q ? s.heads : s.kv_heads);
}

ggml_tensor* new_tensor(ggml_context* ctx, ggml_type type, const std::vector<int64_t>& hf_shape) {
  // ggml lists dimensions fastest-varying first: the reverse of the row-major HF shape.
  if (hf_shape.size() == 1) return ggml_new_tensor_1d(ctx, type, hf_shape[0]);
  return ggml_new_tensor_2d(ctx, type, hf_shape[1], hf_shape[0]);
}

void fill(ggml_tensor* t, const std::vector<float>& values) {
  DType as = t->type == GGML_TYPE_F16    ? DType::F16
             : t->type == GGML_TYPE_BF16 ? DType::BF16
                                         : DType::F32;
  std::vector<uint8_t> bytes;
  append_encoded(as, values, &bytes);
  std::memcpy(t->data, bytes.data(), bytes.size());
}

// A tensor the converter computes rather than copies (rope frequency factors).
void add_f32_vector(ggml_context* ctx, gguf_context* g, const std::string& name,
                    const std::vector<float>& values) {
  ggml_tensor* gt = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, static_cast<int64_t>(values.size()));
  ggml_set_name(gt, name.c_str());
  fill(gt, values);
  gguf_add_tensor(g, gt);
}

size_t context_bytes(const Fixture& f) {
  size_t bytes = 0;
  for (const Tensor& t : f.tensors) {
    bytes += t.values.size() * 4 + t.raw.size() + ggml_tensor_overhead() + 64;
  }
  return bytes + (1 << 20);
}

}  // namespace

std::string gguf_tensor_name(const std::string& hf_name) {
  if (hf_name == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf_name == "model.norm.weight") return "output_norm.weight";
  if (hf_name == "lm_head.weight") return "output.weight";
  const std::string prefix = "model.layers.";
  if (hf_name.compare(0, prefix.size(), prefix) != 0) return "";
  const size_t dot = hf_name.find('.', prefix.size());
  if (dot == std::string::npos) return "";
  const std::string layer = hf_name.substr(prefix.size(), dot - prefix.size());
  const auto it = layer_names().find(hf_name.substr(dot + 1));
  return it == layer_names().end() ? "" : "blk." + layer + "." + it->second;
}

std::vector<float> permute_rows_for_llama_rope(const std::vector<float>& values, int64_t rows,
                                               int64_t cols, int heads) {
  const int64_t head_rows = rows / heads, half = head_rows / 2;
  std::vector<float> out(values.size());
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t j = 0; j < half; ++j) {
      for (int64_t part = 0; part < 2; ++part) {
        // reshape(heads, 2, half, cols).swapaxes(1, 2): new row (h, j, part) ← old (h, part, j)
        const int64_t dst = h * head_rows + j * 2 + part;
        const int64_t src = h * head_rows + part * half + j;
        std::copy_n(values.begin() + src * cols, cols, out.begin() + dst * cols);
      }
    }
  }
  return out;
}

std::vector<float> llama3_rope_factors(const ModelSpec& spec) {
  const Llama3RopeScaling& r = *spec.llama3_rope;
  const float base = static_cast<float>(spec.rope_theta), dim = static_cast<float>(spec.head_dim);
  const float factor = static_cast<float>(r.factor), low = static_cast<float>(r.low_freq_factor);
  const float high = static_cast<float>(r.high_freq_factor);
  const float old_ctx = static_cast<float>(r.original_max_position_embeddings);
  const double low_freq_wavelen = r.original_max_position_embeddings / r.low_freq_factor;
  const double high_freq_wavelen = r.original_max_position_embeddings / r.high_freq_factor;
  std::vector<float> factors;
  for (int i = 0; i < spec.head_dim; i += 2) {
    const float freq = 1.0f / std::pow(base, static_cast<float>(i) / dim);
    const float wavelen = static_cast<float>(2.0 * M_PI) / freq;
    if (wavelen < high_freq_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_freq_wavelen) {
      factors.push_back(factor);
    } else {
      const float smooth = (old_ctx / wavelen - low) / (high - low);
      factors.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return factors;
}

bool write_gguf(const std::string& path, const Fixture& f, std::string* error) {
  ggml_init_params params{context_bytes(f), nullptr, false};
  ggml_context* ctx = ggml_init(params);
  gguf_context* g = gguf_init_empty();
  write_hparams(g, f);
  if (f.pooling != EmbeddingPooling::None) {  // llama.cpp's LLAMA_POOLING_TYPE_MEAN, _CLS, _LAST
    const uint32_t pooling = f.pooling == EmbeddingPooling::Mean  ? 1
                             : f.pooling == EmbeddingPooling::Cls ? 2
                                                                  : 3;
    gguf_set_val_u32(g, (f.spec.gguf_arch + ".pooling_type").c_str(), pooling);
  }
  const Family* family = family_of(f.spec.arch);
  if (family) family->write_hparams(g, f.spec);
  write_tokenizer(g, f, tiny_chatml_template());
  for (const Tensor& t : f.tensors) {
    if (f.spec.arch == Arch::GptOss && add_gpt_oss_gguf_tensors(ctx, g, f, t)) continue;
    // Like the converter: 1-D tensors (norms, biases) stay F32, matrices keep the dtype.
    const ggml_type type = t.shape.size() == 1 ? GGML_TYPE_F32 : ggml_type_of(f.dtype);
    ggml_tensor* gt = new_tensor(ctx, type, t.shape);
    const std::string name = family ? family->gguf_name(f.spec, t.name) : gguf_tensor_name(t.name);
    ggml_set_name(gt, name.c_str());
    fill(gt, converted_values(f.spec, f.dtype, t));
    gguf_add_tensor(g, gt);
  }
  if (f.spec.llama3_rope) add_f32_vector(ctx, g, "rope_freqs.weight", llama3_rope_factors(f.spec));
  if (family && family->gguf_extra_tensors) {
    for (const Tensor& t : family->gguf_extra_tensors(f.spec)) {
      add_f32_vector(ctx, g, t.name, t.values);
    }
  }
  const bool ok = gguf_write_to_file(g, path.c_str(), false);
  if (!ok) *error = "cannot write " + path;
  gguf_free(g);
  ggml_free(ctx);
  return ok;
}

}  // namespace allm::fixture
