#include "hf_fixture/dtype.h"

#include <cstring>

namespace allm::fixture {

std::optional<DType> parse_dtype(const std::string& name) {
  if (name == "f32") return DType::F32;
  if (name == "f16") return DType::F16;
  if (name == "bf16") return DType::BF16;
  return std::nullopt;
}

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
  }
  return "";
}

const char* torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
  }
  return "";
}

size_t dtype_size(DType dtype) {
  return dtype == DType::F32 ? 4 : 2;
}

ggml_type ggml_type_of(DType dtype) {
  switch (dtype) {
    case DType::F32: return GGML_TYPE_F32;
    case DType::F16: return GGML_TYPE_F16;
    case DType::BF16: return GGML_TYPE_BF16;
  }
  return GGML_TYPE_F32;
}

float round_to_dtype(DType dtype, float value) {
  switch (dtype) {
    case DType::F32: return value;
    case DType::F16: return ggml_fp16_to_fp32(ggml_fp32_to_fp16(value));
    case DType::BF16: return ggml_bf16_to_fp32(ggml_fp32_to_bf16(value));
  }
  return value;
}

void append_encoded(DType dtype, const std::vector<float>& values, std::vector<uint8_t>* out) {
  const size_t begin = out->size();
  out->resize(begin + values.size() * dtype_size(dtype));
  uint8_t* dst = out->data() + begin;
  // The fixtures are written on little-endian hosts, so native bytes are the file's bytes.
  for (float v : values) {
    if (dtype == DType::F32) {
      std::memcpy(dst, &v, 4);
    } else if (dtype == DType::F16) {
      const ggml_fp16_t h = ggml_fp32_to_fp16(v);
      std::memcpy(dst, &h, 2);
    } else {
      const ggml_bf16_t b = ggml_fp32_to_bf16(v);
      std::memcpy(dst, &b, 2);
    }
    dst += dtype_size(dtype);
  }
}

}  // namespace allm::fixture
