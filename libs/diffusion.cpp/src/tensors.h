// Looks up checkpoint tensors by name with the shape the checkpoint itself gives, checking it
// against what the architecture needs, and hands them out as ggml tensors (safetensors.cpp's
// WeightStore: matrices mapped in place, small vectors converted to F32).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "reader.h"  // safetensors.cpp
#include "status.h"
#include "weights.h"  // safetensors.cpp

namespace dcpp {

class Weights {
 public:
  explicit Weights(const stcpp::Checkpoint& checkpoint);

  bool has(const std::string& name) const { return checkpoint_.find(name) != nullptr; }
  // The stored shape, outermost first; empty when absent.
  std::vector<int64_t> shape(const std::string& name) const;
  // Matrices and convolution kernels, used where they lie (BF16 kernels are converted to F32,
  // which ggml's im2col takes). `expected`: -1 entries match any size.
  ggml_tensor* matrix(const std::string& name, const std::vector<int64_t>& expected);
  // Norm weights, biases, embeddings added to activations: F32.
  ggml_tensor* vector(const std::string& name, const std::vector<int64_t>& expected);

  Failure finish();
  const Failure& failure() const { return failure_; }
  size_t bytes() const { return store_.bytes(); }

 private:
  bool check(const std::string& name, const std::vector<int64_t>& expected);

  const stcpp::Checkpoint& checkpoint_;
  stcpp::WeightStore store_;
  Failure failure_;
};

}  // namespace dcpp
