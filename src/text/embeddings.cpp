#include "text/embeddings.h"

#include <cmath>

namespace allm {

bool PooledVector::reads(Pooling pooling, int position, int length) {
  switch (pooling) {
    case Pooling::LAST: return position == length - 1;
    case Pooling::CLS: return position == 0;
    case Pooling::MEAN: return true;
  }
  return false;
}

void PooledVector::add(const float* state) {
  for (size_t i = 0; i < sum_.size(); ++i) sum_[i] += state[i];
  ++count_;
}

std::vector<float> PooledVector::result() const {
  std::vector<float> out(sum_.size());
  const double divisor = pooling_ == Pooling::MEAN && count_ > 0 ? count_ : 1;
  for (size_t i = 0; i < sum_.size(); ++i) out[i] = static_cast<float>(sum_[i] / divisor);
  return out;
}

void l2_normalize(std::vector<float>* v) {
  double squares = 0;
  for (float x : *v) squares += static_cast<double>(x) * x;
  if (squares <= 0) return;
  const double scale = 1.0 / std::sqrt(squares);
  for (float& x : *v) x = static_cast<float>(x * scale);
}

void truncate_normalized(std::vector<float>* v, int dimensions) {
  if (dimensions > 0 && static_cast<size_t>(dimensions) < v->size()) v->resize(dimensions);
  l2_normalize(v);
}

}  // namespace allm
