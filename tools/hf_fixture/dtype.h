// Storage dtypes of the fixtures: rounding float weights to them and encoding them as bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ggml.h"
#include "hf_fixture/model_spec.h"

namespace allm::fixture {

std::optional<DType> parse_dtype(const std::string& name);  // "f32" | "f16" | "bf16"
const char* safetensors_dtype_name(DType dtype);            // "F32" | "F16" | "BF16"
const char* torch_dtype_name(DType dtype);                  // config.json torch_dtype
size_t dtype_size(DType dtype);
ggml_type ggml_type_of(DType dtype);

// The nearest value representable in `dtype` (round to nearest even, like torch's casts).
float round_to_dtype(DType dtype, float value);

// Little-endian bytes of `values` in `dtype`, appended to `out`.
void append_encoded(DType dtype, const std::vector<float>& values, std::vector<uint8_t>* out);

}  // namespace allm::fixture
