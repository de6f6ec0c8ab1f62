// Tiled VAE decoding: the tile plan, the blend (with stand-in decoders whose outputs are known),
// and the tiny checkpoint's decoder tiled against its own decodes of the same tiles.
#include "vae_tiles.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "demo/tiny_sd.h"
#include "diffusion.h"

namespace {

using dcpp::decode_in_tiles;
using dcpp::Failure;
using dcpp::tile_spans;
using dcpp::TileSpan;

TEST(VaeTiles, SpansCoverTheSideOverlappingByAQuarterAndEndAtTheEdge) {
  for (int length : {4, 5, 9, 10, 11, 64, 65, 130}) {
    const std::vector<TileSpan> spans = tile_spans(length, 4);
    ASSERT_FALSE(spans.empty());
    EXPECT_EQ(spans.front().start, 0) << length;
    EXPECT_EQ(spans.back().start + spans.back().size, length) << length;
    for (size_t i = 0; i < spans.size(); ++i) {
      EXPECT_EQ(spans[i].size, 4) << length;
      if (i > 0) {
        const int overlap = spans[i - 1].start + 4 - spans[i].start;
        EXPECT_GE(overlap, 1) << length;  // a quarter of 4
        EXPECT_LT(overlap, 4) << length;
      }
    }
  }
  ASSERT_EQ(tile_spans(3, 8).size(), 1u);
  EXPECT_EQ(tile_spans(3, 8)[0].size, 3);
  const std::vector<TileSpan> ten = tile_spans(10, 4);
  ASSERT_EQ(ten.size(), 3u);
  EXPECT_EQ(ten[1].start, 3);
  EXPECT_EQ(ten[2].start, 6);
}

// A latent [2, h, w] with distinct values everywhere.
std::vector<float> test_latent(int w, int h) {
  std::vector<float> latent(2 * static_cast<size_t>(w) * h);
  for (size_t i = 0; i < latent.size(); ++i) latent[i] = std::sin(0.7 * i) + 0.01f * i;
  return latent;
}

// A pointwise decoder (each image pixel from its own latent pixel, 2x larger): every tile agrees
// with the whole decode wherever they overlap, so the blend must reproduce it exactly.
Failure upsample(const std::vector<float>& latent, int w, int h, std::vector<float>* image) {
  image->assign(3 * static_cast<size_t>(4) * w * h, 0.0f);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 2 * h; ++y) {
      for (int x = 0; x < 2 * w; ++x) {
        const float v = latent[(y / 2) * w + x / 2] + latent[w * h + (y / 2) * w + x / 2] * c;
        (*image)[(static_cast<size_t>(c) * 2 * h + y) * 2 * w + x] = v;
      }
    }
  }
  return {};
}

