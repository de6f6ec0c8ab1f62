// Uploaded images (image edits): PNG, JPEG and WebP decoding, the pixel budget checked from the
// header before decoding, truncated and foreign files refused with what is wrong, resizing and
// the transparent-pixel mask.
#include "image/image_input.h"

#include <gtest/gtest.h>
#include <webp/encode.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "diffusion.h"

namespace {

using allm::RgbaImage;

std::string png_of(const std::vector<uint8_t>& rgb, int w, int h) {
  size_t size = 0;
  uint8_t* png = diffusion_png_encode(rgb.data(), w, h, &size);
  std::string out(reinterpret_cast<char*>(png), size);
  diffusion_free(png);
  return out;
}

std::string lossless_webp(const std::vector<uint8_t>& rgba, int w, int h) {
  uint8_t* out = nullptr;
  const size_t size = WebPEncodeLosslessRGBA(rgba.data(), w, h, w * 4, &out);
  std::string webp(reinterpret_cast<char*>(out), size);
  WebPFree(out);
  return webp;
}

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 29 + 3);
  return v;
}

TEST(ImageInput, DecodesPngPixelsExactly) {
  const std::vector<uint8_t> rgb = pattern(5 * 3 * 3);
  RgbaImage image;
  std::string problem;
  ASSERT_TRUE(allm::decode_image(png_of(rgb, 5, 3), allm::kMaxUploadPixels, &image, &problem))
      << problem;
  EXPECT_EQ(image.width, 5);
  EXPECT_EQ(image.height, 3);
  EXPECT_FALSE(image.has_alpha);
  EXPECT_EQ(allm::rgb_bytes(image), rgb);
}

TEST(ImageInput, DecodesWebpWithItsAlphaAsTheMask) {
  std::vector<uint8_t> rgba = pattern(4 * 2 * 4);
  for (size_t p = 0; p < 8; ++p) rgba[p * 4 + 3] = p % 3 == 0 ? 0 : 255;
  RgbaImage image;
  std::string problem;
  ASSERT_TRUE(
      allm::decode_image(lossless_webp(rgba, 4, 2), allm::kMaxUploadPixels, &image, &problem))
      << problem;
  EXPECT_TRUE(image.has_alpha);
  const std::vector<uint8_t> mask = allm::transparent_pixels(image);
  EXPECT_EQ(mask, (std::vector<uint8_t>{1, 0, 0, 1, 0, 0, 1, 0}));
  for (size_t p = 0; p < 8; ++p) {  // lossless: colours of opaque pixels come back
    if (rgba[p * 4 + 3]) EXPECT_EQ(image.rgba[p * 4], rgba[p * 4]) << p;
  }
}

TEST(ImageInput, DecodesJpeg) {
  std::ifstream file(std::string(ALLM_DEPS_DIR) + "/llama.cpp/tools/mtmd/test-1.jpeg",
                     std::ios::binary);
  ASSERT_TRUE(file) << "llama.cpp's test JPEG";
  const std::string jpeg((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  RgbaImage image;
  std::string problem;
  ASSERT_TRUE(allm::decode_image(jpeg, allm::kMaxUploadPixels, &image, &problem)) << problem;
  EXPECT_EQ(image.width, 640);  // what file(1) reads from its header
  EXPECT_EQ(image.height, 488);
  EXPECT_EQ(image.rgba.size(), size_t(image.width) * image.height * 4);
  EXPECT_FALSE(allm::decode_image(jpeg.substr(0, jpeg.size() / 2), allm::kMaxUploadPixels, &image,
                                  &problem));
  EXPECT_NE(problem.find("truncated or corrupt"), std::string::npos) << problem;
}

TEST(ImageInput, RefusesHugeDeclaredSizesBeforeDecoding) {
  std::string png = png_of(pattern(2 * 2 * 3), 2, 2);
  // IHDR's width and height (bytes 16..23, big-endian): 100000 x 100000.
  const std::string side("\x00\x01\x86\xa0", 4);
  png.replace(16, 4, side);
  png.replace(20, 4, side);
  RgbaImage image;
  std::string problem;
  EXPECT_FALSE(allm::decode_image(png, allm::kMaxUploadPixels, &image, &problem));
  EXPECT_NE(problem.find("100000x100000"), std::string::npos) << problem;
  EXPECT_NE(problem.find("more than"), std::string::npos) << problem;
}

TEST(ImageInput, NamesTruncatedAndForeignFiles) {
  const std::string png = png_of(pattern(8 * 8 * 3), 8, 8);
  RgbaImage image;
  std::string problem;
  EXPECT_FALSE(
      allm::decode_image(png.substr(0, png.size() - 20), allm::kMaxUploadPixels, &image, &problem));
  EXPECT_NE(problem.find("truncated or corrupt"), std::string::npos) << problem;
  EXPECT_FALSE(allm::decode_image(png.substr(0, 12), allm::kMaxUploadPixels, &image, &problem));
  EXPECT_NE(problem.find("truncated or corrupt"), std::string::npos) << problem;
  EXPECT_FALSE(allm::decode_image("GIF89a....", allm::kMaxUploadPixels, &image, &problem));
  EXPECT_EQ(problem, "is not a PNG, JPEG or WebP image");
  EXPECT_FALSE(allm::decode_image("", allm::kMaxUploadPixels, &image, &problem));
}

TEST(ImageInput, ResizesBilinearly) {
  RgbaImage flat{3, 3, std::vector<uint8_t>(3 * 3 * 4, 77), false};
  const RgbaImage big = allm::resize_image(flat, 8, 5);
  EXPECT_EQ(big.rgba, std::vector<uint8_t>(8 * 5 * 4, 77));
  // Two pixels, 0 and 200, to four: centres at -0.25, 0.25, 0.75, 1.25 of the source.
  RgbaImage pair{2, 1, {0, 0, 0, 255, 200, 200, 200, 255}, false};
  const RgbaImage wide = allm::resize_image(pair, 4, 1);
  EXPECT_EQ(wide.rgba[0], 0);
  EXPECT_EQ(wide.rgba[4], 50);
  EXPECT_EQ(wide.rgba[8], 150);
  EXPECT_EQ(wide.rgba[12], 200);
  EXPECT_EQ(allm::resize_image(wide, 2, 1).rgba[0], 25);  // downscaling samples between pixels
}

}  // namespace
