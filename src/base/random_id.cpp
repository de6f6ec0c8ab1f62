#include "base/random_id.h"

#include <random>

namespace allm {

std::string random_id(const std::string& prefix) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char digits[] = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 32; ++i) id += digits[rng() % 16];
  return id;
}

}  // namespace allm
