#include "core/memory_estimate.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

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

uint64_t file_size_or_zero(const fs::path& path) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  return ec ? 0 : size;
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

// The JSON header of a .safetensors file (tensor name -> dtype, shape, offsets); null when it
// cannot be read. Only the header is read.
nlohmann::json read_safetensors_header(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  uint64_t size = 0;
  if (file.empty() || !in.read(reinterpret_cast<char*>(&size), sizeof size) || size == 0 ||
      size > (256u << 20)) {
    return nullptr;
  }
  std::string text(size, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) return nullptr;
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// A diffusers component folder's weights: its largest .safetensors file (an F32 and an F16
// variant may lie side by side); empty when there is none.
fs::path largest_safetensors(const fs::path& folder) {
  fs::path best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (is_safetensors_file(entry.path()) &&
        (best.empty() || file_size_or_zero(entry.path()) > file_size_or_zero(best))) {
      best = entry.path();
    }
  }
  return best;
}

// A 3x3 convolution kernel [out, in, 3, 3] named in the header; nullopt otherwise.
std::optional<ConvKernel> conv_kernel(const nlohmann::json& tensor) {
  if (!tensor.is_object() || !tensor.contains("shape") || !tensor["shape"].is_array()) {
    return std::nullopt;
  }
  const nlohmann::json& shape = tensor["shape"];
  if (shape.size() != 4 || !shape[1].is_number_integer() || shape[2] != 3 || shape[3] != 3) {
    return std::nullopt;
  }
  const bool f16 = tensor.contains("dtype") && tensor["dtype"] == "F16";
  return ConvKernel{shape[1].get<int64_t>(), f16 ? 2 : 4};
}

// The widest 3x3 convolution among the tensors whose names start with `prefix`, or that are
// named `exact`.
std::optional<ConvKernel> widest_conv(const nlohmann::json& header, const std::string& prefix,
                                      const std::string& exact = "") {
  std::optional<ConvKernel> widest;
  for (const auto& [name, tensor] : header.items()) {
    if (name.compare(0, prefix.size(), prefix) != 0 && name != exact) continue;
    const auto kernel = conv_kernel(tensor);
    if (kernel && (!widest || kernel->in_channels > widest->in_channels)) widest = kernel;
  }
  return widest;
}

// How a checkpoint names the VAE decoder's levels.
struct DecoderNames {
  std::string levels;     // "<levels>N." prefixes level N
  bool full_res_first;    // level 0 works at the image's resolution (LDM); else the last does
  std::string upsampler;  // the upsampling convolution within a level
};

std::optional<DiffusionShape> diffusion_shape(const nlohmann::json& unet,
                                              const std::string& unet_prefix,
                                              const nlohmann::json& vae,
                                              const DecoderNames& names) {
  if (!unet.is_object() || !vae.is_object()) return std::nullopt;
  int levels = 0;
  for (const auto& [name, tensor] : vae.items()) {
    if (name.compare(0, names.levels.size(), names.levels) != 0) continue;
    levels = std::max(levels, std::atoi(name.c_str() + names.levels.size()) + 1);
  }
  if (levels < 2) return std::nullopt;
  const int full = names.full_res_first ? 0 : levels - 1;
  const int before = names.full_res_first ? 1 : levels - 2;  // upsamples into `full`
  const auto vae_conv = widest_conv(vae, names.levels + std::to_string(full) + ".",
                                    names.levels + std::to_string(before) + "." + names.upsampler);
  const auto unet_conv = widest_conv(unet, unet_prefix);
  if (!vae_conv || !unet_conv) return std::nullopt;
  DiffusionShape shape;
  shape.vae_full_resolution = *vae_conv;
  shape.unet_widest = *unet_conv;
  shape.vae_factor = 1 << (levels - 1);
  return shape;
}

}  // namespace

uint64_t kv_cache_bytes(const ModelShape& shape, int ctx_per_sequence, int sequences,
                        int bytes_per_value) {
  const uint64_t width = static_cast<uint64_t>(shape.kv_heads) *
                         static_cast<uint64_t>(shape.head_dim_k + shape.head_dim_v);
  return static_cast<uint64_t>(shape.layers) * static_cast<uint64_t>(ctx_per_sequence) *
         static_cast<uint64_t>(sequences) * width * static_cast<uint64_t>(bytes_per_value);
}

