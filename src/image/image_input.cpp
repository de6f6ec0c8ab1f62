#include "image/image_input.h"

#include <png.h>
#include <webp/decode.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#include "stb/stb_image.h"

namespace allm {

namespace {

enum class ImageFormat { PNG, JPEG, WEBP, OTHER };

bool starts_with(std::string_view bytes, std::string_view prefix) {
  return bytes.substr(0, prefix.size()) == prefix;
}

ImageFormat format_of(std::string_view bytes) {
  if (starts_with(bytes, "\x89PNG\r\n\x1a\n")) return ImageFormat::PNG;
  if (starts_with(bytes, "\xff\xd8\xff")) return ImageFormat::JPEG;
  if (starts_with(bytes, "RIFF") && bytes.size() >= 12 && bytes.substr(8, 4) == "WEBP") {
    return ImageFormat::WEBP;
  }
  return ImageFormat::OTHER;
}

uint32_t big_endian32(std::string_view bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

// PNG's first chunk is IHDR: width and height as 32-bit big-endian numbers, read here so that
// the pixel budget is checked before libpng allocates anything.
bool png_size(std::string_view bytes, int* width, int* height) {
  if (bytes.size() < 24 || bytes.substr(12, 4) != "IHDR") return false;
  const uint32_t w = big_endian32(bytes, 16), h = big_endian32(bytes, 20);
  if (w == 0 || h == 0 || w > INT32_MAX || h > INT32_MAX) return false;
  *width = static_cast<int>(w);
  *height = static_cast<int>(h);
  return true;
}

// stb_image decodes a JPEG cut short as if the rest were gray. Its end-of-image marker must follow
// the last start-of-scan (a marker that scan data cannot contain; an embedded thumbnail's come
// before it).
bool jpeg_complete(std::string_view bytes) {
  const size_t last_scan = bytes.rfind("\xff\xda"), end = bytes.rfind("\xff\xd9");
  return last_scan != std::string_view::npos && end != std::string_view::npos && end > last_scan;
}

const stbi_uc* data_of(std::string_view bytes) {
  return reinterpret_cast<const stbi_uc*>(bytes.data());
}

int length_of(std::string_view bytes) {
  return static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX));
}

bool decode_webp(std::string_view bytes, RgbaImage* out) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &features) !=
      VP8_STATUS_OK) {
    return false;
  }
  out->rgba.resize(static_cast<size_t>(out->width) * out->height * 4);
  out->has_alpha = features.has_alpha;
  return WebPDecodeRGBAInto(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                            out->rgba.data(), out->rgba.size(), out->width * 4) != nullptr;
}

// libpng's simplified API: any PNG to 8-bit RGBA; truncated data and bad CRCs are errors.
bool decode_png(std::string_view bytes, RgbaImage* out) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) return false;
  if (image.width != static_cast<uint32_t>(out->width) ||
      image.height != static_cast<uint32_t>(out->height)) {
    png_image_free(&image);
    return false;
  }
  out->has_alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  image.format = PNG_FORMAT_RGBA;
  out->rgba.resize(PNG_IMAGE_SIZE(image));
  return png_image_finish_read(&image, nullptr, out->rgba.data(), 0, nullptr) != 0;
}

bool decode_jpeg(std::string_view bytes, RgbaImage* out) {
  int w = 0, h = 0, channels = 0;
  stbi_uc* pixels = stbi_load_from_memory(data_of(bytes), length_of(bytes), &w, &h, &channels, 4);
  if (!pixels) return false;
  const bool same_size = w == out->width && h == out->height;
  if (same_size) out->rgba.assign(pixels, pixels + static_cast<size_t>(w) * h * 4);
  stbi_image_free(pixels);
  return same_size;
}

bool decode_pixels(std::string_view bytes, RgbaImage* out) {
  switch (format_of(bytes)) {
    case ImageFormat::WEBP: return decode_webp(bytes, out);
    case ImageFormat::JPEG: return jpeg_complete(bytes) && decode_jpeg(bytes, out);
    case ImageFormat::PNG: return decode_png(bytes, out);
    default: return false;
  }
}

}  // namespace

bool read_image_size(std::string_view bytes, int* width, int* height, std::string* problem) {
  const ImageFormat format = format_of(bytes);
  bool known = false;
  switch (format) {
    case ImageFormat::PNG: known = png_size(bytes, width, height); break;
    case ImageFormat::JPEG: {
      int channels = 0;
      known = stbi_info_from_memory(data_of(bytes), length_of(bytes), width, height, &channels);
      break;
    }
    case ImageFormat::WEBP:
      known = WebPGetInfo(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), width,
                          height) != 0;
      break;
    case ImageFormat::OTHER: *problem = "is not a PNG, JPEG or WebP image"; return false;
  }
  if (!known) *problem = "is truncated or corrupt (its header cannot be read)";
  return known;
}

bool decode_image(std::string_view bytes, int64_t max_pixels, RgbaImage* out,
                  std::string* problem) {
  if (!read_image_size(bytes, &out->width, &out->height, problem)) return false;
  if (int64_t(out->width) * out->height > max_pixels) {
    *problem = "is " + std::to_string(out->width) + "x" + std::to_string(out->height) +
               " pixels, more than the " + std::to_string(max_pixels) + " accepted";
    return false;
  }
  const bool decoded = decode_pixels(bytes, out);
  if (!decoded) *problem = "is truncated or corrupt";
  return decoded;
}

RgbaImage resize_image(const RgbaImage& in, int width, int height) {
  RgbaImage out;
  out.width = width;
  out.height = height;
  out.has_alpha = in.has_alpha;
  out.rgba.resize(static_cast<size_t>(width) * height * 4);
  const auto source = [](int i, int to, int from, int* i0, int* i1, float* t) {
    const float s = std::clamp((i + 0.5f) * from / to - 0.5f, 0.0f, float(from - 1));
    *i0 = static_cast<int>(s);
    *i1 = std::min(*i0 + 1, from - 1);
    *t = s - *i0;
  };
  const auto at = [&in](int x, int y, int c) {
    return float(in.rgba[(static_cast<size_t>(y) * in.width + x) * 4 + c]);
  };
  for (int y = 0; y < height; ++y) {
    int y0, y1;
    float ty;
    source(y, height, in.height, &y0, &y1, &ty);
    for (int x = 0; x < width; ++x) {
      int x0, x1;
      float tx;
      source(x, width, in.width, &x0, &x1, &tx);
      for (int c = 0; c < 4; ++c) {
        const float top = at(x0, y0, c) + (at(x1, y0, c) - at(x0, y0, c)) * tx;
        const float bottom = at(x0, y1, c) + (at(x1, y1, c) - at(x0, y1, c)) * tx;
        out.rgba[(static_cast<size_t>(y) * width + x) * 4 + c] =
            static_cast<uint8_t>(std::lround(top + (bottom - top) * ty));
      }
    }
  }
  return out;
}

std::vector<uint8_t> rgb_bytes(const RgbaImage& image) {
  const size_t pixels = static_cast<size_t>(image.width) * image.height;
  std::vector<uint8_t> rgb(pixels * 3);
  for (size_t p = 0; p < pixels; ++p) std::memcpy(&rgb[p * 3], &image.rgba[p * 4], 3);
  return rgb;
}

std::vector<uint8_t> transparent_pixels(const RgbaImage& image) {
  const size_t pixels = static_cast<size_t>(image.width) * image.height;
  std::vector<uint8_t> mask(pixels);
  for (size_t p = 0; p < pixels; ++p) mask[p] = image.rgba[p * 4 + 3] == 0;
  return mask;
}

}  // namespace allm
