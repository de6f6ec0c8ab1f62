// TextBackend on llama.cpp: one llama_context holds every sequence of a loaded GGUF model.
#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "base/ggml_log.h"
#include "base/rpc_workers.h"
#include "gguf.h"
#include "llama.h"
#include "safetensors/device.h"
#include "text/backend.h"
#include "text/embeddings.h"

namespace allm {

namespace {

void init_llama_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    llama_log_set(forward_ggml_log, const_cast<char*>("llama.cpp"));
    llama_backend_init();
  });
}

// A file that gguf cannot even parse is corrupt; one it parses but llama.cpp rejects failed to
// load (unknown architecture, missing tensors, ...).
bool gguf_header_is_valid(const std::string& path) {
  gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
  gguf_context* ctx = gguf_init_from_file(path.c_str(), params);
  if (!ctx) return false;
  gguf_free(ctx);
  return true;
}

class LlamaBackend : public TextBackend {
 public:
  LlamaBackend(llama_model* model, llama_context* ctx, const BackendParams& params,
               std::vector<DeviceLayers> devices)
      : model_(model),
        ctx_(ctx),
        vocab_(llama_model_get_vocab(model)),
        params_(params),
        devices_(std::move(devices)),
        workers_(device_names(devices_)) {
    batch_ = llama_batch_init(static_cast<int32_t>(llama_n_batch(ctx)), 0, 1);
  }

  ~LlamaBackend() override {
    llama_batch_free(batch_);
    if (embedding_ctx_) llama_free(embedding_ctx_);
    llama_free(ctx_);
    llama_model_free(model_);
  }

