// A loaded Stable Diffusion model: the checkpoint files (mapped), its networks, the tokenizer,
// and what runs them. One generation at a time per model (the mutex).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "clip.h"
#include "clip_tokenizer.h"
#include "compute.h"
#include "layout.h"
#include "samplers.h"
#include "unet.h"
#include "vae.h"

namespace dcpp {

// The UNet's graph for one shape, built once per generation and computed step after step with
// new inputs.
struct UnetGraph {
  std::unique_ptr<GraphRun> run;
  int w = 0, h = 0, n = 0, n_ctx = 0;
  ggml_tensor *x = nullptr, *timesteps = nullptr, *context = nullptr, *pooled = nullptr,
              *sizes = nullptr, *out = nullptr;

  bool fits(int w_, int h_, int n_, int n_ctx_) const {
    return run && w == w_ && h == h_ && n == n_ && n_ctx == n_ctx_;
  }
};

struct Model {
  ModelFiles files;
  std::unique_ptr<ClipTokenizer> tokenizer;
  ClipTextModel clip;
  ClipTextModel clip2;  // SDXL's OpenCLIP ViT-bigG; no layers otherwise
  UnetModel unet;
  VaeDecoder vae;
  VaeEncoder encoder;  // levels empty when the checkpoint has none
  NoiseSchedule schedule;
  diffusion_prediction prediction = DIFFUSION_PREDICTION_EPS;
  std::string architecture;  // "sd1", "sd2", "sdxl"
  int default_size = 512;
  int32_t pad_token = 0;
  int32_t pad_token_2 = 0;                // SDXL's second tokenization (the same vocabulary)
  bool zeros_for_empty_negative = false;  // SDXL base, as diffusers' force_zeros_for_empty_prompt
  int threads = 1;
  int vae_factor = 8;                   // image pixels per latent pixel
  ggml_backend_dev_t device = nullptr;  // the GPU the networks run on; null: the CPU
  diffusion_vae_tiling vae_tiling = DIFFUSION_VAE_TILING_AUTO;
  int vae_tile = 64;  // latent pixels
  diffusion_attention attention = DIFFUSION_ATTENTION_AUTO;
  Executor executor;
  UnetGraph unet_graph;  // after the executor: goes before it
  std::mutex mutex;

  // An inpainting UNet takes the latent, the mask and the masked image's latent.
  bool inpainting() const { return unet.in_channels == 2 * vae.latent_channels + 1; }
};

Failure load_model(const std::string& path, const diffusion_model_params& params,
                   std::unique_ptr<Model>* out);

// SDXL's added conditioning for each batch entry: the pooled text [N, P] and the size numbers
// [N, 6] (original height and width, crop top and left, target height and width).
struct AddedConditioning {
  std::vector<float> pooled, sizes;
};
constexpr int kSizeNumbers = 6;

// The components (float tensors row-major in PyTorch's order).
// The first text encoder's output for `ids` [T, D].
Failure encode_text(Model& model, const std::vector<int32_t>& ids, int clip_skip,
                    std::vector<float>* out);
// A prompt's conditioning: the UNet's context [T, D] (SDXL: both encoders' side by side) and, for
// SDXL, the pooled output [P] (empty otherwise).
Failure encode_prompt(Model& model, const std::string& text, int clip_skip,
                      std::vector<float>* context, std::vector<float>* pooled);
// x [N, C, H, W], one timestep per batch entry, context [N, T, D]; `added` for SDXL.
Failure unet_eval(Model& model, const std::vector<float>& x, int w, int h, int n,
                  const std::vector<float>& timesteps, const std::vector<float>& context, int n_ctx,
                  const AddedConditioning& added, std::vector<float>* out);
Failure vae_decode(Model& model, const std::vector<float>& latent, int w, int h,
                   std::vector<float>* out);
// image [3, 8H, 8W] -> the scaled latent mean [C, H, W].
Failure vae_encode(Model& model, const std::vector<float>& image, int w, int h,
                   std::vector<float>* out);

Failure generate(Model& model, const diffusion_generate_params& params, uint8_t* rgb);

}  // namespace dcpp
