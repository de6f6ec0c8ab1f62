// The tiny random models the parity fixtures describe: which architecture, its hyperparameters,
// and the weights as Hugging Face names them. Shared by every writer of the fixture generator.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "demo/tiny_gguf.h"

namespace allm::fixture {

enum class Arch {
  Llama,
  Llama3,
  Mistral,
  Qwen2,
  Qwen3,
  Gemma,
  Gemma2,
  Nemotron,
  GptOss,
  Phi,
  Phi3
};
enum class DType { F32, F16, BF16 };

// `rope_scaling` of Llama 3.1 style checkpoints.
struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

// `rope_scaling` of type yarn. llama.cpp computes only the truncate = true variant (it rounds the
// correction range outward); gpt-oss's real config says false.
struct YarnRopeScaling {
  double factor = 4.0;
  int original_max_position_embeddings = 0;
  bool truncate = true;
};

struct ModelSpec {
  Arch arch = Arch::Llama;
  std::string model_type;       // config.json model_type
  std::string hf_architecture;  // config.json architectures[0]
  std::string gguf_arch;        // general.architecture llama.cpp loads it as
  int hidden = 64;
  int intermediate = 128;
  int layers = 2;
  int heads = 4;
  int kv_heads = 2;
  int head_dim = 16;
  bool config_has_head_dim = false;  // real configs of older families leave it to hidden/heads
  int vocab_size = 0;                // config vocab_size; may exceed the tokenizer (padding)
  int max_position_embeddings = 4096;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  bool qkv_bias = false;        // qwen2
  bool qk_norm = false;         // qwen3
  bool permute_qk = false;      // llama.cpp's converter permutes q/k rows for the llama arch
  bool tie_embeddings = false;  // no lm_head; the output reuses embed_tokens
  std::optional<Llama3RopeScaling> llama3_rope;
  int sliding_window = 0;  // 0: none; gpt-oss and gemma2 alternate windowed and full layers
  int experts = 0;         // gpt-oss (arch_gpt_oss.cpp): mixture of experts
  int experts_used = 0;
  std::optional<YarnRopeScaling> yarn_rope;  // gpt-oss always; llama-family fixtures on request
  // Gemma, Gemma2 and Nemotron (arch_gemma.cpp, arch_nemotron.cpp).
  bool norm_plus_one = false;          // norms applied as 1 + w: HF stores w, the GGUF 1 + w
  bool gguf_rope_keys = true;          // gemma's converters write no rope.freq_base/dimension_count
  double partial_rotary_factor = 1.0;  // rope turns this share of head_dim
};

// A checkpoint tensor before it has values: Hugging Face name and shape (outermost first).
struct TensorDesc {
  std::string name;
  std::vector<int64_t> shape;
};

// One weight in Hugging Face layout: row-major, shape outermost first ([out, in] for linears).
// The values are already rounded to the fixture's dtype, so every writer stores them exactly.
struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
  // U8 tensors (gpt-oss MXFP4 blocks and scales) keep their bytes here instead of values and
  // are stored as U8 whatever the fixture's dtype.
  std::vector<uint8_t> raw = {};
};

// A sentence-embedding fixture's pooling: sentence-transformers' modules.json (Transformer,
// Pooling, Normalize) in the folder, `<arch>.pooling_type` in the GGUF. None: neither.
enum class EmbeddingPooling { None, Last, Mean, Cls };

struct Fixture {
  ModelSpec spec;
  EmbeddingPooling pooling = EmbeddingPooling::None;
  DType dtype = DType::F32;
  ByteLevelVocabulary vocab;  // the tokenizer's tokens (vocab_size may add padding ids)
  std::vector<Tensor> tensors;
};

}  // namespace allm::fixture
