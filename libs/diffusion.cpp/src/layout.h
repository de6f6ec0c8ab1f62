// The two ways a Stable Diffusion model is stored, read into one form: the tensors under the
// single-file checkpoint names (model.diffusion_model.*, first_stage_model.*, cond_stage_model.*)
// and what the files say beyond the tensor shapes (configs).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "diffusion.h"
#include "safetensors/checkpoint.h"
#include "tensors.h"

namespace dcpp {

// What the configs say; the defaults mean "as the tensor shapes imply".
struct FileConfig {
  std::string tokenizer_dir;                // empty: beside the checkpoint
  int clip_heads = 0;                       // 0: one per 64 channels
  int quick_gelu = -1;                      // -1: by the text encoder's layout
  int clip_heads_2 = 0, quick_gelu_2 = -1;  // SDXL's second text encoder's
  std::map<int64_t, int> unet_heads;        // attention heads by channel count; empty: inferred
  float vae_scale = 0.0f;                   // 0: 0.18215
  int sample_size = 0;                      // the latent side of the default image; 0: inferred
  diffusion_prediction prediction = DIFFUSION_PREDICTION_AUTO;
  std::string pad_token;    // empty: by the text encoder
  std::string pad_token_2;  // SDXL's second tokenizer's (tokenizer_2/); empty: by the encoder
  // model_index.json's force_zeros_for_empty_prompt (SDXL base: an empty negative prompt is
  // conditioned on zeros, not on the empty prompt's encoding); -1: absent.
  int zeros_for_empty_prompt = -1;
};

struct ModelFiles {
  std::vector<std::unique_ptr<stcpp::Checkpoint>> checkpoints;
  Weights weights;
  FileConfig config;
};

// True for a diffusers folder (one with model_index.json).
bool is_diffusers_folder(const std::string& path);

// A single-file .safetensors checkpoint (SDXL's conditioner.embedders.0.transformer.* and
// conditioner.embedders.1.model.* read as cond_stage_model.* and cond_stage_model_2.*); a
// `<name>.yaml` beside it with `parameterization: "v"`
// (the original configs' v2-inference-v.yaml) marks v-prediction.
Failure open_single_file(const std::string& path, ModelFiles* files);

// A diffusers folder: unet/, vae/, text_encoder/ (diffusion_pytorch_model.safetensors or
// model.safetensors, each with config.json), tokenizer/, scheduler/scheduler_config.json; SDXL's
// text_encoder_2/ (read as cond_stage_model_2.*) and tokenizer_2/ too.
Failure open_diffusers(const std::string& dir, ModelFiles* files);

// The single-file names of diffusers tensor names (empty: not used). `layers_per_block`: the
// resnets of each down block; `up_attention[i]`: whether up block i has attentions.
std::string unet_name(const std::string& name, int layers_per_block,
                      const std::vector<bool>& up_attention);
// `up_blocks`: the decoder's up block count (diffusers numbers them in reverse).
std::string vae_name(const std::string& name, int up_blocks);
// `prefix`: cond_stage_model or (SDXL's second encoder) cond_stage_model_2.
std::string text_encoder_name(const std::string& name, const std::string& prefix);
// SDXL single files' conditioner names onto ours; others unchanged.
std::string single_file_name(const std::string& name);

}  // namespace dcpp
