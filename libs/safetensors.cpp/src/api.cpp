// The C API: opaque handles over Model and Context; no exception crosses it.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "context.h"
#include "model.h"
#include "pooling.h"
#include "safetensors.h"
#include "safetensors/device.h"

struct stcpp_model {
  stcpp::Model model;
  std::set<int32_t> eog;
  std::string quantization;  // the store's summary
  std::string devices;       // the names of the GPUs it uses, or "CPU"
  stcpp::SentencePooling pooling;
};

struct stcpp_context {
  std::unique_ptr<stcpp::Context> impl;
  std::string last_error;
};

namespace {

using stcpp::Failure;

void report(const Failure& failure, stcpp_status* status, char* message, size_t size) {
  if (status) *status = failure.status;
  if (message && size > 0) {
    std::strncpy(message, failure.message.c_str(), size - 1);
    message[size - 1] = '\0';
  }
}

// Why a model_type does not run: said for the ones people ask for, then the supported list.
std::string unsupported_reason(const std::string& model_type) {
  if (model_type == "glm" || model_type == "glm4" || model_type == "chatglm")
    return " (GLM) is planned but not supported yet";
  if (model_type == "qwen")  // its checkpoints ship remote code and a tiktoken vocabulary file
    return " (Qwen 1: remote code and a tiktoken tokenizer, no tokenizer.json) is not supported; "
           "Qwen1.5 and later are qwen2";
  return " is not supported";
}

Failure unsupported_architecture(const std::string& model_type) {
  return stcpp::fail(STCPP_UNSUPPORTED, "model_type '" + model_type + "'" +
                                            unsupported_reason(model_type) +
                                            "; supported: " + stcpp::supported_architectures());
}

// Tokens that end a turn: config/generation_config eos ids, the tokenizer's eos, and the
// end-of-turn markers of common chat formats when the vocabulary has them.
std::set<int32_t> end_of_generation_ids(const stcpp::Model& m) {
  std::set<int32_t> ids(m.config.eos_token_ids.begin(), m.config.eos_token_ids.end());
  const stcpp::Tokenizer& t = *m.tokenizer;
  for (const std::string& text :
       {t.eos_token(), std::string("<|im_end|>"), std::string("<|eot_id|>"),
        std::string("<|end_of_text|>"), std::string("<end_of_turn>"), std::string("<|endoftext|>"),
        std::string("<|return|>"), std::string("<|end|>")}) {
    if (text.empty()) continue;
    const int32_t id = t.token_id(text);
    if (id >= 0) ids.insert(id);
  }
  // Harmony (gpt-oss): <|end|> closes a message (e.g. the analysis channel) but not the turn,
  // which <|return|> or a tool <|call|> ends; llama.cpp's vocabulary makes the same exception.
  const int32_t call = t.token_id("<|call|>"), end = t.token_id("<|end|>");
  if (t.token_id("<|return|>") >= 0 && call >= 0) {
    ids.insert(call);
    if (end >= 0 && end != t.token_id(t.eos_token())) ids.erase(end);
  }
  return ids;
}

ggml_type quantize_ggml_type(stcpp_quantize_type type) {
  switch (type) {
    case STCPP_QUANTIZE_Q8_0: return GGML_TYPE_Q8_0;
    case STCPP_QUANTIZE_Q4_0: return GGML_TYPE_Q4_0;
    case STCPP_QUANTIZE_Q4_K: return GGML_TYPE_Q4_K;
    default: return GGML_TYPE_COUNT;
  }
}

Failure read_model_config(const std::string& path, const stcpp_model_params& params,
                          stcpp::Model* m) {
  namespace fs = std::filesystem;
  std::error_code ec;
  m->folder = fs::is_directory(path, ec) ? path : fs::path(path).parent_path().string();
  m->n_threads = params.n_threads;
  if (params.quantize_type < STCPP_QUANTIZE_NONE || params.quantize_type > STCPP_QUANTIZE_Q4_K) {
    return stcpp::fail(
        STCPP_UNSUPPORTED,
        "unknown quantize_type " + std::to_string(static_cast<int>(params.quantize_type)));
  }
  if (Failure f = stcpp::read_config(m->folder, &m->config)) return f;
  m->architecture = stcpp::make_architecture(m->config.model_type);
  if (!m->architecture) return unsupported_architecture(m->config.model_type);
  return stcpp::check_dimensions(m->config);
}

// Each device's share of the layers: params.tensor_split when given (one per device), else its
// free memory.
Failure device_shares(const stcpp_model_params& params,
                      const std::vector<ggml_backend_dev_t>& devices, std::vector<double>* shares) {
  if (params.n_tensor_split > 0) {
    if (static_cast<size_t>(params.n_tensor_split) != devices.size()) {
      std::string names;
      for (ggml_backend_dev_t d : devices)
        names += (names.empty() ? "" : ",") + std::string(ggml_backend_dev_name(d));
      return stcpp::fail(STCPP_UNSUPPORTED,
                         "the tensor split gives " + std::to_string(params.n_tensor_split) +
                             " proportions for " + std::to_string(devices.size()) + " devices (" +
                             (names.empty() ? "none" : names) + ")");
    }
    shares->assign(params.tensor_split, params.tensor_split + params.n_tensor_split);
    return {};
  }
  for (ggml_backend_dev_t device : devices) {
    size_t free = 0, size = 0;
    ggml_backend_dev_memory(device, &free, &size);
    shares->push_back(static_cast<double>(free));
  }
  return {};
}

// The devices and layers params ask for, as llama.cpp counts and splits them: the last
// n_gpu_layers decoder layers (and the output too when n_gpu_layers is negative or exceeds the
// layers), in order over the devices in proportion to params.tensor_split or else their free
// memory (split mode "layer"), the output on the last.
Failure choose_devices(const stcpp_model_params& params, stcpp::Model* m) {
  if (params.n_gpu_layers == 0) return {};
  if (Failure f = stcpp::find_gpus(params.device ? params.device : "", &m->devices)) return f;
  std::vector<double> shares;
  if (Failure f = device_shares(params, m->devices, &shares)) return f;
  if (m->devices.empty()) return {};
  const int n_layer = m->config.num_hidden_layers;
  m->layer_device = stcpp::split_layers(n_layer, params.n_gpu_layers, shares);
  const bool all = params.n_gpu_layers < 0 || params.n_gpu_layers > n_layer;
  m->output_device = all ? static_cast<int>(m->devices.size()) - 1 : -1;
  return {};
}

// Finds every weight and plans its tensor; nothing is read but headers and small vectors.
Failure plan_weights(const std::string& path, const stcpp_model_params& params, stcpp::Model* m) {
  Failure failure;
  m->checkpoint = stcpp::Checkpoint::open(path, &failure);
  if (!m->checkpoint) return failure;
  stcpp::QuantizeOptions quantize;
  quantize.type = quantize_ggml_type(params.quantize_type);
  quantize.n_threads = params.n_threads > 0 ? params.n_threads
                                            : static_cast<int>(std::thread::hardware_concurrency());
  if (Failure f = choose_devices(params, m)) return f;
  stcpp::WeightPlacement placement;
  if (!m->devices.empty()) {
    for (int l = 0; l < m->config.num_hidden_layers; ++l) {
      placement.layers.push_back(m->layer_device[l] >= 0 ? m->layer_buffer_type(l) : nullptr);
    }
    if (m->output_device >= 0) {
      placement.other = ggml_backend_dev_buffer_type(m->devices[m->output_device]);
    }
  }
  m->store = std::make_unique<stcpp::WeightStore>(
      *m->checkpoint, m->checkpoint->tensors().size() + 16, quantize, placement);
  if (Failure f = m->architecture->load(*m->store, m->config, &m->weights)) return f;
  m->rope = stcpp::rope_params_for(m->config, *m->store, &m->weights);
  return m->store->failure();
}

Failure load_model(const std::string& path, const stcpp_model_params& params, stcpp_model* out) {
  stcpp::Model& m = out->model;
  if (Failure f = read_model_config(path, params, &m)) return f;
  std::string tokenizer_error;
  m.tokenizer = stcpp::Tokenizer::load(m.folder, &tokenizer_error);
  if (!m.tokenizer) return stcpp::fail(STCPP_LOAD_FAILED, "tokenizer: " + tokenizer_error);
  if (Failure f = plan_weights(path, params, &m)) return f;
  if (Failure f = m.store->finish()) return f;
  out->eog = end_of_generation_ids(m);
  out->quantization = m.store->quantization_summary();
  for (ggml_backend_dev_t device : m.devices) {
    out->devices += (out->devices.empty() ? "" : ",") + std::string(ggml_backend_dev_name(device));
  }
  if (out->devices.empty()) out->devices = "CPU";
  out->pooling = stcpp::read_sentence_pooling(m.folder);
  return {};
}

}  // namespace