uint64_t compute_margin_bytes(const ModelShape& shape, int n_batch) {
  const uint64_t per_token = static_cast<uint64_t>(shape.vocab) + 8ull * shape.embedding;
  return (64ull << 20) + static_cast<uint64_t>(n_batch) * per_token * sizeof(float);
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
                                   int sequences, int bytes_per_value, Quantization quantization) {
  MemoryEstimate estimate;
  estimate.weights = text_weights_bytes(format, file, quantization);
  std::optional<ModelShape> shape;
  if (format == ModelFormat::GGUF) {
    estimate.gpu = GpuUse::ALL_GPUS;  // llama.cpp's default: every layer on the GPUs
    shape = read_gguf_shape(file);
  } else {
    const fs::path folder = fs::is_directory(file) ? file : file.parent_path();
    shape = read_hf_config_shape(folder / "config.json");
  }
  if (shape) {
    estimate.kv_cache = kv_cache_bytes(*shape, ctx_per_sequence, sequences, bytes_per_value);
    estimate.compute = compute_margin_bytes(*shape, 512);
  }
  return estimate;
}

std::string MemoryEstimate::breakdown() const {
  std::string out = "weights " + format_bytes(weights);
  if (kv_cache) out += ", KV cache " + format_bytes(kv_cache);
  if (compute) out += ", compute " + format_bytes(compute);
  if (!note.empty()) out += ", " + note;
  return out;
}

std::optional<WhisperShape> read_whisper_shape(const fs::path& bin_file) {
  std::ifstream in(bin_file, std::ios::binary);
  uint32_t magic = 0;
  int32_t fields[11];
  if (!in.read(reinterpret_cast<char*>(&magic), sizeof magic) || magic != 0x67676d6c ||
      !in.read(reinterpret_cast<char*>(fields), sizeof fields)) {
    return std::nullopt;
  }
  for (int32_t field : fields) {
    if (field < 0) return std::nullopt;
  }
  WhisperShape s;
  s.vocab = fields[0];
  s.audio_ctx = fields[1];
  s.audio_state = fields[2];
  s.audio_head = fields[3];
  s.audio_layers = fields[4];
  s.text_ctx = fields[5];
  s.text_state = fields[6];
  s.text_head = fields[7];
  s.text_layers = fields[8];
  s.mels = fields[9];
  s.ftype = fields[10];
  return s;
}

WhisperStateBytes whisper_state_bytes(const WhisperShape& s) {
  auto pad256 = [](uint64_t n) { return (n + 255) / 256 * 256; };
  const uint64_t cache_value = s.ftype == 0 ? 4 : 2;  // F32 models keep F32 caches, others F16
  // whisper_full's greedy best_of (5) decoders grow the self-attention cache to
  // pad256(text_ctx) x (5 + 2) cells; the cross-attention cache (and kv_pad) hold the encoder's
  // output.
  const uint64_t self_cells = 7 * pad256(s.text_ctx);
  const uint64_t cross_cells = pad256(s.audio_ctx);
  WhisperStateBytes out;
  out.caches = 2 * cache_value *
               (uint64_t(s.text_state) * s.text_layers * (self_cells + cross_cells) +
                uint64_t(s.audio_state) * cross_cells);
  // Logits of a whole window (kept by the state and produced by the decoder graph), the
  // convolution's columns over 2 x audio_ctx mel frames, an encoder layer's activations (with
  // its 4x MLP) and a full-window decoder batch.
  const uint64_t f32 = sizeof(float);
  out.buffers = 2 * f32 * s.vocab * s.text_ctx +
                f32 * 2 * s.audio_ctx * (3ull * s.mels + 2ull * s.audio_state) +
                f32 * s.audio_ctx * 12ull * s.audio_state + f32 * s.text_ctx * 12ull * s.text_state;
  return out;
}

MemoryEstimate estimate_whisper_model(const fs::path& bin_file, int jobs) {
  MemoryEstimate estimate;
  estimate.weights = file_size_or_zero(bin_file);
  estimate.gpu = GpuUse::FIRST_GPU;  // whisper.cpp's use_gpu, gpu_device 0
  const std::optional<WhisperShape> shape = read_whisper_shape(bin_file);
  if (!shape) return estimate;
  const uint64_t n = static_cast<uint64_t>(std::max(1, jobs));
  const WhisperStateBytes state = whisper_state_bytes(*shape);
  estimate.kv_cache = n * state.caches;
  estimate.compute = n * state.buffers;
  estimate.note = "for " + std::to_string(n) + " transcription" + (n == 1 ? "" : "s") +
                  " at once (--audio-parallel)";
  return estimate;
}

