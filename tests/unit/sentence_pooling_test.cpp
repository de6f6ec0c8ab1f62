// What safetensors.cpp reads of a sentence-transformers folder: the pooling and Normalize
// modules, and the modules it cannot run, which refuse embeddings (never the model's load).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "hf_fixture/hf_fixture.h"
#include "safetensors.h"
#include "text/backend.h"

namespace fs = std::filesystem;

namespace allm {
namespace {

using fixture::EmbeddingPooling;

class SentencePooling : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fs::temp_directory_path() / "allm-sentence-pooling"; }
  void TearDown() override {
    if (model_) stcpp_model_free(model_);
    fs::remove_all(dir_);
  }

  void load(EmbeddingPooling pooling) {
    fs::remove_all(dir_);
    fixture::FixtureOptions options;
    options.arch = fixture::Arch::Qwen3;
    options.out_dir = dir_.string();
    options.pooling = pooling;
    std::string problem;
    ASSERT_TRUE(fixture::write_hf_fixture(options, &problem)) << problem;
  }
  void open() {
    stcpp_status status;
    char message[512];
    model_ = stcpp_model_load(dir_.c_str(), stcpp_model_default_params(), &status, message,
                              sizeof message);
    ASSERT_TRUE(model_) << message;
  }
  void write(const fs::path& file, const std::string& text) { std::ofstream(dir_ / file) << text; }

  fs::path dir_;
  stcpp_model* model_ = nullptr;
};

TEST_F(SentencePooling, WithoutModulesTheLastTokenNormalised) {
  load(EmbeddingPooling::None);
  open();
  EXPECT_EQ(stcpp_model_pooling(model_), STCPP_POOLING_LAST);
  EXPECT_TRUE(stcpp_model_normalizes(model_));
  EXPECT_STREQ(stcpp_model_embedding_problem(model_), "");
  EXPECT_EQ(stcpp_model_n_embd(model_), 64);
}

TEST_F(SentencePooling, DeclaredPoolingAndNormalize) {
  load(EmbeddingPooling::Mean);
  open();
  EXPECT_EQ(stcpp_model_pooling(model_), STCPP_POOLING_MEAN);
  EXPECT_TRUE(stcpp_model_normalizes(model_));
  stcpp_model_free(model_);
  load(EmbeddingPooling::Cls);
  write("modules.json", R"([{"type":"sentence_transformers.models.Transformer","path":""},
    {"type":"sentence_transformers.models.Pooling","path":"1_Pooling"}])");
  open();
  EXPECT_EQ(stcpp_model_pooling(model_), STCPP_POOLING_CLS);
  EXPECT_FALSE(stcpp_model_normalizes(model_));
  EXPECT_STREQ(stcpp_model_embedding_problem(model_), "");
}

// Each case loads, and embeddings are refused with the reason.
TEST_F(SentencePooling, ModulesItCannotRunRefuseEmbeddings) {
  const std::pair<const char*, const char*> cases[] = {
      {"modules.json", R"([{"type":"sentence_transformers.models.Transformer","path":""},
         {"type":"sentence_transformers.models.Pooling","path":"1_Pooling"},
         {"type":"sentence_transformers.models.Dense","path":"2_Dense"}])"},
      {"1_Pooling/config.json", R"({"pooling_mode_max_tokens": true})"},
      {"1_Pooling/config.json",
       R"({"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true})"},
      {"1_Pooling/config.json", R"({"pooling_mode_mean_tokens": "yes"})"},
      {"modules.json", R"({"not": "a list"})"},
      {"modules.json", R"([{"type":"sentence_transformers.models.Transformer","path":""}])"},
  };
  for (const auto& [file, text] : cases) {
    load(EmbeddingPooling::Mean);
    write(file, text);
    Error error;
    BackendParams params;
    params.ctx_per_sequence = 64;
    params.sequences = 1;
    std::unique_ptr<TextBackend> backend = open_safetensors_backend(dir_.string(), params, &error);
    ASSERT_TRUE(backend) << error.message;
    std::vector<std::vector<float>> vectors;
    error = backend->embed({{1, 2, 3}}, &vectors);
    EXPECT_EQ(error.code, ErrorCode::UNSUPPORTED) << text;
    EXPECT_FALSE(error.message.empty()) << text;
  }
}

}  // namespace
}  // namespace allm
