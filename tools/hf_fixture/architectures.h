// Per-architecture knowledge on the Hugging Face side: hyperparameters of each tiny model,
// the checkpoint's tensor names and shapes, deterministic random weights, and config.json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "hf_fixture/model_spec.h"
#include "nlohmann/json.hpp"

namespace allm::fixture {

std::optional<Arch> parse_arch(const std::string& name);  // llama|…|qwen3|gemma|gemma2|nemotron

// The tiny model of `arch` for a tokenizer of `tokenizer_size` tokens.
ModelSpec model_spec(Arch arch, int tokenizer_size, bool tie_embeddings);
// Resizes a spec to about 1B parameters (Llama-3.2-1B-like widths, a 32000-row vocabulary whose
// ids past the tokenizer are padding) for benchmarks: speed does not depend on weight values.
void scale_to_1b(ModelSpec* spec);

// Every tensor of the checkpoint, in file order, filled with deterministic random values
// (rounded to `dtype`): projections ~ N(0, 1/fan_in), norms ~ 1 + N(0, 0.01), biases small.
// lm_head rows of control and padding ids are zero, so random answers rarely end at once.
std::vector<Tensor> random_weights(const ModelSpec& spec, const ByteLevelVocabulary& vocab,
                                   DType dtype, uint64_t seed);

nlohmann::ordered_json hf_config(const ModelSpec& spec, const ByteLevelVocabulary& vocab,
                                 DType dtype);
nlohmann::ordered_json hf_generation_config(const ByteLevelVocabulary& vocab);

}  // namespace allm::fixture
