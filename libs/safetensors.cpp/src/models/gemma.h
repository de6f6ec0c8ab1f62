// Gemma and Gemma2 share their weights' names and the (1 + w) RMSNorm; Gemma2 adds a norm
// after attention and after the MLP.
#pragma once

#include "model.h"

namespace stcpp {

class Gemma : public Architecture {
 public:
  explicit Gemma(bool post_norms = false) : post_norms_(post_norms) {}
  Failure load(WeightStore& store, const ModelConfig& config, ModelWeights* weights) override;
  ggml_tensor* build(Graph& graph) const override;

 protected:
  // The embeddings scaled by √hidden, as Gemma does at run time.
  static ggml_tensor* scaled_embeddings(Graph& graph);

 private:
  bool post_norms_;
};

}  // namespace stcpp
