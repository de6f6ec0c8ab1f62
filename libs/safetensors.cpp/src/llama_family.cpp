// Weight names and rotary settings shared by the llama-family architectures.
#include <cmath>

#include "graph.h"
#include "model.h"

namespace stcpp {

void load_attention(WeightStore& s, const ModelConfig& c, const std::string& p, bool qkv_bias,
                    bool qk_norm, LayerWeights* w) {
  const int64_t h = c.hidden_size, q_rows = int64_t{c.num_attention_heads} * c.head_dim,
                kv_rows = int64_t{c.num_key_value_heads} * c.head_dim;
  w->wq = s.matrix(p + "self_attn.q_proj.weight", {q_rows, h});
  w->wk = s.matrix(p + "self_attn.k_proj.weight", {kv_rows, h});
  w->wv = s.matrix(p + "self_attn.v_proj.weight", {kv_rows, h});
  w->wo = s.matrix(p + "self_attn.o_proj.weight", {h, q_rows});
  // Qwen2 always biases q/k/v (never o); Llama's attention_bias biases all four.
  const bool llama_bias = !qkv_bias && c.attention_bias;
  if (qkv_bias || llama_bias) {
    w->bq = s.vector_f32(p + "self_attn.q_proj.bias", {q_rows});
    w->bk = s.vector_f32(p + "self_attn.k_proj.bias", {kv_rows});
    w->bv = s.vector_f32(p + "self_attn.v_proj.bias", {kv_rows});
  }
  if (llama_bias) w->bo = s.vector_f32(p + "self_attn.o_proj.bias", {h});
  if (qk_norm) {
    w->q_norm = s.vector_f32(p + "self_attn.q_norm.weight", {c.head_dim});
    w->k_norm = s.vector_f32(p + "self_attn.k_norm.weight", {c.head_dim});
  }
}

void load_mlp(WeightStore& s, const ModelConfig& c, const std::string& p, LayerWeights* w) {
  const int64_t h = c.hidden_size, ff = c.intermediate_size;
  w->w_gate = s.matrix(p + "mlp.gate_proj.weight", {ff, h});
  w->w_up = s.matrix(p + "mlp.up_proj.weight", {ff, h});
  w->w_down = s.matrix(p + "mlp.down_proj.weight", {h, ff});
}

namespace {

// Llama 3 scaling as per-frequency divisors of theta (what ggml's rope takes as freq factors):
// long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  const RopeScaling& rs = c.rope_scaling;
  const double old_ctx = rs.original_max_position_embeddings > 0
                             ? rs.original_max_position_embeddings
                             : c.max_position_embeddings;
  const double low_wavelen = old_ctx / rs.low_freq_factor;
  const double high_wavelen = old_ctx / rs.high_freq_factor;
  std::vector<float> factors;
  for (int i = 0; i < c.head_dim; i += 2) {
    const double freq =
        1.0 / std::pow(static_cast<double>(c.rope_theta), static_cast<double>(i) / c.head_dim);
    const double wavelen = 2.0 * M_PI / freq;
    if (wavelen < high_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      factors.push_back(rs.factor);
    } else {
      const double smooth =
          (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
      factors.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / rs.factor + smooth)));
    }
  }
  return factors;
}

float yarn_default_attention_factor(float factor) {
  return 1.0f + 0.1f * std::log(factor);
}

// YaRN with an unrounded correction range ("truncate": false, as gpt-oss is configured) as
// per-frequency divisors of theta. ggml's own YaRN rounds the range outward (floor/ceil), which
// is YaRN with "truncate": true. The ramp and the blend follow transformers'
// _compute_yarn_parameters: pair i keeps theta where its ramp is 0 and is slowed by `factor`
// where it is 1.
std::vector<float> yarn_untruncated_rope_factors(const ModelConfig& c, int n_dims) {
  const RopeScaling& rs = c.rope_scaling;
  const double original = rs.original_max_position_embeddings > 0
                              ? rs.original_max_position_embeddings
                              : c.max_position_embeddings;
  const auto correction_dim = [&](double rotations) {
    return n_dims * std::log(original / (rotations * 2.0 * M_PI)) / (2.0 * std::log(c.rope_theta));
  };
  const double low = std::max(0.0, correction_dim(rs.beta_fast));
  double high = std::min<double>(n_dims - 1, correction_dim(rs.beta_slow));
  if (high == low) high += 0.001;
  std::vector<float> factors;
  for (int i = 0; i < n_dims / 2; ++i) {
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double keep = 1.0 - ramp;  // share of the original (extrapolated) frequency
    factors.push_back(static_cast<float>(1.0 / ((1.0 - keep) / rs.factor + keep)));
  }
  return factors;
}

