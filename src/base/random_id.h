// Random ids: of requests (the access log's X-Request-Id) and of the objects the API returns.
#pragma once

#include <string>

namespace allm {

// `prefix` and 32 random hex digits.
std::string random_id(const std::string& prefix);

}  // namespace allm
