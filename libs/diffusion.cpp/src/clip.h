// The CLIP text encoder: OpenAI CLIP ViT-L/14 (SD 1.x, Hugging Face CLIPTextModel names; also
// SD 2.x's text encoder in diffusers folders) and OpenCLIP ViT-H/14 (SD 2.x single files,
// open_clip names with a fused in_proj, without the last layer SD 2.x does not use), on one
// graph. SD 1.x/2.x condition on the last layer kept, through the final layer norm; SDXL on the
// penultimate layer's hidden states of CLIP ViT-L and OpenCLIP ViT-bigG without it, and on the
// pooled output of the second (the final-normed state at the end token, projected).
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
  bool penultimate = false;  // SDXL: the conditioning skips the last layer and the final norm
  // SDXL's OpenCLIP ViT-bigG: the pooled output's projection (null otherwise); open_clip stores
  // it [hidden, pooled] (applied as x @ P), transformers as a linear [pooled, hidden].
  ggml_tensor* projection = nullptr;
  bool projection_transposed = false;
  int64_t pooled_dim = 0;
};

// Finds the text encoder under `prefix` (cond_stage_model, or SDXL's second,
// cond_stage_model_2): OpenAI CLIP names under .transformer.text_model., OpenCLIP names under
// .model.; false with a failure when there is none. `sdxl`: all layers kept, conditioning on
// the penultimate one, the pooled projection loaded where present.
bool load_clip(Weights& weights, const std::string& prefix, bool sdxl, ClipTextModel* model,
               Failure* failure);

// [hidden, n_tokens] for one sequence; clip_skip > 1 drops the last clip_skip - 1 layers.
// `pooled` (for a model with a projection): the pooled output [pooled_dim], from every layer
// whatever clip_skip says, at the first end token (the highest id, as CLIP pools).
ggml_tensor* build_clip(GraphRun& run, const ClipTextModel& model, const std::vector<int32_t>& ids,
                        int clip_skip, ggml_tensor** pooled = nullptr);

}  // namespace dcpp
