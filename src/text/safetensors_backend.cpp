// TextBackend on safetensors.cpp: a Hugging Face folder served with no conversion.
#include <algorithm>

#include "base/byte_size.h"
#include "base/log.h"
#include "base/rpc_workers.h"
#include "safetensors.h"
#include "text/backend.h"

namespace allm {

namespace {

ErrorCode to_error_code(stcpp_status status) {
  switch (status) {
    case STCPP_OK: return ErrorCode::OK;
    case STCPP_OOM_VRAM: return ErrorCode::OOM_VRAM;
    case STCPP_OOM_RAM: return ErrorCode::OOM_RAM;
    case STCPP_MODEL_CORRUPT: return ErrorCode::MODEL_CORRUPT;
    case STCPP_UNSUPPORTED: return ErrorCode::UNSUPPORTED;
    case STCPP_LOAD_FAILED: return ErrorCode::LOAD_FAILED;
    case STCPP_INTERNAL: return ErrorCode::INTERNAL;
  }
  return ErrorCode::INTERNAL;
}

class SafetensorsBackend : public TextBackend {
 public:
  SafetensorsBackend(stcpp_model* model, stcpp_context* ctx, const BackendParams& params,
                     std::vector<DeviceLayers> devices)
      : model_(model),
        ctx_(ctx),
        params_(params),
        devices_(std::move(devices)),
        workers_(device_names(devices_)) {}
  ~SafetensorsBackend() override {
    stcpp_context_free(ctx_);
    stcpp_model_free(model_);
  }

  std::vector<Token> tokenize(const std::string& text, bool add_bos) const override {
    std::vector<Token> tokens(text.size() + 8);
    int32_t n = stcpp_tokenize(model_, text.data(), static_cast<int32_t>(text.size()),
                               tokens.data(), static_cast<int32_t>(tokens.size()), add_bos);
    if (n < 0) {
      tokens.resize(-n);
      n = stcpp_tokenize(model_, text.data(), static_cast<int32_t>(text.size()), tokens.data(), -n,
                         add_bos);
    }
    tokens.resize(std::max(n, 0));
    return tokens;
  }

  std::string token_bytes(Token token) const override {
    char buf[256];
    int32_t n = stcpp_token_to_bytes(model_, token, buf, sizeof buf);
    if (n >= 0) return std::string(buf, n);
    std::string big(-n, '\0');
    n = stcpp_token_to_bytes(model_, token, big.data(), -n);
    return big.substr(0, std::max(n, 0));
  }

  bool is_end_of_generation(Token token) const override {
    return stcpp_token_is_eog(model_, token);
  }
  int vocab_size() const override { return stcpp_vocab_size(model_); }
  int context_per_sequence() const override { return params_.ctx_per_sequence; }
  int max_sequences() const override { return params_.sequences; }
  int max_batch() const override { return kMaxBatch; }
  bool adds_bos() const override { return stcpp_add_bos(model_); }
  std::string chat_template() const override { return stcpp_chat_template(model_); }
  std::string bos_text() const override { return stcpp_bos_text(model_); }
  std::string eos_text() const override { return stcpp_eos_text(model_); }

  Error decode(const std::vector<BatchToken>& batch) override {
    tokens_.clear();
    positions_.clear();
    seqs_.clear();
    want_.clear();
    for (const BatchToken& t : batch) {
      tokens_.push_back(t.token);
      positions_.push_back(t.position);
      seqs_.push_back(t.sequence);
      want_.push_back(t.want_logits ? 1 : 0);
    }
    const stcpp_batch b{static_cast<int32_t>(batch.size()), tokens_.data(), positions_.data(),
                        seqs_.data(), want_.data()};
    const stcpp_status status = stcpp_decode(ctx_, b);
    // A lost worker's part of the compute gave nothing (or failed): that is the error.
    if (Error lost = workers_.check()) return lost;
    if (status == STCPP_OK) return {};
    return make_error(to_error_code(status), stcpp_last_error(ctx_));
  }

  const float* logits(int batch_index) override { return stcpp_get_logits(ctx_, batch_index); }
  void clear_sequence(int sequence) override { stcpp_seq_clear(ctx_, sequence); }
  void trim_sequence(int sequence, int from_position) override {
    stcpp_seq_trim(ctx_, sequence, from_position);
  }
  bool copy_prefix(int from, int to, int length) override {
    stcpp_seq_copy_prefix(ctx_, from, to, length);
    return true;
  }
  size_t memory_bytes() const override {
    return stcpp_model_size_bytes(model_) + stcpp_context_size_bytes(ctx_);
  }
  std::vector<DeviceLayers> devices() const override { return devices_; }
  bool healthy() const override { return workers_.lost_worker().empty(); }
  std::string placement() const override {
    const int layers = stcpp_model_gpu_layers(model_);
    if (layers == 0) return "on the CPU";
    return "on " + std::string(stcpp_model_device(model_)) + ": " + std::to_string(layers) +
           " layers, " + format_bytes(stcpp_model_device_bytes(model_)) + " of weights";
  }

