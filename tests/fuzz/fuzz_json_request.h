// The fuzz targets of the JSON endpoints whose parsers need nothing but the body.
#pragma once

#include "api/request_parsing.h"
#include "fuzz_util.h"

namespace fuzz {

// What such an endpoint does with a body: first parse_json_body (JSON objects only, nested no
// deeper than kMaxJsonDepth), then its parser `check`. Any body must give a parsed request or a
// 400-class error, never an exception or a crash.
inline int check_json_request(const uint8_t* data, size_t size,
                              allm::Error (*check)(const allm::json& body)) {
  allm::json body;
  allm::Error parse_error;
  if (!allm::parse_json_object(std::string(reinterpret_cast<const char*>(data), size), &body,
                               &parse_error)) {
    if (allm::http_status(parse_error) != 400) fail("a body refusal that is not a 400");
    return 0;
  }
  const allm::Error error = check(body);
  if (error && allm::http_status(error) != 400) fail("a request problem that is not a 400");
  return 0;
}

}  // namespace fuzz
