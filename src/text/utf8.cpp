#include "text/utf8.h"

#include "safetensors/utf8.h"

namespace allm {

// UTF-8 validity is safetensors.cpp's (the one implementation in the tree; this layer already
// links the library).

size_t incomplete_utf8_tail(const std::string& text) {
  const size_t start = text.size() > 3 ? text.size() - 3 : 0;
  for (size_t i = start; i < text.size(); ++i) {
    const stcpp::Utf8Sequence seq = stcpp::utf8_sequence_at(text, i);
    if (seq.truncated) return seq.length;
  }
  return 0;
}

bool is_utf8_prefix(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const stcpp::Utf8Sequence seq = stcpp::utf8_sequence_at(text, i);
    if (!seq.valid) return seq.truncated && i + seq.length == text.size();
    i += seq.length;
  }
  return true;
}

std::string sanitize_utf8(const std::string& text) {
  return stcpp::to_valid_utf8(text);
}

}  // namespace allm
