// What a text model will need in memory before it is loaded, and what the machine has free, so
// that a load that cannot fit is refused (OOM_RAM) instead of getting the process killed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "core/model_registry.h"

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

struct MemoryEstimate {
  uint64_t weights = 0;   // the weight files' sizes
  uint64_t kv_cache = 0;  // layers x ctx x parallel x (K + V width) x bytes per value
  uint64_t compute = 0;   // compute buffers, logits, scratch
  uint64_t total() const { return weights + kv_cache + compute; }
};

uint64_t kv_cache_bytes(const ModelShape& shape, int ctx_per_sequence, int sequences,
                        int bytes_per_value);
// A fixed 64 MiB plus one batch of logits and activations (n_batch tokens).
uint64_t compute_margin_bytes(const ModelShape& shape, int n_batch);

// Reads the shape from GGUF metadata (llama.cpp's `<arch>.*` keys) or a Hugging Face
// config.json (top level or `text_config`); nullopt when it cannot be read.
std::optional<ModelShape> read_gguf_shape(const std::filesystem::path& gguf_file);
std::optional<ModelShape> read_hf_config_shape(const std::filesystem::path& config_json);

// Weights from file sizes plus KV and compute from the shape; when the shape is unreadable the
// estimate is the weights alone (the load itself will then report what is wrong).
MemoryEstimate estimate_text_model(ModelFormat format, const std::filesystem::path& file,
                                   int ctx_per_sequence, int sequences, int bytes_per_value);

// MemAvailable from /proc/meminfo (or another file in its format), in bytes.
std::optional<uint64_t> available_memory_bytes(const std::string& meminfo = "/proc/meminfo");

// "8G", "512M", "1.5GiB", "1024" → bytes (K/M/G/T are powers of 1024). False on anything else.
bool parse_byte_size(const std::string& text, uint64_t* bytes);
std::string format_bytes(uint64_t bytes);  // "1.50 GiB"

}  // namespace allm
