#include "image/diffusion_memory.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "safetensors.h"

namespace allm {

namespace fs = std::filesystem;

namespace {

// A tensor's dtype and shape ("F16", [out, in, 3, 3]) as a checkpoint's header gives them.
struct TensorShape {
  std::string dtype;
  std::vector<int64_t> shape;
};
using TensorShapes = std::map<std::string, TensorShape>;

// The tensors of one .safetensors file from its header, which safetensors.cpp validates as for a
// load; nullopt when it refuses the file.
std::optional<TensorShapes> read_tensor_shapes(const fs::path& file) {
  if (file.empty()) return std::nullopt;
  TensorShapes tensors;
  const auto add = [](const stcpp_tensor_info* tensor, void* user_data) {
    (*static_cast<TensorShapes*>(user_data))[tensor->name] = {
        tensor->dtype, std::vector<int64_t>(tensor->shape, tensor->shape + tensor->n_dims)};
  };
  stcpp_status status = STCPP_OK;
  if (!stcpp_checkpoint_tensors(file.c_str(), add, &tensors, &status, nullptr, 0)) {
    return std::nullopt;
  }
  return tensors;
}

// A diffusers component folder's weights: its largest .safetensors file (an F32 and an F16
// variant may lie side by side); empty when there is none.
fs::path largest_safetensors(const fs::path& folder) {
  fs::path best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (entry.path().extension() == ".safetensors" &&
        (best.empty() || file_size_or_zero(entry.path()) > file_size_or_zero(best))) {
      best = entry.path();
    }
  }
  return best;
}

// A 3x3 convolution kernel [out, in, 3, 3]; nullopt for any other tensor.
std::optional<ConvKernel> conv_kernel(const TensorShape& tensor) {
  const std::vector<int64_t>& shape = tensor.shape;
  if (shape.size() != 4 || shape[2] != 3 || shape[3] != 3) return std::nullopt;
  return ConvKernel{shape[1], tensor.dtype == "F16" ? 2 : 4};
}

// The widest 3x3 convolution among the tensors whose names start with `prefix`, or that are
// named `exact`.
std::optional<ConvKernel> widest_conv(const TensorShapes& tensors, const std::string& prefix,
                                      const std::string& exact = "") {
  std::optional<ConvKernel> widest;
  for (const auto& [name, tensor] : tensors) {
    if (name.compare(0, prefix.size(), prefix) != 0 && name != exact) continue;
    const auto kernel = conv_kernel(tensor);
    if (kernel && (!widest || kernel->in_channels > widest->in_channels)) widest = kernel;
  }
  return widest;
}

// How a checkpoint names the VAE decoder's levels.
struct DecoderNames {
  std::string levels;     // "<levels>N." prefixes level N
  bool full_res_first;    // level 0 works at the image's resolution (LDM); else the last does
  std::string upsampler;  // the upsampling convolution within a level
};

std::optional<DiffusionShape> diffusion_shape(const std::optional<TensorShapes>& unet,
                                              const std::string& unet_prefix,
                                              const std::optional<TensorShapes>& vae,
                                              const DecoderNames& names) {
  if (!unet || !vae) return std::nullopt;
  int levels = 0;
  for (const auto& [name, tensor] : *vae) {
    if (name.compare(0, names.levels.size(), names.levels) != 0) continue;
    levels = std::max(levels, std::atoi(name.c_str() + names.levels.size()) + 1);
  }
  if (levels < 2) return std::nullopt;
  const int full = names.full_res_first ? 0 : levels - 1;
  const int before = names.full_res_first ? 1 : levels - 2;  // upsamples into `full`
  const auto vae_conv = widest_conv(*vae, names.levels + std::to_string(full) + ".",
                                    names.levels + std::to_string(before) + "." + names.upsampler);
  const auto unet_conv = widest_conv(*unet, unet_prefix);
  if (!vae_conv || !unet_conv) return std::nullopt;
  DiffusionShape shape;
  shape.vae_full_resolution = *vae_conv;
  // SDXL (its UNet's added conditioning): diffusion.cpp converts the VAE to F32 (F16 overflows).
  if (unet->count(unet_prefix + "label_emb.0.0.weight") ||
      unet->count(unet_prefix + "add_embedding.linear_1.weight")) {
    shape.vae_full_resolution.column_bytes = 4;
  }
  shape.unet_widest = *unet_conv;
  shape.vae_factor = 1 << (levels - 1);
  return shape;
}

}  // namespace

uint64_t diffusion_activation_bytes(const DiffusionShape& shape, int width, int height) {
  // A 3x3 convolution of c input channels over P pixels holds its im2col columns (9 c values per
  // pixel) beside its F32 input, its output and the residual a ResNet block keeps: about
  // P x c x (9 x column bytes + 12). The VAE decoder's widest convolution at the image's
  // resolution is the peak; the UNet runs at the latent resolution with the prompt and the
  // negative prompt in one batch of 2.
  auto conv = [](uint64_t pixels, const ConvKernel& k) {
    return pixels * static_cast<uint64_t>(k.in_channels) * (9ull * k.column_bytes + 12);
  };
  const uint64_t pixels = static_cast<uint64_t>(width) * static_cast<uint64_t>(height);
  const uint64_t latent = pixels / (static_cast<uint64_t>(shape.vae_factor) * shape.vae_factor);
  return std::max(conv(pixels, shape.vae_full_resolution), 2 * conv(latent, shape.unet_widest)) +
         (64ull << 20);  // text encoder, graph metadata, scratch
}

std::optional<DiffusionShape> read_diffusion_shape(const fs::path& checkpoint) {
  std::error_code ec;
  if (!fs::is_directory(checkpoint, ec)) {  // one file as published: LDM names
    const std::optional<TensorShapes> tensors = read_tensor_shapes(checkpoint);
    return diffusion_shape(tensors, "model.diffusion_model.", tensors,
                           {"first_stage_model.decoder.up.", true, "upsample.conv.weight"});
  }
  return diffusion_shape(read_tensor_shapes(largest_safetensors(checkpoint / "unet")), "",
                         read_tensor_shapes(largest_safetensors(checkpoint / "vae")),
                         {"decoder.up_blocks.", false, "upsamplers.0.conv.weight"});
}

MemoryEstimate estimate_diffusion_model(const fs::path& checkpoint, int max_side, bool offload) {
  MemoryEstimate estimate;
  if (offload) estimate.gpu = GpuUse::FIRST_GPU;
  std::error_code ec;
  if (fs::is_directory(checkpoint, ec)) {  // diffusers: one weights file per component
    for (const char* component : {"unet", "vae", "text_encoder", "text_encoder_2"}) {
      estimate.weights += file_size_or_zero(largest_safetensors(checkpoint / component));
    }
  } else {
    estimate.weights = file_size_or_zero(checkpoint);
  }
  const std::optional<DiffusionShape> shape = read_diffusion_shape(checkpoint);
  if (!shape) return estimate;
  estimate.compute = diffusion_activation_bytes(*shape, max_side, max_side);
  estimate.note =
      "at " + std::to_string(max_side) + "x" + std::to_string(max_side) + " (--image-max-size)";
  return estimate;
}

}  // namespace allm
