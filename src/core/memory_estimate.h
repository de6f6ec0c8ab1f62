// What a model (text, whisper or diffusion) will need in memory before it is loaded, and what the
// machine has free, so that a load that cannot fit is refused (OOM_RAM / OOM_VRAM) instead of
// getting the process killed.
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

// How an engine uses GPUs when ggml has a GPU backend: llama.cpp offloads every layer and
// splits them over all GPUs; whisper.cpp runs on the first; diffusion.cpp and safetensors.cpp
// run on the CPU.
enum class GpuUse { NONE, ALL_GPUS, FIRST_GPU };

struct MemoryEstimate {
  uint64_t weights = 0;   // the weight files' sizes
  uint64_t kv_cache = 0;  // layers x ctx x parallel x (K + V width) x bytes per value
  uint64_t compute = 0;   // compute buffers, logits, scratch, activations
  GpuUse gpu = GpuUse::NONE;
  std::string note;  // what the estimate assumed, e.g. "for 2 transcriptions at once"
  uint64_t total() const { return weights + kv_cache + compute; }
  // "weights 1.2 GiB, KV cache 512.0 MiB, compute 80.0 MiB, for ..." (zero parts left out).
  std::string breakdown() const;
};

uint64_t kv_cache_bytes(const ModelShape& shape, int ctx_per_sequence, int sequences,
                        int bytes_per_value);
// A fixed 64 MiB plus one batch of logits and activations (n_batch tokens).
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
// Weights as text_weights_bytes plus KV and compute from the shape; when the shape is
// unreadable the estimate is the weights alone (the load itself will then report what is wrong).
MemoryEstimate estimate_text_model(ModelFormat format, const std::filesystem::path& file,
                                   int ctx_per_sequence, int sequences, int bytes_per_value,
                                   Quantization quantization = Quantization::NONE);

// A whisper ggml `.bin` file's hyperparameters (the header after the magic).
struct WhisperShape {
  int vocab = 0, audio_ctx = 0, audio_state = 0, audio_head = 0, audio_layers = 0;
  int text_ctx = 0, text_state = 0, text_head = 0, text_layers = 0, mels = 0, ftype = 0;
};
std::optional<WhisperShape> read_whisper_shape(const std::filesystem::path& bin_file);

// whisper.cpp: the weights plus, per transcription running at once (each in a whisper state of
// its own), the self-attention KV cache as large as best_of decoders make it, the
// cross-attention cache, the logits and the compute buffers (conv, encoder, decoder).
struct WhisperStateBytes {
  uint64_t caches = 0;   // self- and cross-attention KV caches
  uint64_t buffers = 0;  // logits and compute buffers
};
WhisperStateBytes whisper_state_bytes(const WhisperShape& shape);
MemoryEstimate estimate_whisper_model(const std::filesystem::path& bin_file, int jobs);

// What sizes a Stable Diffusion checkpoint's activations, from its tensors' shapes.
struct ConvKernel {
  int64_t in_channels = 0;
  int column_bytes = 4;  // im2col columns take the kernel's type: F16 or F32
};
struct DiffusionShape {
  ConvKernel vae_full_resolution;  // the widest VAE decoder convolution at the image's size
  ConvKernel unet_widest;          // the widest UNet convolution
  int vae_factor = 8;              // image pixels per latent pixel, per side
};
// From a single-file checkpoint (LDM names) or a diffusers folder (unet/, vae/); only the
// safetensors headers are read.
std::optional<DiffusionShape> read_diffusion_shape(const std::filesystem::path& checkpoint);
// The compute buffer's peak for one width x height image.
uint64_t diffusion_activation_bytes(const DiffusionShape& shape, int width, int height);

// diffusion.cpp: the checkpoint's weights plus the activations of a `max_side` x `max_side`
// image (the VAE decoder at full resolution or the UNet at the latent one, read from the
// checkpoint's header). Unreadable headers leave the weights alone, as for text models.
MemoryEstimate estimate_diffusion_model(const std::filesystem::path& checkpoint, int max_side);

// MemAvailable from /proc/meminfo (or another file in its format), in bytes.
std::optional<uint64_t> available_memory_bytes(const std::string& meminfo = "/proc/meminfo");

// "8G", "512M", "1.5GiB", "1024" → bytes (K/M/G/T are powers of 1024). False on anything else.
bool parse_byte_size(const std::string& text, uint64_t* bytes);
std::string format_bytes(uint64_t bytes);  // "1.50 GiB"

}  // namespace allm
