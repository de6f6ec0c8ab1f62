// The key/value cache: per layer, one row per (sequence, position) cell. Sequence s owns the
// cells [s * ctx_per_seq, (s + 1) * ctx_per_seq), so a token's cell is fixed by its position.
// Each layer's cache lives where its weights do (host memory or a device's).
#pragma once

#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "safetensors/failure.h"

namespace stcpp {

class KvCache {
 public:
  KvCache() = default;
  ~KvCache();
  // `layer_buffer_type[l]`: where layer l's cache goes.
  Failure init(const std::vector<ggml_backend_buffer_type_t>& layer_buffer_type, int64_t k_row,
               int64_t v_row, int ctx_per_seq, int n_seq, ggml_type type);

  ggml_tensor* k(int layer) const { return k_[layer]; }
  ggml_tensor* v(int layer) const { return v_[layer]; }
  int ctx_per_seq() const { return ctx_per_seq_; }
  int n_seq() const { return static_cast<int>(length_.size()); }
  int length(int seq) const { return length_[seq]; }
  void set_length(int seq, int length) { length_[seq] = length; }
  // Positions [0, length) of `to` become those of `from`, and `to` holds nothing after them.
  void copy_prefix(int from, int to, int length);
  size_t bytes() const;

 private:
  // One context and buffer per buffer type.
  std::vector<ggml_context*> contexts_;
  std::vector<ggml_backend_buffer_t> buffers_;
  std::vector<ggml_tensor*> k_, v_;
  std::vector<int> length_;  // tokens held per sequence
  int ctx_per_seq_ = 0;
};

}  // namespace stcpp
