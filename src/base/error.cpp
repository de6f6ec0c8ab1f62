#include "base/error.h"

namespace allm {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::OK: return "OK";
    case ErrorCode::OOM_VRAM: return "OOM_VRAM";
    case ErrorCode::OOM_RAM: return "OOM_RAM";
    case ErrorCode::MODEL_CORRUPT: return "MODEL_CORRUPT";
    case ErrorCode::TIMEOUT: return "TIMEOUT";
    case ErrorCode::CANCELLED: return "CANCELLED";
    case ErrorCode::UNSUPPORTED: return "UNSUPPORTED";
    case ErrorCode::INTERNAL: return "INTERNAL";
    case ErrorCode::FORMAT_MISMATCH: return "FORMAT_MISMATCH";
    case ErrorCode::LOAD_FAILED: return "LOAD_FAILED";
  }
  return "INTERNAL";
}

std::string quote_excerpt(const std::string& text) {
  if (text.size() <= kMaxQuoteBytes) return text;
  return text.substr(0, kMaxQuoteBytes) + "...";
}

}  // namespace allm
