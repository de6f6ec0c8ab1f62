#include "mxfp4.h"

namespace stcpp {

namespace {

// The 4-bit code of element `i` (0..31) of a Hugging Face block.
uint8_t hf_code(const uint8_t* codes, int i) {
  const uint8_t byte = codes[i / 2];
  return (i % 2 == 0) ? (byte & 0x0F) : (byte >> 4);
}

}  // namespace

void repack_mxfp4_block(const uint8_t* hf_codes, uint8_t exponent, uint8_t* ggml_block) {
  ggml_block[0] = exponent;
  constexpr int half = kMxfp4BlockValues / 2;
  for (int j = 0; j < half; ++j) {
    ggml_block[1 + j] =
        static_cast<uint8_t>(hf_code(hf_codes, j) | (hf_code(hf_codes, j + half) << 4));
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
