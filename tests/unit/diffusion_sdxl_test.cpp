// diffusion.cpp's SDXL base on tiny random checkpoints (allm::tiny_sdxl): the single file
// (conditioner.embedders.*) and the diffusers folder (text_encoder_2/, tokenizer_2/) with the
// same weights give the same conditioning and images; the SDXL defaults (1024 pixels, VAE scale
// 0.13025, zeros for an empty negative prompt); the F16 VAE converted to F32 so that large
// activations do not overflow; refiners, SD3 and Flux refused by name. The networks' numbers
// are checked against NumPy in tests/reference/sd_reference.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "demo/tiny_sd.h"
#include "diffusion.h"
#include "diffusion_test_support.h"
#include "nlohmann/json.hpp"

namespace {

namespace fs = std::filesystem;
using allm::testing::ModelPtr;

std::string temp_dir(const std::string& name) {
  return allm::testing::sd_temp_dir("xl-" + name);
}

// Loads `path`; null with *status and *message set on failure.
ModelPtr open(const std::string& path, diffusion_status* status, std::string* message) {
  char text[512] = "";
  ModelPtr m(diffusion_model_load(path.c_str(), diffusion_model_default_params(), status, text,
                                  sizeof text),
             diffusion_model_free);
  *message = text;
  return m;
}

// Writes a tiny SDXL model in `layout` and returns the path to load.
std::string write(const std::string& dir, allm::SdLayout layout,
                  allm::SdWeightType weights = allm::SdWeightType::F32) {
  allm::TinySdSpec spec = allm::tiny_sdxl();
  spec.layout = layout;
  spec.weights = weights;
  std::string error;
  EXPECT_TRUE(allm::write_tiny_sd(dir, spec, &error)) << error;
  return layout == allm::SdLayout::DIFFUSERS ? dir : dir + "/model.safetensors";
}

ModelPtr load(const std::string& path) {
  diffusion_status status;
  std::string message;
  ModelPtr m = open(path, &status, &message);
  EXPECT_NE(m, nullptr) << message;
  return m;
}

std::vector<uint8_t> generate(diffusion_model* m, const char* negative, uint64_t seed = 3) {
  diffusion_generate_params p = diffusion_generate_default_params();
  p.prompt = "a photo of the cat";
  p.negative_prompt = negative;
  p.width = 32;
  p.height = 24;
  p.steps = 2;
  p.seed = seed;
  return allm::testing::generate_rgb(m, p);
}

struct Conditioning {
  std::vector<float> context, pooled;
};

Conditioning encode(diffusion_model* m, const char* text) {
  Conditioning c;
  c.context.resize(static_cast<size_t>(diffusion_text_context_length(m)) *
                   diffusion_text_embedding_dim(m));
  c.pooled.resize(diffusion_text_pooled_dim(m));
  EXPECT_EQ(diffusion_encode_prompt(m, text, 0, c.context.data(), c.pooled.data()), DIFFUSION_OK);
  return c;
}

class SdxlLayouts : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    single_dir_ = new std::string(temp_dir("single"));
    diffusers_dir_ = new std::string(temp_dir("diffusers"));
    single_path_ = new std::string(write(*single_dir_, allm::SdLayout::SINGLE_FILE));
    write(*diffusers_dir_, allm::SdLayout::DIFFUSERS);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*single_dir_);
    fs::remove_all(*diffusers_dir_);
    delete single_dir_;
    delete diffusers_dir_;
    delete single_path_;
  }
  static std::string* single_dir_;
  static std::string* diffusers_dir_;
  static std::string* single_path_;
};
std::string* SdxlLayouts::single_dir_ = nullptr;
std::string* SdxlLayouts::diffusers_dir_ = nullptr;
std::string* SdxlLayouts::single_path_ = nullptr;

TEST_F(SdxlLayouts, BothLayoutsAreSdxlWithItsDefaults) {
  for (const std::string& path : {*single_path_, *diffusers_dir_}) {
    ModelPtr m = load(path);
    ASSERT_TRUE(m);
    EXPECT_STREQ(diffusion_model_architecture(m.get()), "sdxl") << path;
    EXPECT_EQ(diffusion_model_default_size(m.get()), 1024) << path;
    EXPECT_FLOAT_EQ(diffusion_vae_scale_factor(m.get()), 0.13025f) << path;
    EXPECT_EQ(diffusion_model_prediction(m.get()), DIFFUSION_PREDICTION_EPS) << path;
    const allm::TinySdSpec spec = allm::tiny_sdxl();
    EXPECT_EQ(diffusion_text_embedding_dim(m.get()), spec.clip_hidden + spec.clip2_hidden);
    EXPECT_EQ(diffusion_text_pooled_dim(m.get()), spec.clip2_projection);
    // Two tokenizations of one prompt: the per-token API cannot say which.
    std::vector<int32_t> ids(77);
    ASSERT_EQ(diffusion_tokenize(m.get(), "the cat", ids.data(), 77), 77);
    std::vector<float> out(static_cast<size_t>(77) * diffusion_text_embedding_dim(m.get()));
    EXPECT_EQ(diffusion_encode_tokens(m.get(), ids.data(), 77, 0, out.data()),
              DIFFUSION_UNSUPPORTED);
  }
}

