// diffusion.cpp's image to image and inpainting on tiny random checkpoints: strength 0 is the
// image through the VAE (checked against the encoder and decoder called one by one), a mask that
// keeps everything gives exactly that too, strength sets how many steps run, determinism by
// seed, a 9-channel inpainting UNet, and the refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "demo/tiny_sd.h"
#include "diffusion.h"

namespace {

constexpr int kWidth = 32, kHeight = 24;

std::vector<uint8_t> test_image() {
  std::vector<uint8_t> rgb(kWidth * kHeight * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>((i * 37 + i / 7) % 256);
  return rgb;
}

// Loads a tiny checkpoint written from `spec` into a temporary folder.
class TinyModel {
 public:
  explicit TinyModel(const allm::TinySdSpec& spec, const std::string& name) {
    dir_ = (std::filesystem::temp_directory_path() /
            ("allm-sd-edit-" + name + "-" + std::to_string(::getpid())))
               .string();
    std::string error;
    EXPECT_TRUE(allm::write_tiny_sd(dir_, spec, &error)) << error;
    char message[256] = "";
    diffusion_status status;
    model_ =
        diffusion_model_load((dir_ + "/model.safetensors").c_str(),
                             diffusion_model_default_params(), &status, message, sizeof message);
    EXPECT_NE(model_, nullptr) << message;
  }
  ~TinyModel() {
    diffusion_model_free(model_);
    std::filesystem::remove_all(dir_);
  }
  diffusion_model* get() const { return model_; }

 private:
  std::string dir_;
  diffusion_model* model_ = nullptr;
};

diffusion_generate_params edit_params(const std::vector<uint8_t>& image, float strength,
                                      const std::vector<uint8_t>* mask = nullptr,
                                      uint64_t seed = 3) {
  diffusion_generate_params p = diffusion_generate_default_params();
  p.prompt = "a red barn";
  p.width = kWidth;
  p.height = kHeight;
  p.steps = 4;
  p.seed = seed;
  p.init_image = image.data();
  p.strength = strength;
  p.mask = mask ? mask->data() : nullptr;
  return p;
}

std::vector<uint8_t> run(diffusion_model* model, const diffusion_generate_params& p,
                         diffusion_status expected = DIFFUSION_OK) {
  std::vector<uint8_t> rgb(static_cast<size_t>(p.width) * p.height * 3);
  char message[256] = "";
  EXPECT_EQ(diffusion_generate(model, &p, rgb.data(), message, sizeof message), expected)
      << message;
  return rgb;
}

// The image through the VAE, the components called one by one: RGB -> [-1, 1] planes -> encoder
// (scaled latent) -> unscaled -> decoder -> RGB.
std::vector<uint8_t> vae_round_trip(diffusion_model* model, const std::vector<uint8_t>& rgb) {
  const size_t plane = kWidth * kHeight;
  std::vector<float> image(3 * plane);
  for (size_t p = 0; p < plane; ++p) {
    for (int c = 0; c < 3; ++c) image[c * plane + p] = rgb[p * 3 + c] / 127.5f - 1.0f;
  }
  const int lw = kWidth / 8, lh = kHeight / 8;
  std::vector<float> latent(static_cast<size_t>(lw) * lh * diffusion_latent_channels(model));
  EXPECT_EQ(diffusion_vae_encode(model, image.data(), lw, lh, latent.data()), DIFFUSION_OK);
  for (float& v : latent) v /= diffusion_vae_scale_factor(model);
  std::vector<float> decoded(3 * plane);
  EXPECT_EQ(diffusion_vae_decode(model, latent.data(), lw, lh, decoded.data()), DIFFUSION_OK);
  std::vector<uint8_t> out(plane * 3);
  for (size_t p = 0; p < plane; ++p) {
    for (int c = 0; c < 3; ++c) {
      const float v = std::min(std::max((decoded[c * plane + p] + 1.0f) * 0.5f, 0.0f), 1.0f);
      out[p * 3 + c] = static_cast<uint8_t>(std::lround(v * 255.0f));
    }
  }
  return out;
}

TEST(ImageToImage, StrengthZeroIsTheImageThroughTheVae) {
  TinyModel model(allm::TinySdSpec{}, "zero");
  const std::vector<uint8_t> image = test_image();
  EXPECT_EQ(run(model.get(), edit_params(image, 0.0f)), vae_round_trip(model.get(), image));
}

TEST(ImageToImage, AMaskThatKeepsEverythingKeepsTheImageLatentExactly) {
  TinyModel model(allm::TinySdSpec{}, "keep");
  const std::vector<uint8_t> image = test_image();
  const std::vector<uint8_t> keep_all(kWidth * kHeight, 0);
  const std::vector<uint8_t> round_trip = vae_round_trip(model.get(), image);
  EXPECT_EQ(run(model.get(), edit_params(image, 1.0f, &keep_all)), round_trip);
  EXPECT_EQ(run(model.get(), edit_params(image, 0.6f, &keep_all, 9)), round_trip);
}

// SDXL edits: its VAE (scale 0.13025, weights in F32) round trip, and steps that run its UNet
// with the added conditioning while a mask keeps everything.
TEST(ImageToImage, SdxlKeepsTheImageThroughItsVae) {
  TinyModel model(allm::tiny_sdxl(), "sdxl");
  const std::vector<uint8_t> image = test_image();
  const std::vector<uint8_t> keep_all(kWidth * kHeight, 0);
  const std::vector<uint8_t> round_trip = vae_round_trip(model.get(), image);
  EXPECT_EQ(run(model.get(), edit_params(image, 0.0f)), round_trip);
  EXPECT_EQ(run(model.get(), edit_params(image, 0.6f, &keep_all)), round_trip);
}

TEST(ImageToImage, MaskedEditsRepaintDeterministicallyBySeed) {
  TinyModel model(allm::TinySdSpec{}, "seed");
  const std::vector<uint8_t> image = test_image();
  std::vector<uint8_t> repaint_left(kWidth * kHeight, 0);
  for (int y = 0; y < kHeight; ++y) {
    for (int x = 0; x < kWidth / 2; ++x) repaint_left[y * kWidth + x] = 1;
  }
  const auto a = run(model.get(), edit_params(image, 1.0f, &repaint_left, 1));
  EXPECT_EQ(a, run(model.get(), edit_params(image, 1.0f, &repaint_left, 1)));
  EXPECT_NE(a, run(model.get(), edit_params(image, 1.0f, &repaint_left, 2)));
  EXPECT_NE(a, vae_round_trip(model.get(), image));
  EXPECT_NE(run(model.get(), edit_params(image, 0.8f, nullptr, 1)),
            run(model.get(), edit_params(image, 0.8f, nullptr, 2)));
}

TEST(ImageToImage, StrengthSetsTheStepsThatRun) {
  TinyModel model(allm::TinySdSpec{}, "steps");
  const std::vector<uint8_t> image = test_image();
  for (const auto& [strength, expected] : {std::pair{0.5f, 5}, {0.25f, 2}, {1.0f, 10}}) {
    diffusion_generate_params p = edit_params(image, strength);
    p.steps = 10;
    std::vector<int> seen;
    p.user_data = &seen;
    p.progress = [](int32_t step, int32_t steps, void* user) {
      static_cast<std::vector<int>*>(user)->push_back(steps);
      return step > 0;
    };
    run(model.get(), p);
    EXPECT_EQ(seen, std::vector<int>(expected, expected)) << strength;
  }
}

TEST(ImageToImage, RefusesBadParametersAndCheckpointsWithoutAnEncoder) {
  TinyModel model(allm::TinySdSpec{}, "bad");
  const std::vector<uint8_t> image = test_image(), mask(kWidth * kHeight, 1);
  run(model.get(), edit_params(image, 1.5f), DIFFUSION_INVALID_ARGUMENT);
  diffusion_generate_params no_image = edit_params(image, 0.5f, &mask);
  no_image.init_image = nullptr;
  run(model.get(), no_image, DIFFUSION_INVALID_ARGUMENT);

  allm::TinySdSpec decoder_only;
  decoder_only.vae_encoder = false;
  TinyModel no_encoder(decoder_only, "noenc");
  EXPECT_FALSE(diffusion_model_can_encode(no_encoder.get()));
  EXPECT_TRUE(diffusion_model_can_encode(model.get()));
  run(no_encoder.get(), edit_params(image, 0.5f), DIFFUSION_UNSUPPORTED);
}

TEST(Inpainting, NineChannelUnetEditsAndGenerates) {
  allm::TinySdSpec spec;
  spec.inpainting = true;
  TinyModel model(spec, "inpaint");
  ASSERT_NE(model.get(), nullptr);
  EXPECT_TRUE(diffusion_model_is_inpainting(model.get()));
  EXPECT_EQ(diffusion_latent_channels(model.get()), 4);
  const std::vector<uint8_t> image = test_image();
  std::vector<uint8_t> repaint_top(kWidth * kHeight, 0);
  std::fill(repaint_top.begin(), repaint_top.begin() + kWidth * 8, 1);
  const auto a = run(model.get(), edit_params(image, 1.0f, &repaint_top, 4));
  EXPECT_EQ(a, run(model.get(), edit_params(image, 1.0f, &repaint_top, 4)));
  EXPECT_NE(a, run(model.get(), edit_params(image, 1.0f, &repaint_top, 5)));
  const std::vector<uint8_t> keep_all(kWidth * kHeight, 0);
  EXPECT_EQ(run(model.get(), edit_params(image, 1.0f, &keep_all)),
            vae_round_trip(model.get(), image));
  diffusion_generate_params text = edit_params(image, 1.0f);
  text.init_image = nullptr;
  run(model.get(), text);  // text to image: a gray image, all repainted
}

}  // namespace
