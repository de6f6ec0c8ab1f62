// safetensors.cpp: runs Hugging Face checkpoints (config.json + *.safetensors + tokenizer.json)
// directly on ggml, with no conversion step. C API with opaque handles.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stcpp_model stcpp_model;
typedef struct stcpp_context stcpp_context;
typedef int32_t stcpp_token;

// Failure codes; the numbers are aLLM's spec codes.
typedef enum {
  STCPP_OK = 0,
  STCPP_OOM_VRAM = 1,
  STCPP_OOM_RAM = 2,
  STCPP_MODEL_CORRUPT = 3,
  STCPP_UNSUPPORTED = 6,
  STCPP_INTERNAL = 7,
  STCPP_LOAD_FAILED = 9,
} stcpp_status;

// Quantize on load: the attention and MLP projection matrices become this ggml type, quantized
// in memory by ggml's own quantizer as llama.cpp's quantizer does (each row converted to F32,
// no importance matrix); the output head (and embeddings tied to it) gets the type llama.cpp
// gives it (Q8_0 for Q8_0, else Q6_K), untied embeddings, norms and biases stay as stored, and so
// do matrices whose row width is not a multiple of the type's block size.
typedef enum {
  STCPP_QUANTIZE_NONE = 0,
  STCPP_QUANTIZE_Q8_0 = 1,
  STCPP_QUANTIZE_Q4_0 = 2,
  STCPP_QUANTIZE_Q4_K = 3,
} stcpp_quantize_type;

typedef struct {
  int32_t n_threads;  // compute threads; <= 0: all cores
  stcpp_quantize_type quantize_type;
  // Decoder layers whose weights and KV cache go to the GPUs, counted from the last one (as
  // llama.cpp's n_gpu_layers); < 0 or more than the model has: all of them, and the final norm
  // and output head too. 0, or no GPU: everything stays on the CPU. The token embeddings stay
  // on the CPU (only looked up by row).
  int32_t n_gpu_layers;
  // The ggml devices for them, by ggml's names, comma-separated ("CUDA0", "Vulkan0,Vulkan1",
  // ...); NULL or "": every GPU ggml reports. Layers are split over several in order, in
  // proportion to their free memory (llama.cpp's split mode "layer"); the output goes to the last.
  const char* device;
  // Or in these proportions (llama.cpp's tensor_split), one per device, n_tensor_split of them
  // (0: by free memory); another count than there are devices is UNSUPPORTED.
  const float* tensor_split;
  int32_t n_tensor_split;
} stcpp_model_params;

typedef enum {
  STCPP_CACHE_F16 = 0,
  STCPP_CACHE_F32 = 1,
} stcpp_cache_type;

typedef struct {
  int32_t n_ctx_per_seq;  // tokens each sequence can hold
  int32_t n_seq_max;      // sequences decoded together
  int32_t n_batch;        // most tokens in one stcpp_decode call
  stcpp_cache_type cache_type;
  // The outputs a decode gives: false, logits (stcpp_get_logits); true, the final hidden states
  // after the final norm, without the output head (stcpp_get_embeddings).
  bool embeddings;
} stcpp_context_params;

// How a sentence-embedding model turns its hidden states into one vector per input, as its
// folder declares it (sentence-transformers' modules.json and 1_Pooling/config.json).
typedef enum {
  STCPP_POOLING_LAST = 0,  // the last token's (decoder models; also without those files)
  STCPP_POOLING_MEAN = 1,  // the mean over the input's tokens
  STCPP_POOLING_CLS = 2,   // the first token's
} stcpp_pooling;

// One decode call: token i goes to sequence seq_ids[i] at positions[i]; logits[i] != 0 asks for
// its logits. Within a sequence, tokens come in order of position.
typedef struct {
  int32_t n_tokens;
  const stcpp_token* tokens;
  const int32_t* positions;
  const int32_t* seq_ids;
  const int8_t* logits;
} stcpp_batch;

stcpp_model_params stcpp_model_default_params(void);
stcpp_context_params stcpp_context_default_params(void);

// `path` is a model folder (or a single .safetensors file inside one). On failure returns NULL,
// sets *status and writes a message naming the problem into `message`.
stcpp_model* stcpp_model_load(const char* path, stcpp_model_params params, stcpp_status* status,
                              char* message, size_t message_size);
void stcpp_model_free(stcpp_model* model);
// What the weights of the model at `path` will take in memory once loaded with `params` (the
// files, with quantized matrices at their quantized size), read from config.json and the
// safetensors headers only. Returns -1 on failure, with *status and `message` as for a load.
int64_t stcpp_model_weights_bytes(const char* path, stcpp_model_params params, stcpp_status* status,
                                  char* message, size_t message_size);

