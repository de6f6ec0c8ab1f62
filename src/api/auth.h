// API keys (--api-key) and CORS (--cors-origin): checks that run before any route.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace allm {

// Compares in time that depends only on the lengths, not on where the strings differ, so that
// response timing does not reveal how much of a guessed key was right.
bool constant_time_equal(std::string_view a, std::string_view b);

// Whether an `Authorization` header value carries one of the keys (`Bearer KEY`). Every key is
// compared, match or not.
bool bearer_matches(const std::vector<std::string>& keys, const std::string& authorization);

// Whether a path needs a key when keys are configured: every /v1/* route and /metrics;
// /health stays open for load balancers and liveness probes.
bool path_requires_key(const std::string& path);

// The Access-Control-Allow-Origin value for a request's Origin: the origin itself when listed,
// "*" when "*" is listed, "" when it is not allowed.
std::string allowed_origin(const std::vector<std::string>& origins, const std::string& origin);

}  // namespace allm