TEST(VaeTiles, TilesThatAgreeBlendToTheWholeDecode) {
  const int w = 13, h = 9;
  const std::vector<float> latent = test_latent(w, h);
  std::vector<float> whole, tiled;
  ASSERT_FALSE(upsample(latent, w, h, &whole));
  int calls = 0;
  const auto counting = [&](const std::vector<float>& l, int tw, int th, std::vector<float>* out) {
    ++calls;
    EXPECT_EQ(l.size(), 2u * tw * th);
    return upsample(l, tw, th, out);
  };
  ASSERT_FALSE(decode_in_tiles(latent, 2, w, h, 2, 4, counting, &tiled));
  EXPECT_EQ(calls, static_cast<int>(tile_spans(w, 4).size() * tile_spans(h, 4).size()));
  ASSERT_EQ(tiled.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_NEAR(tiled[i], whole[i], 1e-5) << i;
}

// Each tile decodes to its own constant: a pixel one tile covers has that tile's value, and
// across an overlap the value moves monotonically from one tile's to the next.
TEST(VaeTiles, OverlapsRampFromOneTileToTheNext) {
  const int w = 10, h = 4, factor = 2;
  int tile_index = 0;
  const auto constant = [&](const std::vector<float>&, int tw, int th, std::vector<float>* out) {
    out->assign(3 * static_cast<size_t>(tw) * th * factor * factor, float(tile_index++));
    return Failure{};
  };
  std::vector<float> image;
  ASSERT_FALSE(decode_in_tiles(test_latent(w, h), 2, w, h, factor, 4, constant, &image));
  // Columns: tiles at 0, 3 and 6 (latent), i.e. pixels [0,8), [6,14), [12,20); one row of tiles.
  const int width = w * factor;
  std::vector<float> row(image.begin(), image.begin() + width);
  for (int x = 0; x < 6; ++x) EXPECT_EQ(row[x], 0.0f) << x;
  for (int x = 8; x < 12; ++x) EXPECT_EQ(row[x], 1.0f) << x;
  for (int x = 14; x < 20; ++x) EXPECT_EQ(row[x], 2.0f) << x;
  for (int x = 1; x < width; ++x) EXPECT_GE(row[x], row[x - 1]) << x;
  EXPECT_GT(row[6], 0.0f);
  EXPECT_LT(row[7], 1.0f);
  for (int c = 1; c < 3; ++c) {  // every channel blended alike
    EXPECT_TRUE(std::equal(row.begin(), row.end(), image.begin() + c * width * h * factor));
  }
}

// The tiny checkpoint's VAE: with tiling on, the part of the image only the first tile covers is
// exactly that tile's own decode; a latent no larger than a tile, and tiling on the CPU left to
// AUTO, decode whole.
class TiledDecoder : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(allm::write_tiny_sd(dir_.string(), allm::TinySdSpec{}, &error)) << error;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  diffusion_model* load(diffusion_vae_tiling tiling, int tile) {
    diffusion_model_params params = diffusion_model_default_params();
    params.n_threads = 2;
    params.device = "none";
    params.vae_tiling = tiling;
    params.vae_tile_size = tile;
    char message[256];
    diffusion_status status;
    diffusion_model* model = diffusion_model_load((dir_ / "model.safetensors").c_str(), params,
                                                  &status, message, sizeof message);
    EXPECT_NE(model, nullptr) << message;
    return model;
  }

  static std::vector<float> decode(diffusion_model* model, const std::vector<float>& latent, int w,
                                   int h) {
    std::vector<float> image(3 * static_cast<size_t>(w) * h * 64);
    EXPECT_EQ(diffusion_vae_decode(model, latent.data(), w, h, image.data()), DIFFUSION_OK);
    return image;
  }

  const std::filesystem::path dir_ =
      std::filesystem::temp_directory_path() / ("allm-vae-tiles-" + std::to_string(::getpid()));
};

TEST_F(TiledDecoder, FirstTileAloneIsItsOwnDecode) {
  diffusion_model* whole = load(DIFFUSION_VAE_TILING_OFF, 0);
  diffusion_model* tiled = load(DIFFUSION_VAE_TILING_ON, 4);
  diffusion_model* automatic = load(DIFFUSION_VAE_TILING_AUTO, 4);
  ASSERT_TRUE(whole && tiled && automatic);
  const int w = 8, h = 6, c = diffusion_latent_channels(whole);
  std::vector<float> latent(static_cast<size_t>(c) * w * h);
  for (size_t i = 0; i < latent.size(); ++i) latent[i] = std::sin(0.37 * i);
  // Tiles: columns at 0, 3, 4 and rows at 0, 2 (latent pixels); the first tile alone covers
  // image pixels [0, 24) x [0, 16).
  std::vector<float> first(static_cast<size_t>(c) * 16);
  for (int ch = 0; ch < c; ++ch) {
    for (int y = 0; y < 4; ++y) {
      for (int x = 0; x < 4; ++x) first[(ch * 4 + y) * 4 + x] = latent[(ch * h + y) * w + x];
    }
  }
  const std::vector<float> expected = decode(whole, first, 4, 4),
                           actual = decode(tiled, latent, w, h);
  for (int ch = 0; ch < 3; ++ch) {
    for (int y = 0; y < 16; ++y) {
      for (int x = 0; x < 24; ++x) {
        ASSERT_EQ(actual[(ch * 48 + y) * 64 + x], expected[(ch * 32 + y) * 32 + x])
            << ch << " " << y << " " << x;
      }
    }
  }
  const std::vector<float> reference = decode(whole, latent, w, h);
  EXPECT_NE(actual, reference);  // the other tiles did not see the whole latent
  EXPECT_EQ(decode(automatic, latent, w, h), reference);
  EXPECT_EQ(decode(tiled, first, 4, 4), expected);
  diffusion_model_free(whole);
  diffusion_model_free(tiled);
  diffusion_model_free(automatic);
}

}  // namespace