  std::vector<Token> tokenize(const std::string& text, bool add_bos) const override {
    std::vector<Token> tokens(text.size() + 2);
    int n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                           static_cast<int32_t>(tokens.size()), add_bos, /*parse_special=*/true);
    if (n < 0) {
      tokens.resize(-n);
      n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                         static_cast<int32_t>(tokens.size()), add_bos, true);
    }
    tokens.resize(std::max(n, 0));
    return tokens;
  }

  // Special tokens keep their text: chat parsers (harmony's <|channel|>, <think>) need them.
  std::string token_bytes(Token token) const override { return piece(token, true); }

  bool is_end_of_generation(Token token) const override {
    return llama_vocab_is_eog(vocab_, token);
  }
  int vocab_size() const override { return llama_vocab_n_tokens(vocab_); }
  int context_per_sequence() const override { return params_.ctx_per_sequence; }
  int max_sequences() const override { return params_.sequences; }
  int max_batch() const override { return static_cast<int>(llama_n_batch(ctx_)); }

  std::string chat_template() const override {
    const char* tmpl = llama_model_chat_template(model_, nullptr);
    return tmpl ? tmpl : "";
  }
  std::string bos_text() const override { return special_text(llama_vocab_bos(vocab_)); }
  std::string eos_text() const override { return special_text(llama_vocab_eos(vocab_)); }
  bool adds_bos() const override { return llama_vocab_get_add_bos(vocab_); }

  Error decode(const std::vector<BatchToken>& batch) override {
    batch_.n_tokens = 0;
    for (const BatchToken& item : batch) {
      const int i = batch_.n_tokens++;
      batch_.token[i] = item.token;
      batch_.pos[i] = item.position;
      batch_.n_seq_id[i] = 1;
      batch_.seq_id[i][0] = item.sequence;
      batch_.logits[i] = item.want_logits;
    }
    const int32_t rc = llama_decode(ctx_, batch_);
    // A lost worker's part of the compute gave nothing (or failed): that is the error, whatever rc.
    if (Error lost = workers_.check()) return lost;
    if (rc == 0) return {};
    if (rc == 1) return make_error(ErrorCode::OOM_RAM, "no room left in the KV cache");
    return make_error(ErrorCode::INTERNAL, "llama_decode failed with code " + std::to_string(rc));
  }

  const float* logits(int batch_index) override { return llama_get_logits_ith(ctx_, batch_index); }

  void clear_sequence(int sequence) override {
    llama_memory_seq_rm(llama_get_memory(ctx_), sequence, -1, -1);
  }

  void trim_sequence(int sequence, int from_position) override {
    llama_memory_seq_rm(llama_get_memory(ctx_), sequence, from_position, -1);
  }

  // With a KV stream per sequence (kv_unified off) llama.cpp copies the source's whole stream,
  // at the start of the next decode; the positions past the prefix are then dropped.
  bool copy_prefix(int from, int to, int length) override {
    if (llama_model_is_recurrent(model_) || llama_model_is_hybrid(model_)) return false;
    llama_memory_t memory = llama_get_memory(ctx_);
    llama_memory_seq_cp(memory, from, to, -1, -1);
    llama_memory_seq_rm(memory, to, length, -1);
    return true;
  }

  size_t memory_bytes() const override {
    std::lock_guard<std::mutex> lock(embedding_mutex_);
    return llama_model_size(model_) + llama_state_get_size(ctx_) +
           (embedding_ctx_ ? llama_state_get_size(embedding_ctx_) : 0);
  }
  std::vector<DeviceLayers> devices() const override { return devices_; }
  bool healthy() const override { return workers_.lost_worker().empty(); }

  // Inputs are packed into batches of up to a context's worth of tokens, one sequence each, and
  // pooled by llama.cpp.
  Error embed(const std::vector<std::vector<Token>>& inputs,
              std::vector<std::vector<float>>* vectors) override {
    std::lock_guard<std::mutex> lock(embedding_mutex_);
    if (Error e = open_embedding_context()) return e;
    vectors->clear();
    size_t next = 0;
    while (next < inputs.size()) {
      const size_t first = next;
      size_t tokens = 0;
      while (next < inputs.size() && next - first < kEmbeddingSequences &&
             tokens + inputs[next].size() <= static_cast<size_t>(params_.ctx_per_sequence)) {
        tokens += inputs[next++].size();
      }
      if (next == first) return make_error(ErrorCode::INTERNAL, "an input exceeds the context");
      if (Error e = embed_batch(inputs, first, next, vectors)) return e;
    }
    return {};
  }

  bool normalizes_embeddings() const override { return true; }

 private:
  std::string piece(Token token, bool special) const {
    char buf[256];
    int n = llama_token_to_piece(vocab_, token, buf, sizeof buf, 0, special);
    if (n < 0) {
      std::string big(-n, '\0');
      n = llama_token_to_piece(vocab_, token, big.data(), -n, 0, special);
      return big.substr(0, std::max(n, 0));
    }
    return std::string(buf, n);
  }
  std::string special_text(Token token) const {
    return token == LLAMA_TOKEN_NULL ? "" : piece(token, true);
  }

  // The embedding context: embeddings on, the model's pooling (last token where its metadata
  // declares none, as for any decoder), one KV cache of ctx_per_sequence cells that the packed
  // sequences share.
  Error open_embedding_context() {
    if (embedding_ctx_) return {};
    llama_context_params p = llama_context_default_params();
    p.embeddings = true;
    p.kv_unified = true;
    p.n_seq_max = kEmbeddingSequences;
    p.n_ctx = static_cast<uint32_t>(params_.ctx_per_sequence);
    p.n_batch = p.n_ctx;
    if (params_.threads > 0) p.n_threads = p.n_threads_batch = params_.threads;
    if (params_.f32_cache) {
      p.type_k = p.type_v = GGML_TYPE_F32;
      p.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    }
    p.pooling_type = declared_pooling();
    if (p.pooling_type == LLAMA_POOLING_TYPE_RANK) {
      return make_error(ErrorCode::UNSUPPORTED, "this model is a reranker, not an embedding model");
    }
    // Last-token pooling reads each sequence's last token of each micro-batch, so an input may
    // span several; mean and first-token pooling need a whole input in one.
    p.n_ubatch =
        p.pooling_type == LLAMA_POOLING_TYPE_LAST ? std::min<uint32_t>(p.n_ctx, 512) : p.n_ctx;
    embedding_ctx_ = llama_init_from_model(model_, p);
    if (!embedding_ctx_) {
      return make_error(ErrorCode::OOM_RAM, "could not create the embedding context");
    }
    return {};
  }

  // The GGUF's `<arch>.pooling_type`; last token when it declares none.
  enum llama_pooling_type declared_pooling() const {
    char arch[128] = {0}, value[32] = {0};
    if (llama_model_meta_val_str(model_, "general.architecture", arch, sizeof arch) < 0) {
      return LLAMA_POOLING_TYPE_LAST;
    }
    const std::string key = std::string(arch) + ".pooling_type";
    if (llama_model_meta_val_str(model_, key.c_str(), value, sizeof value) < 0) {
      return LLAMA_POOLING_TYPE_LAST;
    }
    const int declared = std::atoi(value);
    return declared == LLAMA_POOLING_TYPE_NONE ? LLAMA_POOLING_TYPE_LAST
                                               : static_cast<enum llama_pooling_type>(declared);
  }

  // Inputs [first, end) in one decode, sequence i - first each.
  Error embed_batch(const std::vector<std::vector<Token>>& inputs, size_t first, size_t end,
                    std::vector<std::vector<float>>* vectors) {
    llama_memory_clear(llama_get_memory(embedding_ctx_), true);
    size_t tokens = 0;
    for (size_t i = first; i < end; ++i) tokens += inputs[i].size();
    llama_batch batch = llama_batch_init(static_cast<int32_t>(tokens), 0, 1);
    for (size_t i = first; i < end; ++i) {
      for (size_t pos = 0; pos < inputs[i].size(); ++pos) {
        const int n = batch.n_tokens++;
        batch.token[n] = inputs[i][pos];
        batch.pos[n] = static_cast<llama_pos>(pos);
        batch.n_seq_id[n] = 1;
        batch.seq_id[n][0] = static_cast<llama_seq_id>(i - first);
        batch.logits[n] = true;
      }
    }
    const int32_t rc = llama_decode(embedding_ctx_, batch);
    llama_batch_free(batch);
    if (rc != 0) {
      return make_error(ErrorCode::INTERNAL,
                        "llama_decode of embeddings failed with code " + std::to_string(rc));
    }
    const int width = llama_model_n_embd_out(model_);
    for (size_t i = first; i < end; ++i) {
      const float* pooled =
          llama_get_embeddings_seq(embedding_ctx_, static_cast<llama_seq_id>(i - first));
      if (!pooled) return make_error(ErrorCode::INTERNAL, "llama.cpp returned no embedding");
      vectors->emplace_back(pooled, pooled + width);
      l2_normalize(&vectors->back());
    }
    return {};
  }

  static constexpr uint32_t kEmbeddingSequences = 64;

  llama_model* model_;
  llama_context* ctx_;
  mutable std::mutex embedding_mutex_;
  llama_context* embedding_ctx_ = nullptr;  // made on the first embed()
  const llama_vocab* vocab_;
  BackendParams params_;
  std::vector<DeviceLayers> devices_;
  RpcPlacement workers_;  // those of devices_
  llama_batch batch_;
};

