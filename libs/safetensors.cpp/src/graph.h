// One forward pass as a ggml graph, with the building blocks every architecture shares:
// norms, projections, rotary embedding, attention over the KV cache, MLPs.
#pragma once

#include <vector>

#include "ggml.h"
#include "kv_cache.h"
#include "model.h"

namespace stcpp {

// Consecutive batch tokens of one sequence at consecutive positions: attended together.
struct TokenGroup {
  int seq;
  int first;  // index of the first token in the batch
  int count;
  int pos0;
  ggml_tensor* mask = nullptr;  // [kv cells, count]: 0 where visible, -inf elsewhere
};

class Graph {
 public:
  Graph(const Model& model, KvCache& cache, std::vector<TokenGroup> groups, int n_tokens,
        int n_outputs, size_t max_nodes);
  ~Graph();

  ggml_context* ctx() { return ctx_; }
  ggml_cgraph* cgraph() { return gf_; }
  const Model& model() const { return model_; }
  const std::vector<TokenGroup>& groups() const { return groups_; }
  ggml_tensor* tokens() const { return tokens_; }
  ggml_tensor* positions() const { return positions_; }
  ggml_tensor* output_ids() const { return output_ids_; }

  // Building blocks.
  ggml_tensor* embed(ggml_tensor* table);
  ggml_tensor* rms_norm(ggml_tensor* x, ggml_tensor* weight, float eps);
  ggml_tensor* linear(ggml_tensor* x, ggml_tensor* weight, ggml_tensor* bias = nullptr);
  ggml_tensor* rope(ggml_tensor* x);  // x: [head_dim, heads, tokens]
  // Self-attention of one layer: projections, optional q/k norms, rope, cache update,
  // attention per token group, output projection.
  ggml_tensor* self_attention(ggml_tensor* x, const LayerWeights& w, int layer);
  ggml_tensor* swiglu_mlp(ggml_tensor* x, const LayerWeights& w);
  // The standard pre-norm decoder layer (llama, mistral, qwen2, qwen3).
  ggml_tensor* llama_layer(ggml_tensor* x, const LayerWeights& w, int layer);
  // Final norm, the rows that want logits, the lm_head.
  ggml_tensor* logits(ggml_tensor* x);

 private:
  void store_kv(ggml_tensor* k, ggml_tensor* v, int layer);
  ggml_tensor* attend(ggml_tensor* q, const TokenGroup& group, int layer);

  const Model& model_;
  KvCache& cache_;
  std::vector<TokenGroup> groups_;
  ggml_context* ctx_;
  ggml_cgraph* gf_;
  ggml_tensor* tokens_;
  ggml_tensor* positions_;
  ggml_tensor* output_ids_;
};

}  // namespace stcpp
