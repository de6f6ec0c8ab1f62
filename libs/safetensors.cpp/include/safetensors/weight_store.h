// Model weights as ggml tensors. Matrices point straight into the memory-mapped checkpoint
// (a Hugging Face Linear weight [out, in] is already ggml's [in, out] layout); small vectors
// (norms, biases) are converted to F32 once, since ggml's element-wise ops want F32. With quantize
// on load, the projection matrices and the output head are quantized into owned memory instead
// (repacked for the CPU's kernels where ggml has a layout for them).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "safetensors/checkpoint.h"
#include "safetensors/failure.h"

namespace stcpp {

// A tensor shape for messages: "[4096, 11008]".
std::string shape_text(const std::vector<int64_t>& shape);

// Quantize on load: the ggml type of the projection matrices (GGML_TYPE_COUNT: as stored) and
// the threads that quantize them (and that convert other weights computed at load).
struct QuantizeOptions {
  ggml_type type = GGML_TYPE_COUNT;
  int n_threads = 1;
};

// The type llama.cpp's quantizer gives the output head (and embeddings tied to it) when the
// matrices get `type`: Q8_0 when they are Q8_0 or the row width does not fit `type`'s blocks,
// else Q6_K, or Q8_0 when the width does not fit Q6_K's 256-value blocks.
ggml_type output_head_type(ggml_type type, int64_t row_width);

// Where the weights go: each decoder layer to its device's buffer type (`layers[l]`; null: host
// memory), and the tensors outside the layers (final norm, output head, rope factors), like
// layers past the end of `layers`, to `other`. The token embeddings (looked up by row) always
// stay in host memory.
struct WeightPlacement {
  std::vector<ggml_backend_buffer_type_t> layers;
  ggml_backend_buffer_type_t other = nullptr;
  // Matrix-product weights computed here (quantized on load, MXFP4 experts) that stay in host
  // memory go, as llama.cpp places them, to the first of the CPU's extra buffer types that takes
  // them: ggml's repacked layouts (interleaved blocks, e.g. Q4_0 8x8 on AVX2) for its faster
  // quantized kernels. Their bytes are then no longer the plain ggml blocks.
  bool cpu_repack = true;
};

// The decoder layer a tensor name belongs to ("model.layers.12.mlp..." → 12); -1 for none.
int layer_of(const std::string& name);

class WeightStore {
 public:
  // Writes ggml rows [first_row, first_row + n_rows) of a computed tensor (its rows over every
  // dimension above the first) to `rows`; called on several threads at once for other rows.
  using Fill = std::function<void(uint8_t* rows, int64_t first_row, int64_t n_rows)>;

  WeightStore(const Checkpoint& checkpoint, size_t max_tensors, QuantizeOptions quantize = {},
              WeightPlacement placement = {});
  ~WeightStore();

  // A projection matrix with the expected Hugging Face shape (outermost first), quantized when
  // the store quantizes; null and a failure when it is absent or shaped otherwise. Optional
  // tensors that are absent give null, no failure.
  ggml_tensor* matrix(const std::string& name, std::vector<int64_t> shape, bool required = true);
  // The token embeddings, only looked up by row: kept as stored.
  ggml_tensor* embeddings(const std::string& name, std::vector<int64_t> shape);
  // The output head, quantized to output_head_type; `tied`: the token embeddings too, looked up
  // by row, so never in a repacked layout (ggml's repacked types take only matrix products).
  ggml_tensor* output_head(const std::string& name, std::vector<int64_t> shape, bool tied = false);
  ggml_tensor* vector_f32(const std::string& name, std::vector<int64_t> shape,
                          bool required = true);
  // A norm weight stored as w and applied as 1 + w (gemma's RMSNorm, nemotron's LayerNorm1P).
  ggml_tensor* norm_plus_one(const std::string& name, std::vector<int64_t> shape);
  // An F32 tensor computed here (e.g. rope frequency factors).
  ggml_tensor* new_f32(const std::string& name, const std::vector<float>& values);
  bool has(const std::string& name) const { return checkpoint_.find(name) != nullptr; }
  // The stored tensor itself, checked for shape and dtype, for architectures that repack a
  // packed format (gpt-oss MXFP4 blocks and scales); null and a failure otherwise.
  const TensorInfo* raw(const std::string& name, const std::vector<int64_t>& shape, Dtype dtype);
  // A tensor's values as F32 (checked shape), for architectures that rearrange them.
  std::vector<float> values_f32(const std::string& name, const std::vector<int64_t>& shape);
  // An owned tensor of any type and ggml shape `ne` whose bytes `fill` writes once the owned
  // buffer exists (in finish), so a repacked layout is built in place without a second copy.
  // `sources`: the stored tensors it reads, whose mapped pages are dropped once it is filled.
  ggml_tensor* new_computed(const std::string& name, ggml_type type, const std::vector<int64_t>& ne,
                            Fill fill, std::vector<const TensorInfo*> sources = {});
  // new_computed for a tensor used only as the weight of ggml_mul_mat (2-D) or ggml_mul_mat_id
  // (3-D), which may then be repacked (WeightPlacement::cpu_repack).
  ggml_tensor* new_computed_weight(const std::string& name, ggml_type type,
                                   const std::vector<int64_t>& ne, Fill fill,
                                   std::vector<const TensorInfo*> sources = {});

