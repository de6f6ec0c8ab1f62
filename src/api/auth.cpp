#include "api/auth.h"

#include <algorithm>
#include <cctype>

namespace allm {

bool constant_time_equal(std::string_view a, std::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  // Read through a volatile so that the compiler cannot turn the loop into an early exit.
  volatile unsigned char result = diff;
  return result == 0;
}

bool bearer_matches(const std::vector<std::string>& keys, const std::string& authorization) {
  static const std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  std::string_view token(authorization);
  token.remove_prefix(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  bool matched = false;
  for (const std::string& key : keys) matched |= constant_time_equal(token, key);
  return matched;
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
