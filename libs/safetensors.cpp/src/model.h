// A loaded model: checkpoint, config, tokenizer, weights and the architecture that runs them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "safetensors/checkpoint.h"
#include "safetensors/weight_store.h"
#include "tokenizer.h"

namespace stcpp {

class Graph;

// The weights of one decoder layer; tensors an architecture lacks stay null.
struct LayerWeights {
  ggml_tensor* attn_norm = nullptr;
  ggml_tensor* attn_norm_b = nullptr;     // LayerNorm bias (nemotron)
  ggml_tensor* attn_post_norm = nullptr;  // norm of the attention output (gemma2)
  ggml_tensor *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
  ggml_tensor* wqkv = nullptr;  // fused projection, rows [q; k; v] (phi3); replaces wq, wk, wv
  ggml_tensor *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;
  ggml_tensor *q_norm = nullptr, *k_norm = nullptr;  // per-head RMSNorm (qwen3)
  ggml_tensor* ffn_norm = nullptr;
  ggml_tensor* ffn_norm_b = nullptr;     // LayerNorm bias (nemotron)
  ggml_tensor* ffn_post_norm = nullptr;  // norm of the MLP output (gemma2)
  ggml_tensor *w_gate = nullptr, *w_up = nullptr, *w_down = nullptr;
  ggml_tensor* w_gate_up = nullptr;  // fused, rows [gate; up] (phi3); replaces w_gate, w_up
  ggml_tensor *b_up = nullptr, *b_down = nullptr;  // MLP biases (config mlp_bias)
  ggml_tensor* attn_sinks = nullptr;               // per-head logits joining each softmax (gpt-oss)
  // Mixture of experts (gpt-oss): router, then per-expert matrices [in, out, expert] with biases.
  ggml_tensor *router = nullptr, *router_bias = nullptr;
  // The gate and up matrices are one, rows [gate; up] per expert.
  ggml_tensor *exp_gate_up = nullptr, *exp_down = nullptr;
  ggml_tensor *exp_gate_up_bias = nullptr, *exp_down_bias = nullptr;
};

struct ModelWeights {
  ggml_tensor* tok_embd = nullptr;
  ggml_tensor* output_norm = nullptr;
  ggml_tensor* output_norm_b = nullptr;  // LayerNorm bias (nemotron)
  ggml_tensor* output = nullptr;         // lm_head (the embeddings when tied)
  ggml_tensor* rope_factors = nullptr;   // per-frequency divisors (llama3 scaling)
  // LongRoPE (phi3): the divisors used instead of rope_factors when the context per sequence
  // exceeds rope.n_ctx_orig (as llama.cpp chooses them).
  ggml_tensor* rope_factors_long = nullptr;
  ggml_tensor* output_b = nullptr;  // lm_head bias (phi)
  std::vector<LayerWeights> layers;
};

// Rotary embedding settings in ggml's terms.
struct RopeParams {
  int n_dims = 0;
  int mode = 0;
  int n_ctx_orig = 0;
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
};

class Architecture {
 public:
  virtual ~Architecture() = default;
  // Finds and checks every tensor the architecture needs.
  virtual Failure load(WeightStore& store, const ModelConfig& config, ModelWeights* weights) = 0;
  // The logits [vocab, outputs] of the batch the graph describes.
  virtual ggml_tensor* build(Graph& graph) const = 0;
};

// The architecture for a config.json model_type; null when unsupported.
std::unique_ptr<Architecture> make_architecture(const std::string& model_type);
const char* supported_architectures();

// The llama-family decoder (pre-norm, GQA attention with rotary, SwiGLU MLP) that llama,
// mistral, qwen2 (q/k/v biases) and qwen3 (per-head q/k RMSNorm) share.
class LlamaFamily : public Architecture {
 public:
  LlamaFamily(bool qkv_bias, bool qk_norm) : qkv_bias_(qkv_bias), qk_norm_(qk_norm) {}
  Failure load(WeightStore& store, const ModelConfig& config, ModelWeights* weights) override;
  ggml_tensor* build(Graph& graph) const override;

 private:
  bool qkv_bias_;
  bool qk_norm_;
};

// model.embed_tokens and the output head: lm_head, or the embeddings when `tied` (then quantized
// as the head is, as llama.cpp's quantizer does).
void load_embeddings_and_output(WeightStore& store, const ModelConfig& config, bool tied,
                                ModelWeights* weights);
// model.embed_tokens, model.norm and lm_head (the embeddings when tied or absent), and room
// for config.num_hidden_layers layers.
void load_embeddings_and_head(WeightStore& store, const ModelConfig& config, ModelWeights* weights);
// The llama-style projections of the layer under prefix `p` ("model.layers.N."), shared by the
// architectures that keep Hugging Face llama's names for them.
void load_attention(WeightStore& store, const ModelConfig& config, const std::string& p,
                    bool qkv_bias, bool qk_norm, LayerWeights* weights);
void load_mlp(WeightStore& store, const ModelConfig& config, const std::string& p,
              LayerWeights* weights);

// Rotary settings from config.json, adding the frequency-factor tensor when scaling needs one.
RopeParams rope_params_for(const ModelConfig& config, WeightStore& store, ModelWeights* weights);

struct Model {
  std::string folder;
  ModelConfig config;
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<WeightStore> store;
  std::unique_ptr<Architecture> architecture;
  ModelWeights weights;
  RopeParams rope;
  int n_threads = 0;
  // The GPUs of the offloaded layers (none: all on the CPU); layer_device[l] indexes them (-1:
  // the CPU), output_device places the tensors outside the layers likewise.
  std::vector<ggml_backend_dev_t> devices;
  std::vector<int> layer_device;
  int output_device = -1;
  // Where layer l's weights and KV cache live.
  ggml_backend_buffer_type_t layer_buffer_type(int l) const {
    const int d = l < static_cast<int>(layer_device.size()) ? layer_device[l] : -1;
    return d >= 0 ? ggml_backend_dev_buffer_type(devices[d]) : ggml_backend_cpu_buffer_type();
  }
  std::vector<int32_t> eog_ids;
};

}  // namespace stcpp
