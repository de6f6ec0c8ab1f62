// gpt-oss fixtures beyond what a Family describes: the MXFP4 expert tensors (U8 blocks and scales
// in the checkpoint) and how llama.cpp's converter writes them and the expert biases to GGUF.
#pragma once

#include <cstdint>
#include <vector>

#include "hf_fixture/model_spec.h"

struct ggml_context;
struct gguf_context;

namespace allm::fixture {

// Sizes of a gpt-oss-20b-like model (its widths, expert count and top-k) at reduced depth and
// vocabulary, for benchmarks.
void scale_gpt_oss_to_bench(ModelSpec* spec);

// The `*_blocks` and `*_scales` tensors of every layer's experts: random FP4 codes with
// exponents that give weights of about N(0, 1/fan_in).
std::vector<Tensor> gpt_oss_expert_blocks(const ModelSpec& spec, uint64_t seed);

// Adds the GGUF tensor(s) llama.cpp's GptOssModel converter makes of `t` when it treats the
// tensor specially (experts, their biases, the router); false for tensors written as usual.
bool add_gpt_oss_gguf_tensors(ggml_context* ctx, gguf_context* gguf, const Fixture& fixture,
                              const Tensor& t);

}  // namespace allm::fixture
