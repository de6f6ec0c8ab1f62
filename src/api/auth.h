// API keys (--api-key) and CORS (--cors-origin): checks that run before any route.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace allm {

// API keys are compared by their SHA-256 digests, which all have the same size: the comparison
// takes the same time whatever the keys' lengths and wherever they differ, so that response
// timing reveals neither how long a key is nor how much of a guessed key was right.
using KeyDigest = std::array<unsigned char, 32>;
KeyDigest key_digest(std::string_view key);
// Compares every byte, match or not.
bool digests_equal(const KeyDigest& a, const KeyDigest& b);

// Whether an `Authorization` header value carries one of the keys (`Bearer KEY`), given by their
// digests. Every key is compared, match or not.
bool bearer_matches(const std::vector<KeyDigest>& keys, const std::string& authorization);
// Whether `key` (an `x-api-key` header value, Anthropic's way to send it) is one of the keys.
bool key_matches(const std::vector<KeyDigest>& keys, std::string_view key);

// Whether a path needs a key when keys are configured: every /v1/* route and /metrics;
// /health stays open for load balancers and liveness probes.
bool path_requires_key(const std::string& path);

// The Access-Control-Allow-Origin value for a request's Origin: the origin itself when listed,
// "*" when "*" is listed, "" when it is not allowed.
std::string allowed_origin(const std::vector<std::string>& origins, const std::string& origin);

}  // namespace allm
