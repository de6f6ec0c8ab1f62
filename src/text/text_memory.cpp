#include "text/text_memory.h"

#include <fstream>

#include "gguf.h"
#include "nlohmann/json.hpp"
#include "text/backend.h"

namespace allm {

namespace fs = std::filesystem;

namespace {

// An integer metadata value of any integer type; for an array (per-layer values, e.g.
// head_count_kv in some models) the largest element.
std::optional<int64_t> gguf_int(const gguf_context* ctx, const std::string& key) {
  const int64_t id = gguf_find_key(ctx, key.c_str());
  if (id < 0) return std::nullopt;
  auto scalar = [&](gguf_type type, const void* data) -> std::optional<int64_t> {
    switch (type) {
      case GGUF_TYPE_UINT8: return *static_cast<const uint8_t*>(data);
      case GGUF_TYPE_INT8: return *static_cast<const int8_t*>(data);
      case GGUF_TYPE_UINT16: return *static_cast<const uint16_t*>(data);
      case GGUF_TYPE_INT16: return *static_cast<const int16_t*>(data);
      case GGUF_TYPE_UINT32: return *static_cast<const uint32_t*>(data);
      case GGUF_TYPE_INT32: return *static_cast<const int32_t*>(data);
      case GGUF_TYPE_UINT64: return static_cast<int64_t>(*static_cast<const uint64_t*>(data));
      case GGUF_TYPE_INT64: return *static_cast<const int64_t*>(data);
      default: return std::nullopt;
    }
  };
  const gguf_type type = gguf_get_kv_type(ctx, id);
  if (type != GGUF_TYPE_ARRAY) return scalar(type, gguf_get_val_data(ctx, id));
  const gguf_type element = gguf_get_arr_type(ctx, id);
  if (element == GGUF_TYPE_STRING) return std::nullopt;
  const size_t n = gguf_get_arr_n(ctx, id);
  size_t size = 0;
  switch (element) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8: size = 1; break;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16: size = 2; break;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32: size = 4; break;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64: size = 8; break;
    default: return std::nullopt;
  }
  const auto* data = static_cast<const uint8_t*>(gguf_get_arr_data(ctx, id));
  std::optional<int64_t> best;
  for (size_t i = 0; i < n; ++i) {
    auto v = scalar(element, data + i * size);
    if (v && (!best || *v > *best)) best = v;
  }
  return best;
}

int json_int(const nlohmann::json& config, const char* key, int fallback) {
  auto it = config.find(key);
  return it != config.end() && it->is_number_integer() ? it->get<int>() : fallback;
}

bool is_safetensors_file(const fs::path& path) {
  const std::string name = path.filename().string();
  return name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0;
}

uint64_t safetensors_bytes(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return file_size_or_zero(path);
  uint64_t total = 0;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    if (is_safetensors_file(entry.path())) total += file_size_or_zero(entry.path());
  }
  return total;
}

}  // namespace

uint64_t kv_cache_bytes(const ModelShape& shape, int ctx_per_sequence, int sequences,
                        int bytes_per_value) {
  const uint64_t width = static_cast<uint64_t>(shape.kv_heads) *
                         static_cast<uint64_t>(shape.head_dim_k + shape.head_dim_v);
  return static_cast<uint64_t>(shape.layers) * static_cast<uint64_t>(ctx_per_sequence) *
         static_cast<uint64_t>(sequences) * width * static_cast<uint64_t>(bytes_per_value);
}

uint64_t batch_activation_bytes(const ModelShape& shape, int n_batch) {
  const uint64_t per_token = static_cast<uint64_t>(shape.vocab) + 8ull * shape.embedding;
  return static_cast<uint64_t>(n_batch) * per_token * sizeof(float);
}

uint64_t compute_margin_bytes(const ModelShape& shape, int n_batch) {
  return (64ull << 20) + batch_activation_bytes(shape, n_batch);
}

