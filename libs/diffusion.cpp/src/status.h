// A failure inside the library: a status code and a message naming the problem.
#pragma once

#include <string>

#include "diffusion.h"

namespace dcpp {

struct Failure {
  diffusion_status status = DIFFUSION_OK;
  std::string message;
  explicit operator bool() const { return status != DIFFUSION_OK; }
};

inline Failure fail(diffusion_status status, std::string message) {
  return Failure{status, std::move(message)};
}

}  // namespace dcpp
