// What loading a model will need in memory: the answer each engine layer gives for its own
// formats (text/text_memory.h, audio/whisper_memory.h, image/diffusion_memory.h), which core's
// memory plan weighs against the budgets and what the machine has free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace allm {

// How an engine uses GPUs when ggml has a GPU backend: llama.cpp and safetensors.cpp offload
// every layer and split them over all GPUs (or --device's); whisper.cpp and diffusion.cpp run on
// one.
enum class GpuUse { NONE, ALL_GPUS, FIRST_GPU };

struct MemoryEstimate {
  uint64_t weights = 0;   // the weight files' sizes
  uint64_t kv_cache = 0;  // layers x ctx x sequences x (K + V width) x bytes per value
  uint64_t compute = 0;   // compute buffers, logits, scratch, activations
  GpuUse gpu = GpuUse::NONE;
  std::string note;  // what the estimate assumed, e.g. "for 2 transcriptions at once"
  uint64_t total() const { return weights + kv_cache + compute; }
  // "weights 1.2 GiB, KV cache 512.0 MiB, compute 80.0 MiB, for ..." (zero parts left out).
  std::string breakdown() const;
};

// A file's size; 0 when it cannot be read (the load itself will then report what is wrong).
uint64_t file_size_or_zero(const std::filesystem::path& path);

}  // namespace allm
