// The upload decoder behind /v1/images/edits: any bytes (PNG, JPEG, WebP or garbage) decode
// within the pixel budget or are refused with a message; resizing what decodes stays in bounds.
#include "fuzz_util.h"
#include "image/image_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  constexpr int64_t kMaxPixels = 256 * 256;  // small, so that each input stays fast
  allm::RgbaImage image;
  std::string problem;
  if (!allm::decode_image(bytes, kMaxPixels, &image, &problem)) {
    if (problem.empty()) fuzz::fail("a refusal without a message");
    return 0;
  }
  if (int64_t(image.width) * image.height > kMaxPixels) fuzz::fail("an image over the budget");
  if (image.rgba.size() != size_t(image.width) * image.height * 4) fuzz::fail("wrong pixel count");
  const allm::RgbaImage resized = allm::resize_image(image, 8, 16);
  if (allm::transparent_pixels(resized).size() != 8 * 16) fuzz::fail("wrong mask size");
  return 0;
}
