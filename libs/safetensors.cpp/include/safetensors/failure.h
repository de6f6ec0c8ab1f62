// A failure inside the library: a status code and a message naming the problem.
#pragma once

#include <string>

#include "safetensors.h"

namespace stcpp {

struct Failure {
  stcpp_status status = STCPP_OK;
  std::string message;
  explicit operator bool() const { return status != STCPP_OK; }
};

inline Failure fail(stcpp_status status, std::string message) {
  return Failure{status, std::move(message)};
}

}  // namespace stcpp