// LongRoPE scales cos and sin by sqrt(1 + ln(s) / ln(original context)), s being how far
// max_position_embeddings stretches the original context, in short and long mode alike.
float longrope_attention_factor(const ModelConfig& c) {
  const RopeScaling& rs = c.rope_scaling;
  if (rs.attention_factor > 0.0f) return rs.attention_factor;
  const double original = rs.original_max_position_embeddings;
  const double scale = original > 0 ? c.max_position_embeddings / original : rs.factor;
  if (scale <= 1.0) return 1.0f;
  const double context = original > 0 ? original : c.max_position_embeddings;
  return static_cast<float>(std::sqrt(1.0 + std::log(scale) / std::log(context)));
}

}  // namespace

void load_embeddings_and_output(WeightStore& s, const ModelConfig& c, bool tied, ModelWeights* w) {
  const std::vector<int64_t> shape = {c.vocab_size, c.hidden_size};
  if (tied) {
    w->tok_embd = s.output_head("model.embed_tokens.weight", shape, /*tied=*/true);
    w->output = w->tok_embd;
  } else {
    w->tok_embd = s.embeddings("model.embed_tokens.weight", shape);
    w->output = s.output_head("lm_head.weight", shape);
  }
}

void load_embeddings_and_head(WeightStore& s, const ModelConfig& c, ModelWeights* w) {
  // Some checkpoints tie the head without saying so: no lm_head means the embeddings.
  load_embeddings_and_output(s, c, c.tie_word_embeddings || !s.has("lm_head.weight"), w);
  w->output_norm = s.vector_f32("model.norm.weight", {c.hidden_size});
  w->layers.resize(c.num_hidden_layers);
}

Failure LlamaFamily::load(WeightStore& s, const ModelConfig& c, ModelWeights* w) {
  const int64_t h = c.hidden_size;
  load_embeddings_and_head(s, c, w);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights& layer = w->layers[l];
    layer.attn_norm = s.vector_f32(p + "input_layernorm.weight", {h});
    load_attention(s, c, p, qkv_bias_, qk_norm_, &layer);
    layer.ffn_norm = s.vector_f32(p + "post_attention_layernorm.weight", {h});
    load_mlp(s, c, p, &layer);
  }
  return s.failure();
}

ggml_tensor* LlamaFamily::build(Graph& g) const {
  const ModelWeights& w = g.model().weights;
  ggml_tensor* x = g.embed(w.tok_embd);
  for (size_t l = 0; l < w.layers.size(); ++l)
    x = g.llama_layer(x, w.layers[l], static_cast<int>(l));
  return g.logits(x);
}

RopeParams rope_params_for(const ModelConfig& c, WeightStore& store, ModelWeights* weights) {
  RopeParams r;
  const RopeScaling& rs = c.rope_scaling;
  // Partial rotary (nemotron, phi) turns the first dimensions only, pairing within that span.
  r.n_dims = static_cast<int>(c.head_dim * c.partial_rotary_factor);
  r.mode = GGML_ROPE_TYPE_NEOX;  // HF checkpoints pair dimension i with i + n_dims / 2
  r.freq_base = c.rope_theta;
  r.n_ctx_orig = rs.original_max_position_embeddings > 0 ? rs.original_max_position_embeddings
                                                         : c.max_position_embeddings;
  switch (rs.type) {
    case RopeScalingType::LINEAR: r.freq_scale = 1.0f / rs.factor; break;
    case RopeScalingType::YARN:
      if (!rs.truncate) {  // the blend as freq factors; cos and sin scaled by attn_factor alone
        weights->rope_factors =
            store.new_f32("rope_factors", yarn_untruncated_rope_factors(c, r.n_dims));
        r.attn_factor = rs.attention_factor > 0.0f ? rs.attention_factor
                                                   : yarn_default_attention_factor(rs.factor);
        break;
      }
      r.freq_scale = 1.0f / rs.factor;
      r.ext_factor = 1.0f;
      r.beta_fast = rs.beta_fast;
      r.beta_slow = rs.beta_slow;
      // ggml applies YaRN's 1 + 0.1 ln(factor) itself; a configured factor replaces it.
      if (rs.attention_factor > 0.0f) {
        r.attn_factor = rs.attention_factor / yarn_default_attention_factor(rs.factor);
      }
      break;
    case RopeScalingType::LLAMA3:
      weights->rope_factors = store.new_f32("rope_factors", llama3_rope_factors(c));
      break;
    case RopeScalingType::LONGROPE:
      weights->rope_factors = store.new_f32("rope_factors_short", rs.short_factor);
      weights->rope_factors_long = store.new_f32("rope_factors_long", rs.long_factor);
      r.attn_factor = longrope_attention_factor(c);
      break;
    case RopeScalingType::DYNAMIC:  // NTK scaling only changes positions past the trained length
    case RopeScalingType::NONE: break;
  }
  return r;
}

}  // namespace stcpp
