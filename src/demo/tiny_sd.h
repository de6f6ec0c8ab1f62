// Writes Stable Diffusion 1.x / 2.x / SDXL base models with random weights, as published single
// files (model.diffusion_model.*, first_stage_model.*, cond_stage_model.* or SDXL's
// conditioner.embedders.*) or as diffusers folders (model_index.json, unet/, vae/,
// text_encoder/, tokenizer/, scheduler/; SDXL: text_encoder_2/, tokenizer_2/), with the same
// weights in both: the demo image model, the test fixtures and (with SD 1.5's dimensions) the
// benchmark model. A small CLIP tokenizer comes along. The images are noise; the file layout,
// names, shapes and run time are those of a real model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace allm {

enum class SdLayout { SINGLE_FILE, DIFFUSERS };
enum class SdWeightType { F32, F16, BF16 };

struct TinySdSpec {
  // SD 2.x: OpenCLIP text encoder (GELU, the penultimate layer), linear projections and 64
  // channels per head in the UNet's transformers.
  bool sd2 = false;
  // SDXL base: CLIP ViT-L (clip_*) and OpenCLIP ViT-bigG (clip2_*, with its pooled projection)
  // side by side, the UNet's added conditioning (label_emb), transformer_depth blocks per level,
  // linear projections and 64 channels per head.
  bool sdxl = false;
  bool v_prediction = false;  // diffusers: scheduler_config.json; single file: model.yaml
  // An inpainting UNet: 9 input channels (the latent, the mask, the masked image's latent).
  bool inpainting = false;
  SdLayout layout = SdLayout::SINGLE_FILE;
  // Matrices and kernels in this type (as published checkpoints); norms, biases, embeddings F32.
  SdWeightType weights = SdWeightType::F32;
  // UNet
  int model_channels = 32;  // SD 2.x: at least 64 (one head per 64 channels)
  std::vector<int> channel_mult = {1, 2};
  std::vector<bool> attention = {true, true};   // per level
  std::vector<int> transformer_depth = {1, 1};  // per level (the middle block: the last's)
  int res_blocks = 1;
  // CLIP text encoder
  int clip_hidden = 128;  // 2 heads of 64
  int clip_layers = 2;
  int clip_ff = 128;
  int clip_vocab = 0;  // 0: the tokenizer's size; SD 1.x: 49408
  // SDXL's second text encoder (OpenCLIP names in the single file; CLIPTextModelWithProjection
  // in text_encoder_2/)
  int clip2_hidden = 128;
  int clip2_layers = 3;
  int clip2_ff = 128;
  int clip2_projection = 96;
  // VAE
  int vae_channels = 32;
  std::vector<int> vae_mult = {1, 1, 2, 2};  // 4 levels: 8x, as SD
  int vae_res_blocks = 1;
  bool vae_encoder = true;
  uint64_t seed = 7;
};

// SD 1.5's dimensions (860 M UNet parameters, ViT-L/14 text encoder, the KL-f8 VAE), F16.
TinySdSpec sd15_dimensions();
// SDXL base 1.0's dimensions (2.6 G UNet parameters, CLIP ViT-L + OpenCLIP ViT-bigG, the VAE), F16.
TinySdSpec sdxl_dimensions();
// A tiny SD 2.x shape (model_channels 64).
TinySdSpec tiny_sd2();
// A tiny SDXL base shape: three levels as SDXL, no attention on the first, then one and two
// transformer blocks (SDXL: two and ten).
TinySdSpec tiny_sdxl();

// Single file: `dir`/model.safetensors (+ model.yaml for v-prediction) and
// `dir`/tokenizer/{vocab.json,merges.txt}. Diffusers: the folder `dir`.
bool write_tiny_sd(const std::string& dir, const TinySdSpec& spec, std::string* error);

// --- the parts (tiny_sd_files.cpp)

// POSITION_IDS: I64 0, 1, ..., as SD 1.5's published checkpoints carry (and nothing reads).
enum class SdInit { WEIGHT, NORM, BIAS, EMBEDDING, POSITION_IDS };
// The diffusers component a tensor belongs to (TEXT_2: SDXL's text_encoder_2/).
enum class SdPart { UNET, VAE, TEXT, TEXT_2 };

// One tensor of the plan under its single-file name and its diffusers name(s).
struct SdTensor {
  std::string name;
  std::vector<std::string> hf;  // empty: absent from diffusers; 3: a fused q/k/v split in 3
  std::vector<int64_t> shape;
  std::vector<int64_t> hf_shape;  // empty: as `shape` (per part when split)
  SdInit init;
  SdPart part;
  bool hf_transposed = false;  // a 2-D tensor diffusers stores transposed (a projection)
};

// Writes the tokenizer files into `dir`; *vocab_size: its size. `pad_with_0`: the pad token is
// "!" (id 0; SD 2.x, SDXL's tokenizer_2) rather than the end token.
bool write_sd_tokenizer(const std::string& dir, bool pad_with_0, int* vocab_size,
                        std::string* error);
// Writes the plan's tensors, in plan order with values drawn from spec.seed, as the layout asks.
bool write_sd_weights(const std::string& dir, const std::vector<SdTensor>& plan,
                      const TinySdSpec& spec, std::string* error);
// model_index.json and the components' configs (diffusers), or model.yaml (single file, v).
bool write_sd_configs(const std::string& dir, const TinySdSpec& spec, int vocab,
                      std::string* error);

}  // namespace allm
