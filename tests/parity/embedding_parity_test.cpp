// Embeddings: safetensors.cpp's final hidden states, pooled by aLLM as a sentence-transformers
// folder declares, against llama.cpp's own embedding mode and pooling on the GGUF of the same
// random weights (the pooling in its metadata, as a converted embedding model has it), for every
// architecture.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "hf_fixture/hf_fixture.h"
#include "parity/architectures.h"
#include "text/backend.h"

namespace fs = std::filesystem;
using namespace allm;
using fixture::Arch;

namespace {

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
  return dot / std::sqrt(aa * bb);
}

double length(const std::vector<float>& v) {
  double squares = 0;
  for (float x : v) squares += static_cast<double>(x) * x;
  return std::sqrt(squares);
}

using Pooling = fixture::EmbeddingPooling;

struct Case {
  const char* name;
  Arch arch;
  // Declared in the folder's modules.json and the GGUF's metadata; None: neither, where both
  // sides default to the last token.
  Pooling pooling;
  fixture::Yarn yarn = fixture::Yarn::Default;
};

const Case kCases[] = {
    {"llama_last", Arch::Llama, Pooling::None},
    {"llama3_mean", Arch::Llama3, Pooling::Mean},
    {"mistral_cls", Arch::Mistral, Pooling::Cls},
    {"qwen2_mean", Arch::Qwen2, Pooling::Mean},
    {"qwen3_last", Arch::Qwen3, Pooling::None},
    {"qwen3_declared_last", Arch::Qwen3, Pooling::Last},
    {"qwen3_mean", Arch::Qwen3, Pooling::Mean},
    {"gemma_mean", Arch::Gemma, Pooling::Mean},
    {"gemma2_last", Arch::Gemma2, Pooling::None},
    {"nemotron_mean", Arch::Nemotron, Pooling::Mean},
    {"phi_last", Arch::Phi, Pooling::None},
    {"phi3_mean", Arch::Phi3, Pooling::Mean},
    {"gpt_oss_last", Arch::GptOss, Pooling::None, fixture::Yarn::Rounded},
};

class EmbeddingParity : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    dir_ = fs::temp_directory_path() / ("allm-embedding-parity-" + std::string(c.name));
    fs::remove_all(dir_);
    fixture::FixtureOptions options;
    options.arch = c.arch;
    options.dtype = fixture::DType::F32;
    options.out_dir = (dir_ / "hf").string();
    options.gguf_path = (dir_ / "model.gguf").string();
    options.yarn = c.yarn;
    options.pooling = c.pooling;
    ASSERT_NO_FATAL_FAILURE(testing_util::open_fixture_pair(
        options, testing_util::exact_params(1024), &llama_, &ours_));
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::unique_ptr<TextBackend> llama_, ours_;
};

// Four inputs: more tokens than one batch of safetensors.cpp (512) or llama.cpp's micro-batch
// holds, one longer than a micro-batch by itself, and one of a single token.
TEST_P(EmbeddingParity, PooledVectorsMatchLlamaCpp) {
  const int vocab = ours_->vocab_size();
  std::vector<std::vector<Token>> inputs;
  int salt = 0;
  for (int n : {7, 700, 333, 1}) inputs.push_back(testing_util::prompt_tokens(n, vocab, ++salt));
  std::vector<std::vector<float>> expected, got;
  Error error = llama_->embed(inputs, &expected);
  ASSERT_FALSE(error) << error.message;
  error = ours_->embed(inputs, &got);
  ASSERT_FALSE(error) << error.message;
  ASSERT_EQ(got.size(), inputs.size());
  ASSERT_EQ(expected.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_EQ(got[i].size(), expected[i].size());
    EXPECT_GE(cosine(got[i], expected[i]), 0.9999) << "input " << i;
    EXPECT_NEAR(length(got[i]), 1.0, 1e-5) << "input " << i;
    EXPECT_NEAR(length(expected[i]), 1.0, 1e-5) << "input " << i;
  }
  // Inputs sharing batches give what each gives alone.
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<std::vector<float>> alone;
    ASSERT_FALSE(ours_->embed({inputs[i]}, &alone));
    EXPECT_GE(cosine(alone[0], got[i]), 0.99999) << "input " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Architectures, EmbeddingParity, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
