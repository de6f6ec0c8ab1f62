// Checks allm-make-hf-fixture's output independently of its writer: the safetensors files are
// parsed here from the raw bytes, the GGUF through gguf.h, and llama.cpp must run the GGUF.
#include "hf_fixture/hf_fixture.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "gguf.h"
#include "llama.h"
#include "nlohmann/json.hpp"
#include "text/backend.h"

namespace fs = std::filesystem;
using allm::fixture::Arch;
using allm::fixture::DType;
using nlohmann::json;

namespace {

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// --- an independent safetensors reader -----------------------------------------------------

struct StTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
};

struct StFile {
  std::vector<uint8_t> raw;
  std::map<std::string, StTensor> tensors;
};

size_t element_size(const std::string& dtype) {
  return dtype == "F32" ? 4 : 2;
}

// Parses one file and checks the format's invariants on the way.
void read_safetensors(const fs::path& path, StFile* file) {
  file->raw = read_bytes(path);
  const std::vector<uint8_t>& raw = file->raw;
  ASSERT_GE(raw.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | raw[i];
  ASSERT_LE(8 + n, raw.size());
  EXPECT_EQ((8 + n) % 8, 0u) << "data must start 8-byte aligned";
  const json header = json::parse(raw.begin() + 8, raw.begin() + 8 + n);
  EXPECT_EQ(header.at("__metadata__").at("format"), "pt");
  const size_t data_size = raw.size() - 8 - n;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    StTensor t;
    t.dtype = entry.at("dtype");
    t.shape = entry.at("shape").get<std::vector<int64_t>>();
    const uint64_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
    size_t elements = 1;
    for (int64_t d : t.shape) elements *= d;
    EXPECT_EQ(end - begin, elements * element_size(t.dtype)) << name;
    EXPECT_EQ(begin % element_size(t.dtype), 0u) << name;
    ASSERT_LE(end, data_size) << name;
    t.data = raw.data() + 8 + n + begin;
    t.bytes = end - begin;
    ranges.push_back({begin, end});
    file->tensors[name] = t;
  }
  // The byte buffer must be indexed entirely, without holes or overlaps.
  std::sort(ranges.begin(), ranges.end());
  uint64_t expected = 0;
  for (const auto& [begin, end] : ranges) {
    EXPECT_EQ(begin, expected);
    expected = end;
  }
  EXPECT_EQ(expected, data_size);
}

