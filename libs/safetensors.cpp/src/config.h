// The hyperparameters of a Hugging Face config.json that the supported architectures use.
#pragma once

#include <string>
#include <vector>

#include "status.h"

namespace stcpp {

enum class RopeScalingType { NONE, LINEAR, DYNAMIC, LLAMA3, YARN };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::NONE;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;   // llama3
  float high_freq_factor = 4.0f;  // llama3
  int original_max_position_embeddings = 0;
  float beta_fast = 32.0f;        // yarn
  float beta_slow = 1.0f;         // yarn
  float attention_factor = 0.0f;  // yarn; 0: derived from the factor
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
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  int max_position_embeddings = 0;
  int sliding_window = 0;  // 0: none
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
