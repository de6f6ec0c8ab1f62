// What loading a Stable Diffusion checkpoint will need: its weights plus the activations of the
// largest image, sized by its convolutions' shapes as the safetensors headers give them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "base/memory_estimate.h"

namespace allm {

// What sizes a Stable Diffusion checkpoint's activations, from its tensors' shapes.
struct ConvKernel {
  int64_t in_channels = 0;
  int column_bytes = 4;  // im2col columns take the kernel's type: F16 or F32
};
struct DiffusionShape {
  ConvKernel vae_full_resolution;  // the widest VAE decoder convolution at the image's size
  ConvKernel unet_widest;          // the widest UNet convolution
  int vae_factor = 8;              // image pixels per latent pixel, per side
};
// From a single-file checkpoint (LDM names) or a diffusers folder (unet/, vae/); only the
// safetensors headers are read.
std::optional<DiffusionShape> read_diffusion_shape(const std::filesystem::path& checkpoint);
// The compute buffer's peak for one width x height image.
uint64_t diffusion_activation_bytes(const DiffusionShape& shape, int width, int height);

// diffusion.cpp: the checkpoint's weights plus the activations of a `max_side` x `max_side`
// image (the VAE decoder at full resolution or the UNet at the latent one, read from the
// checkpoint's header). Unreadable headers leave the weights alone, as for text models. With
// `offload`, it all goes to the first GPU when there is one.
MemoryEstimate estimate_diffusion_model(const std::filesystem::path& checkpoint, int max_side,
                                        bool offload = true);

}  // namespace allm
