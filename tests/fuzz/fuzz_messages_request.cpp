// POST /v1/messages (Anthropic): any body must give either a parsed request or a 400-class error,
// never an exception or a crash.
#include "api/request_parsing.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // What the endpoint does with the body first (parse_json_body): JSON objects only, nested no
  // deeper than kMaxJsonDepth.
  allm::json body;
  allm::Error parse_error;
  if (!allm::parse_json_object(std::string(reinterpret_cast<const char*>(data), size), &body,
                               &parse_error)) {
    if (allm::http_status(parse_error) != 400) fuzz::fail("a body refusal that is not a 400");
    return 0;
  }
  const allm::Error error = allm::check_messages_request(body);
  if (error && allm::http_status(error) != 400) fuzz::fail("a request problem that is not a 400");
  return 0;
}
