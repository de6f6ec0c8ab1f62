#include "api/auth.h"

#include <cctype>

extern "C" {
#include "hash/sha256/sha256.h"  // llama.cpp's vendored SHA-256
}

namespace allm {

KeyDigest key_digest(std::string_view key) {
  KeyDigest digest;
  sha256_hash(digest.data(), reinterpret_cast<const unsigned char*>(key.data()), key.size());
  return digest;
}

bool digests_equal(const KeyDigest& a, const KeyDigest& b) {
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  // Read through a volatile so that the compiler cannot turn the loop into an early exit.
  volatile unsigned char result = diff;
  return result == 0;
}

bool key_matches(const std::vector<KeyDigest>& keys, std::string_view key) {
  const KeyDigest presented = key_digest(key);
  bool matched = false;
  for (const KeyDigest& digest : keys) matched |= digests_equal(presented, digest);
  return !key.empty() && matched;
}

bool bearer_matches(const std::vector<KeyDigest>& keys, const std::string& authorization) {
  static const std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  std::string_view token(authorization);
  token.remove_prefix(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  return key_matches(keys, token);
}

bool path_requires_key(const std::string& path) {
  return path == "/v1" || path.rfind("/v1/", 0) == 0 || path == "/metrics";
}

std::string allowed_origin(const std::vector<std::string>& origins, const std::string& origin) {
  if (origin.empty()) return "";
  bool any = false;
  for (const std::string& allowed : origins) {
    if (allowed == origin) return origin;
    any |= allowed == "*";
  }
  return any ? "*" : "";
}

}  // namespace allm
