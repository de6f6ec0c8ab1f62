#include "demo/tiny_gguf.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "ggml.h"
#include "gguf.h"

namespace allm {

namespace {

const char* const kChatMlTemplate =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// Words whose byte-level spellings become merged tokens, so common text is not one token per
// byte; the merges build each word left to right.
const char* const kWords[] = {
    " the",  " and", " of", " to",  " in",   " is", " you",   " that",  " it",   " he",
    " was",  " for", " on", " are", " with", " as", " hello", " world", "Hello", " model",
    " test", "ing",  "ed",  " a",   " I",    " be", " this",  " have",  " from", " or"};

std::string utf8_encode(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// GPT-2's reversible byte → printable character map used by byte-level BPE vocabularies.
std::vector<std::string> byte_level_alphabet() {
  std::vector<std::string> chars(256);
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    chars[b] = utf8_encode(printable ? b : next++);
  }
  return chars;
}

using Vocabulary = ByteLevelVocabulary;

Vocabulary build_vocabulary() {
  Vocabulary v;
  const std::vector<std::string> alphabet = byte_level_alphabet();
  std::set<std::string> known(alphabet.begin(), alphabet.end());
  v.tokens = alphabet;
  for (const char* word : kWords) {
    std::vector<std::string> symbols;
    for (unsigned char c : std::string(word)) symbols.push_back(alphabet[c]);
    std::string merged = symbols[0];
    for (size_t i = 1; i < symbols.size(); ++i) {
      const std::string next = merged + symbols[i];
      if (known.insert(next).second) {
        v.merges.push_back(merged + " " + symbols[i]);
        v.tokens.push_back(next);
      }
      merged = next;
    }
  }
  v.types.assign(v.tokens.size(), 1);
  for (const char* special : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    v.tokens.push_back(special);
    v.types.push_back(3);
  }
  v.bos = static_cast<int32_t>(v.tokens.size()) - 3;
  v.eos = static_cast<int32_t>(v.tokens.size()) - 1;
  return v;
}

void set_string_array(gguf_context* ctx, const char* key, const std::vector<std::string>& values) {
  std::vector<const char*> ptrs;
  for (const std::string& s : values) ptrs.push_back(s.c_str());
  gguf_set_arr_str(ctx, key, ptrs.data(), ptrs.size());
}

void write_metadata(gguf_context* gguf, const TinyLlamaSpec& spec, const Vocabulary& vocab) {
  gguf_set_val_str(gguf, "general.architecture", "llama");
  gguf_set_val_str(gguf, "general.name", spec.name.c_str());
  gguf_set_val_u32(gguf, "llama.context_length", spec.n_ctx_train);
  gguf_set_val_u32(gguf, "llama.embedding_length", spec.n_embd);
  gguf_set_val_u32(gguf, "llama.block_count", spec.n_layer);
  gguf_set_val_u32(gguf, "llama.feed_forward_length", spec.n_ff);
  gguf_set_val_u32(gguf, "llama.attention.head_count", spec.n_head);
  gguf_set_val_u32(gguf, "llama.attention.head_count_kv", spec.n_head_kv);
  gguf_set_val_u32(gguf, "llama.rope.dimension_count", spec.n_embd / spec.n_head);
  gguf_set_val_f32(gguf, "llama.rope.freq_base", 10000.0f);
  gguf_set_val_f32(gguf, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  gguf_set_val_u32(gguf, "llama.vocab_size", static_cast<uint32_t>(vocab.tokens.size()));
  gguf_set_val_u32(gguf, "general.file_type", 0);  // all F32
  gguf_set_val_str(gguf, "tokenizer.ggml.model", "gpt2");
  gguf_set_val_str(gguf, "tokenizer.ggml.pre", "default");
  set_string_array(gguf, "tokenizer.ggml.tokens", vocab.tokens);
  gguf_set_arr_data(gguf, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, vocab.types.data(),
                    vocab.types.size());
  set_string_array(gguf, "tokenizer.ggml.merges", vocab.merges);
  gguf_set_val_u32(gguf, "tokenizer.ggml.bos_token_id", vocab.bos);
  gguf_set_val_u32(gguf, "tokenizer.ggml.eos_token_id", vocab.eos);
  gguf_set_val_bool(gguf, "tokenizer.ggml.add_bos_token", false);
  gguf_set_val_str(gguf, "tokenizer.chat_template", kChatMlTemplate);
}

// Tensor name → shape in ggml order (fastest-varying dimension first).
std::map<std::string, std::vector<int64_t>> tensor_shapes(const TinyLlamaSpec& spec,
                                                          int64_t n_vocab) {
  const int64_t embd = spec.n_embd, ff = spec.n_ff;
  const int64_t kv = embd / spec.n_head * spec.n_head_kv;
  std::map<std::string, std::vector<int64_t>> shapes = {
      {"token_embd.weight", {embd, n_vocab}},
      {"output_norm.weight", {embd}},
      {"output.weight", {embd, n_vocab}},
  };
  for (int l = 0; l < spec.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    shapes[p + "attn_norm.weight"] = {embd};
    shapes[p + "attn_q.weight"] = {embd, embd};
    shapes[p + "attn_k.weight"] = {embd, kv};
    shapes[p + "attn_v.weight"] = {embd, kv};
    shapes[p + "attn_output.weight"] = {embd, embd};
    shapes[p + "ffn_norm.weight"] = {embd};
    shapes[p + "ffn_gate.weight"] = {embd, ff};
    shapes[p + "ffn_up.weight"] = {embd, ff};
    shapes[p + "ffn_down.weight"] = {ff, embd};
  }
  return shapes;
}

}  // namespace

ByteLevelVocabulary tiny_byte_level_vocabulary() {
  return build_vocabulary();
}

const char* tiny_chatml_template() {
  return kChatMlTemplate;
}

bool write_tiny_llama_gguf(const std::string& path, const TinyLlamaSpec& spec, std::string* error) {
  const Vocabulary vocab = build_vocabulary();
  const auto shapes = tensor_shapes(spec, static_cast<int64_t>(vocab.tokens.size()));
  size_t bytes = 0;
  for (const auto& [name, shape] : shapes) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    bytes += n * sizeof(float) + ggml_tensor_overhead() + 64;
  }
  ggml_init_params params{bytes + (1 << 20), nullptr, false};
  ggml_context* ctx = ggml_init(params);
  gguf_context* gguf = gguf_init_empty();
  write_metadata(gguf, spec, vocab);

