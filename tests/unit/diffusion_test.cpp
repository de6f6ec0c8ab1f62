// diffusion.cpp: sampler steps against their published formulas on known inputs, noise
// schedules, the PNG encoder, and whole generations on a tiny random checkpoint (determinism by
// seed, every sampler, cancellation). The networks themselves are checked against the NumPy
// reference (tests/reference/sd_reference.py).
#include "diffusion.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "demo/tiny_sd.h"
#include "diffusion_test_support.h"
#include "png.h"
#include "samplers.h"
#include "sd_model.h"

namespace {

using dcpp::Latent;

TEST(Schedule, MatchesScaledLinearDdpm) {
  dcpp::NoiseSchedule s;
  // alpha_bar_0 = 1 - 0.00085; sigma = sqrt((1 - a) / a).
  EXPECT_NEAR(s.train_sigmas()[0], std::sqrt(0.00085 / (1 - 0.00085)), 1e-6);
  EXPECT_NEAR(s.train_sigmas()[999], 14.6146, 1e-3);  // SD's sigma_max
  EXPECT_NEAR(s.timestep(s.train_sigmas()[500]), 500.0f, 1e-3);
  EXPECT_NEAR(s.sigma_at(s.timestep(3.0f)), 3.0f, 1e-4);
  const std::vector<float> d = s.discrete(10);
  ASSERT_EQ(d.size(), 11u);
  EXPECT_NEAR(d[0], s.train_sigmas()[999], 1e-4);
  EXPECT_EQ(d[10], 0.0f);
  const std::vector<float> k = s.karras(5);
  // Karras et al. (2022), eq. 5 with rho = 7: the ends are sigma_max and sigma_min.
  EXPECT_NEAR(k[0], s.train_sigmas()[999], 1e-3);
  EXPECT_NEAR(k[4], s.train_sigmas()[0], 1e-5);
  const double mid = std::pow(
      std::pow(s.train_sigmas()[999], 1 / 7.0) +
          0.5 * (std::pow(s.train_sigmas()[0], 1 / 7.0) - std::pow(s.train_sigmas()[999], 1 / 7.0)),
      7.0);
  EXPECT_NEAR(k[2], mid, 1e-4);
  const std::vector<float> ddim = s.ddim(4);  // leading spacing, offset 1: 751, 501, 251, 1
  EXPECT_EQ(ddim[0], s.train_sigmas()[751]);
  EXPECT_EQ(ddim[3], s.train_sigmas()[1]);
}

TEST(Samplers, EulerStepIsTheOdeStep) {
  Latent x = {1.0f, -2.0f}, denoised = {0.5f, 0.0f};
  dcpp::euler_step(x, denoised, 2.0f, 1.0f);
  // d = (x - D) / sigma; x + d * (sigma_next - sigma)
  EXPECT_FLOAT_EQ(x[0], 1.0f + (0.5f / 2.0f) * -1.0f);
  EXPECT_FLOAT_EQ(x[1], -2.0f + (-2.0f / 2.0f) * -1.0f);
}

TEST(Samplers, EulerAncestralSplitsTheNoise) {
  const float s = 2.0f, n = 1.0f;
  const double up = std::sqrt(n * n * (s * s - n * n) / (s * s));  // eta = 1
  const double down = std::sqrt(n * n - up * up);
  Latent x = {1.0f}, denoised = {0.25f}, noise = {0.7f};
  dcpp::euler_ancestral_step(x, denoised, s, n, noise);
  EXPECT_NEAR(x[0], 1.0 + (0.75 / 2.0) * (down - 2.0) + 0.7 * up, 1e-6);
  Latent last = {1.0f};
  dcpp::euler_ancestral_step(last, denoised, s, 0.0f, Latent());
  EXPECT_FLOAT_EQ(last[0], 0.25f);  // no noise on the last step; lands on the estimate
}

TEST(Samplers, DpmPlusPlus2MUsesThePreviousEstimate) {
  const double s_prev = 3.0, s = 2.0, n = 1.0;
  Latent first = {1.0f};
  dcpp::dpmpp_2m_step(first, {0.5f}, {}, 0.0f, s, n);
  const double h = std::log(s) - std::log(n);
  EXPECT_NEAR(first[0], (n / s) * 1.0 - std::expm1(-h) * 0.5, 1e-6);
  Latent second = {1.0f};
  dcpp::dpmpp_2m_step(second, {0.5f}, {0.2f}, s_prev, s, n);
  const double r = (std::log(s_prev) - std::log(s)) / h;
  const double d = (1 + 1 / (2 * r)) * 0.5 - (1 / (2 * r)) * 0.2;
  EXPECT_NEAR(second[0], (n / s) * 1.0 - std::expm1(-h) * d, 1e-6);
  Latent last = {1.0f};
  dcpp::dpmpp_2m_step(last, {0.5f}, {0.2f}, s_prev, s, 0.0f);
  EXPECT_FLOAT_EQ(last[0], 0.5f);
}

TEST(Samplers, DdimWithEtaZeroIsEulerInSigmaSpace) {
  // Song et al. (2021) eq. 12, eta = 0, in the x / sqrt(alpha_bar) parameterisation.
  Latent ddim = {1.3f, -0.4f}, euler = ddim;
  const Latent denoised = {0.2f, 0.1f};
  dcpp::ddim_step(ddim, denoised, 5.0f, 0.8f);
  dcpp::euler_step(euler, denoised, 5.0f, 0.8f);
  EXPECT_NEAR(ddim[0], euler[0], 1e-5);
  EXPECT_NEAR(ddim[1], euler[1], 1e-5);
}

TEST(Samplers, ScalingsFollowKDiffusion) {
  // k-diffusion (Karras et al. 2022, table 1, sigma_data = 1): c_in = 1 / sqrt(sigma^2 + 1);
  // eps: D = x - sigma * eps; v: c_skip = 1 / (sigma^2 + 1), c_out = -sigma / sqrt(sigma^2 + 1).
  const float sigma = 2.0f;
  const dcpp::Scalings eps = dcpp::scalings(DIFFUSION_PREDICTION_EPS, sigma);
  EXPECT_DOUBLE_EQ(eps.c_skip, 1.0);
  EXPECT_DOUBLE_EQ(eps.c_out, -2.0);
  EXPECT_NEAR(eps.c_in, 1 / std::sqrt(5.0), 1e-12);
  const dcpp::Scalings v = dcpp::scalings(DIFFUSION_PREDICTION_V, sigma);
  EXPECT_NEAR(v.c_skip, 0.2, 1e-12);
  EXPECT_NEAR(v.c_out, -2 / std::sqrt(5.0), 1e-12);
  EXPECT_NEAR(v.c_in, 1 / std::sqrt(5.0), 1e-12);
  // A perfect v model gives back x0 (Salimans & Ho 2022): with alpha = 1 / sqrt(1 + sigma^2),
  // s = sigma * alpha, the network sees alpha x0 + s eps and predicts v = alpha eps - s x0.
  for (double s : {0.03, 1.0, 14.6}) {
    const double x0 = 0.7, e = -1.3, x = x0 + s * e;
    const double alpha = 1 / std::sqrt(1 + s * s), target = alpha * e - s * alpha * x0;
    const dcpp::Scalings k = dcpp::scalings(DIFFUSION_PREDICTION_V, static_cast<float>(s));
    EXPECT_NEAR(k.c_skip * x + k.c_out * target, x0, 1e-6) << s;
    const dcpp::Scalings ke = dcpp::scalings(DIFFUSION_PREDICTION_EPS, static_cast<float>(s));
    EXPECT_NEAR(ke.c_skip * x + ke.c_out * e, x0, 1e-6) << s;
  }
}

TEST(Png, EncodesDimensionsAndPixels) {
  const int w = 5, h = 3;
  std::vector<uint8_t> rgb(w * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 37);
  const std::string png = dcpp::encode_png(rgb.data(), w, h);
  ASSERT_GT(png.size(), 33u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  auto be32 = [&](size_t at) {
    return (uint32_t(uint8_t(png[at])) << 24) | (uint32_t(uint8_t(png[at + 1])) << 16) |
           (uint32_t(uint8_t(png[at + 2])) << 8) | uint32_t(uint8_t(png[at + 3]));
  };
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(be32(16), uint32_t(w));
  EXPECT_EQ(be32(20), uint32_t(h));
  const uint32_t idat_len = be32(33);
  ASSERT_EQ(png.substr(37, 4), "IDAT");
  std::vector<uint8_t> raw((w * 3 + 1) * h);
  uLongf raw_len = raw.size();
  ASSERT_EQ(
      uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(png.data() + 41), idat_len),
      Z_OK);
  for (int y = 0; y < h; ++y) {  // undo the Sub filter
    uint8_t* row = &raw[y * (w * 3 + 1)];
    ASSERT_EQ(row[0], 1);
    for (int i = 1; i <= w * 3; ++i) {
      if (i > 3) row[i] = uint8_t(row[i] + row[i - 3]);
      ASSERT_EQ(row[i], rgb[y * w * 3 + i - 1]);
    }
  }
}

class Generation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(
        (std::filesystem::temp_directory_path() / ("allm-sd-test-" + std::to_string(::getpid())))
            .string());
    std::string error;
    ASSERT_TRUE(allm::write_tiny_sd(*dir_, allm::TinySdSpec{}, &error)) << error;
    char message[256];
    diffusion_status status;
    model_ =
        diffusion_model_load((*dir_ + "/model.safetensors").c_str(),
                             diffusion_model_default_params(), &status, message, sizeof message);
    ASSERT_NE(model_, nullptr) << message;
  }
  static void TearDownTestSuite() {
    diffusion_model_free(model_);
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  static std::vector<uint8_t> run(uint64_t seed,
                                  diffusion_sampler sampler = DIFFUSION_SAMPLER_EULER_A, int w = 32,
                                  int h = 24) {
    diffusion_generate_params p = diffusion_generate_default_params();
    p.prompt = "a photo of the cat";
    p.negative_prompt = "dog";
    p.width = w;
    p.height = h;
    p.steps = 3;
    p.seed = seed;
    p.sampler = sampler;
    std::vector<uint8_t> rgb(w * h * 3);
    char message[256];
    EXPECT_EQ(diffusion_generate(model_, &p, rgb.data(), message, sizeof message), DIFFUSION_OK)
        << message;
    return rgb;
  }

  static std::string* dir_;
  static diffusion_model* model_;
};

