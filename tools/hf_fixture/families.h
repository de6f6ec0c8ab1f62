// Architectures whose checkpoints depart from the llama layout, one file each (arch_gemma.cpp,
// arch_nemotron.cpp): their hyperparameters, tensors, config.json keys, and what llama.cpp's
// converter writes for them. The shared writers ask family_of(arch) and fall back to llama's.
#pragma once

#include <string>
#include <vector>

#include "hf_fixture/model_spec.h"
#include "nlohmann/json.hpp"

struct gguf_context;

namespace allm::fixture {

struct Family {
  void (*set_spec)(ModelSpec* spec, Arch arch);
  std::vector<TensorDesc> (*layer_tensors)(const ModelSpec& spec, int layer);
  std::vector<TensorDesc> (*final_norm_tensors)(const ModelSpec& spec);
  // Keys config.json has beyond (or instead of) the llama ones.
  void (*adjust_config)(const ModelSpec& spec, nlohmann::ordered_json* config);
  // GGUF metadata the converter adds for the architecture.
  void (*write_hparams)(gguf_context* gguf, const ModelSpec& spec);
  std::string (*gguf_name)(const ModelSpec& spec, const std::string& hf_name);
  // F32 tensors the converter computes for the GGUF (phi3's LongRoPE factors); may be null.
  std::vector<Tensor> (*gguf_extra_tensors)(const ModelSpec& spec) = nullptr;
};

extern const Family kGemmaFamily;
extern const Family kNemotronFamily;
extern const Family kGptOssFamily;
extern const Family kPhiFamily;

// Sizes of a gemma-2-2b-like model (its widths, 256000-row vocabulary and 4096 window) at 6 of
// its 26 layers, about 1B parameters, for benchmarks.
void scale_gemma2_to_bench(ModelSpec* spec);

// The family of `arch`; null for the llama layout.
const Family* family_of(Arch arch);

}  // namespace allm::fixture
