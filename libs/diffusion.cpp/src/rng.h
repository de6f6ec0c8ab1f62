// Seeded standard-normal noise that is the same on every platform and compiler: a 64-bit
// Mersenne Twister (its output is fixed by the C++ standard) and our own Box-Muller transform
// (std::normal_distribution is not specified bit for bit).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace dcpp {

class NormalRng {
 public:
  explicit NormalRng(uint64_t seed) : engine_(seed) {}
  float next();
  std::vector<float> normal(size_t n);

 private:
  double uniform();  // in (0, 1)
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace dcpp
