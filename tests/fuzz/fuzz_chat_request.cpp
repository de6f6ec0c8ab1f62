// POST /v1/chat/completions: any body must give either a parsed request or a 400-class error,
// never an exception or a crash.
#include "fuzz_json_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::check_json_request(data, size, allm::check_chat_completions_request);
}
