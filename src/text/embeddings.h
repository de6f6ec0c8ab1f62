// Sentence embeddings: how token hidden states become one vector per input, and the vector
// arithmetic the endpoint applies (L2 normalisation, Matryoshka-style truncation).
#pragma once

#include <vector>

namespace allm {

enum class Pooling { LAST, MEAN, CLS };

// Pools one input's token states, fed in order of position, into one vector.
class PooledVector {
 public:
  PooledVector(Pooling pooling, int width) : pooling_(pooling), sum_(width, 0.0) {}
  // Which tokens of an input of `length` tokens the pooling reads.
  static bool reads(Pooling pooling, int position, int length);
  void add(const float* state);  // the state of the next token the pooling reads
  std::vector<float> result() const;

 private:
  Pooling pooling_;
  std::vector<double> sum_;
  int count_ = 0;
};

// Scales `v` to Euclidean length 1 (a zero vector stays zero), as llama-server's default
// embd_normalize (2) and sentence-transformers' Normalize module do.
void l2_normalize(std::vector<float>* v);
// The first `dimensions` components, normalised again: what a Matryoshka-trained model's shorter
// embedding is (OpenAI's `dimensions`, Qwen3-Embedding's MRL).
void truncate_normalized(std::vector<float>* v, int dimensions);

}  // namespace allm