std::string* Generation::dir_ = nullptr;
diffusion_model* Generation::model_ = nullptr;

TEST_F(Generation, SameSeedSameImageOtherSeedOtherImage) {
  EXPECT_STREQ(diffusion_model_architecture(model_), "sd1");
  const std::vector<uint8_t> a = run(1), b = run(1), c = run(2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST_F(Generation, EverySamplerRuns) {
  for (auto s : {DIFFUSION_SAMPLER_EULER, DIFFUSION_SAMPLER_DPMPP_2M, DIFFUSION_SAMPLER_DDIM}) {
    EXPECT_EQ(run(5, s), run(5, s)) << diffusion_sampler_name(s);
  }
}

TEST_F(Generation, ProgressCanCancel) {
  diffusion_generate_params p = diffusion_generate_default_params();
  p.prompt = "cat";
  p.width = p.height = 16;
  p.steps = 5;
  int calls = 0;
  p.user_data = &calls;
  p.progress = [](int32_t, int32_t, void* user) { return ++*static_cast<int*>(user) < 2; };
  std::vector<uint8_t> rgb(16 * 16 * 3);
  EXPECT_EQ(diffusion_generate(model_, &p, rgb.data(), nullptr, 0), DIFFUSION_CANCELLED);
  EXPECT_EQ(calls, 2);
}

TEST_F(Generation, RefusesBadSizes) {
  diffusion_generate_params p = diffusion_generate_default_params();
  p.prompt = "cat";
  p.width = 30;
  std::vector<uint8_t> rgb(30 * 512 * 3);
  EXPECT_EQ(diffusion_generate(model_, &p, rgb.data(), nullptr, 0), DIFFUSION_INVALID_ARGUMENT);
}

// The UNet's graph is built and laid out once per shape, whatever the number of steps, and
// switching shapes (or running the other networks in between) changes nothing in the images.
TEST(GraphReuse, OneUnetLayoutPerShapeAndTheSameImages) {
  const std::string dir = allm::testing::sd_temp_dir("reuse");
  std::string error;
  ASSERT_TRUE(allm::write_tiny_sd(dir, allm::TinySdSpec{}, &error)) << error;
  std::unique_ptr<dcpp::Model> model;
  ASSERT_FALSE(
      dcpp::load_model(dir + "/model.safetensors", diffusion_model_default_params(), &model));
  const auto generate = [&](int steps, int side, uint64_t seed) {
    diffusion_generate_params p = diffusion_generate_default_params();
    p.prompt = "a photo of the cat";
    p.width = p.height = side;
    p.steps = steps;
    p.seed = seed;
    std::vector<uint8_t> rgb(side * side * 3);
    EXPECT_FALSE(dcpp::generate(*model, p, rgb.data()));
    return rgb;
  };
  const auto layouts_for = [&](int steps) {
    const int before = model->executor.allocations();
    generate(steps, 32, 1);
    return model->executor.allocations() - before;
  };
  // Prompt, negative prompt, the UNet once, the VAE: 4, at 2 steps as at 6.
  EXPECT_EQ(layouts_for(2), 4);
  EXPECT_EQ(layouts_for(6), 4);
  const std::vector<uint8_t> first = generate(3, 32, 7);
  generate(2, 48, 8);
  EXPECT_EQ(generate(3, 32, 7), first);
  std::unique_ptr<dcpp::Model> fresh;
  ASSERT_FALSE(
      dcpp::load_model(dir + "/model.safetensors", diffusion_model_default_params(), &fresh));
  model = std::move(fresh);
  EXPECT_EQ(generate(3, 32, 7), first);
  model.reset();
  std::filesystem::remove_all(dir);
}

// A tiny checkpoint whose tokenizer folder `spoil` damages is refused with LOAD_FAILED; returns
// the message.
std::string load_failure_with_tokenizer(const std::string& name,
                                        const std::function<void(const std::string&)>& spoil) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("allm-sd-" + name + "-" + std::to_string(::getpid())))
                              .string();
  std::string error;
  EXPECT_TRUE(allm::write_tiny_sd(dir, allm::TinySdSpec{}, &error)) << error;
  spoil(dir + "/tokenizer");
  char message[512] = {0};
  diffusion_status status = DIFFUSION_OK;
  EXPECT_EQ(
      diffusion_model_load((dir + "/model.safetensors").c_str(), diffusion_model_default_params(),
                           &status, message, sizeof message),
      nullptr);
  EXPECT_EQ(status, DIFFUSION_LOAD_FAILED);
  std::filesystem::remove_all(dir);
  return message;
}

TEST(Loading, MissingTokenizerSaysWhatToAdd) {
  const std::string message = load_failure_with_tokenizer(
      "notok", [](const std::string& tokenizer) { std::filesystem::remove_all(tokenizer); });
  EXPECT_NE(message.find("vocab.json"), std::string::npos) << message;
}

// The CLIP vocabulary goes through safetensors.cpp's BPE, which refuses an entry without a valid
// id by name.
TEST(Loading, VocabularyEntryWithoutAnIdIsNamed) {
  const std::string message =
      load_failure_with_tokenizer("badvocab", [](const std::string& tokenizer) {
        std::ofstream(tokenizer + "/vocab.json")
            << R"({"<|startoftext|>": 0, "<|endoftext|>": 1, "cat</w>": "two"})";
      });
  EXPECT_NE(message.find("vocab.json"), std::string::npos) << message;
  EXPECT_NE(message.find("'cat</w>'"), std::string::npos) << message;
}

}  // namespace
