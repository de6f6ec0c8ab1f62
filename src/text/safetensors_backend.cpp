// TextBackend on safetensors.cpp: a Hugging Face folder served with no conversion.
#include <algorithm>
#include <mutex>

#include "base/byte_size.h"
#include "base/log.h"
#include "base/rpc_workers.h"
#include "safetensors.h"
#include "text/backend.h"
#include "text/embeddings.h"

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

// A batch as stcpp_decode takes it, in arrays kept between calls.
struct BatchArrays {
  std::vector<int32_t> tokens, positions, seqs;
  std::vector<int8_t> want;

  stcpp_batch fill(const std::vector<BatchToken>& batch) {
    tokens.clear();
    positions.clear();
    seqs.clear();
    want.clear();
    for (const BatchToken& t : batch) {
      tokens.push_back(t.token);
      positions.push_back(t.position);
      seqs.push_back(t.sequence);
      want.push_back(t.want_logits ? 1 : 0);
    }
    return {static_cast<int32_t>(batch.size()), tokens.data(), positions.data(), seqs.data(),
            want.data()};
  }
};

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
    if (embedding_ctx_) stcpp_context_free(embedding_ctx_);
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
    return run(ctx_, decode_arrays_, batch);
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
    std::lock_guard<std::mutex> lock(embedding_mutex_);
    return stcpp_model_size_bytes(model_) + stcpp_context_size_bytes(ctx_) +
           (embedding_ctx_ ? stcpp_context_size_bytes(embedding_ctx_) : 0);
  }

  // Inputs go max_sequences() at a time, one sequence each, their tokens in batches of
  // kMaxBatch; the hidden states the pooling reads are summed as they come.
  Error embed(const std::vector<std::vector<Token>>& inputs,
              std::vector<std::vector<float>>* vectors) override {
    if (*stcpp_model_embedding_problem(model_)) {
      return make_error(ErrorCode::UNSUPPORTED, stcpp_model_embedding_problem(model_));
    }
    std::lock_guard<std::mutex> lock(embedding_mutex_);
    if (Error e = open_embedding_context()) return e;
    vectors->clear();
    const size_t group = static_cast<size_t>(params_.sequences);
    for (size_t first = 0; first < inputs.size(); first += group) {
      const size_t end = std::min(inputs.size(), first + group);
      if (Error e = embed_group(inputs, first, end, vectors)) return e;
    }
    return {};
  }

  bool normalizes_embeddings() const override { return stcpp_model_normalizes(model_); }
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
  Pooling pooling() const {
    switch (stcpp_model_pooling(model_)) {
      case STCPP_POOLING_MEAN: return Pooling::MEAN;
      case STCPP_POOLING_CLS: return Pooling::CLS;
      default: return Pooling::LAST;
    }
  }

  // The same geometry as the generation context, giving hidden states instead of logits.
  Error open_embedding_context() {
    if (embedding_ctx_) return {};
    char message[1024] = {0};
    stcpp_status status = STCPP_OK;
    stcpp_context_params p = stcpp_context_default_params();
    p.n_ctx_per_seq = params_.ctx_per_sequence;
    p.n_seq_max = params_.sequences;
    p.n_batch = kMaxBatch;
    p.cache_type = params_.f32_cache ? STCPP_CACHE_F32 : STCPP_CACHE_F16;
    p.embeddings = true;
    embedding_ctx_ = stcpp_context_new(model_, p, &status, message, sizeof message);
    if (!embedding_ctx_) return make_error(to_error_code(status), message);
    return {};
  }

  // Inputs [first, end), sequence i - first each, read in batches of up to kMaxBatch tokens.
  Error embed_group(const std::vector<std::vector<Token>>& inputs, size_t first, size_t end,
                    std::vector<std::vector<float>>* vectors) {
    const Pooling how = pooling();
    const int width = stcpp_model_n_embd(model_);
    std::vector<PooledVector> pooled;
    std::vector<size_t> done(end - first, 0);  // tokens of each input already decoded
    for (size_t i = first; i < end; ++i) {
      pooled.emplace_back(how, width);
      stcpp_seq_clear(embedding_ctx_, static_cast<int32_t>(i - first));
    }
    std::vector<BatchToken> batch;
    for (size_t s = 0; s < done.size();) {
      batch.clear();
      for (size_t t = s; t < done.size() && batch.size() < kMaxBatch; ++t) {
        const std::vector<Token>& input = inputs[first + t];
        const int length = static_cast<int>(input.size());
        for (; done[t] < input.size() && batch.size() < kMaxBatch; ++done[t]) {
          const int pos = static_cast<int>(done[t]);
          batch.push_back(
              {input[done[t]], pos, static_cast<int>(t), PooledVector::reads(how, pos, length)});
        }
      }
      if (Error e = run(embedding_ctx_, embedding_arrays_, batch)) return e;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!batch[i].want_logits) continue;
        const float* state = stcpp_get_embeddings(embedding_ctx_, static_cast<int32_t>(i));
        if (!state) return make_error(ErrorCode::INTERNAL, "safetensors.cpp gave no hidden state");
        pooled[batch[i].sequence].add(state);
      }
      while (s < done.size() && done[s] == inputs[first + s].size()) ++s;
    }
    for (PooledVector& p : pooled) {
      vectors->push_back(p.result());
      if (stcpp_model_normalizes(model_)) l2_normalize(&vectors->back());
    }
    return {};
  }

  Error run(stcpp_context* ctx, BatchArrays& arrays, const std::vector<BatchToken>& batch) {
    const stcpp_status status = stcpp_decode(ctx, arrays.fill(batch));
    // A lost worker's part of the compute gave nothing (or failed): that is the error.
    if (Error lost = workers_.check()) return lost;
    if (status == STCPP_OK) return {};
    return make_error(to_error_code(status), stcpp_last_error(ctx));
  }

  stcpp_model* model_;
  stcpp_context* ctx_;
  BackendParams params_;
  std::vector<DeviceLayers> devices_;
  RpcPlacement workers_;  // those of devices_
  mutable std::mutex embedding_mutex_;
  stcpp_context* embedding_ctx_ = nullptr;  // made on the first embed()
  BatchArrays decode_arrays_;               // the scheduler thread's
  BatchArrays embedding_arrays_;            // under embedding_mutex_
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