uint64_t diffusion_activation_bytes(const DiffusionShape& shape, int width, int height) {
  // A 3x3 convolution of c input channels over P pixels holds its im2col columns (9 c values per
  // pixel) beside its F32 input, its output and the residual a ResNet block keeps: about
  // P x c x (9 x column bytes + 12). The VAE decoder's widest convolution at the image's
  // resolution is the peak; the UNet runs at the latent resolution with the prompt and the
  // negative prompt in one batch of 2.
  auto conv = [](uint64_t pixels, const ConvKernel& k) {
    return pixels * static_cast<uint64_t>(k.in_channels) * (9ull * k.column_bytes + 12);
  };
  const uint64_t pixels = static_cast<uint64_t>(width) * static_cast<uint64_t>(height);
  const uint64_t latent = pixels / (static_cast<uint64_t>(shape.vae_factor) * shape.vae_factor);
  return std::max(conv(pixels, shape.vae_full_resolution), 2 * conv(latent, shape.unet_widest)) +
         (64ull << 20);  // text encoder, graph metadata, scratch
}

std::optional<DiffusionShape> read_diffusion_shape(const fs::path& checkpoint) {
  std::error_code ec;
  if (!fs::is_directory(checkpoint, ec)) {  // one file as published: LDM names
    const nlohmann::json header = read_safetensors_header(checkpoint);
    return diffusion_shape(header, "model.diffusion_model.", header,
                           {"first_stage_model.decoder.up.", true, "upsample.conv.weight"});
  }
  return diffusion_shape(read_safetensors_header(largest_safetensors(checkpoint / "unet")), "",
                         read_safetensors_header(largest_safetensors(checkpoint / "vae")),
                         {"decoder.up_blocks.", false, "upsamplers.0.conv.weight"});
}

MemoryEstimate estimate_diffusion_model(const fs::path& checkpoint, int max_side) {
  MemoryEstimate estimate;
  std::error_code ec;
  if (fs::is_directory(checkpoint, ec)) {  // diffusers: one weights file per component
    for (const char* component : {"unet", "vae", "text_encoder"}) {
      estimate.weights += file_size_or_zero(largest_safetensors(checkpoint / component));
    }
  } else {
    estimate.weights = file_size_or_zero(checkpoint);
  }
  const std::optional<DiffusionShape> shape = read_diffusion_shape(checkpoint);
  if (!shape) return estimate;
  estimate.compute = diffusion_activation_bytes(*shape, max_side, max_side);
  estimate.note =
      "at " + std::to_string(max_side) + "x" + std::to_string(max_side) + " (--image-max-size)";
  return estimate;
}

std::optional<uint64_t> available_memory_bytes(const std::string& meminfo) {
  std::ifstream in(meminfo);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    uint64_t kib = 0;
    if (fields >> kib) return kib * 1024;
  }
  return std::nullopt;
}

bool parse_byte_size(const std::string& text, uint64_t* bytes) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  if (i == 0) return false;
  char* end = nullptr;
  const std::string number = text.substr(0, i);
  const double value = std::strtod(number.c_str(), &end);
  if (*end != '\0' || !(value >= 0)) return false;
  std::string unit = text.substr(i);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();  // "GB", "GIB"
  if (unit.size() == 2 && unit[1] == 'I') unit.pop_back();     // "GI"
  double scale = 1;
  if (unit == "K") {
    scale = 1024.0;
  } else if (unit == "M") {
    scale = 1024.0 * 1024;
  } else if (unit == "G") {
    scale = 1024.0 * 1024 * 1024;
  } else if (unit == "T") {
    scale = 1024.0 * 1024 * 1024 * 1024;
  } else if (!unit.empty() && unit != "B") {
    return false;
  }
  const double result = value * scale;
  if (result > 1.8e19) return false;
  *bytes = static_cast<uint64_t>(std::llround(result));
  return true;
}

std::string format_bytes(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(1ull << 30));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / double(1ull << 20));
  }
  return buf;
}

}  // namespace allm
