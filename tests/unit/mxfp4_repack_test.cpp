// gpt-oss's MXFP4 experts as Hugging Face stores them, converted to ggml's block_mxfp4: the
// values ggml decodes from our blocks must be the values the Hugging Face layout means (codes
// two per byte, even element in the low nibble; E2M1 values times 2^(exponent - 127)).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "ggml.h"
#include "mxfp4.h"

namespace {

// The FP4 E2M1 values of codes 0..15 (sign bit 3).
constexpr float kE2M1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};

float hf_value(const uint8_t* codes, uint8_t exponent, int element) {
  const uint8_t byte = codes[element / 2];
  const int code = element % 2 == 0 ? byte & 0x0F : byte >> 4;
  return kE2M1[code] * std::ldexp(1.0f, exponent - 127);
}

TEST(Mxfp4Repack, GgmlDecodesTheValuesTheHuggingFaceBlocksHold) {
  std::mt19937 random(7);
  constexpr int kBlocks = 64;
  std::vector<uint8_t> codes(kBlocks * stcpp::kMxfp4HfBlockBytes), exponents(kBlocks);
  for (uint8_t& c : codes) c = static_cast<uint8_t>(random());
  for (uint8_t& e : exponents) e = static_cast<uint8_t>(118 + random() % 20);
  std::vector<uint8_t> ggml_blocks(kBlocks * stcpp::kMxfp4GgmlBlockBytes);
  // One row of kBlocks blocks, through the row converter (and so the block converter).
  stcpp::repack_mxfp4_rows({codes.data(), exponents.data(), kBlocks, 0, 1}, 1, ggml_blocks.data());
  std::vector<float> decoded(kBlocks * stcpp::kMxfp4BlockValues);
  ggml_get_type_traits(GGML_TYPE_MXFP4)
      ->to_float(ggml_blocks.data(), decoded.data(), static_cast<int64_t>(decoded.size()));
  for (int b = 0; b < kBlocks; ++b) {
    for (int i = 0; i < stcpp::kMxfp4BlockValues; ++i) {
      const float expected =
          hf_value(codes.data() + b * stcpp::kMxfp4HfBlockBytes, exponents[b], i);
      ASSERT_EQ(decoded[b * stcpp::kMxfp4BlockValues + i], expected)
          << "block " << b << " value " << i;
    }
  }
}

// Row picking: ggml row r is Hugging Face row first_row + r * row_step.
TEST(Mxfp4Repack, RowsArePickedByFirstRowAndStep) {
  constexpr int kRows = 6;
  std::vector<uint8_t> codes(kRows * stcpp::kMxfp4HfBlockBytes), exponents(kRows);
  for (int r = 0; r < kRows; ++r) {
    exponents[r] = static_cast<uint8_t>(120 + r);
    for (int i = 0; i < stcpp::kMxfp4HfBlockBytes; ++i)
      codes[r * 16 + i] = static_cast<uint8_t>(r * 17 + i);
  }
  std::vector<uint8_t> out(3 * stcpp::kMxfp4GgmlBlockBytes);
  stcpp::repack_mxfp4_rows({codes.data(), exponents.data(), 1, 1, 2}, 3, out.data());
  for (int r = 0; r < 3; ++r) {
    uint8_t expected[stcpp::kMxfp4GgmlBlockBytes];
    stcpp::repack_mxfp4_block(codes.data() + (1 + 2 * r) * 16, exponents[1 + 2 * r], expected);
    EXPECT_EQ(0,
              std::memcmp(out.data() + r * stcpp::kMxfp4GgmlBlockBytes, expected, sizeof expected))
        << r;
  }
}

}  // namespace
