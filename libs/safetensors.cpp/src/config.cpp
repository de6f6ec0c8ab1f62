#include "config.h"

#include <filesystem>
#include <fstream>

#include "nlohmann/json.hpp"

namespace stcpp {

using json = nlohmann::json;

namespace {

template <typename T>
T number_or(const json& j, const char* key, T fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<T>() : fallback;
}

bool bool_or(const json& j, const char* key, bool fallback) {
  return j.contains(key) && j[key].is_boolean() ? j[key].get<bool>() : fallback;
}

void add_token_ids(const json& value, std::vector<int>* ids) {
  if (value.is_number_integer()) {
    ids->push_back(value.get<int>());
  } else if (value.is_array()) {
    for (const json& v : value) {
      if (v.is_number_integer()) ids->push_back(v.get<int>());
    }
  }
}

Failure read_longrope_factors(const json& rs, RopeScaling* scaling) {
  for (auto [key, factors] : {std::pair{"short_factor", &scaling->short_factor},
                              std::pair{"long_factor", &scaling->long_factor}}) {
    if (!rs.contains(key) || !rs[key].is_array())
      return fail(STCPP_MODEL_CORRUPT, std::string("config.json: longrope needs ") + key);
    for (const json& v : rs[key]) {
      if (!v.is_number() || v.get<float>() <= 0.0f)
        return fail(STCPP_MODEL_CORRUPT, std::string("config.json: bad value in ") + key);
      factors->push_back(v.get<float>());
    }
  }
  return {};
}

Failure read_rope_scaling(const json& j, RopeScaling* scaling) {
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return {};
  const json& rs = j["rope_scaling"];
  if (!rs.is_object())
    return fail(STCPP_MODEL_CORRUPT, "config.json: rope_scaling is not an object");
  std::string type = rs.value("rope_type", rs.value("type", std::string("default")));
  if (type == "default") return {};
  if (type == "linear") {
    scaling->type = RopeScalingType::LINEAR;
  } else if (type == "dynamic") {
    scaling->type = RopeScalingType::DYNAMIC;
  } else if (type == "llama3") {
    scaling->type = RopeScalingType::LLAMA3;
  } else if (type == "yarn") {
    scaling->type = RopeScalingType::YARN;
  } else if (type == "longrope" || type == "su") {
    scaling->type = RopeScalingType::LONGROPE;
    if (Failure f = read_longrope_factors(rs, scaling)) return f;
  } else {
    return fail(STCPP_UNSUPPORTED,
                "config.json: rope_scaling type '" + type +
                    "' is not supported (linear, dynamic, llama3, yarn, longrope are)");
  }
  scaling->factor = number_or<float>(rs, "factor", 1.0f);
  scaling->low_freq_factor = number_or<float>(rs, "low_freq_factor", 1.0f);
  scaling->high_freq_factor = number_or<float>(rs, "high_freq_factor", 4.0f);
  // Phi3 keeps original_max_position_embeddings beside max_position_embeddings.
  scaling->original_max_position_embeddings =
      number_or<int>(rs, "original_max_position_embeddings",
                     number_or<int>(j, "original_max_position_embeddings", 0));
  scaling->beta_fast = number_or<float>(rs, "beta_fast", 32.0f);
  scaling->beta_slow = number_or<float>(rs, "beta_slow", 1.0f);
  scaling->attention_factor = number_or<float>(rs, "attention_factor", 0.0f);
  scaling->truncate = bool_or(rs, "truncate", true);
  if (scaling->factor <= 0.0f)
    return fail(STCPP_MODEL_CORRUPT, "config.json: rope_scaling factor must be positive");
  return {};
}

}  // namespace

Failure check_dimensions(const ModelConfig& c) {
  auto positive = [](int v) { return v > 0 && v < (1 << 24); };
  if (!positive(c.vocab_size) || !positive(c.hidden_size) || !positive(c.intermediate_size) ||
      !positive(c.num_hidden_layers) || !positive(c.num_attention_heads) ||
      !positive(c.num_key_value_heads) || !positive(c.head_dim)) {
    return fail(STCPP_MODEL_CORRUPT,
                "config.json: vocab_size, hidden_size, intermediate_size, num_hidden_layers, "
                "num_attention_heads, num_key_value_heads and head_dim must be positive");
  }
  const RopeScaling& rs = c.rope_scaling;
  const size_t rotary_pairs = static_cast<size_t>(c.head_dim * c.partial_rotary_factor) / 2;
  if (rs.type == RopeScalingType::LONGROPE &&
      (rs.short_factor.size() != rotary_pairs || rs.long_factor.size() != rotary_pairs)) {
    return fail(STCPP_MODEL_CORRUPT, "config.json: longrope short_factor and long_factor need " +
                                         std::to_string(rotary_pairs) + " values each");
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return fail(STCPP_MODEL_CORRUPT,
                "config.json: num_attention_heads is not a multiple of num_key_value_heads");
  }
  const int rope_dims = static_cast<int>(c.head_dim * c.partial_rotary_factor);
  if (rope_dims < 2 || rope_dims > c.head_dim || rope_dims % 2 != 0) {
    return fail(STCPP_MODEL_CORRUPT,
                "config.json: partial_rotary_factor must leave an even number of rotary "
                "dimensions within head_dim");
  }
  return {};
}

namespace {

Failure read_fields(json j, ModelConfig* c) {
  // Multimodal configs nest the language model's settings.
  if (j.contains("text_config") && j["text_config"].is_object()) {
    json merged = j["text_config"];
    merged["model_type"] = j.value("model_type", merged.value("model_type", std::string()));
    j = merged;
  }
  c->model_type = j.value("model_type", std::string());
  c->vocab_size = number_or<int>(j, "vocab_size", 0);
  c->hidden_size = number_or<int>(j, "hidden_size", 0);
  c->intermediate_size = number_or<int>(j, "intermediate_size", 0);
  c->num_hidden_layers = number_or<int>(j, "num_hidden_layers", 0);
  c->num_attention_heads = number_or<int>(j, "num_attention_heads", 0);
  c->num_key_value_heads = number_or<int>(j, "num_key_value_heads", c->num_attention_heads);
  const int default_head_dim =
      c->num_attention_heads > 0 ? c->hidden_size / c->num_attention_heads : 0;
  c->head_dim = j.contains("head_dim") && j["head_dim"].is_number_integer()
                    ? j["head_dim"].get<int>()
                    : default_head_dim;
  c->rms_norm_eps = number_or<float>(j, "rms_norm_eps", 1e-6f);
  c->norm_eps = number_or<float>(j, "norm_eps", number_or<float>(j, "layer_norm_eps", 1e-5f));
  c->partial_rotary_factor = number_or<float>(j, "partial_rotary_factor", 1.0f);
  c->query_pre_attn_scalar = number_or<float>(j, "query_pre_attn_scalar", 0.0f);
  c->attn_logit_softcapping = number_or<float>(j, "attn_logit_softcapping", 0.0f);
  c->final_logit_softcapping = number_or<float>(j, "final_logit_softcapping", 0.0f);
  c->rope_theta = number_or<float>(j, "rope_theta", 10000.0f);
  c->max_position_embeddings = number_or<int>(j, "max_position_embeddings", 0);
  c->sliding_window =
      bool_or(j, "use_sliding_window", true) ? number_or<int>(j, "sliding_window", 0) : 0;
  c->tie_word_embeddings = bool_or(j, "tie_word_embeddings", false);
  if (j.contains("layer_types") && j["layer_types"].is_array()) {
    for (const json& t : j["layer_types"]) c->sliding_layers.push_back(t == "sliding_attention");
  }
  c->num_experts = number_or<int>(j, "num_local_experts", 0);
  c->num_experts_per_tok =
      number_or<int>(j, "num_experts_per_tok", number_or<int>(j, "experts_per_token", 0));
  c->swiglu_limit = number_or<float>(j, "swiglu_limit", 0.0f);
  c->attention_bias = bool_or(j, "attention_bias", false);
  c->mlp_bias = bool_or(j, "mlp_bias", false);
  c->torch_dtype = j.value("torch_dtype", j.value("dtype", std::string()));
  c->bos_token_id = number_or<int>(j, "bos_token_id", -1);
  if (j.contains("eos_token_id")) add_token_ids(j["eos_token_id"], &c->eos_token_ids);
  if (Failure f = read_rope_scaling(j, &c->rope_scaling)) return f;
  return {};
}

// generation_config.json only adds stop ids; a broken one is ignored.
void read_generation_config(const std::string& folder, ModelConfig* c) {
  std::ifstream in(std::filesystem::path(folder) / "generation_config.json");
  if (!in) return;
  try {
    const json gen = json::parse(in);
    if (gen.is_object() && gen.contains("eos_token_id")) {
      add_token_ids(gen["eos_token_id"], &c->eos_token_ids);
    }
  } catch (const std::exception&) {
  }
}

}  // namespace

Failure read_config(const std::string& folder, ModelConfig* c) {
  const std::filesystem::path path = std::filesystem::path(folder) / "config.json";
  std::ifstream in(path);
  if (!in) return fail(STCPP_LOAD_FAILED, "no config.json in " + folder);
  json j;
  try {
    j = json::parse(in);
  } catch (const std::exception& e) {
    return fail(STCPP_MODEL_CORRUPT, std::string("config.json is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) return fail(STCPP_MODEL_CORRUPT, "config.json is not a JSON object");
  try {
    if (Failure f = read_fields(j, c)) return f;
  } catch (const std::exception& e) {
    return fail(STCPP_MODEL_CORRUPT,
                std::string("config.json has a field of the wrong type: ") + e.what());
  }
  read_generation_config(folder, c);
  return {};
}

}  // namespace stcpp
