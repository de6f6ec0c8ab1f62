// Kept apart from log.cpp so that code built without ggml (the fuzz targets) can use the logger.
#include "base/ggml_log.h"

#include <string>

#include "base/log.h"

namespace allm {

void forward_ggml_log(ggml_log_level level, const char* text, void* prefix) {
  if (level != GGML_LOG_LEVEL_ERROR && level != GGML_LOG_LEVEL_WARN) return;
  std::string line(text);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (line.empty()) return;
  const char* library = static_cast<const char*>(prefix);
  if (level == GGML_LOG_LEVEL_ERROR) {
    ALLM_LOG_ERROR("%s: %s", library, line.c_str());
  } else {
    ALLM_LOG_WARN("%s: %s", library, line.c_str());
  }
}

}  // namespace allm