  // Allocates the converted tensors and the device's, and uploads the device's weights (from
  // the mapping, tensor by tensor, whose pages are then released); call once after every lookup.
  Failure finish();
  const Failure& failure() const { return failure_; }
  // The weights' size in memory: the files, less the quantized matrices' sources, plus the owned
  // tensors. Known before finish() (nothing is read to compute it).
  size_t bytes() const;
  // Of those, the bytes on devices (0 without one).
  size_t device_bytes() const;
  // What quantize on load did, for the log: "" when the store does not quantize.
  std::string quantization_summary() const;

 private:
  // A computed tensor waiting for its buffer: what fills it, from which stored tensors.
  struct PendingFill {
    ggml_tensor* tensor;
    Fill fill;
    std::vector<const TensorInfo*> sources;
  };
  // Tensors of one buffer type: their context and, after finish, their buffer.
  struct TypedWeights {
    ggml_backend_buffer_type_t type;
    ggml_context* ctx;
    ggml_backend_buffer_t buffer;
  };

  const TensorInfo* lookup(const std::string& name, const std::vector<int64_t>& shape,
                           bool required);
  ggml_tensor* new_tensor(ggml_context* ctx, ggml_type type, const std::vector<int64_t>& shape,
                          const std::string& name);
  // The device buffer type the tensor `name` goes to; null: host memory.
  ggml_backend_buffer_type_t device_of(const std::string& name) const;
  // The context of `type`'s tensors in `contexts`, made on first use.
  ggml_context* typed_context(std::vector<TypedWeights>* contexts, ggml_backend_buffer_type_t type);
  // The context of the tensors for `device`, made on first use.
  ggml_context* device_context(ggml_backend_buffer_type_t device);
  // Whether `t` lies in a CPU extra buffer type's (repacked) buffer.
  bool is_repacked(const ggml_tensor* t) const;
  // A staging copy reused from tensor to tensor, grown as needed and never zeroed (a fill
  // writes every byte).
  struct Staging {
    std::unique_ptr<uint8_t[]> data;
    size_t bytes = 0;
    uint8_t* at_least(size_t n) {
      if (n > bytes) data.reset(new uint8_t[bytes = n]);
      return data.get();
    }
  };
  // Writes a computed tensor's bytes into its buffer (through `whole` when it must be set at
  // once), then drops its sources' pages.
  void fill_computed(const PendingFill& pending, Staging* whole);
  // Where a tensor computed here goes: its device's context or the host's.
  ggml_context* owned_context(const std::string& name);
  // Where a matrix-product weight computed here goes: owned_context, or for a host tensor the
  // context of a CPU extra buffer type that takes it.
  ggml_context* weight_context(const std::string& name, ggml_type type,
                               const std::vector<int64_t>& ne);
  ggml_tensor* add_computed(ggml_context* ctx, const std::string& name, ggml_type type,
                            const std::vector<int64_t>& ne, Fill fill,
                            std::vector<const TensorInfo*> sources);
  // The stored tensor: on the device (uploaded at finish) unless `host` or placed on the host,
  // where it is the mapping itself.
  ggml_tensor* mapped(const TensorInfo& info, const std::string& name, bool host = false);
  // `info` quantized to `type`, or as stored when its rows do not fit `type`'s blocks.
  ggml_tensor* quantized(const TensorInfo& info, const std::string& name, ggml_type type,
                         bool repackable = true);
  const TensorInfo* float_matrix(const std::string& name, const std::vector<int64_t>& shape,
                                 bool required);

  const Checkpoint& checkpoint_;
  ggml_context* mapped_ctx_;  // tensors whose data is the mapping
  ggml_context* owned_ctx_;   // converted or computed tensors
  std::vector<ggml_backend_buffer_t> file_buffers_;
  ggml_backend_buffer_t owned_buffer_ = nullptr;
  // Per device: its tensors (stored or computed) and, after finish, their buffer.
  std::vector<TypedWeights> devices_;
  std::vector<TypedWeights> repacked_;  // host memory, per CPU extra buffer type
  // The CPU's extra buffer types, looked up once (empty unless WeightPlacement::cpu_repack).
  std::vector<ggml_backend_buffer_type_t> cpu_extra_types_;
  size_t max_tensors_;
  WeightPlacement placement_;
  // Stored tensors waiting to be uploaded to the device.
  std::vector<std::pair<ggml_tensor*, const TensorInfo*>> uploads_;
  size_t uploaded_bytes_ = 0;
  // Stored tensors computed from in the mapping, whose pages finish() maps in.
  std::vector<const TensorInfo*> prefetches_;
  // Converted data waiting for the owned buffers: F32 values (read in finish, after the
  // prefetch) and fills.
  std::vector<std::pair<ggml_tensor*, std::function<std::vector<float>()>>> pending_;
  std::vector<PendingFill> pending_fills_;
  Failure failure_;
  QuantizeOptions quantize_;
  size_t quantized_source_bytes_ = 0;  // the stored data of the quantized matrices
  std::vector<ggml_tensor*> quantized_;
  std::vector<std::string> unquantized_;  // matrices whose rows fit no block
};

}  // namespace stcpp
