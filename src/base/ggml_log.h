// Forwards a ggml-based library's log (llama.cpp, whisper.cpp) to our log: warnings and errors
// only, one line each, prefixed with the library's name.
#pragma once

#include "ggml.h"

namespace allm {

// A ggml_log_callback; `prefix` is the library's name as a NUL-terminated string:
//   llama_log_set(forward_ggml_log, const_cast<char*>("llama.cpp"));
void forward_ggml_log(ggml_log_level level, const char* text, void* prefix);

}  // namespace allm
