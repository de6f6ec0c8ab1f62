#include "mxfp4.h"

#include <cstring>

namespace stcpp {

// Hugging Face byte m holds elements (2m, 2m + 1) in its (low, high) nibbles and byte 8 + m
// elements (16 + 2m, 17 + 2m); ggml byte j holds (j, j + 16). So ggml byte 2m joins the low
// nibbles of bytes m and 8 + m, and ggml byte 2m + 1 their high nibbles: eight bytes at a time in
// 64-bit words (this runs over every expert weight at load).
void repack_mxfp4_block(const uint8_t* hf_codes, uint8_t exponent, uint8_t* ggml_block) {
  constexpr uint64_t kLowNibbles = 0x0F0F0F0F0F0F0F0FULL;
  uint64_t first, second;  // bytes 0..7 and 8..15, byte m in bits 8m (little-endian)
  std::memcpy(&first, hf_codes, 8);
  std::memcpy(&second, hf_codes + 8, 8);
  const uint64_t even = (first & kLowNibbles) | ((second & kLowNibbles) << 4);
  const uint64_t odd = ((first >> 4) & kLowNibbles) | (second & ~kLowNibbles);
  ggml_block[0] = exponent;
  uint8_t* out = ggml_block + 1;
  for (int m = 0; m < kMxfp4HfBlockBytes / 2; ++m) {
    out[2 * m] = static_cast<uint8_t>(even >> (8 * m));
    out[2 * m + 1] = static_cast<uint8_t>(odd >> (8 * m));
  }
}

void repack_mxfp4_rows(const Mxfp4Rows& src, int64_t n_rows, uint8_t* dst) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const int64_t row = src.first_row + r * src.row_step;
    const uint8_t* codes = src.blocks + row * src.blocks_per_row * kMxfp4HfBlockBytes;
    const uint8_t* exponents = src.scales + row * src.blocks_per_row;
    for (int64_t b = 0; b < src.blocks_per_row; ++b) {
      repack_mxfp4_block(codes + b * kMxfp4HfBlockBytes, exponents[b], dst);
      dst += kMxfp4GgmlBlockBytes;
    }
  }
}

}  // namespace stcpp
