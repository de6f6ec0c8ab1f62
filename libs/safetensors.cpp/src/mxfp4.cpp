#include "mxfp4.h"

#include <cstring>

namespace stcpp {

namespace {

// The four bytes of `x` spread to the even bytes of the result (byte m to byte 2m).
uint64_t spread_bytes(uint32_t x) {
  uint64_t v = x;
  v = (v | (v << 16)) & 0x0000FFFF0000FFFFULL;
  return (v | (v << 8)) & 0x00FF00FF00FF00FFULL;
}

}  // namespace

// Hugging Face byte m holds elements (2m, 2m + 1) in its (low, high) nibbles and byte 8 + m
// elements (16 + 2m, 17 + 2m); ggml byte j holds (j, j + 16). So ggml byte 2m joins the low
// nibbles of bytes m and 8 + m, and ggml byte 2m + 1 their high nibbles: eight bytes at a time in
// 64-bit words, interleaved without a byte loop (this runs over every expert weight at load).
void repack_mxfp4_block(const uint8_t* hf_codes, uint8_t exponent, uint8_t* ggml_block) {
  constexpr uint64_t kLowNibbles = 0x0F0F0F0F0F0F0F0FULL;
  uint64_t first, second;  // bytes 0..7 and 8..15, byte m in bits 8m (little-endian)
  std::memcpy(&first, hf_codes, 8);
  std::memcpy(&second, hf_codes + 8, 8);
  const uint64_t even = (first & kLowNibbles) | ((second & kLowNibbles) << 4);
  const uint64_t odd = ((first >> 4) & kLowNibbles) | (second & ~kLowNibbles);
  const uint64_t out_low =
      spread_bytes(static_cast<uint32_t>(even)) | (spread_bytes(static_cast<uint32_t>(odd)) << 8);
  const uint64_t out_high = spread_bytes(static_cast<uint32_t>(even >> 32)) |
                            (spread_bytes(static_cast<uint32_t>(odd >> 32)) << 8);
  ggml_block[0] = exponent;
  std::memcpy(ggml_block + 1, &out_low, 8);
  std::memcpy(ggml_block + 9, &out_high, 8);
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