extern "C" {

stcpp_model_params stcpp_model_default_params(void) {
  return stcpp_model_params{0, STCPP_QUANTIZE_NONE, -1, nullptr, nullptr, 0};
}

stcpp_context_params stcpp_context_default_params(void) {
  return stcpp_context_params{4096, 1, 512, STCPP_CACHE_F16, false};
}

stcpp_model* stcpp_model_load(const char* path, stcpp_model_params params, stcpp_status* status,
                              char* message, size_t message_size) {
  auto model = std::make_unique<stcpp_model>();
  Failure failure;
  try {
    failure = load_model(path, params, model.get());
  } catch (const std::exception& e) {
    failure = stcpp::fail(STCPP_INTERNAL, std::string("loading failed: ") + e.what());
  }
  report(failure, status, message, message_size);
  return failure ? nullptr : model.release();
}

void stcpp_model_free(stcpp_model* model) {
  delete model;
}

int64_t stcpp_model_weights_bytes(const char* path, stcpp_model_params params, stcpp_status* status,
                                  char* message, size_t message_size) {
  stcpp::Model m;
  Failure failure;
  try {
    failure = read_model_config(path, params, &m);
    if (!failure) failure = plan_weights(path, params, &m);
  } catch (const std::exception& e) {
    failure = stcpp::fail(STCPP_INTERNAL, std::string("reading the model failed: ") + e.what());
  }
  report(failure, status, message, message_size);
  return failure ? -1 : static_cast<int64_t>(m.store->bytes());
}

bool stcpp_checkpoint_tensors(const char* path, stcpp_tensor_visitor visit, void* user_data,
                              stcpp_status* status, char* message, size_t message_size) {
  Failure failure;
  try {
    const auto checkpoint = stcpp::Checkpoint::open(path ? path : "", &failure);
    if (checkpoint) {
      for (const auto& [name, tensor] : checkpoint->tensors()) {
        const stcpp_tensor_info info{name.c_str(), stcpp::dtype_name(tensor.dtype),
                                     static_cast<int32_t>(tensor.shape.size()),
                                     tensor.shape.data()};
        visit(&info, user_data);
      }
    }
  } catch (const std::exception& e) {
    failure =
        stcpp::fail(STCPP_INTERNAL, std::string("reading the checkpoint failed: ") + e.what());
  }
  report(failure, status, message, message_size);
  return !failure;
}

const char* stcpp_supported_architectures(void) {
  return stcpp::supported_architectures();
}

const char* stcpp_model_architecture(const stcpp_model* model) {
  return model->model.config.model_type.c_str();
}

size_t stcpp_model_size_bytes(const stcpp_model* model) {
  return model->model.store->bytes();
}

const char* stcpp_model_device(const stcpp_model* model) {
  return model->devices.c_str();
}

size_t stcpp_model_device_bytes(const stcpp_model* model) {
  return model->model.store->device_bytes();
}

int32_t stcpp_model_device_layers(const stcpp_model* model, int32_t device) {
  const stcpp::Model& m = model->model;
  return static_cast<int32_t>(std::count(m.layer_device.begin(), m.layer_device.end(), device)) +
         (device >= 0 && m.output_device == device ? 1 : 0);
}

int32_t stcpp_model_layer_count(const stcpp_model* model) {
  return model->model.config.num_hidden_layers;
}

int32_t stcpp_model_gpu_layers(const stcpp_model* model) {
  const stcpp::Model& m = model->model;
  return static_cast<int32_t>(
      std::count_if(m.layer_device.begin(), m.layer_device.end(), [](int d) { return d >= 0; }));
}

const char* stcpp_model_quantization(const stcpp_model* model) {
  return model->quantization.c_str();
}

int32_t stcpp_vocab_size(const stcpp_model* model) {
  return model->model.config.vocab_size;
}

int32_t stcpp_tokenize(const stcpp_model* model, const char* text, int32_t text_len,
                       stcpp_token* tokens, int32_t max_tokens, bool add_special) {
  std::vector<int32_t> ids;
  try {
    ids = model->model.tokenizer->encode(std::string(text, text_len), add_special);
  } catch (const std::exception&) {
    return 0;
  }
  const int32_t n = static_cast<int32_t>(ids.size());
  if (n > max_tokens) return -n;
  std::copy(ids.begin(), ids.end(), tokens);
  return n;
}

int32_t stcpp_token_to_bytes(const stcpp_model* model, stcpp_token token, char* buf, int32_t size) {
  const stcpp::Tokenizer& t = *model->model.tokenizer;
  const std::string bytes = token >= 0 && token < t.size() ? t.token_bytes(token) : "";
  const int32_t n = static_cast<int32_t>(bytes.size());
  if (n > size) return -n;
  std::memcpy(buf, bytes.data(), bytes.size());
  return n;
}

bool stcpp_token_is_eog(const stcpp_model* model, stcpp_token token) {
  return model->eog.count(token) > 0;
}

bool stcpp_add_bos(const stcpp_model* model) {
  return model->model.tokenizer->add_bos();
}
const char* stcpp_bos_text(const stcpp_model* model) {
  return model->model.tokenizer->bos_token().c_str();
}
const char* stcpp_eos_text(const stcpp_model* model) {
  return model->model.tokenizer->eos_token().c_str();
}
const char* stcpp_chat_template(const stcpp_model* model) {
  return model->model.tokenizer->chat_template().c_str();
}

int32_t stcpp_model_n_embd(const stcpp_model* model) {
  return model->model.config.hidden_size;
}
stcpp_pooling stcpp_model_pooling(const stcpp_model* model) {
  return model->pooling.pooling;
}
bool stcpp_model_normalizes(const stcpp_model* model) {
  return model->pooling.normalize;
}
const char* stcpp_model_embedding_problem(const stcpp_model* model) {
  return model->pooling.problem.c_str();
}

stcpp_context* stcpp_context_new(stcpp_model* model, stcpp_context_params params,
                                 stcpp_status* status, char* message, size_t message_size) {
  auto ctx = std::make_unique<stcpp_context>();
  Failure failure;
  try {
    ctx->impl = std::make_unique<stcpp::Context>(model->model, params);
    failure = ctx->impl->init();
  } catch (const std::exception& e) {
    failure = stcpp::fail(STCPP_INTERNAL, e.what());
  }
  report(failure, status, message, message_size);
  return failure ? nullptr : ctx.release();
}

void stcpp_context_free(stcpp_context* ctx) {
  delete ctx;
}

stcpp_status stcpp_decode(stcpp_context* ctx, stcpp_batch batch) {
  Failure failure;
  try {
    failure = ctx->impl->decode(batch);
  } catch (const std::exception& e) {
    failure = stcpp::fail(STCPP_INTERNAL, e.what());
  }
  ctx->last_error = failure.message;
  return failure.status;
}

const float* stcpp_get_logits(stcpp_context* ctx, int32_t i) {
  return ctx->impl->gives_embeddings() ? nullptr : ctx->impl->output(i);
}

const float* stcpp_get_embeddings(stcpp_context* ctx, int32_t i) {
  return ctx->impl->gives_embeddings() ? ctx->impl->output(i) : nullptr;
}

void stcpp_seq_clear(stcpp_context* ctx, int32_t seq_id) {
  ctx->impl->clear(seq_id);
}

void stcpp_seq_trim(stcpp_context* ctx, int32_t seq_id, int32_t from_pos) {
  ctx->impl->trim(seq_id, from_pos);
}

void stcpp_seq_copy_prefix(stcpp_context* ctx, int32_t from_seq, int32_t to_seq, int32_t length) {
  ctx->impl->copy_prefix(from_seq, to_seq, length);
}

size_t stcpp_context_size_bytes(const stcpp_context* ctx) {
  return ctx->impl->bytes();
}

const char* stcpp_last_error(const stcpp_context* ctx) {
  return ctx->last_error.c_str();
}

}  // extern "C"
