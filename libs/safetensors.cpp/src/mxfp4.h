// MXFP4 as Hugging Face stores it and as ggml computes with it. Hugging Face (gpt-oss) keeps two
// tensors per matrix: `*_blocks` [..., rows, blocks, 16] holding two FP4 (E2M1) codes per byte,
// element 2i in the low nibble and 2i + 1 in the high one, and `*_scales` [..., rows, blocks] of
// E8M0 exponents. ggml's block_mxfp4 puts both in one 17-byte block: the exponent, then 16 bytes
// whose low nibbles hold elements 0..15 and high nibbles elements 16..31. The codes and exponents
// are the same numbers in both, so converting is a repack, not a dequantisation.
#pragma once

#include <cstdint>

namespace stcpp {

constexpr int kMxfp4BlockValues = 32;
constexpr int kMxfp4HfBlockBytes = 16;    // codes of one block in `*_blocks`
constexpr int kMxfp4GgmlBlockBytes = 17;  // sizeof(block_mxfp4)

// One block: 16 bytes of Hugging Face codes and their exponent → one ggml block_mxfp4.
void repack_mxfp4_block(const uint8_t* hf_codes, uint8_t exponent, uint8_t* ggml_block);

// Rows of one matrix [rows, blocks_per_row] into ggml rows: ggml row r is Hugging Face row
// first_row + r * row_step (row_step 2 picks the gate or the up rows of gpt-oss's interleaved
// gate_up_proj).
struct Mxfp4Rows {
  const uint8_t* blocks;  // the matrix's `*_blocks` data
  const uint8_t* scales;  // the matrix's `*_scales` data
  int64_t blocks_per_row;
  int64_t first_row;
  int64_t row_step;
};
void repack_mxfp4_rows(const Mxfp4Rows& src, int64_t n_rows, uint8_t* dst);

}  // namespace stcpp
