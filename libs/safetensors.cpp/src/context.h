// The inference state behind stcpp_context: KV cache, compute buffers, last logits.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "kv_cache.h"
#include "model.h"

namespace stcpp {

class Context {
 public:
  Context(const Model& model, const stcpp_context_params& params);
  ~Context();
  Failure init();

  Failure decode(const stcpp_batch& batch);
  // The last batch's output row for a token that asked for one: logits, or the final hidden
  // state when the context gives embeddings; null otherwise.
  const float* output(int batch_index) const;
  bool gives_embeddings() const { return params_.embeddings; }
  void clear(int seq) { cache_.set_length(seq, 0); }
  // Forgets positions >= from_pos; the cells stay allocated and are overwritten later.
  void trim(int seq, int from_pos) {
    if (from_pos < cache_.length(seq)) cache_.set_length(seq, from_pos < 0 ? 0 : from_pos);
  }
  // Makes positions [0, length) of `to` a copy of `from`'s (at most what `from` holds).
  void copy_prefix(int from, int to, int length) {
    const int n = cache_.n_seq();
    if (from == to || from < 0 || to < 0 || from >= n || to >= n || length < 0) return;
    cache_.copy_prefix(from, to, std::min(length, cache_.length(from)));
  }
  size_t bytes() const;

 private:
  Failure validate(const stcpp_batch& batch, std::vector<struct TokenGroup>* groups) const;
  Failure fit_scheduler(size_t nodes);
  Failure build_graph(std::vector<struct TokenGroup> groups, int n_tokens, int n_outputs,
                      size_t nodes);
  void fill_masks(const std::vector<struct TokenGroup>& groups) const;

  const Model& model_;
  stcpp_context_params params_;
  KvCache cache_;
  // The model's GPUs (when it has some) first, then the CPU; the scheduler runs each op where its
  // weights are and copies what crosses between them.
  std::vector<ggml_backend_t> backends_;
  ggml_backend_sched_t scheduler_ = nullptr;
  size_t scheduler_nodes_ = 0;  // the graph size it was made for
  // The last batch's graph, allocated in the scheduler, and its shape (graph_shape): a batch of
  // the same shape (each decode step of the same sequences, mostly) runs it again with new
  // inputs. Not rebuilding saves the host's work, and an unchanged graph lets a GPU backend
  // replay what it captured.
  std::unique_ptr<class Graph> graph_;
  ggml_tensor* graph_output_ = nullptr;
  std::vector<int64_t> graph_shape_;
  std::vector<float> outputs_;
  std::vector<int> output_rows_;  // batch index → row of outputs_, -1 when not asked for
};

}  // namespace stcpp
