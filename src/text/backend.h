// What the scheduler needs from an inference library: tokens in, logits out, per-sequence
// cache control. llama.cpp implements it now; safetensors.cpp plugs in the same way.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "text/quantization.h"

namespace allm {

using Token = int32_t;

struct BackendParams {
  int ctx_per_sequence = 4096;  // context length each sequence may use
  int sequences = 4;            // sequences decoded together in one batch
  int threads = 0;              // 0: the library's default
  // Exact-arithmetic settings for parity checks: F32 KV cache (and no flash attention in
  // llama.cpp; safetensors.cpp uses it on either cache).
  bool f32_cache = false;
  Quantization quantization = Quantization::NONE;  // safetensors.cpp: quantize on load
  // GPU offload, as llama.cpp counts it: decoder layers on the GPU from the last one (-1: all of
  // them and the output; 0: none), on the ggml device named `device` ("": the first GPU).
  int gpu_layers = -1;
  std::string device;
  std::vector<float> tensor_split;  // each device's share of those layers (empty: free memory)
};

// The part of a loaded model one device holds, in blocks as llama.cpp counts them: decoder
// layers, plus 1 for the output head.
struct DeviceLayers {
  std::string device;  // ggml's name: "CPU", "CUDA0", "RPC1", ...
  int layers = 0;
};

inline std::vector<std::string> device_names(const std::vector<DeviceLayers>& devices) {
  std::vector<std::string> names;
  for (const DeviceLayers& d : devices) names.push_back(d.device);
  return names;
}

// One entry of a decode batch.
struct BatchToken {
  Token token;
  int position;
  int sequence;
  bool want_logits;
};

class TextBackend {
 public:
  virtual ~TextBackend() = default;

  virtual std::vector<Token> tokenize(const std::string& text, bool add_bos) const = 0;
  virtual std::string token_bytes(Token token) const = 0;  // raw bytes, may be partial UTF-8
  virtual bool is_end_of_generation(Token token) const = 0;
  virtual int vocab_size() const = 0;
  virtual int context_per_sequence() const = 0;
  virtual int max_sequences() const = 0;
  virtual int max_batch() const = 0;
  virtual bool adds_bos() const = 0;  // whether prompts start with the bos token

  // Chat formatting inputs: the model's Jinja template and its bos/eos token text.
  virtual std::string chat_template() const = 0;
  virtual std::string bos_text() const = 0;
  virtual std::string eos_text() const = 0;

  // Decodes the batch; afterwards logits(i) is valid for every entry i that wanted logits.
  virtual Error decode(const std::vector<BatchToken>& batch) = 0;
  virtual const float* logits(int batch_index) = 0;
  virtual void clear_sequence(int sequence) = 0;
  // Keeps positions [0, from_position) of the sequence's cache and drops the rest, so that a new
  // prompt sharing that prefix continues at from_position (prefix reuse).
  virtual void trim_sequence(int sequence, int from_position) = 0;
  // Positions [0, length) of `to` become a copy of `from`'s cache and `to` holds nothing after
  // them (a prefix another sequence computed, such as a shared system prompt). False, with `to`
  // untouched, where the model's memory cannot be copied so (recurrent state).
  virtual bool copy_prefix(int from, int to, int length) = 0;
  // Approximate bytes the loaded model holds (weights + cache), for metrics and budgets.
  virtual size_t memory_bytes() const = 0;
  // Where the model runs, for the load log ("" when the engine logs it itself).
  virtual std::string placement() const { return ""; }

  // Sentence embeddings, one vector per input (token ids, each 1 to context_per_sequence()
  // long), pooled as the model declares and L2-normalised where normalizes_embeddings().
  // Inputs share batches. They run on a context of their own, made on first use, beside the one
  // decode() uses: callable from any thread, concurrently with decode(); calls wait for each
  // other.
  virtual Error embed(const std::vector<std::vector<Token>>& inputs,
                      std::vector<std::vector<float>>* vectors) {
    (void)inputs, (void)vectors;
    return make_error(ErrorCode::UNSUPPORTED, "this model gives no embeddings");
  }
  virtual bool normalizes_embeddings() const { return false; }
  // The devices holding the model's blocks (the CPU first, then the offload devices in order;
  // devices given no block are left out; empty: the engine does not say).
  virtual std::vector<DeviceLayers> devices() const { return {}; }
  // False once a device holding part of the model is gone (an RPC worker lost): decodes then
  // fail, and the model must be loaded again.
  virtual bool healthy() const { return true; }
};

// Opens a GGUF file with llama.cpp. Corrupt files → MODEL_CORRUPT / LOAD_FAILED.
std::unique_ptr<TextBackend> open_llama_backend(const std::string& gguf_path,
                                                const BackendParams& params, Error* error);
// Opens a Hugging Face folder with safetensors.cpp.
std::unique_ptr<TextBackend> open_safetensors_backend(const std::string& path,
                                                      const BackendParams& params, Error* error);
// What a Hugging Face folder's weights take in memory once loaded with `quantization`, from its
// config.json and safetensors headers; nullopt when safetensors.cpp cannot load it.
std::optional<uint64_t> safetensors_weights_bytes(const std::string& path,
                                                  Quantization quantization);

}  // namespace allm