// The same weights in both layouts: the same context, pooled text and images, byte for byte.
TEST_F(SdxlLayouts, DiffusersFolderGivesTheSingleFilesConditioningAndImages) {
  ModelPtr single = load(*single_path_), diffusers = load(*diffusers_dir_);
  ASSERT_TRUE(single && diffusers);
  const Conditioning a = encode(single.get(), "the cat and the dog");
  const Conditioning b = encode(diffusers.get(), "the cat and the dog");
  EXPECT_EQ(a.context, b.context);
  EXPECT_EQ(a.pooled, b.pooled);
  EXPECT_EQ(generate(single.get(), "dog"), generate(diffusers.get(), "dog"));
  EXPECT_EQ(generate(single.get(), ""), generate(diffusers.get(), ""));
}

// The pooled text and the sizes reach the UNet: changing either changes its output.
TEST_F(SdxlLayouts, UnetReadsThePooledTextAndTheSizes) {
  ModelPtr m = load(*single_path_);
  ASSERT_TRUE(m);
  const Conditioning c = encode(m.get(), "the cat");
  const int w = 8, h = 6;
  std::vector<float> x(static_cast<size_t>(4) * w * h);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * i);
  auto eval = [&](const std::vector<float>& pooled, const std::vector<float>& sizes) {
    std::vector<float> out(x.size());
    EXPECT_EQ(diffusion_unet_eval_sdxl(m.get(), x.data(), w, h, 500.0f, c.context.data(), 77,
                                       pooled.data(), sizes.data(), out.data()),
              DIFFUSION_OK);
    return out;
  };
  const std::vector<float> sizes = {48, 64, 0, 0, 48, 64};
  const std::vector<float> base = eval(c.pooled, sizes);
  std::vector<float> other_pooled = c.pooled;
  other_pooled[0] += 1.0f;
  std::vector<float> cropped = sizes;
  cropped[2] = 8;
  EXPECT_NE(base, eval(other_pooled, sizes));
  EXPECT_NE(base, eval(c.pooled, cropped));
  std::vector<float> out(x.size());  // without the added conditioning: refused
  EXPECT_EQ(diffusion_unet_eval(m.get(), x.data(), w, h, 500.0f, c.context.data(), 77, out.data()),
            DIFFUSION_INVALID_ARGUMENT);
}

// SDXL base conditions an empty negative prompt on zeros (diffusers'
// force_zeros_for_empty_prompt, true in its model_index.json); with it false, on the empty
// prompt's encoding, which gives another image.
TEST_F(SdxlLayouts, EmptyNegativePromptIsZerosUnlessTheFolderSaysOtherwise) {
  const std::string dir = temp_dir("no-zeros");
  write(dir, allm::SdLayout::DIFFUSERS);
  nlohmann::json index;
  std::ifstream(dir + "/model_index.json") >> index;
  ASSERT_EQ(index["force_zeros_for_empty_prompt"], true);
  index["force_zeros_for_empty_prompt"] = false;
  std::ofstream(dir + "/model_index.json") << index.dump();
  ModelPtr zeros = load(*diffusers_dir_), encoded = load(dir);
  ASSERT_TRUE(zeros && encoded);
  EXPECT_NE(generate(zeros.get(), ""), generate(encoded.get(), ""));
  EXPECT_EQ(generate(zeros.get(), "dog"), generate(encoded.get(), "dog"));
  fs::remove_all(dir);
}

