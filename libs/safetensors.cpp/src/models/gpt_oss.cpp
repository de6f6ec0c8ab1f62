// gpt-oss (OpenAI): pre-norm decoder with biased q/k/v/o projections, learned attention sinks,
// alternating sliding-window and full attention (config layer_types), YaRN rope, and a
// mixture-of-experts MLP: a biased router picks the top-k experts, whose weights (softmax over
// those k logits) mix clamped-SwiGLU expert MLPs. The experts are stored as MXFP4 and run as
// ggml MXFP4 (ggml_mul_mat_id), repacked once at load but never dequantised.
#include <cmath>

#include "graph.h"
#include "model.h"
#include "mxfp4.h"

namespace stcpp {

namespace {

constexpr float kSwigluAlpha = 1.702f;       // gpt-oss's sigmoid slope in the gated activation
constexpr float kDefaultSwigluLimit = 7.0f;  // config swiglu_limit when absent

// Biased q/k/v/o projections (gpt-oss always has the biases, whatever attention_bias says) and
// the per-head sinks.
void load_gpt_oss_attention(WeightStore& s, const ModelConfig& c, const std::string& p,
                            LayerWeights* w) {
  ModelConfig biased = c;
  biased.attention_bias = true;
  load_attention(s, biased, p, /*qkv_bias=*/false, /*qk_norm=*/false, w);
  w->attn_sinks = s.vector_f32(p + "self_attn.sinks", {c.num_attention_heads});
}

// Rows of one Hugging Face expert matrix: ggml row r of a part is Hugging Face row
// first_row + r * row_step.
struct RowPart {
  int64_t first_row, row_step;
};

// One expert matrix as ggml MXFP4 [in, out, experts] from its Hugging Face blocks and scales
// [experts, hf_rows, in / 32, ...]: each expert's ggml rows are the parts' rows, one part after
// the other.
ggml_tensor* load_expert_matrix(WeightStore& s, const std::string& hf_name, const std::string& name,
                                int64_t experts, int64_t hf_rows, int64_t in,
                                std::vector<RowPart> parts) {
  const int64_t blocks_per_row = in / kMxfp4BlockValues;
  const TensorInfo* blocks =
      s.raw(hf_name + "_blocks", {experts, hf_rows, blocks_per_row, kMxfp4HfBlockBytes}, Dtype::U8);
  const TensorInfo* scales =
      s.raw(hf_name + "_scales", {experts, hf_rows, blocks_per_row}, Dtype::U8);
  if (!blocks || !scales) return nullptr;
  const size_t row_bytes = static_cast<size_t>(blocks_per_row) * kMxfp4GgmlBlockBytes;
  int64_t out = 0;
  for (const RowPart& part : parts) out += hf_rows / part.row_step;
  // ggml row `row` is row r = row % out of expert row / out, r in the part that covers it.
  auto fill = [=](uint8_t* dst, int64_t first_row, int64_t n_rows) {
    for (int64_t row = first_row; row < first_row + n_rows; ++row, dst += row_bytes) {
      const int64_t e = row / out;
      int64_t r = row % out;
      const RowPart* part = parts.data();
      for (; r >= hf_rows / part->row_step; ++part) r -= hf_rows / part->row_step;
      const Mxfp4Rows rows{blocks->data() + e * hf_rows * blocks_per_row * kMxfp4HfBlockBytes,
                           scales->data() + e * hf_rows * blocks_per_row, blocks_per_row,
                           part->first_row + r * part->row_step, 1};
      repack_mxfp4_rows(rows, 1, dst);
    }
  };
  return s.new_computed_weight(name, GGML_TYPE_MXFP4, {in, out, experts}, fill, {blocks, scales});
}

// The columns `parts` pick from each row of a row-major [rows, cols] matrix, one part after the
// other, as F32 [picked, rows].
ggml_tensor* picked_columns(WeightStore& s, const std::string& name, std::vector<float> values,
                            int64_t rows, int64_t cols, std::vector<RowPart> parts) {
  int64_t out_cols = 0;
  for (const RowPart& part : parts) out_cols += cols / part.row_step;
  auto fill = [values = std::move(values), cols, parts](uint8_t* dst, int64_t first_row,
                                                        int64_t n_rows) {
    float* out = reinterpret_cast<float*>(dst);
    for (int64_t r = first_row; r < first_row + n_rows; ++r) {
      for (const RowPart& part : parts) {
        for (int64_t c = part.first_row; c < cols; c += part.row_step)
          *out++ = values[r * cols + c];
      }
    }
  };
  return s.new_computed(name, GGML_TYPE_F32, {out_cols, rows}, fill);
}

// Router and experts. gate_up_proj interleaves the gate (even rows) and up (odd rows) outputs;
// they become one matrix whose rows are [gate; up] per expert, so that one ggml_mul_mat_id (and
// one conversion of its input) serves both.
void load_experts(WeightStore& s, const ModelConfig& c, const std::string& p, LayerWeights* w) {
  const int64_t h = c.hidden_size, ff = c.intermediate_size, n = c.num_experts;
  // F32 like llama.cpp's converter keeps it: expert choice should not hinge on the
  // activations being rounded to BF16 for a BF16 matmul.
  w->router = s.vector_f32(p + "mlp.router.weight", {n, h});
  w->router_bias = s.vector_f32(p + "mlp.router.bias", {n});
  const std::string gate_up = p + "mlp.experts.gate_up_proj", down = p + "mlp.experts.down_proj";
  const std::vector<RowPart> gate_then_up = {{0, 2}, {1, 2}};
  w->exp_gate_up =
      load_expert_matrix(s, gate_up, p + "experts.gate_up", n, 2 * ff, h, gate_then_up);
  w->exp_down = load_expert_matrix(s, down, p + "experts.down", n, h, ff, {{0, 1}});
  std::vector<float> gate_up_bias = s.values_f32(gate_up + "_bias", {n, 2 * ff});
  if (!gate_up_bias.empty()) {
    w->exp_gate_up_bias = picked_columns(s, p + "experts.gate_up_bias", std::move(gate_up_bias), n,
                                         2 * ff, gate_then_up);
  }
  w->exp_down_bias = s.vector_f32(down + "_bias", {n, h});
}

Failure check_moe_config(const ModelConfig& c) {
  if (c.num_experts < 1 || c.num_experts_per_tok < 1 || c.num_experts_per_tok > c.num_experts) {
    return fail(STCPP_MODEL_CORRUPT,
                "config.json: gpt-oss needs num_local_experts >= num_experts_per_tok >= 1");
  }
  if (c.hidden_size % kMxfp4BlockValues != 0 || c.intermediate_size % kMxfp4BlockValues != 0) {
    return fail(
        STCPP_MODEL_CORRUPT,
        "config.json: MXFP4 experts need hidden_size and intermediate_size divisible by 32");
  }
  return {};
}

class GptOss : public Architecture {
 public:
  Failure load(WeightStore& s, const ModelConfig& c, ModelWeights* w) override {
    if (Failure f = check_moe_config(c)) return f;
    const int64_t h = c.hidden_size;
    load_embeddings_and_output(s, c, c.tie_word_embeddings, w);
    w->output_norm = s.vector_f32("model.norm.weight", {h});
    w->layers.resize(c.num_hidden_layers);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      LayerWeights& layer = w->layers[l];
      layer.attn_norm = s.vector_f32(p + "input_layernorm.weight", {h});
      load_gpt_oss_attention(s, c, p, &layer);
      layer.ffn_norm = s.vector_f32(p + "post_attention_layernorm.weight", {h});
      load_experts(s, c, p, &layer);
    }
    return s.failure();
  }