// Each device's share of the offloaded blocks: the tensor split, else its free memory (the host's
// for a device that tells none), as llama.cpp's default.
std::vector<double> device_shares(const BackendParams& params,
                                  const std::vector<ggml_backend_dev_t>& devices) {
  if (!params.tensor_split.empty()) {
    return std::vector<double>(params.tensor_split.begin(), params.tensor_split.end());
  }
  std::vector<double> shares;
  for (ggml_backend_dev_t device : devices) {
    size_t free = 0, total = 0;
    ggml_backend_dev_memory(device, &free, &total);
    if (free == 0 && total == 0) {
      ggml_backend_dev_memory(ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU), &free,
                              &total);
    }
    shares.push_back(static_cast<double>(free));
  }
  return shares;
}

// The blocks of a model of n_layer layers on each device, as llama.cpp places them: the output
// head is block n_layer, and the last gpu_layers blocks go to the devices by their shares.
std::vector<DeviceLayers> device_layers(int n_layer, int gpu_layers,
                                        const std::vector<ggml_backend_dev_t>& devices,
                                        const std::vector<double>& shares) {
  const std::vector<int> block_device = stcpp::split_layers(n_layer + 1, gpu_layers, shares);
  std::vector<DeviceLayers> out;
  const auto on = [&](int device) {
    return static_cast<int>(std::count(block_device.begin(), block_device.end(), device));
  };
  if (on(-1) > 0) out.push_back({"CPU", on(-1)});
  for (size_t d = 0; d < devices.size(); ++d) {
    if (on(static_cast<int>(d)) > 0)
      out.push_back({ggml_backend_dev_name(devices[d]), on(static_cast<int>(d))});
  }
  return out;
}

