// ImageManager: runs the Stable Diffusion models (loaded on first use through the shared model
// lifecycle, shared by every request), a bounded number of generations at once with a bounded
// queue behind them (full: 429), enforces the time limit and client cancellation, logs progress
// per step, and keeps generated PNGs for a short while for response_format "url".
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "core/image_file_store.h"
#include "core/job_slots.h"
#include "core/manager_models.h"
#include "image/diffusion_runner.h"

namespace allm {

struct ImageManagerConfig {
  int parallel = 1;              // generations running at once, all models together
  int queue = 4;                 // requests waiting; beyond that, 429
  double timeout_seconds = 600;  // per request, waiting included (504 TIMEOUT)
  int threads = 0;               // CPU threads per generation; 0: cores / parallel
  int max_side = 1024;           // width and height bounds (multiples of 8)
  int min_side = 64;
  int max_steps = 150;
  double file_ttl_seconds = 600;  // how long a stored image (store_file) can be found
  std::string device;             // the ggml GPU ("": the first; "none": the CPU)
  VaeTiling vae_tiling = VaeTiling::AUTO;
};

struct ImageRequest {
  std::string model;
  std::string prompt;
  std::string negative_prompt;
  int n = 1;
  int width = 0, height = 0;  // 0: the model's default size
  int steps = 20;
  float cfg_scale = 7.0f;
  std::optional<uint64_t> seed;  // absent: random; image i uses seed + i
  std::string sampler = "euler_a";
  std::function<bool()> client_gone;  // polled while waiting and running; may be empty
  // Edits: the image (RGB bytes at width x height; empty: text to image), the share of the
  // sampling schedule that runs from it, and the pixels to repaint (nonzero; empty: all).
  std::vector<uint8_t> init_rgb;
  float strength = 0.8f;
  std::vector<uint8_t> mask;
};

struct GeneratedImage {
  std::string png;
  uint64_t seed = 0;
};

class ImageManager {
 public:
  ImageManager(ModelRegistry& registry, ModelLifecycle& lifecycle, ImageManagerConfig config);
  ~ImageManager();

  const ImageManagerConfig& config() const { return config_; }

  Error preload(const std::string& model_id) { return models_.preload(model_id); }
  // Whether width x height is a size this server generates (multiples of 8 within the bounds).
  Error check_size(int width, int height) const;
  // Validates, waits for a slot, generates request.n images; blocks until done.
  Error generate(const ImageRequest& request, std::vector<GeneratedImage>* out);
  // Aborts running and waiting generations with CANCELLED (shutdown past its grace period).
  void cancel_all() { cancelling_ = true; }

  // Short-lived image files for response_format "url".
  ImageFileStore& files() { return files_; }

 private:
  using Clock = std::chrono::steady_clock;

  ModelLoader<DiffusionModel> loader_for(const ModelEntry& entry);
  Error generate_one(DiffusionModel& model, const ImageRequest& request, int width, int height,
                     uint64_t seed, Clock::time_point deadline, GeneratedImage* out);

  ImageManagerConfig config_;
  ManagerModels<DiffusionModel> models_;
  JobSlots slots_;
  std::atomic<bool> cancelling_{false};
  ImageFileStore files_;
};

}  // namespace allm
