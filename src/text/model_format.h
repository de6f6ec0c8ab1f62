// The formats a text model loads from: GGUF (llama.cpp) or a Hugging Face safetensors folder
// (safetensors.cpp).
#pragma once

#include <optional>
#include <string>

namespace allm {

enum class ModelFormat { GGUF, SAFETENSORS };

inline const char* model_format_name(ModelFormat format) {
  return format == ModelFormat::GGUF ? "gguf" : "safetensors";
}

inline std::optional<ModelFormat> parse_model_format(const std::string& name) {
  if (name == "gguf") return ModelFormat::GGUF;
  if (name == "safetensors") return ModelFormat::SAFETENSORS;
  return std::nullopt;
}

}  // namespace allm
