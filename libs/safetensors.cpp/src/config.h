// The hyperparameters of a Hugging Face config.json that the supported architectures use.
#pragma once

#include <string>
#include <vector>

#include "safetensors/failure.h"

namespace stcpp {

enum class RopeScalingType { NONE, LINEAR, DYNAMIC, LLAMA3, YARN, LONGROPE };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::NONE;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;   // llama3
  float high_freq_factor = 4.0f;  // llama3
  int original_max_position_embeddings = 0;
  float beta_fast = 32.0f;        // yarn
  float beta_slow = 1.0f;         // yarn
  float attention_factor = 0.0f;  // yarn, longrope; 0: derived from the factor
  bool truncate = true;           // yarn: round the correction range to whole dimensions
  // LongRoPE ("su", "longrope"; phi3): per-frequency divisors of theta within and beyond
  // original_max_position_embeddings.
  std::vector<float> short_factor, long_factor;
};

struct ModelConfig {
  std::string model_type;
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;
  float rms_norm_eps = 1e-6f;
  float norm_eps = 1e-5f;  // LayerNorm models (nemotron: norm_eps, phi: layer_norm_eps)
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  int max_position_embeddings = 0;
  int sliding_window = 0;  // 0: none
  // Per layer, whether it uses sliding_window (config layer_types, e.g. gpt-oss alternates
  // "sliding_attention" and "full_attention"); empty: every layer does when sliding_window > 0.
  std::vector<bool> sliding_layers;
  int num_experts = 0;                   // mixture of experts: num_local_experts
  int num_experts_per_tok = 0;           // experts each token is routed to
  float swiglu_limit = 0.0f;             // gpt-oss clamped SwiGLU
  float partial_rotary_factor = 1.0f;    // share of head_dim that rope turns (nemotron)
  float query_pre_attn_scalar = 0.0f;    // gemma2: scores scaled by its -1/2 power; 0: head_dim
  float attn_logit_softcapping = 0.0f;   // gemma2: cap * tanh(scores / cap); 0: none
  float final_logit_softcapping = 0.0f;  // gemma2: the same on the logits; 0: none
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  std::string torch_dtype;
  int bos_token_id = -1;
  std::vector<int> eos_token_ids;
};

// Reads `folder`/config.json (and generation_config.json for extra eos ids).
Failure read_config(const std::string& folder, ModelConfig* config);
// Checks the sizes are usable (after the architecture is known to be supported).
Failure check_dimensions(const ModelConfig& config);

}  // namespace stcpp
