// One forward pass as a ggml graph, with the building blocks every architecture shares:
// norms, projections, rotary embedding, attention over the KV cache, MLPs.
#pragma once

#include <vector>

#include "ggml.h"
#include "kv_cache.h"
#include "model.h"

namespace stcpp {

constexpr int kKvPad = 256;  // llama.cpp's padding of the cells attention reads

// Consecutive batch tokens of one sequence at consecutive positions: attended together.
struct TokenGroup {
  int seq;
  int first;  // index of the first token in the batch
  int count;
  int pos0;
  // F16 [kv cells, count]: 0 where visible, -inf elsewhere. The cells read run from the first
  // (0, or window_first) past the last written one to a multiple of kKvPad where the sequence has
  // room: the graph's shapes then stay the same for kKvPad decode steps, so a GPU backend can
  // replay the graph it captured, and ggml-cuda's vector kernel for one query applies.
  ggml_tensor* mask = nullptr;
  // Windowed layers read only cells [window_first, pos0 + count): those within
  // config.sliding_window of some query of the group. window_mask is their mask; null without a
  // window.
  int window_first = 0;
  ggml_tensor* window_mask = nullptr;
};

// How one layer attends: the score scale, tanh soft-capping of the scores (gemma2), and
// whether config.sliding_window limits it (gemma2 alternates windowed and global layers).
struct AttentionOptions {
  float scale = 0.0f;    // 0: 1/sqrt(head_dim)
  float softcap = 0.0f;  // 0: none; else scores become softcap * tanh(scores / softcap)
  bool windowed = true;
  // Scale the queries instead of the scores, as llama.cpp's gemma graphs do: the same maths,
  // but rounding alike keeps the F16-table GELU downstream from magnifying the difference.
  bool scale_queries = false;
};

// The first cell a windowed layer reads for group g.
int window_first(const TokenGroup& g, int window);
// How many cells from `first` the group's attention reads: see TokenGroup::mask.
int64_t padded_cells(const TokenGroup& g, int first, int ctx_per_seq);
// What a batch's graph depends on besides the values of its inputs: the token and output counts
// and, per group, its sequence, place in the batch, length and the cells its attention reads.
// Batches of the same shape run the same graph.
std::vector<int64_t> graph_shape(const std::vector<TokenGroup>& groups, int n_tokens, int n_outputs,
                                 int window, int ctx_per_seq);

class Graph {
 public:
  // `hidden_states`: the graph ends at the final norm (lm_head passes its input through), for
  // embeddings.
  Graph(const Model& model, KvCache& cache, std::vector<TokenGroup> groups, int n_tokens,
        int n_outputs, size_t max_nodes, bool hidden_states = false);
  ~Graph();

  ggml_context* ctx() { return ctx_; }
  ggml_cgraph* cgraph() { return gf_; }
  const Model& model() const { return model_; }
  const std::vector<TokenGroup>& groups() const { return groups_; }
  ggml_tensor* tokens() const { return tokens_; }
  ggml_tensor* positions() const { return positions_; }
  ggml_tensor* output_ids() const { return output_ids_; }
  ggml_tensor* kv_cells() const { return kv_cells_; }  // I64: each token's cache cell
  // For a batch of the same shape (graph_shape): the groups' positions, which its masks follow.
  void set_positions(const std::vector<TokenGroup>& groups);

  // Building blocks.
  ggml_tensor* embed(ggml_tensor* table);
  ggml_tensor* rms_norm(ggml_tensor* x, ggml_tensor* weight, float eps);
  ggml_tensor* layer_norm(ggml_tensor* x, ggml_tensor* weight, ggml_tensor* bias, float eps);
  ggml_tensor* linear(ggml_tensor* x, ggml_tensor* weight, ggml_tensor* bias = nullptr);
  ggml_tensor* rope(ggml_tensor* x);  // x: [head_dim, heads, tokens]
  // Self-attention of one layer: projections (separate, or fused and split by views), optional
  // q/k norms, rope, cache update, attention per token group, output projection.
  ggml_tensor* self_attention(ggml_tensor* x, const LayerWeights& w, int layer,
                              const AttentionOptions& options = {});
  ggml_tensor* swiglu_mlp(ggml_tensor* x, const LayerWeights& w);
  ggml_tensor* gelu_tanh(ggml_tensor* x);  // exact in F32 (ggml_gelu uses an FP16 table)
  ggml_tensor* gelu_mlp(ggml_tensor* x, const LayerWeights& w);   // down(gelu(up x)), biases (phi)
  ggml_tensor* geglu_mlp(ggml_tensor* x, const LayerWeights& w);  // tanh GELU gate (gemma)
  ggml_tensor* relu2_mlp(ggml_tensor* x, const LayerWeights& w);  // down(relu(up x)²) (nemotron)
  // The standard pre-norm decoder layer (llama, mistral, qwen2, qwen3).
  ggml_tensor* llama_layer(ggml_tensor* x, const LayerWeights& w, int layer);
  // Final norm, the rows that want logits, the lm_head.
  ggml_tensor* logits(ggml_tensor* x);
  // Its parts, for architectures with another final norm: the rows that want logits, and the
  // lm_head (with its bias, and config.final_logit_softcapping when set); in a hidden-states
  // graph lm_head returns x unchanged.
  ggml_tensor* output_rows(ggml_tensor* x);
  // The residual after `layer`'s attention: after the last layer's, only the rows that want
  // logits, as llama.cpp selects them before the last MLP (less work, the same matmul kernels).
  ggml_tensor* rows_after_attention(ggml_tensor* x, int layer);
  ggml_tensor* lm_head(ggml_tensor* x, ggml_tensor* bias = nullptr);

 private:
  void store_kv(ggml_tensor* k, ggml_tensor* v, int layer);
  void split_qkv(ggml_tensor* qkv, ggml_tensor** q, ggml_tensor** k, ggml_tensor** v);
  ggml_tensor* rope_factors() const;
  ggml_tensor* cached(ggml_tensor* cache, const TokenGroup& g, int first, int64_t n_kv);
  ggml_tensor* attend(ggml_tensor* q, const TokenGroup& group, int layer,
                      const AttentionOptions& options);
  ggml_tensor* join_rows(const std::vector<ggml_tensor*>& parts);
  ggml_tensor* soft_cap(ggml_tensor* x, float cap);
  float attention_scale(const AttentionOptions& options) const;

  const Model& model_;
  KvCache& cache_;
  std::vector<TokenGroup> groups_;
  ggml_context* ctx_;
  ggml_cgraph* gf_;
  ggml_tensor* tokens_;
  ggml_tensor* positions_;
  ggml_tensor* output_ids_;
  ggml_tensor* kv_cells_;
  bool outputs_selected_ = false;  // output_rows() already applied
  bool hidden_states_;
};

}  // namespace stcpp
