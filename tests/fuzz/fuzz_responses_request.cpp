// POST /v1/responses: any body must give either a parsed request or a 400/404 error, never an
// exception or a crash. One stored response ("resp_seed") lets previous_response_id resolve.
#include "api/request_parsing.h"
#include "core/conversation_service.h"
#include "core/response_store.h"
#include "fuzz_util.h"

static allm::ResponseStore& store() {
  static std::unique_ptr<allm::ResponseStore> instance = [] {
    allm::Error error;
    auto s = allm::ResponseStore::open(":memory:", &error);
    if (!s) fuzz::fail("cannot open an in-memory response store");
    s->put({"resp_seed", "{}",
            R"([{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}])"});
    return s;
  }();
  return *instance;
}

static allm::ConversationService& conversations() {
  static allm::ConversationService instance(store());
  return instance;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  allm::json body;  // as parse_json_body reads it: objects only, at most kMaxJsonDepth deep
  allm::Error parse_error;
  if (!allm::parse_json_object(std::string(reinterpret_cast<const char*>(data), size), &body,
                               &parse_error)) {
    if (allm::http_status(parse_error) != 400) fuzz::fail("a body refusal that is not a 400");
    return 0;
  }
  const allm::Error error = allm::check_responses_request(body, conversations());
  if (error) {
    const int status = allm::http_status(error);
    if (status != 400 && status != 404) fuzz::fail("a request problem that is not a 400/404");
  }
  return 0;
}