float decode(const std::string& dtype, const uint8_t* p) {
  if (dtype == "F32") {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  if (dtype == "BF16") {
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  return ggml_fp16_to_fp32(ggml_fp16_t{h});
}

// --- what the checkpoint must contain, from config.json alone ------------------------------

struct Hparams {
  int64_t hidden, ff, layers, heads, kv_heads, head_dim, vocab;
  bool qkv_bias, qk_norm, tied;
};

Hparams hparams_of(const json& c) {
  Hparams h{c["hidden_size"],
            c["intermediate_size"],
            c["num_hidden_layers"],
            c["num_attention_heads"],
            c["num_key_value_heads"],
            0,
            c["vocab_size"],
            false,
            false,
            c["tie_word_embeddings"]};
  h.head_dim = c.contains("head_dim") ? c["head_dim"].get<int64_t>() : h.hidden / h.heads;
  h.qkv_bias = c["model_type"] == "qwen2";
  h.qk_norm = c["model_type"] == "qwen3";
  return h;
}

std::map<std::string, std::vector<int64_t>> expected_shapes(const Hparams& h) {
  const int64_t q = h.heads * h.head_dim, kv = h.kv_heads * h.head_dim;
  std::map<std::string, std::vector<int64_t>> s = {
      {"model.embed_tokens.weight", {h.vocab, h.hidden}}, {"model.norm.weight", {h.hidden}}};
  if (!h.tied) s["lm_head.weight"] = {h.vocab, h.hidden};
  for (int l = 0; l < h.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    s[p + "input_layernorm.weight"] = {h.hidden};
    s[p + "self_attn.q_proj.weight"] = {q, h.hidden};
    s[p + "self_attn.k_proj.weight"] = {kv, h.hidden};
    s[p + "self_attn.v_proj.weight"] = {kv, h.hidden};
    s[p + "self_attn.o_proj.weight"] = {h.hidden, q};
    s[p + "post_attention_layernorm.weight"] = {h.hidden};
    s[p + "mlp.gate_proj.weight"] = {h.ff, h.hidden};
    s[p + "mlp.up_proj.weight"] = {h.ff, h.hidden};
    s[p + "mlp.down_proj.weight"] = {h.hidden, h.ff};
    if (h.qkv_bias) {
      s[p + "self_attn.q_proj.bias"] = {q};
      s[p + "self_attn.k_proj.bias"] = {kv};
      s[p + "self_attn.v_proj.bias"] = {kv};
    }
    if (h.qk_norm) {
      s[p + "self_attn.q_norm.weight"] = {h.head_dim};
      s[p + "self_attn.k_norm.weight"] = {h.head_dim};
    }
  }
  return s;
}

// The converter's names, written out here rather than shared with the generator.
std::string to_gguf_name(const std::string& hf) {
  static const std::map<std::string, std::string> top = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"}};
  static const std::map<std::string, std::string> layer = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  if (top.count(hf)) return top.at(hf);
  const size_t dot = hf.find('.', 13);  // after "model.layers."
  return "blk." + hf.substr(13, dot - 13) + "." + layer.at(hf.substr(dot + 1));
}

// Which HF row a GGUF row holds: identity, or for llama-arch q/k the converter's interleave of
// each head's two rotate_half halves (GGUF row 2j + p ← HF row p * d/2 + j).
int64_t source_row(int64_t row, int64_t head_dim, bool permuted) {
  if (!permuted) return row;
  const int64_t head = row / head_dim, r = row % head_dim;
  return head * head_dim + (r % 2) * (head_dim / 2) + r / 2;
}

// --- the GGUF side --------------------------------------------------------------------------

struct Gguf {
  gguf_context* meta = nullptr;
  ggml_context* data = nullptr;
  ~Gguf() {
    if (meta) gguf_free(meta);
    if (data) ggml_free(data);
  }
  uint32_t u32(const std::string& key) const {
    const int64_t id = gguf_find_key(meta, key.c_str());
    return id < 0 ? 0 : gguf_get_val_u32(meta, id);
  }
  bool has(const std::string& key) const { return gguf_find_key(meta, key.c_str()) >= 0; }
};

void compare_tensor(const std::string& hf_name, const StTensor& st, const Hparams& h,
                    bool llama_arch, ggml_context* ctx, DType dtype) {
  const ggml_tensor* g = ggml_get_tensor(ctx, to_gguf_name(hf_name).c_str());
  ASSERT_NE(g, nullptr) << hf_name;
  const bool matrix = st.shape.size() == 2;
  const ggml_type want = !matrix                ? GGML_TYPE_F32
                         : dtype == DType::F16  ? GGML_TYPE_F16
                         : dtype == DType::BF16 ? GGML_TYPE_BF16
                                                : GGML_TYPE_F32;
  ASSERT_EQ(g->type, want) << hf_name;
  const int64_t rows = st.shape[0], cols = matrix ? st.shape[1] : 1;
  ASSERT_EQ(g->ne[0], matrix ? cols : rows) << hf_name;
  ASSERT_EQ(g->ne[1], matrix ? rows : 1) << hf_name;
  const bool qk =
      hf_name.find("q_proj") != std::string::npos || hf_name.find("k_proj") != std::string::npos;
  const size_t es = element_size(st.dtype);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t src = source_row(r, h.head_dim, llama_arch && qk);
    if (matrix) {  // same dtype on both sides: the bytes must be identical
      ASSERT_EQ(std::memcmp(static_cast<const uint8_t*>(g->data) + r * cols * es,
                            st.data + src * cols * es, cols * es),
                0)
          << hf_name << " row " << r;
    } else {  // F32 copy of the rounded value
      ASSERT_EQ(static_cast<const float*>(g->data)[r], decode(st.dtype, st.data + src * es))
          << hf_name << " [" << r << "]";
    }
  }
}

std::vector<float> llama3_factors_reference(const json& c, int64_t head_dim) {
  const json& r = c["rope_scaling"];
  const double base = c["rope_theta"], factor = r["factor"], low = r["low_freq_factor"];
  const double high = r["high_freq_factor"], old_ctx = r["original_max_position_embeddings"];
  std::vector<float> out;
  for (int64_t i = 0; i < head_dim; i += 2) {
    const double wavelen = 2 * M_PI * std::pow(base, static_cast<double>(i) / head_dim);
    if (wavelen < old_ctx / high) {
      out.push_back(1.0f);
    } else if (wavelen > old_ctx / low) {
      out.push_back(static_cast<float>(factor));
    } else {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      out.push_back(static_cast<float>(1 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}

// --- a reference forward pass in Hugging Face conventions ---------------------------------
// Straight from the safetensors and config.json (rotate_half rope, llama3 inv_freq scaling, GQA
// by h / group), so llama.cpp agreeing with it shows the GGUF conversion means the same model.

using Vec = std::vector<float>;

struct Reference {
  const StFile& st;
  const json& config;
  Hparams h;

  Vec weight(const std::string& name) const {
    const StTensor& t = st.tensors.at(name);
    Vec out(t.bytes / 4);
    std::memcpy(out.data(), t.data, t.bytes);  // the reference runs on F32 fixtures
    return out;
  }
  bool has(const std::string& name) const { return st.tensors.count(name) > 0; }

  // y = W x (+ b), W [rows, cols] row-major.
  Vec linear(const std::string& prefix, const Vec& x) const {
    const Vec w = weight(prefix + ".weight");
    const size_t cols = x.size(), rows = w.size() / cols;
    Vec y(rows, 0.0f);
    for (size_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (size_t c = 0; c < cols; ++c) sum += double{w[r * cols + c]} * x[c];
      y[r] = static_cast<float>(sum);
    }
    if (has(prefix + ".bias")) {
      const Vec b = weight(prefix + ".bias");
      for (size_t r = 0; r < rows; ++r) y[r] += b[r];
    }
    return y;
  }

  Vec rms_norm(const Vec& x, const Vec& w, size_t offset, size_t n) const {
    double ss = 0;
    for (size_t i = 0; i < n; ++i) ss += double{x[offset + i]} * x[offset + i];
    const double scale = 1.0 / std::sqrt(ss / n + config["rms_norm_eps"].get<double>());
    Vec y(x);
    for (size_t i = 0; i < n; ++i) y[offset + i] = static_cast<float>(x[offset + i] * scale) * w[i];
    return y;
  }

  std::vector<double> inv_freq() const {
    const double theta = config["rope_theta"];
    std::vector<double> f;
    for (int64_t i = 0; i < h.head_dim; i += 2)
      f.push_back(1.0 / std::pow(theta, double(i) / h.head_dim));
    if (config["rope_scaling"].is_null()) return f;
    const json& r = config["rope_scaling"];  // transformers' _compute_llama3_parameters
    const double factor = r["factor"], low = r["low_freq_factor"], high = r["high_freq_factor"];
    const double old_ctx = r["original_max_position_embeddings"];
    for (double& v : f) {
      const double wavelen = 2 * M_PI / v;
      if (wavelen > old_ctx / low) {
        v /= factor;
      } else if (wavelen >= old_ctx / high) {
        const double smooth = (old_ctx / wavelen - low) / (high - low);
        v = (1 - smooth) * v / factor + smooth * v;
      }
    }
    return f;
  }

  // rotate_half: dimension i pairs with i + d/2 in every head.
  void rope(Vec* x, int64_t heads, int position) const {
    const std::vector<double> f = inv_freq();
    const int64_t half = h.head_dim / 2;
    for (int64_t hd = 0; hd < heads; ++hd) {
      float* v = x->data() + hd * h.head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const double c = std::cos(position * f[i]), s = std::sin(position * f[i]);
        const double a = v[i], b = v[i + half];
        v[i] = static_cast<float>(a * c - b * s);
        v[i + half] = static_cast<float>(b * c + a * s);
      }
    }
  }

  Vec head_norms(Vec x, const std::string& name, int64_t heads) const {
    if (!has(name)) return x;
    const Vec w = weight(name);
    for (int64_t hd = 0; hd < heads; ++hd) x = rms_norm(x, w, hd * h.head_dim, h.head_dim);
    return x;
  }

  // One position of causal self-attention; ks/vs hold this layer's earlier keys and values.
  Vec attention(int layer, std::vector<Vec>* ks, std::vector<Vec>* vs, const Vec& x) const {
    const std::string p = "model.layers." + std::to_string(layer) + ".self_attn.";
    const int pos = static_cast<int>(ks->size());
    Vec q = head_norms(linear(p + "q_proj", x), p + "q_norm.weight", h.heads);
    Vec k = head_norms(linear(p + "k_proj", x), p + "k_norm.weight", h.kv_heads);
    rope(&q, h.heads, pos);
    rope(&k, h.kv_heads, pos);
    ks->push_back(k);
    vs->push_back(linear(p + "v_proj", x));
    Vec out(h.heads * h.head_dim, 0.0f);
    for (int64_t hd = 0; hd < h.heads; ++hd) {
      const int64_t kvh = hd / (h.heads / h.kv_heads);
      std::vector<double> scores;
      double top = -1e30;
      for (const Vec& kk : *ks) {
        double dot = 0;
        for (int64_t i = 0; i < h.head_dim; ++i)
          dot += double{q[hd * h.head_dim + i]} * kk[kvh * h.head_dim + i];
        scores.push_back(dot / std::sqrt(double(h.head_dim)));
        top = std::max(top, scores.back());
      }
      double total = 0;
      for (double& sc : scores) total += (sc = std::exp(sc - top));
      for (size_t t = 0; t < scores.size(); ++t) {
        for (int64_t i = 0; i < h.head_dim; ++i) {
          out[hd * h.head_dim + i] +=
              static_cast<float>(scores[t] / total * (*vs)[t][kvh * h.head_dim + i]);
        }
      }
    }
    return linear(p + "o_proj", out);
  }

  Vec mlp(int layer, const Vec& x) const {
    const std::string p = "model.layers." + std::to_string(layer) + ".mlp.";
    Vec gate = linear(p + "gate_proj", x);
    const Vec up = linear(p + "up_proj", x);
    for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
    return linear(p + "down_proj", gate);
  }

  // Logits after the last of `tokens`.
  Vec logits(const std::vector<allm::Token>& tokens) const {
    const Vec embed = weight("model.embed_tokens.weight");
    std::vector<std::vector<Vec>> ks(h.layers), vs(h.layers);
    Vec x;
    for (allm::Token t : tokens) {
      x.assign(embed.begin() + t * h.hidden, embed.begin() + (t + 1) * h.hidden);
      for (int l = 0; l < h.layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        const Vec a = attention(l, &ks[l], &vs[l],
                                rms_norm(x, weight(p + "input_layernorm.weight"), 0, h.hidden));
        for (int64_t i = 0; i < h.hidden; ++i) x[i] += a[i];
        const Vec m =
            mlp(l, rms_norm(x, weight(p + "post_attention_layernorm.weight"), 0, h.hidden));
        for (int64_t i = 0; i < h.hidden; ++i) x[i] += m[i];
      }
    }
    x = rms_norm(x, weight("model.norm.weight"), 0, h.hidden);
    return linear(h.tied ? "model.embed_tokens" : "lm_head", x);
  }
};

// --- fixtures -------------------------------------------------------------------------------

fs::path temp_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("allm-hf-fixture-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  return dir;
}

allm::fixture::FixtureOptions options_for(Arch arch, DType dtype, const fs::path& dir) {
  allm::fixture::FixtureOptions o;
  o.arch = arch;
  o.dtype = dtype;
  o.out_dir = (dir / "hf").string();
  o.gguf_path = (dir / "model.gguf").string();
  return o;
}

void write_fixture(const allm::fixture::FixtureOptions& o) {
  std::string error;
  ASSERT_TRUE(allm::fixture::write_hf_fixture(o, &error)) << error;
}

// llama.cpp loads the GGUF and decodes a prompt plus a few greedy tokens to finite logits.
void expect_llama_cpp_runs(const std::string& gguf_path, int vocab_size) {
  allm::BackendParams params;
  params.ctx_per_sequence = 128;
  params.sequences = 1;
  params.threads = 2;
  allm::Error error;
  auto backend = allm::open_llama_backend(gguf_path, params, &error);
  ASSERT_TRUE(backend) << error.message;
  ASSERT_EQ(backend->vocab_size(), vocab_size);
  std::vector<allm::Token> tokens = backend->tokenize("Hello world, this is the test", false);
  ASSERT_FALSE(tokens.empty());
  int position = 0;
  std::vector<allm::BatchToken> batch;
  for (size_t i = 0; i < tokens.size(); ++i) {
    batch.push_back({tokens[i], position++, 0, i + 1 == tokens.size()});
  }
  for (int step = 0; step < 4; ++step) {
    ASSERT_TRUE(backend->decode(batch).ok()) << "step " << step;
    const float* logits = backend->logits(static_cast<int>(batch.size()) - 1);
    ASSERT_NE(logits, nullptr);
    int best = 0;
    bool any_nonzero = false;
    for (int v = 0; v < vocab_size; ++v) {
      ASSERT_TRUE(std::isfinite(logits[v])) << "token " << v;
      any_nonzero |= logits[v] != 0.0f;
      if (logits[v] > logits[best]) best = v;
    }
    ASSERT_TRUE(any_nonzero);
    batch = {{best, position++, 0, true}};
  }
}

struct Case {
  Arch arch;
  DType dtype;
  std::string name;
};

class HfFixture : public ::testing::TestWithParam<Case> {};

TEST_P(HfFixture, SafetensorsMatchConfigAndGgufAndLlamaCppRunsIt) {
  const Case& c = GetParam();
  const fs::path dir = temp_dir(c.name);
  write_fixture(options_for(c.arch, c.dtype, dir));
  const fs::path hf = dir / "hf";
  for (const char* f : {"config.json", "generation_config.json", "tokenizer.json",
                        "tokenizer_config.json", "model.safetensors"}) {
    ASSERT_TRUE(fs::exists(hf / f)) << f;
  }
  const json config = read_json(hf / "config.json");
  const Hparams h = hparams_of(config);
  const bool llama_arch = config["model_type"] == "llama" || config["model_type"] == "mistral";
  const std::string st_dtype = c.dtype == DType::F32   ? "F32"
                               : c.dtype == DType::F16 ? "F16"
                                                       : "BF16";

  StFile st;
  read_safetensors(hf / "model.safetensors", &st);
  const auto shapes = expected_shapes(h);
  ASSERT_EQ(st.tensors.size(), shapes.size());
  for (const auto& [name, shape] : shapes) {
    ASSERT_TRUE(st.tensors.count(name)) << name;
    EXPECT_EQ(st.tensors[name].shape, shape) << name;
    EXPECT_EQ(st.tensors[name].dtype, st_dtype) << name;
  }

  Gguf g;
  gguf_init_params params{/*no_alloc=*/false, &g.data};
  g.meta = gguf_init_from_file((dir / "model.gguf").c_str(), params);
  ASSERT_NE(g.meta, nullptr);
  const std::string arch = gguf_get_val_str(g.meta, gguf_find_key(g.meta, "general.architecture"));
  EXPECT_EQ(arch, llama_arch ? "llama" : config["model_type"].get<std::string>());
  EXPECT_EQ(g.u32(arch + ".embedding_length"), h.hidden);
  EXPECT_EQ(g.u32(arch + ".block_count"), h.layers);
  EXPECT_EQ(g.u32(arch + ".feed_forward_length"), h.ff);
  EXPECT_EQ(g.u32(arch + ".attention.head_count"), h.heads);
  EXPECT_EQ(g.u32(arch + ".attention.head_count_kv"), h.kv_heads);
  EXPECT_EQ(g.u32(arch + ".rope.dimension_count"), h.head_dim);
  EXPECT_EQ(g.has(arch + ".attention.key_length"), config.contains("head_dim"));
  for (const auto& [name, tensor] : st.tensors) {
    compare_tensor(name, tensor, h, llama_arch, g.data, c.dtype);
  }
  const bool llama3 = !config["rope_scaling"].is_null();
  EXPECT_EQ(gguf_get_n_tensors(g.meta), static_cast<int64_t>(st.tensors.size()) + (llama3 ? 1 : 0));
  if (llama3) {
    const ggml_tensor* freqs = ggml_get_tensor(g.data, "rope_freqs.weight");
    ASSERT_NE(freqs, nullptr);
    const std::vector<float> want = llama3_factors_reference(config, h.head_dim);
    ASSERT_EQ(ggml_nelements(freqs), static_cast<int64_t>(want.size()));
    bool smoothed = false;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(static_cast<const float*>(freqs->data)[i], want[i], 1e-5f * want[i]) << i;
      smoothed |= want[i] > 1.0f && want[i] < 8.0f;
    }
    EXPECT_TRUE(smoothed) << "head_dim should reach the interpolated band";
  }

  // Tokenizer: the GGUF lists config.vocab_size tokens; ids past the tokenizer are [PAD{id}].
  const json tok = read_json(hf / "tokenizer.json");
  const size_t tokenizer_size = tok["model"]["vocab"].size() + tok["added_tokens"].size();
  const int64_t types_key = gguf_find_key(g.meta, "tokenizer.ggml.token_type");
  ASSERT_EQ(gguf_get_arr_n(g.meta, types_key), static_cast<size_t>(h.vocab));
  const auto* types = static_cast<const int32_t*>(gguf_get_arr_data(g.meta, types_key));
  for (const json& added : tok["added_tokens"]) EXPECT_EQ(types[added["id"].get<int>()], 3);
  const int64_t tokens_key = gguf_find_key(g.meta, "tokenizer.ggml.tokens");
  for (int64_t id = tokenizer_size; id < h.vocab; ++id) {
    EXPECT_EQ(types[id], 5);
    EXPECT_EQ(gguf_get_arr_str(g.meta, tokens_key, id), "[PAD" + std::to_string(id) + "]");
  }
  if (c.arch == Arch::Qwen2) EXPECT_GT(h.vocab, static_cast<int64_t>(tokenizer_size));

  expect_llama_cpp_runs((dir / "model.gguf").string(), static_cast<int>(h.vocab));
  fs::remove_all(dir);
}

std::vector<Case> all_cases() {
  const std::pair<Arch, const char*> arches[] = {{Arch::Llama, "llama"},
                                                 {Arch::Llama3, "llama3"},
                                                 {Arch::Mistral, "mistral"},
                                                 {Arch::Qwen2, "qwen2"},
                                                 {Arch::Qwen3, "qwen3"}};
  const std::pair<DType, const char*> dtypes[] = {
      {DType::F32, "f32"}, {DType::F16, "f16"}, {DType::BF16, "bf16"}};
  std::vector<Case> cases;
  for (const auto& [arch, an] : arches) {
    for (const auto& [dtype, dn] : dtypes)
      cases.push_back({arch, dtype, std::string(an) + "_" + dn});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllArchesAndDtypes, HfFixture, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param.name; });

// Logits after the last of `tokens`, from llama.cpp directly with an F32 KV cache and no flash
// attention, so only float rounding separates it from the reference.
std::vector<float> llama_cpp_logits(const std::string& gguf_path, const std::string& text,
                                    std::vector<llama_token>* tokens) {
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_backend_init();
  llama_model* model = llama_model_load_from_file(gguf_path.c_str(), llama_model_default_params());
  if (!model) return {};
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 128, cp.n_batch = 128, cp.n_ubatch = 128, cp.n_threads = 2, cp.n_threads_batch = 2;
  cp.type_k = GGML_TYPE_F32, cp.type_v = GGML_TYPE_F32;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  tokens->resize(text.size() + 4);
  tokens->resize(llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()),
                                tokens->data(), static_cast<int32_t>(tokens->size()), false, true));
  std::vector<float> logits;
  if (ctx && llama_decode(ctx, llama_batch_get_one(tokens->data(),
                                                   static_cast<int32_t>(tokens->size()))) == 0) {
    const float* last = llama_get_logits_ith(ctx, -1);
    logits.assign(last, last + llama_vocab_n_tokens(vocab));
  }
  if (ctx) llama_free(ctx);
  llama_model_free(model);
  return logits;
}

// llama.cpp on the GGUF computes what the Hugging Face model computes: this catches a wrong
// permutation, rope_freqs, GQA mapping or tensor name that mere value equality would not.
TEST(HfFixtureSemantics, LlamaCppLogitsMatchAHuggingFaceReferenceForward) {
  for (Arch arch : {Arch::Llama, Arch::Llama3, Arch::Mistral, Arch::Qwen2, Arch::Qwen3}) {
    const fs::path dir = temp_dir("semantics");
    write_fixture(options_for(arch, DType::F32, dir));
    const json config = read_json(dir / "hf" / "config.json");
    StFile st;
    read_safetensors(dir / "hf" / "model.safetensors", &st);
    const Reference reference{st, config, hparams_of(config)};
    // Long enough for rope to turn far on every frequency llama3 rescales.
    std::vector<llama_token> tokens;
    const std::vector<float> got =
        llama_cpp_logits((dir / "model.gguf").string(),
                         "Hello world, this is the test of the model and you are in it", &tokens);
    const Vec want = reference.logits(tokens);
    ASSERT_EQ(got.size(), want.size()) << config["model_type"];
    float worst = 0;
    for (size_t v = 0; v < want.size(); ++v) worst = std::max(worst, std::fabs(got[v] - want[v]));
    EXPECT_LT(worst, 1e-4f) << config["model_type"] << " over " << tokens.size() << " tokens";
    fs::remove_all(dir);
  }
}

TEST(HfFixtureShards, IndexCoversEveryTensorOnceAndValuesMatchTheSingleFile) {
  for (Arch arch : {Arch::Llama, Arch::Qwen2, Arch::Qwen3}) {
    const fs::path dir = temp_dir("shards");
    auto single = options_for(arch, DType::BF16, dir);
    single.gguf_path.clear();
    auto sharded = single;
    sharded.out_dir = (dir / "sharded").string();
    sharded.shards = 3;
    write_fixture(single);
    write_fixture(sharded);

    const json index = read_json(dir / "sharded" / "model.safetensors.index.json");
    const json& map = index.at("weight_map");
    std::map<std::string, std::string> seen;  // tensor → shard file
    uint64_t total = 0;
    StFile reference;
    read_safetensors(dir / "hf" / "model.safetensors", &reference);
    for (int s = 1; s <= 3; ++s) {
      char name[64];
      std::snprintf(name, sizeof(name), "model-%05d-of-00003.safetensors", s);
      StFile shard;
      read_safetensors(dir / "sharded" / name, &shard);
      EXPECT_FALSE(shard.tensors.empty()) << name;
      for (const auto& [tensor, t] : shard.tensors) {
        EXPECT_TRUE(seen.emplace(tensor, name).second) << tensor << " in two shards";
        ASSERT_TRUE(map.contains(tensor)) << tensor;
        EXPECT_EQ(map[tensor], name) << tensor;
        total += t.bytes;
        const StTensor& ref = reference.tensors.at(tensor);
        ASSERT_EQ(t.bytes, ref.bytes);
        EXPECT_EQ(std::memcmp(t.data, ref.data, t.bytes), 0) << tensor;
      }
    }
    EXPECT_EQ(seen.size(), map.size());
    EXPECT_EQ(seen.size(), reference.tensors.size());
    EXPECT_EQ(index.at("metadata").at("total_size").get<uint64_t>(), total);
    EXPECT_FALSE(fs::exists(dir / "sharded" / "model.safetensors"));
    fs::remove_all(dir);
  }
}

TEST(HfFixtureSeed, SameSeedSameBytesOtherSeedOtherWeights) {
  const fs::path dir = temp_dir("seed");
  auto a = options_for(Arch::Qwen3, DType::F16, dir);
  a.gguf_path.clear();
  auto b = a, c = a;
  b.out_dir = (dir / "b").string();
  c.out_dir = (dir / "c").string();
  c.seed = 7;
  write_fixture(a);
  write_fixture(b);
  write_fixture(c);
  const auto bytes_a = read_bytes(dir / "hf" / "model.safetensors");
  EXPECT_EQ(bytes_a, read_bytes(dir / "b" / "model.safetensors"));
  EXPECT_NE(bytes_a, read_bytes(dir / "c" / "model.safetensors"));
  fs::remove_all(dir);
}

TEST(HfFixtureTied, NoLmHeadAndLlamaCppFallsBackToTheEmbeddings) {
  const fs::path dir = temp_dir("tied");
  auto o = options_for(Arch::Qwen3, DType::F32, dir);
  o.tie_embeddings = true;
  write_fixture(o);
  EXPECT_TRUE(read_json(dir / "hf" / "config.json")["tie_word_embeddings"].get<bool>());
  StFile st;
  read_safetensors(dir / "hf" / "model.safetensors", &st);
  EXPECT_FALSE(st.tensors.count("lm_head.weight"));
  const json config = read_json(dir / "hf" / "config.json");
  expect_llama_cpp_runs((dir / "model.gguf").string(), config["vocab_size"]);
  fs::remove_all(dir);
}

}  // namespace
