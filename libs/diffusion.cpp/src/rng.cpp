#include "rng.h"

#include <cmath>

namespace dcpp {

double NormalRng::uniform() {
  // 53 random bits, shifted off zero so that log() is finite.
  return (static_cast<double>(engine_() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

float NormalRng::next() {
  if (has_spare_) {
    has_spare_ = false;
    return static_cast<float>(spare_);
  }
  const double r = std::sqrt(-2.0 * std::log(uniform()));
  const double theta = 2.0 * M_PI * uniform();
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return static_cast<float>(r * std::cos(theta));
}

std::vector<float> NormalRng::normal(size_t n) {
  std::vector<float> out(n);
  for (float& v : out) v = next();
  return out;
}

}  // namespace dcpp