// One tensor as a checkpoint's header describes it.
typedef struct {
  const char* name;
  const char* dtype;  // "F32", "F16", "BF16", "I64", ...
  int32_t n_dims;
  const int64_t* shape;  // outermost dimension first
} stcpp_tensor_info;
typedef void (*stcpp_tensor_visitor)(const stcpp_tensor_info* tensor, void* user_data);
// Calls `visit` for each tensor of the checkpoint at `path` (a folder as for stcpp_model_load, or
// one .safetensors file of any checkpoint), in name order, from its headers alone, validated as
// for a load: what another engine may need to know of a checkpoint before loading it. Returns
// false on failure, with *status and `message` as for a load.
bool stcpp_checkpoint_tensors(const char* path, stcpp_tensor_visitor visit, void* user_data,
                              stcpp_status* status, char* message, size_t message_size);

// The architectures this build runs, comma-separated.
const char* stcpp_supported_architectures(void);
const char* stcpp_model_architecture(const stcpp_model* model);
size_t stcpp_model_size_bytes(const stcpp_model* model);
// The devices holding the offloaded layers, comma-separated ("CPU" when none), and the bytes of
// weights there.
const char* stcpp_model_device(const stcpp_model* model);
size_t stcpp_model_device_bytes(const stcpp_model* model);
// How many of the model's blocks device `device` (an index into stcpp_model_device's list) holds:
// its decoder layers, plus 1 for the output head, as llama.cpp counts offloaded layers.
int32_t stcpp_model_device_layers(const stcpp_model* model, int32_t device);
// How many decoder layers run on them, and how many the model has.
int32_t stcpp_model_gpu_layers(const stcpp_model* model);
int32_t stcpp_model_layer_count(const stcpp_model* model);
// What quantize on load did ("quantized 154 matrices to q8_0 (...)"); "" when not asked for.
const char* stcpp_model_quantization(const stcpp_model* model);

// Vocabulary and tokenizer.
int32_t stcpp_vocab_size(const stcpp_model* model);  // rows of the logits
// Returns the number of tokens written, or minus the number needed when max_tokens is too small.
int32_t stcpp_tokenize(const stcpp_model* model, const char* text, int32_t text_len,
                       stcpp_token* tokens, int32_t max_tokens, bool add_special);
// The bytes a generated token adds to the text (may be part of a UTF-8 character). Returns the
// length, or minus the length needed when size is too small.
int32_t stcpp_token_to_bytes(const stcpp_model* model, stcpp_token token, char* buf, int32_t size);
bool stcpp_token_is_eog(const stcpp_model* model, stcpp_token token);
bool stcpp_add_bos(const stcpp_model* model);
const char* stcpp_bos_text(const stcpp_model* model);       // "" when none
const char* stcpp_eos_text(const stcpp_model* model);       // "" when none
const char* stcpp_chat_template(const stcpp_model* model);  // "" when none

// Sentence embeddings. Without modules.json a folder is pooled by its last token and normalised.
int32_t stcpp_model_n_embd(const stcpp_model* model);  // width of a hidden state
stcpp_pooling stcpp_model_pooling(const stcpp_model* model);
bool stcpp_model_normalizes(const stcpp_model* model);  // a Normalize module (L2) follows pooling
// Why the folder's declared modules cannot be run (a Dense layer, max pooling, ...); "" when they
// can.
const char* stcpp_model_embedding_problem(const stcpp_model* model);

// Inference state: KV cache and buffers for n_seq_max sequences.
stcpp_context* stcpp_context_new(stcpp_model* model, stcpp_context_params params,
                                 stcpp_status* status, char* message, size_t message_size);
void stcpp_context_free(stcpp_context* ctx);
stcpp_status stcpp_decode(stcpp_context* ctx, stcpp_batch batch);
// Logits of the i-th token of the last batch (which must have asked for them); NULL when it did
// not or the context gives embeddings.
const float* stcpp_get_logits(stcpp_context* ctx, int32_t i);
// The final hidden state (stcpp_model_n_embd floats) of the i-th token of the last batch of a
// context made with `embeddings`, for tokens that asked for outputs; NULL otherwise.
const float* stcpp_get_embeddings(stcpp_context* ctx, int32_t i);
void stcpp_seq_clear(stcpp_context* ctx, int32_t seq_id);
// Keeps positions [0, from_pos) of a sequence and forgets the rest (prefix reuse: the next
// decode for this sequence continues at from_pos).
void stcpp_seq_trim(stcpp_context* ctx, int32_t seq_id, int32_t from_pos);
// Positions [0, length) of to_seq become a copy of from_seq's (at most what from_seq holds) and
// to_seq holds nothing after them: a prefix one sequence computed, such as a system prompt, given
// to another without decoding it again.
void stcpp_seq_copy_prefix(stcpp_context* ctx, int32_t from_seq, int32_t to_seq, int32_t length);
size_t stcpp_context_size_bytes(const stcpp_context* ctx);
const char* stcpp_last_error(const stcpp_context* ctx);

#ifdef __cplusplus
}
#endif
