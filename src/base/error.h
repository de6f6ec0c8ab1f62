// The spec's ten error codes, one type carried from the libraries to the HTTP body.
#pragma once

#include <cstddef>
#include <string>

namespace allm {

enum class ErrorCode {
  OK = 0,
  OOM_VRAM = 1,
  OOM_RAM = 2,
  MODEL_CORRUPT = 3,
  TIMEOUT = 4,
  CANCELLED = 5,
  UNSUPPORTED = 6,
  INTERNAL = 7,
  FORMAT_MISMATCH = 8,
  LOAD_FAILED = 9,
};

const char* error_code_name(ErrorCode code);

// A failure: either one of the spec's codes (the engine failed), or a problem with the request
// itself (`request_code` set, in OpenAI's terms: invalid_value, model_not_found, ...), with the
// offending request parameter when there is one.
struct Error {
  ErrorCode code = ErrorCode::OK;
  std::string message;
  std::string param;
  std::string request_code;

  bool ok() const { return code == ErrorCode::OK && request_code.empty(); }
  explicit operator bool() const { return !ok(); }
};

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message), {}, {}};
}

inline Error request_error(std::string message, std::string param,
                           std::string request_code = "invalid_value") {
  return Error{ErrorCode::OK, std::move(message), std::move(param), std::move(request_code)};
}

// A request field, or a value of one, that is not offered (a 400 naming `param`).
inline Error unsupported_error(std::string message, std::string param) {
  return Error{ErrorCode::UNSUPPORTED, std::move(message), std::move(param), {}};
}

// What an error message may quote of a client's text: at most kMaxQuoteBytes, marked with "..."
// when cut (a message is no place for a 30 MB model name).
constexpr size_t kMaxQuoteBytes = 64;
std::string quote_excerpt(const std::string& text);

}  // namespace allm
