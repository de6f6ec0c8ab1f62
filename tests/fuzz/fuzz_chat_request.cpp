// POST /v1/chat/completions: any body must give either a parsed request or a 400-class error,
// never an exception or a crash.
#include "api/request_parsing.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const allm::json body = allm::json::parse(data, data + size, nullptr, false);
  if (!body.is_object()) return 0;  // parse_json_body answers these before the parser runs
  const allm::Error error = allm::check_chat_completions_request(body);
  if (error && allm::http_status(error) != 400) fuzz::fail("a request problem that is not a 400");
  return 0;
}
