#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/model_registry.h"

namespace fs = std::filesystem;
using namespace allm;

class FormatDetection : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("allm-format-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path touch(const std::string& relative) {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << "x";
    return path;
  }
  fs::path root_;
};

TEST_F(FormatDetection, GgufFileIsGguf) {
  const fs::path file = touch("m.gguf");
  const ResolvedFormat r = resolve_format(probe_model_path(file), std::nullopt, "m");
  ASSERT_TRUE(r.error.ok());
  EXPECT_EQ(r.format, ModelFormat::GGUF);
  EXPECT_EQ(r.file, file);
}

TEST_F(FormatDetection, FolderWithGgufOnlyIsGguf) {
  const fs::path file = touch("dir/model-q4.gguf");
  const ResolvedFormat r = resolve_format(probe_model_path(root_ / "dir"), std::nullopt, "dir");
  ASSERT_TRUE(r.error.ok());
  EXPECT_EQ(r.format, ModelFormat::GGUF);
  EXPECT_EQ(r.file, file);
}

TEST_F(FormatDetection, SafetensorsAndIndexAreSafetensors) {
  touch("a/config.json");
  touch("a/model.safetensors");
  touch("b/model.safetensors.index.json");
  for (const char* dir : {"a", "b"}) {
    const ResolvedFormat r = resolve_format(probe_model_path(root_ / dir), std::nullopt, dir);
    ASSERT_TRUE(r.error.ok()) << dir;
    EXPECT_EQ(r.format, ModelFormat::SAFETENSORS) << dir;
  }
}

TEST_F(FormatDetection, BothPresentDefaultsToSafetensors) {
  touch("both/model.gguf");
  touch("both/model.safetensors");
  const FormatProbe probe = probe_model_path(root_ / "both");
  EXPECT_EQ(resolve_format(probe, std::nullopt, "both").format, ModelFormat::SAFETENSORS);
}

TEST_F(FormatDetection, BothPresentFollowsRegistration) {
  touch("both/model.gguf");
  touch("both/model.safetensors");
  const FormatProbe probe = probe_model_path(root_ / "both");
  EXPECT_EQ(resolve_format(probe, ModelFormat::GGUF, "both").format, ModelFormat::GGUF);
  EXPECT_EQ(resolve_format(probe, ModelFormat::SAFETENSORS, "both").format,
            ModelFormat::SAFETENSORS);
}

TEST_F(FormatDetection, RegisteredFormatAbsentIsFormatMismatch) {
  touch("st/model.safetensors");
  touch("gg/model.gguf");
  EXPECT_EQ(resolve_format(probe_model_path(root_ / "st"), ModelFormat::GGUF, "st").error.code,
            ErrorCode::FORMAT_MISMATCH);
  EXPECT_EQ(
      resolve_format(probe_model_path(root_ / "gg"), ModelFormat::SAFETENSORS, "gg").error.code,
      ErrorCode::FORMAT_MISMATCH);
}

TEST_F(FormatDetection, EmptyFolderFailsToLoad) {
  fs::create_directories(root_ / "empty");
  EXPECT_EQ(resolve_format(probe_model_path(root_ / "empty"), std::nullopt, "empty").error.code,
            ErrorCode::LOAD_FAILED);
}

TEST_F(FormatDetection, RegistryListsFilesAndFoldersAndFlags) {
  touch("models/alpha.gguf");
  touch("models/beta/model.safetensors");
  touch("models/notes.txt");
  touch("models/.hidden/model.gguf");
  const fs::path extra = touch("elsewhere/x.gguf");
  ModelRegistry registry(root_ / "models", {{"gamma", extra, ModelFormat::GGUF, Modality::TEXT}});
  std::vector<std::string> ids;
  for (const ModelEntry& e : registry.list()) ids.push_back(e.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"alpha", "beta", "gamma"}));
  EXPECT_FALSE(registry.find("notes").has_value());
  touch("models/later.gguf");  // dropped in while running
  EXPECT_TRUE(registry.find("later").has_value());
}

TEST_F(FormatDetection, ImageModelsAreSingleFilesAndDiffusersFolders) {
  touch("models/sd15.safetensors");                // a single-file checkpoint
  touch("models/sd2-diffusers/model_index.json");  // a diffusers pipeline folder
  touch("models/sd2-diffusers/unet/diffusion_pytorch_model.safetensors");
  touch("models/llama/config.json");  // a Hugging Face text model
  touch("models/llama/model.safetensors");
  ModelRegistry registry(root_ / "models", {});
  EXPECT_EQ(registry.find("sd15")->modality, Modality::IMAGE);
  EXPECT_EQ(registry.find("sd2-diffusers")->modality, Modality::IMAGE);
  EXPECT_EQ(registry.find("llama")->modality, Modality::TEXT);
  std::string problem;
  EXPECT_EQ(parse_model_spec("sd=" + (root_ / "models/sd2-diffusers").string(), &problem)->modality,
            Modality::IMAGE);
}