  std::mt19937_64 rng(spec.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto& [name, shape] : shapes) {
    ggml_tensor* t = shape.size() == 1 ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, shape[0])
                                       : ggml_new_tensor_2d(ctx, GGML_TYPE_F32, shape[0], shape[1]);
    ggml_set_name(t, name.c_str());
    auto* data = static_cast<float*>(t->data);
    const bool norm = shape.size() == 1;
    // Norm weights near 1; projections scaled by 1/sqrt(fan-in) so activations stay in range.
    const float scale = norm ? 0.1f : 1.0f / std::sqrt(static_cast<float>(shape[0]));
    for (int64_t i = 0; i < ggml_nelements(t); ++i) {
      data[i] = (norm ? 1.0f : 0.0f) + scale * normal(rng);
    }
    if (name == "output.weight") {
      // Control tokens get zero logits, so sampling rarely ends a random answer at once.
      for (size_t id = 0; id < vocab.types.size(); ++id) {
        if (vocab.types[id] == 3) std::fill_n(data + id * spec.n_embd, spec.n_embd, 0.0f);
      }
    }
    gguf_add_tensor(gguf, t);
  }
  const bool ok = gguf_write_to_file(gguf, path.c_str(), false);
  if (!ok) *error = "cannot write " + path;
  gguf_free(gguf);
  ggml_free(ctx);
  return ok;
}

}  // namespace allm
