// What loading a text model will need: its weights (a GGUF's file, or what safetensors.cpp will
// hold), the KV cache and compute buffers sized by the dimensions its GGUF metadata or
// config.json give.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "base/memory_estimate.h"
#include "text/model_format.h"
#include "text/quantization.h"

namespace allm {

// The dimensions that size the KV cache and the compute buffers.
struct ModelShape {
  int layers = 0;
  int kv_heads = 0;
  int head_dim_k = 0;
  int head_dim_v = 0;
  int embedding = 0;
  int vocab = 0;
};

uint64_t kv_cache_bytes(const ModelShape& shape, int ctx_per_sequence, int sequences,
                        int bytes_per_value);
// One batch of logits and activations (n_batch tokens).
uint64_t batch_activation_bytes(const ModelShape& shape, int n_batch);
// A fixed 64 MiB plus batch_activation_bytes.
uint64_t compute_margin_bytes(const ModelShape& shape, int n_batch);

// Reads the shape from GGUF metadata (llama.cpp's `<arch>.*` keys) or a Hugging Face
// config.json (top level or `text_config`); nullopt when it cannot be read.
std::optional<ModelShape> read_gguf_shape(const std::filesystem::path& gguf_file);
std::optional<ModelShape> read_hf_config_shape(const std::filesystem::path& config_json);

// What a text model's weights take in memory: a GGUF's file size; for safetensors what
// safetensors.cpp will hold, with the matrices quantized on load at their quantized size (the
// files' sizes when safetensors.cpp cannot read the model).
uint64_t text_weights_bytes(ModelFormat format, const std::filesystem::path& file,
                            Quantization quantization);
// Weights as text_weights_bytes plus KV and compute from the shape, for the generation context
// and the embedding context beside it (TextBackend::embed); when the shape is
// unreadable the estimate is the weights alone (the load itself will then report what is wrong).
// With `offload`, the model goes to the GPUs when there are some (both engines split the layers
// over them).
MemoryEstimate estimate_text_model(ModelFormat format, const std::filesystem::path& file,
                                   int ctx_per_sequence, int sequences, int bytes_per_value,
                                   Quantization quantization = Quantization::NONE,
                                   bool offload = true);

}  // namespace allm
