// Images a client uploads (image edits): PNG, JPEG or WebP decoded to 8-bit RGBA, the declared
// size checked against a pixel budget before anything is decoded; and the conversions the
// diffusion runner needs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace allm {

struct RgbaImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgba;  // rows top to bottom
  bool has_alpha = false;     // the file has an alpha channel
};

// What an upload may declare: 4096 x 4096 pixels (64 MB of RGBA), larger than any size the
// diffusion models generate.
constexpr int64_t kMaxUploadPixels = int64_t(4096) * 4096;

// The declared size of a PNG, JPEG or WebP file, read from its header. False when the bytes are
// none of those formats (*problem says what they are, or that the header is cut short).
bool read_image_size(std::string_view bytes, int* width, int* height, std::string* problem);
// Decodes a PNG, JPEG or WebP file of at most `max_pixels`. False with *problem set when it is
// another format, declares more pixels, or is truncated or corrupt.
bool decode_image(std::string_view bytes, int64_t max_pixels, RgbaImage* out, std::string* problem);
// Bilinear resampling to width x height (pixel centres aligned).
RgbaImage resize_image(const RgbaImage& image, int width, int height);
// The RGB bytes, alpha dropped.
std::vector<uint8_t> rgb_bytes(const RgbaImage& image);
// The mask OpenAI's edits define: 1 (repaint) where the pixel is fully transparent, else 0.
std::vector<uint8_t> transparent_pixels(const RgbaImage& image);

}  // namespace allm
