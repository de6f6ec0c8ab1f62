// A loaded Stable Diffusion model: the checkpoint (mapped), its three networks, the tokenizer,
// and what runs them. One generation at a time per model (the mutex).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "clip.h"
#include "compute.h"
#include "samplers.h"
#include "tokenizer.h"
#include "unet.h"
#include "vae.h"

namespace dcpp {

struct Model {
  std::unique_ptr<stcpp::Checkpoint> checkpoint;
  std::unique_ptr<Weights> weights;
  std::unique_ptr<ClipTokenizer> tokenizer;
  ClipTextModel clip;
  UnetModel unet;
  VaeDecoder vae;
  NoiseSchedule schedule;
  std::string architecture;  // "sd1", "sd2"
  int default_size = 512;
  int32_t pad_token = 0;
  int threads = 1;
  int vae_factor = 8;  // image pixels per latent pixel
  Executor executor;
  std::mutex mutex;
};

Failure load_model(const std::string& path, const diffusion_model_params& params,
                   std::unique_ptr<Model>* out);

// The components (float tensors row-major in PyTorch's order).
Failure encode_text(Model& model, const std::vector<int32_t>& ids, int clip_skip,
                    std::vector<float>* out);
// x [N, C, H, W], one timestep per batch entry, context [N, T, D].
Failure unet_eval(Model& model, const std::vector<float>& x, int w, int h, int n,
                  const std::vector<float>& timesteps, const std::vector<float>& context, int n_ctx,
                  std::vector<float>* out);
Failure vae_decode(Model& model, const std::vector<float>& latent, int w, int h,
                   std::vector<float>* out);

Failure generate(Model& model, const diffusion_generate_params& params, uint8_t* rgb);

}  // namespace dcpp
