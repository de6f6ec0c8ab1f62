// Quantize on load for safetensors models: the ggml type the projection matrices become.
#pragma once

#include <optional>
#include <string>

namespace allm {

enum class Quantization { NONE, Q8_0, Q4_0, Q4_K };

inline constexpr const char* kQuantizationNames = "none, q8_0, q4_0 or q4_k";

inline const char* quantization_name(Quantization q) {
  switch (q) {
    case Quantization::Q8_0: return "q8_0";
    case Quantization::Q4_0: return "q4_0";
    case Quantization::Q4_K: return "q4_k";
    default: return "none";
  }
}

inline std::optional<Quantization> parse_quantization(const std::string& name) {
  for (Quantization q :
       {Quantization::NONE, Quantization::Q8_0, Quantization::Q4_0, Quantization::Q4_K}) {
    if (name == quantization_name(q)) return q;
  }
  return std::nullopt;
}

}  // namespace allm