  ggml_tensor* build(Graph& g) const override {
    const ModelConfig& c = g.model().config;
    const ModelWeights& w = g.model().weights;
    ggml_tensor* x = g.embed(w.tok_embd);
    for (int l = 0; l < static_cast<int>(w.layers.size()); ++l) {
      const LayerWeights& layer = w.layers[l];
      AttentionOptions attention;
      attention.windowed = l < static_cast<int>(c.sliding_layers.size()) && c.sliding_layers[l];
      ggml_tensor* attn_in = g.rms_norm(x, layer.attn_norm, c.rms_norm_eps);
      x = g.rows_after_attention(
          ggml_add(g.ctx(), g.self_attention(attn_in, layer, l, attention), x), l);
      x = ggml_add(g.ctx(), moe(g, g.rms_norm(x, layer.ffn_norm, c.rms_norm_eps), layer), x);
    }
    return g.logits(x);
  }

 private:
  // The operations of llama.cpp's build_moe_ffn for gpt-oss, with its merged gate_up path (one
  // matmul per token for both, split by views): every value rounds as in llama.cpp's separate
  // gate and up matmuls.
  static ggml_tensor* moe(Graph& g, ggml_tensor* x, const LayerWeights& w) {
    ggml_context* ctx = g.ctx();
    const ModelConfig& c = g.model().config;
    const int64_t n_embd = x->ne[0], n_tokens = x->ne[1], k = c.num_experts_per_tok;
    ggml_tensor* logits = ggml_add(ctx, ggml_mul_mat(ctx, w.router, x), w.router_bias);
    ggml_tensor* selected = ggml_argsort_top_k(ctx, logits, static_cast<int>(k));  // [k, tokens]
    ggml_tensor* weights =
        ggml_get_rows(ctx, ggml_reshape_3d(ctx, logits, 1, c.num_experts, n_tokens), selected);
    weights = ggml_soft_max(ctx, ggml_reshape_2d(ctx, weights, k, n_tokens));  // over the top k
    weights = ggml_reshape_3d(ctx, weights, 1, k, n_tokens);
    ggml_build_forward_expand(g.cgraph(), weights);

    x = ggml_reshape_3d(ctx, x, n_embd, 1, n_tokens);
    ggml_tensor* gate_up = ggml_add_id(ctx, ggml_mul_mat_id(ctx, w.exp_gate_up, x, selected),
                                       w.exp_gate_up_bias, selected);  // [2 ff, k, tokens]
    const int64_t ff = gate_up->ne[0] / 2;
    ggml_tensor* gate =
        ggml_view_3d(ctx, gate_up, ff, k, n_tokens, gate_up->nb[1], gate_up->nb[2], 0);
    ggml_tensor* up = ggml_view_3d(ctx, gate_up, ff, k, n_tokens, gate_up->nb[1], gate_up->nb[2],
                                   ff * gate_up->nb[0]);
    const float limit = c.swiglu_limit > 0.0f ? c.swiglu_limit : kDefaultSwigluLimit;
    ggml_tensor* act = ggml_swiglu_oai(ctx, gate, up, kSwigluAlpha, limit);
    ggml_tensor* experts = ggml_add_id(ctx, ggml_mul_mat_id(ctx, w.exp_down, act, selected),
                                       w.exp_down_bias, selected);  // [n_embd, k, tokens]
    experts = ggml_mul(ctx, experts, weights);
    ggml_build_forward_expand(g.cgraph(), experts);
    ggml_tensor* out = nullptr;
    for (int64_t i = 0; i < k; ++i) {
      ggml_tensor* one =
          ggml_view_2d(ctx, experts, n_embd, n_tokens, experts->nb[2], i * experts->nb[1]);
      ggml_build_forward_expand(g.cgraph(), one);
      out = out ? ggml_add(ctx, out, one) : one;
    }
    return k == 1 ? ggml_cont(ctx, out) : out;
  }
};

}  // namespace

std::unique_ptr<Architecture> make_gpt_oss() {
  return std::make_unique<GptOss>();
}

}  // namespace stcpp