std::optional<ModelShape> read_gguf_shape(const fs::path& gguf_file) {
  gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
  gguf_context* ctx = gguf_init_from_file(gguf_file.c_str(), params);
  if (!ctx) return std::nullopt;
  std::optional<ModelShape> out;
  const int64_t arch_id = gguf_find_key(ctx, "general.architecture");
  if (arch_id >= 0 && gguf_get_kv_type(ctx, arch_id) == GGUF_TYPE_STRING) {
    const std::string arch = gguf_get_val_str(ctx, arch_id);
    auto get = [&](const char* suffix) { return gguf_int(ctx, arch + "." + suffix); };
    const auto layers = get("block_count");
    const auto embd = get("embedding_length");
    const auto heads = get("attention.head_count");
    if (layers && embd && heads && *heads > 0) {
      ModelShape shape;
      shape.layers = static_cast<int>(*layers);
      shape.embedding = static_cast<int>(*embd);
      shape.kv_heads = static_cast<int>(get("attention.head_count_kv").value_or(*heads));
      const int64_t head_dim = *embd / *heads;
      shape.head_dim_k = static_cast<int>(get("attention.key_length").value_or(head_dim));
      shape.head_dim_v = static_cast<int>(get("attention.value_length").value_or(head_dim));
      const int64_t tokens = gguf_find_key(ctx, "tokenizer.ggml.tokens");
      shape.vocab = static_cast<int>(
          get("vocab_size")
              .value_or(tokens >= 0 ? static_cast<int64_t>(gguf_get_arr_n(ctx, tokens)) : 0));
      out = shape;
    }
  }
  gguf_free(ctx);
  return out;
}

std::optional<ModelShape> read_hf_config_shape(const fs::path& config_json) {
  std::ifstream in(config_json);
  if (!in) return std::nullopt;
  nlohmann::json config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return std::nullopt;
  if (!config.contains("num_hidden_layers") && config.contains("text_config") &&
      config["text_config"].is_object()) {
    config = config["text_config"];
  }
  ModelShape shape;
  shape.layers = json_int(config, "num_hidden_layers", 0);
  shape.embedding = json_int(config, "hidden_size", 0);
  const int heads = json_int(config, "num_attention_heads", 0);
  if (shape.layers <= 0 || shape.embedding <= 0 || heads <= 0) return std::nullopt;
  shape.kv_heads = json_int(config, "num_key_value_heads", heads);
  shape.head_dim_k = shape.head_dim_v = json_int(config, "head_dim", shape.embedding / heads);
  shape.vocab = json_int(config, "vocab_size", 0);
  return shape;
}

uint64_t text_weights_bytes(ModelFormat format, const fs::path& file, Quantization quantization) {
  if (format == ModelFormat::GGUF) return file_size_or_zero(file);
  return safetensors_weights_bytes(file.string(), quantization).value_or(safetensors_bytes(file));
}

MemoryEstimate estimate_text_model(ModelFormat format, const fs::path& file, int ctx_per_sequence,
                                   int sequences, int bytes_per_value, Quantization quantization,
                                   bool offload) {
  MemoryEstimate estimate;
  estimate.weights = text_weights_bytes(format, file, quantization);
  std::optional<ModelShape> shape;
  if (offload) estimate.gpu = GpuUse::ALL_GPUS;  // both engines split the layers over the GPUs
  if (format == ModelFormat::GGUF) {
    shape = read_gguf_shape(file);
  } else {
    const fs::path folder = fs::is_directory(file) ? file : file.parent_path();
    shape = read_hf_config_shape(folder / "config.json");
  }
  if (shape) {
    // The embedding context, made on the first embeddings request, is counted from the start:
    // its cache (llama.cpp's holds one sequence's worth of cells that its packed inputs share,
    // safetensors.cpp's as many sequences as generation) and a batch of its own.
    const int embedding_sequences = format == ModelFormat::GGUF ? 1 : sequences;
    estimate.kv_cache =
        kv_cache_bytes(*shape, ctx_per_sequence, sequences + embedding_sequences, bytes_per_value);
    estimate.compute = compute_margin_bytes(*shape, 512) + batch_activation_bytes(*shape, 512);
  }
  return estimate;
}

}  // namespace allm
