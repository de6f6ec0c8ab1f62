// The CLIP text encoder: OpenAI CLIP ViT-L/14 (SD 1.x, Hugging Face CLIPTextModel names; also
// SD 2.x's text encoder in diffusers folders) and OpenCLIP ViT-H/14 (SD 2.x single files,
// open_clip names with a fused in_proj, without the last layer SD 2.x does not use), on one
// graph. The output always goes through the final layer norm.
#pragma once

#include <vector>

#include "compute.h"
#include "nn.h"

namespace dcpp {

struct ClipLayer {
  Norm ln1, ln2;
  Linear q, k, v;  // separate projections (OpenAI CLIP)
  Linear qkv;      // one fused projection (OpenCLIP)
  Linear out, fc1, fc2;
};

struct ClipTextModel {
  int64_t vocab = 0, hidden = 0, context = 0, heads = 0;
  bool quick_gelu = true;  // OpenAI CLIP; OpenCLIP uses exact GELU
  ggml_tensor* token_embedding = nullptr;
  ggml_tensor* position_embedding = nullptr;  // [context, hidden], F32
  std::vector<ClipLayer> layers;
  Norm final_norm;
};

// Finds the text encoder under cond_stage_model.*; false with a failure when there is none.
bool load_clip(Weights& weights, ClipTextModel* model, Failure* failure);

// [hidden, n_tokens] for one sequence; clip_skip > 1 drops the last clip_skip - 1 layers.
ggml_tensor* build_clip(GraphRun& run, const ClipTextModel& model, const std::vector<int32_t>& ids,
                        int clip_skip);

}  // namespace dcpp
