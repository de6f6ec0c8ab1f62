// Looks up checkpoint tensors by name with the shape the checkpoint itself gives, checking it
// against what the architecture needs, and hands them out as ggml tensors (safetensors.cpp's
// WeightStore: matrices mapped in place, small vectors converted to F32). The names are those
// of the single-file checkpoints (model.diffusion_model.*, first_stage_model.*,
// cond_stage_model.*); other layouts (diffusers folders) add their files under those names.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "safetensors/checkpoint.h"
#include "safetensors/weight_store.h"
#include "status.h"

namespace dcpp {

class Weights {
 public:
  // Our name of a stored tensor; empty: not used.
  using Rename = std::function<std::string(const std::string& stored)>;

  // Where the weights of checkpoints added from now on go (a device's buffers: all of them).
  void place_on(ggml_backend_buffer_type_t device) { device_ = device; }
  // Adds the tensors of `checkpoint` (which must outlive this), under the names `rename` gives.
  void add(const stcpp::Checkpoint& checkpoint, const Rename& rename);

  bool has(const std::string& name) const { return find(name) != nullptr; }
  // Whether any tensor's name starts with `prefix`.
  bool has_prefix(const std::string& prefix) const;
  // Matrices and kernels under `prefix` are converted to F32 (SDXL's VAE: its activations
  // overflow F16, which ggml's F16 matrix products round their inputs to).
  void convert_to_f32(const std::string& prefix) { f32_prefix_ = prefix; }
  // The stored shape, outermost first; empty when absent.
  std::vector<int64_t> shape(const std::string& name) const;
  // Matrices and convolution kernels, used where they lie (BF16 kernels are converted to F32,
  // which ggml's im2col takes). `expected`: -1 entries match any size.
  ggml_tensor* matrix(const std::string& name, const std::vector<int64_t>& expected);
  // Norm weights, biases, embeddings added to activations: F32.
  ggml_tensor* vector(const std::string& name, const std::vector<int64_t>& expected);

  Failure finish();
  const Failure& failure() const { return failure_; }
  size_t bytes() const;

 private:
  struct Entry {
    size_t source;
    const stcpp::TensorInfo* info;
  };
  const Entry* find(const std::string& name) const;
  const Entry* check(const std::string& name, const std::vector<int64_t>& expected);
  ggml_tensor* keep(ggml_tensor* t, const Entry& e);

  std::vector<std::unique_ptr<stcpp::WeightStore>> stores_;
  std::unordered_map<std::string, Entry> index_;
  ggml_backend_buffer_type_t device_ = nullptr;
  std::string f32_prefix_;  // empty: none
  Failure failure_;
};

}  // namespace dcpp
