// What the ImageManager drives: one loaded Stable Diffusion checkpoint (diffusion.cpp), shared by
// every generation; and the samplers it knows.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/rpc_workers.h"

struct diffusion_model;

namespace allm {

// The sampler names diffusion.cpp knows, in its order ("euler_a, euler, dpm++2m, ddim"), for
// the messages that list them.
const std::string& sampler_names();
bool known_sampler(const std::string& name);

// When the VAE decodes in tiles (diffusion.cpp's choice): AUTO on a GPU when the whole image's
// decode does not fit in its free memory, never on the CPU; OFF never; ON for every image larger
// than a tile (512 pixels a side).
enum class VaeTiling { AUTO, OFF, ON };
std::optional<VaeTiling> parse_vae_tiling(const std::string& name);  // "auto", "off", "on"
const char* vae_tiling_name(VaeTiling tiling);

// One image to generate.
struct ImageJob {
  std::string prompt;
  std::string negative_prompt;
  int width = 512, height = 512;
  int steps = 20;
  float cfg_scale = 7.0f;
  uint64_t seed = 0;
  std::string sampler = "euler_a";  // one of sampler_names()
  int threads = 1;
  // Image to image (null: text to image): RGB bytes at width x height; the share of the
  // sampling schedule that runs; the pixels to repaint (nonzero) or keep (null: repaint all).
  const std::vector<uint8_t>* init_rgb = nullptr;
  float strength = 0.8f;
  const std::vector<uint8_t>* mask = nullptr;
};

class DiffusionModel {
 public:
  // nullptr with *error set (the engine's code and message) when diffusion.cpp cannot load it.
  // `device`: the ggml GPU ("": the first, "none": the CPU).
  static std::unique_ptr<DiffusionModel> load(const std::string& path, int threads,
                                              const std::string& device, VaeTiling vae_tiling,
                                              Error* error);
  ~DiffusionModel();
  DiffusionModel(const DiffusionModel&) = delete;
  DiffusionModel& operator=(const DiffusionModel&) = delete;

  const char* architecture() const;  // "sd1", "sd2", "sdxl"
  const char* device() const;        // its GPU's name, or "CPU"
  int default_size() const;          // the side it was trained at: 512, 768 or 1024 (SDXL)
  bool can_encode() const;           // has a VAE encoder (image to image)
  bool inpainting() const;           // an inpainting checkpoint
  // False once the RPC worker holding it is lost (it must be loaded again).
  bool healthy() const { return worker_.lost_worker().empty(); }

  // Generates one image as PNG into *png. `on_step(step, steps)` follows each sampling step;
  // `should_stop` is polled while a step computes and after each one, and when it says yes the
  // generation ends with CANCELLED.
  Error generate(const ImageJob& job, const std::function<bool()>& should_stop,
                 const std::function<void(int step, int steps)>& on_step, std::string* png);

 private:
  explicit DiffusionModel(diffusion_model* model);
  diffusion_model* model_;
  RpcPlacement worker_;  // its device's, when an RPC worker's
};

}  // namespace allm