TEST(ModelSpec, ParsesNamePathAndFormat) {
  std::string problem;
  auto plain = parse_model_spec("m=/a/b", &problem);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->id, "m");
  EXPECT_EQ(plain->path, "/a/b");
  EXPECT_FALSE(plain->registered_format);
  auto gguf = parse_model_spec("m=/a/b:gguf", &problem);
  ASSERT_TRUE(gguf);
  EXPECT_EQ(gguf->path, "/a/b");
  EXPECT_EQ(gguf->registered_format, ModelFormat::GGUF);
  auto st = parse_model_spec("m=C:/x:safetensors", &problem);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->path, "C:/x");
  EXPECT_EQ(st->registered_format, ModelFormat::SAFETENSORS);
  EXPECT_FALSE(parse_model_spec("no-equals", &problem));
  EXPECT_FALSE(parse_model_spec("=path", &problem));
  EXPECT_FALSE(parse_model_spec("name=", &problem));
  EXPECT_FALSE(parse_model_spec("name=:gguf", &problem));  // found by fuzzing
}

TEST(ModelSpec, QuantizationFollowsTheSafetensorsSuffix) {
  std::string problem;
  auto q8 = parse_model_spec("m=C:/x:safetensors:q8_0", &problem);
  ASSERT_TRUE(q8) << problem;
  EXPECT_EQ(q8->path, "C:/x");
  EXPECT_EQ(q8->registered_format, ModelFormat::SAFETENSORS);
  EXPECT_EQ(q8->quantization, Quantization::Q8_0);
  EXPECT_EQ(parse_model_spec("m=/x:safetensors:q4_k", &problem)->quantization, Quantization::Q4_K);
  EXPECT_EQ(parse_model_spec("m=/x:safetensors:none", &problem)->quantization, Quantization::NONE);
  EXPECT_FALSE(parse_model_spec("m=/x:safetensors", &problem)->quantization);
  EXPECT_FALSE(parse_model_spec("m=/x:safetensors:q3_k", &problem));
  EXPECT_NE(problem.find("unknown quantization 'q3_k'"), std::string::npos) << problem;
  // Only after :safetensors, and only as the last part of the path.
  auto folder = parse_model_spec("m=/a:safetensors:q8_0/b", &problem);
  ASSERT_TRUE(folder);
  EXPECT_EQ(folder->path, "/a:safetensors:q8_0/b");
  EXPECT_FALSE(folder->quantization);
}

TEST(ModelSpec, RegistryAppliesTheServerQuantizationToModelsWithoutOne) {
  std::string problem;
  ModelRegistry registry("/nonexistent-models-dir",
                         {*parse_model_spec("a=/x:safetensors", &problem),
                          *parse_model_spec("b=/y:safetensors:none", &problem)},
                         Quantization::Q4_0);
  EXPECT_EQ(registry.find("a")->quantization, Quantization::Q4_0);
  EXPECT_EQ(registry.find("b")->quantization, Quantization::NONE);
}

// Core says what the model is and what is needed; which endpoints serve it is the API's to add.
TEST(WrongModality, SaysWhatTheModelIsAndNamesNoRoute) {
  const Error image = wrong_modality_error("sd", Modality::IMAGE, Modality::TEXT);
  EXPECT_EQ(image.message, "The model 'sd' is an image model, not a text model");
  EXPECT_EQ(image.param, "model");
  EXPECT_EQ(image.request_code, "invalid_value");
  const Error text = wrong_modality_error("tiny", Modality::TEXT, Modality::AUDIO);
  EXPECT_EQ(text.message, "The model 'tiny' is a text model, not an audio model (a whisper .bin)");
  for (Modality actual : {Modality::TEXT, Modality::AUDIO, Modality::IMAGE}) {
    for (Modality needed : {Modality::TEXT, Modality::AUDIO, Modality::IMAGE}) {
      const std::string message = wrong_modality_error("m", actual, needed).message;
      EXPECT_EQ(message.find("/v1/"), std::string::npos) << message;
    }
  }
}
