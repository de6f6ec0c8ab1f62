// Writes a fixture's weights as llama.cpp's convert_hf_to_gguf.py would: GGUF tensor names,
// q/k row permutation for the llama arch, F32 1-D tensors, llama3 rope_freqs, and metadata.
#pragma once

#include <string>
#include <vector>

#include "hf_fixture/model_spec.h"

namespace allm::fixture {

// The GGUF name of a Hugging Face tensor ("" when the converter has no name for it).
std::string gguf_tensor_name(const std::string& hf_name);

// LlamaModel.permute: within each of `heads` blocks of rows, rows [first half; second half]
// (rotate_half pairs i, i + d/2) are interleaved so llama.cpp's adjacent-pair rope sees the
// same pairs. Works for weights ([rows, cols]) and biases (cols = 1).
std::vector<float> permute_rows_for_llama_rope(const std::vector<float>& values, int64_t rows,
                                               int64_t cols, int heads);

// The per-frequency divisors llama.cpp reads from rope_freqs.weight, computed like the converter
// (float32 arithmetic) from config.rope_scaling.
std::vector<float> llama3_rope_factors(const ModelSpec& spec);

bool write_gguf(const std::string& path, const Fixture& fixture, std::string* error);

}  // namespace allm::fixture
