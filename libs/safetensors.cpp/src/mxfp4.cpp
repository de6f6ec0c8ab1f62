#include "mxfp4.h"

namespace stcpp {

// Hugging Face byte m holds elements (2m, 2m + 1) in its (low, high) nibbles and byte 8 + m
// elements (16 + 2m, 17 + 2m); ggml byte j holds (j, j + 16).
void repack_mxfp4_block(const uint8_t* hf_codes, uint8_t exponent, uint8_t* ggml_block) {
  ggml_block[0] = exponent;
  uint8_t* out = ggml_block + 1;
  for (int m = 0; m < kMxfp4HfBlockBytes / 2; ++m) {
    const uint8_t lo = hf_codes[m], hi = hf_codes[kMxfp4HfBlockBytes / 2 + m];
    out[2 * m] = static_cast<uint8_t>((lo & 0x0F) | (hi << 4));
    out[2 * m + 1] = static_cast<uint8_t>((lo >> 4) | (hi & 0xF0));
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
