// Writes Stable Diffusion 1.x checkpoints with random weights as published single files
// (model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.text_model.*)
// plus a small CLIP tokenizer (tokenizer/vocab.json + merges.txt): the demo image model, the
// test fixture and (with SD 1.5's dimensions) the benchmark model. The images are noise; the
// file layout, names, shapes and run time are those of a real model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace allm {

struct TinySdSpec {
  // UNet
  int model_channels = 32;
  std::vector<int> channel_mult = {1, 2};
  std::vector<bool> attention = {true, true};  // per level
  int res_blocks = 1;
  // CLIP text encoder
  int clip_hidden = 128;  // 2 heads of 64
  int clip_layers = 2;
  int clip_ff = 128;
  int clip_vocab = 0;  // 0: the tokenizer's size; SD 1.x: 49408
  // VAE decoder
  int vae_channels = 32;
  std::vector<int> vae_mult = {1, 1, 2, 2};  // 4 levels: 8x upsampling, as SD
  int vae_res_blocks = 1;
  bool f16 = false;  // matrices and kernels in F16 (as published checkpoints), norms in F32
  uint64_t seed = 7;
};

// SD 1.5's dimensions (860 M UNet parameters, ViT-L/14 text encoder, the KL-f8 VAE).
TinySdSpec sd15_dimensions();

// Writes `dir`/model.safetensors and `dir`/tokenizer/{vocab.json,merges.txt}.
bool write_tiny_sd(const std::string& dir, const TinySdSpec& spec, std::string* error);

}  // namespace allm
