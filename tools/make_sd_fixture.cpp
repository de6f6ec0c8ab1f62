// allm-make-sd-fixture DIR [--sd15 | --sd2 | --sdxl] [--v] [--inpainting] [--no-vae-encoder]
//                          [--layout single|diffusers] [--dtype f32|f16|bf16]
// A Stable Diffusion model with random weights: a single-file checkpoint (DIR/model.safetensors
// with its CLIP tokenizer in DIR/tokenizer/) or a diffusers folder DIR, the same weights in
// either. Tiny SD 1.x by default (tests); --sd2: tiny SD 2.x (OpenCLIP text encoder, linear
// projections); --sdxl: tiny SDXL base (two text encoders, added conditioning); --v:
// v-prediction; --inpainting: a 9-channel inpainting UNet; --no-vae-encoder: the VAE's decoder
// alone (no image to image); --sd15: SD 1.5's dimensions in F16 (the benchmark model, about 2 GB).
#include <cstdio>
#include <cstring>
#include <string>

#include "demo/tiny_sd.h"

int main(int argc, char** argv) {
  const char* usage =
      "usage: %s DIR [--sd15 | --sd2 | --sdxl] [--v] [--inpainting] [--no-vae-encoder]\n"
      "          [--layout single|diffusers] [--dtype f32|f16|bf16]\n";
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, usage, argv[0]);
    return 2;
  }
  allm::TinySdSpec spec;
  bool v = false, inpainting = false, no_encoder = false, ok = true;
  std::string layout, dtype;
  for (int i = 2; i < argc && ok; ++i) {
    const std::string arg = argv[i];
    if (arg == "--sd15") {
      spec = allm::sd15_dimensions();
    } else if (arg == "--sd2") {
      spec = allm::tiny_sd2();
    } else if (arg == "--sdxl") {
      spec = allm::tiny_sdxl();
    } else if (arg == "--v") {
      v = true;
    } else if (arg == "--inpainting") {
      inpainting = true;
    } else if (arg == "--no-vae-encoder") {
      no_encoder = true;
    } else if ((arg == "--layout" || arg == "--dtype") && i + 1 < argc) {
      (arg == "--layout" ? layout : dtype) = argv[++i];
    } else {
      ok = false;
    }
  }
  spec.v_prediction = v;
  spec.inpainting = inpainting;
  spec.vae_encoder = !no_encoder;
  if (layout == "diffusers") spec.layout = allm::SdLayout::DIFFUSERS;
  if (dtype == "f32") spec.weights = allm::SdWeightType::F32;
  if (dtype == "f16") spec.weights = allm::SdWeightType::F16;
  if (dtype == "bf16") spec.weights = allm::SdWeightType::BF16;
  ok = ok && (layout.empty() || layout == "single" || layout == "diffusers") &&
       (dtype.empty() || dtype == "f32" || dtype == "f16" || dtype == "bf16");
  if (!ok) {
    std::fprintf(stderr, usage, argv[0]);
    return 2;
  }
  std::string error;
  if (!allm::write_tiny_sd(argv[1], spec, &error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  return 0;
}