std::string tensor_split_mismatch(const BackendParams& params,
                                  const std::vector<ggml_backend_dev_t>& devices) {
  std::string names;
  for (ggml_backend_dev_t d : devices)
    names += (names.empty() ? "" : ",") + std::string(ggml_backend_dev_name(d));
  return "the tensor split gives " + std::to_string(params.tensor_split.size()) +
         " proportions for " + std::to_string(devices.size()) + " devices (" +
         (names.empty() ? "none" : names) + ")";
}

}  // namespace

std::unique_ptr<TextBackend> open_llama_backend(const std::string& gguf_path,
                                                const BackendParams& params, Error* error) {
  init_llama_once();
  if (!gguf_header_is_valid(gguf_path)) {
    *error =
        make_error(ErrorCode::MODEL_CORRUPT, "'" + gguf_path +
                                                 "' is not a valid GGUF file (header or metadata "
                                                 "could not be parsed)");
    return nullptr;
  }
  llama_model_params model_params = llama_model_default_params();
  model_params.n_gpu_layers = params.gpu_layers;
  std::vector<ggml_backend_dev_t> devices;
  if (params.gpu_layers != 0) {
    stcpp::Failure failure = stcpp::find_gpus(params.device, &devices);
    if (failure) {
      *error = make_error(ErrorCode::UNSUPPORTED, failure.message);
      return nullptr;
    }
  }
  // llama.cpp gets the devices and their shares from us, so that we know where each block goes.
  std::vector<ggml_backend_dev_t> device_list = devices;  // null-terminated
  device_list.push_back(nullptr);
  std::vector<float> split(llama_max_devices(), 0.0f);
  std::vector<double> shares;
  if (devices.size() > split.size() || (!params.tensor_split.empty() && params.gpu_layers != 0 &&
                                        params.tensor_split.size() != devices.size())) {
    *error = make_error(ErrorCode::UNSUPPORTED, tensor_split_mismatch(params, devices));
    return nullptr;
  }
  if (!devices.empty()) {
    shares = device_shares(params, devices);
    std::copy(shares.begin(), shares.end(), split.begin());
    model_params.devices = device_list.data();
    model_params.tensor_split = split.data();
  }
  llama_model* model = llama_model_load_from_file(gguf_path.c_str(), model_params);
  if (!model) {
    *error = make_error(ErrorCode::LOAD_FAILED,
                        "llama.cpp could not load '" + gguf_path +
                            "' (unsupported architecture or missing tensors; see the log)");
    return nullptr;
  }
  llama_context_params ctx_params = llama_context_default_params();
  ctx_params.n_seq_max = static_cast<uint32_t>(params.sequences);
  ctx_params.n_ctx = static_cast<uint32_t>(params.ctx_per_sequence * params.sequences);
  ctx_params.n_batch = 512;
  ctx_params.n_ubatch = 512;
  ctx_params.kv_unified = false;  // each sequence gets its own ctx_per_sequence slice
  if (params.f32_cache) {
    ctx_params.type_k = GGML_TYPE_F32;
    ctx_params.type_v = GGML_TYPE_F32;
    ctx_params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  }
  if (params.threads > 0) {
    ctx_params.n_threads = params.threads;
    ctx_params.n_threads_batch = params.threads;
  }
  llama_context* ctx = llama_init_from_model(model, ctx_params);
  if (!ctx) {
    llama_model_free(model);
    *error = make_error(ErrorCode::OOM_RAM, "could not create a context of " +
                                                std::to_string(ctx_params.n_ctx) + " tokens for '" +
                                                gguf_path + "'");
    return nullptr;
  }
  return std::make_unique<LlamaBackend>(
      model, ctx, params,
      device_layers(llama_model_n_layer(model), params.gpu_layers, devices, shares));
}

}  // namespace allm