  static constexpr int kMaxBatch = 512;

 private:
  stcpp_model* model_;
  stcpp_context* ctx_;
  BackendParams params_;
  std::vector<DeviceLayers> devices_;
  RpcPlacement workers_;  // those of devices_
  std::vector<int32_t> tokens_, positions_, seqs_;
  std::vector<int8_t> want_;
};

stcpp_quantize_type stcpp_quantize_type_of(Quantization quantization) {
  switch (quantization) {
    case Quantization::Q8_0: return STCPP_QUANTIZE_Q8_0;
    case Quantization::Q4_0: return STCPP_QUANTIZE_Q4_0;
    case Quantization::Q4_K: return STCPP_QUANTIZE_Q4_K;
    default: return STCPP_QUANTIZE_NONE;
  }
}

// The blocks on each device safetensors.cpp split the model over (stcpp_model_device names them,
// comma-separated; "CPU" when none), the rest on the CPU.
std::vector<DeviceLayers> model_devices(const stcpp_model* model, int n_blocks) {
  std::vector<DeviceLayers> offloaded;
  int on_devices = 0;
  const std::string names = stcpp_model_device(model);
  size_t start = 0;
  for (int32_t i = 0; start < names.size() && stcpp_model_gpu_layers(model) > 0; ++i) {
    const size_t end = std::min(names.find(',', start), names.size());
    const int layers = stcpp_model_device_layers(model, i);
    if (layers > 0) offloaded.push_back({names.substr(start, end - start), layers});
    on_devices += layers;
    start = end + 1;
  }
  std::vector<DeviceLayers> devices;
  if (n_blocks > on_devices) devices.push_back({"CPU", n_blocks - on_devices});
  devices.insert(devices.end(), offloaded.begin(), offloaded.end());
  return devices;
}

}  // namespace

std::optional<uint64_t> safetensors_weights_bytes(const std::string& path,
                                                  Quantization quantization) {
  stcpp_model_params model_params = stcpp_model_default_params();
  model_params.quantize_type = stcpp_quantize_type_of(quantization);
  const int64_t bytes = stcpp_model_weights_bytes(path.c_str(), model_params, nullptr, nullptr, 0);
  if (bytes < 0) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

std::unique_ptr<TextBackend> open_safetensors_backend(const std::string& path,
                                                      const BackendParams& params, Error* error) {
  char message[1024] = {0};
  stcpp_status status = STCPP_OK;
  stcpp_model_params model_params = stcpp_model_default_params();
  model_params.n_threads = params.threads;
  model_params.quantize_type = stcpp_quantize_type_of(params.quantization);
  model_params.n_gpu_layers = params.gpu_layers;
  model_params.device = params.device.c_str();
  model_params.tensor_split = params.tensor_split.data();
  model_params.n_tensor_split = static_cast<int32_t>(params.tensor_split.size());
  stcpp_model* model =
      stcpp_model_load(path.c_str(), model_params, &status, message, sizeof message);
  if (!model) {
    *error = make_error(to_error_code(status), message);
    return nullptr;
  }
  if (*stcpp_model_quantization(model)) {
    ALLM_LOG_INFO("%s: %s", path.c_str(), stcpp_model_quantization(model));
  }
  stcpp_context_params ctx_params = stcpp_context_default_params();
  ctx_params.n_ctx_per_seq = params.ctx_per_sequence;
  ctx_params.n_seq_max = params.sequences;
  ctx_params.n_batch = SafetensorsBackend::kMaxBatch;
  ctx_params.cache_type = params.f32_cache ? STCPP_CACHE_F32 : STCPP_CACHE_F16;
  stcpp_context* ctx = stcpp_context_new(model, ctx_params, &status, message, sizeof message);
  if (!ctx) {
    stcpp_model_free(model);
    *error = make_error(to_error_code(status), message);
    return nullptr;
  }
  // The decoder layers and the output head, as llama.cpp counts blocks.
  const int n_blocks = stcpp_model_layer_count(model) + 1;
  return std::make_unique<SafetensorsBackend>(model, ctx, params, model_devices(model, n_blocks));
}

}  // namespace allm