// SDXL's VAE in F16: its activations exceed F16's range (65504), which ggml's F16 products
// round their inputs to. Its F16 weights are converted to F32 at load: a latent that drives the
// activations past that range (as an SD 1.x VAE left in F16 shows, decoding it to inf/NaN)
// decodes to finite values, near what the F32 checkpoint gives.
TEST(SdxlVae, F16WeightsDecodeLargeActivationsWithoutOverflow) {
  const std::string dir = temp_dir("f16");
  ModelPtr f16 = load(write(dir + "-f16", allm::SdLayout::SINGLE_FILE, allm::SdWeightType::F16));
  ModelPtr f32 = load(write(dir + "-f32", allm::SdLayout::SINGLE_FILE));
  allm::TinySdSpec sd1;
  sd1.weights = allm::SdWeightType::F16;
  std::string error;
  ASSERT_TRUE(allm::write_tiny_sd(dir + "-sd1", sd1, &error)) << error;
  ModelPtr sd1_f16 = load(dir + "-sd1/model.safetensors");
  ASSERT_TRUE(f16 && f32 && sd1_f16);
  const int w = 4, h = 4;
  std::vector<float> z(static_cast<size_t>(4) * w * h);
  for (size_t i = 0; i < z.size(); ++i) z[i] = 3e5f * static_cast<float>(std::cos(0.7 * i));
  std::vector<float> a(static_cast<size_t>(3) * 64 * w * h), b(a.size()), c(a.size());
  ASSERT_EQ(diffusion_vae_decode(f16.get(), z.data(), w, h, a.data()), DIFFUSION_OK);
  ASSERT_EQ(diffusion_vae_decode(f32.get(), z.data(), w, h, b.data()), DIFFUSION_OK);
  ASSERT_EQ(diffusion_vae_decode(sd1_f16.get(), z.data(), w, h, c.data()), DIFFUSION_OK);
  bool sd1_finite = true;
  for (float v : c) sd1_finite = sd1_finite && std::isfinite(v);
  EXPECT_FALSE(sd1_finite);  // the latent does overflow an F16 VAE
  double diff = 0, scale = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(std::isfinite(a[i])) << i;
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  EXPECT_LT(diff / scale, 5e-3);
  for (const char* suffix : {"-f16", "-f32", "-sd1"}) fs::remove_all(dir + suffix);
}

// Loading `path` fails UNSUPPORTED with a message naming `what`.
void expect_unsupported(const std::string& path, const std::string& what) {
  diffusion_status status;
  std::string message;
  EXPECT_EQ(open(path, &status, &message), nullptr);
  EXPECT_EQ(status, DIFFUSION_UNSUPPORTED) << message;
  EXPECT_NE(message.find(what), std::string::npos) << message;
}

// A safetensors file holding one small F32 tensor under each of `names`.
void write_checkpoint(const std::string& path, const std::vector<std::string>& names) {
  nlohmann::json header = nlohmann::json::object();
  for (size_t i = 0; i < names.size(); ++i) {
    header[names[i]] = {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {8 * i, 8 * i + 8}}};
  }
  const std::string text = header.dump();
  const uint64_t length = text.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&length), 8).write(text.data(), text.size());
  const std::vector<float> zeros(2 * names.size(), 0.0f);
  out.write(reinterpret_cast<const char*>(zeros.data()), zeros.size() * sizeof(float));
}

TEST(SdxlFamilies, RefinerSd3AndFluxAreRefusedByName) {
  const std::string dir = temp_dir("families");
  fs::create_directories(dir);
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"conditioner.embedders.0.model.ln_final.weight",
        "model.diffusion_model.label_emb.0.0.weight"},
       "SDXL refiner"},
      {{"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"}, "Stable Diffusion 3"},
      {{"double_blocks.0.img_attn.qkv.weight"}, "Flux"},
  };
  for (const auto& [names, family] : cases) {
    write_checkpoint(dir + "/model.safetensors", names);
    expect_unsupported(dir + "/model.safetensors", family);
  }
  fs::remove_all(dir);
}

// diffusers' refiner folder (requires_aesthetics_score; no text_encoder/) is named as such.
TEST(SdxlFamilies, DiffusersRefinerIsRefusedByName) {
  const std::string dir = temp_dir("refiner");
  write(dir, allm::SdLayout::DIFFUSERS);
  nlohmann::json index;
  std::ifstream(dir + "/model_index.json") >> index;
  index["requires_aesthetics_score"] = true;
  std::ofstream(dir + "/model_index.json") << index.dump();
  fs::remove_all(dir + "/text_encoder");
  expect_unsupported(dir, "SDXL refiner");
  fs::remove_all(dir);
}

// A diffusers folder of a transformer pipeline (model_index.json names a transformer, no unet):
// its class named, not the unet/ it lacks.
TEST(SdxlFamilies, DiffusersTransformerPipelinesAreRefusedByClass) {
  const std::string dir = temp_dir("sd3");
  fs::create_directories(dir + "/transformer");
  std::ofstream(dir + "/model_index.json")
      << R"({"_class_name": "StableDiffusion3Pipeline", "transformer": ["diffusers",)"
         R"( "SD3Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]})";
  expect_unsupported(dir, "StableDiffusion3Pipeline");
  fs::remove_all(dir);
}

}  // namespace
