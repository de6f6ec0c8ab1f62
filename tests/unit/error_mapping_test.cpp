#include <gtest/gtest.h>

#include "api/http_util.h"
#include "core/response_store.h"

using namespace allm;

TEST(ErrorMapping, EverySpecCodeHasItsNameAndStatus) {
  const std::vector<std::tuple<ErrorCode, const char*, int>> expected = {
      {ErrorCode::OOM_VRAM, "OOM_VRAM", 507},
      {ErrorCode::OOM_RAM, "OOM_RAM", 507},
      {ErrorCode::MODEL_CORRUPT, "MODEL_CORRUPT", 422},
      {ErrorCode::TIMEOUT, "TIMEOUT", 504},
      {ErrorCode::CANCELLED, "CANCELLED", 499},
      {ErrorCode::UNSUPPORTED, "UNSUPPORTED", 501},
      {ErrorCode::INTERNAL, "INTERNAL", 500},
      {ErrorCode::FORMAT_MISMATCH, "FORMAT_MISMATCH", 400},
      {ErrorCode::LOAD_FAILED, "LOAD_FAILED", 422},
  };
  for (const auto& [code, name, status] : expected) {
    const Error error = make_error(code, "boom");
    EXPECT_EQ(http_status(error), status) << name;
    const json body = error_body(error);
    EXPECT_EQ(body["error"]["code"], name);
    EXPECT_EQ(body["error"]["message"], "boom");
    EXPECT_TRUE(body["error"]["param"].is_null());
    EXPECT_TRUE(body["error"]["type"].is_string());
  }
  EXPECT_EQ(static_cast<int>(ErrorCode::LOAD_FAILED), 9);
  EXPECT_STREQ(error_code_name(ErrorCode::OK), "OK");
}

TEST(ErrorMapping, RequestProblemsFollowOpenAi) {
  const Error missing = request_error("no such model", "model", "model_not_found");
  EXPECT_EQ(http_status(missing), 404);
  const json body = error_body(missing);
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "model");
  EXPECT_EQ(body["error"]["code"], "model_not_found");
  EXPECT_EQ(http_status(request_error("bad", "temperature")), 400);
  EXPECT_EQ(http_status(request_error("big", "", "payload_too_large")), 413);
  EXPECT_FALSE(request_error("bad", "x").ok());
}

TEST(ErrorMapping, AFieldThatIsNotOfferedIsARequestProblem) {
  Error refused = make_error(ErrorCode::UNSUPPORTED, "background responses are not offered");
  refused.param = "background";
  EXPECT_EQ(http_status(refused), 400);
  const json body = error_body(refused);
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "background");
  EXPECT_EQ(body["error"]["code"], "UNSUPPORTED");
}

TEST(ErrorMapping, AnUnreachableStoreIsA503ServerError) {
  const Error down = store_unavailable("connection refused");
  EXPECT_EQ(http_status(down), 503);
  const json body = error_body(down);
  EXPECT_EQ(body["error"]["type"], "server_error");
  EXPECT_EQ(body["error"]["code"], "store_unavailable");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("connection refused"),
            std::string::npos);
}
