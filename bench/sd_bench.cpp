// allm-bench-sd [DIR] [--size N] [--steps N] [--threads N] [--device NAME|none]: seconds per
// sampling step (with classifier-free guidance: the UNet on a batch of 2) and the VAE decode time,
// on a random-weight checkpoint with SD 1.5's full dimensions in F16 (written to DIR on first use,
// about 2 GB), on the first GPU if there is one (or the --device named; none: the CPU).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "demo/tiny_sd.h"
#include "diffusion.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Timing {
  Clock::time_point start;
  std::vector<double> step_ends;  // seconds since start
};

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp/allm-bench-sd15";
  std::string device;  // "": the first GPU if there is one
  int size = 512, steps = 2, threads = 0;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--size") && has_value)
      size = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && has_value)
      steps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && has_value)
      threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--device") && has_value)
      device = argv[++i];
    else
      dir = argv[i];
  }
  const std::string path = dir + "/model.safetensors";
  if (!std::filesystem::exists(path)) {
    std::printf("writing an SD 1.5-sized random checkpoint to %s ...\n", path.c_str());
    std::string error;
    if (!allm::write_tiny_sd(dir, allm::sd15_dimensions(), &error)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
  }
  diffusion_model_params mp = diffusion_model_default_params();
  mp.n_threads = threads;
  mp.device = device.empty() ? nullptr : device.c_str();
  char message[512];
  diffusion_status status;
  auto t0 = Clock::now();
  diffusion_model* model = diffusion_model_load(path.c_str(), mp, &status, message, sizeof message);
  if (!model) {
    std::fprintf(stderr, "load failed: %s\n", message);
    return 1;
  }
  std::printf("loaded %s (%.2f GB) on %s in %.2f s\n", diffusion_model_architecture(model),
              diffusion_model_size_bytes(model) / 1e9, diffusion_model_device(model), since(t0));

  Timing timing;
  diffusion_generate_params p = diffusion_generate_default_params();
  p.prompt = "a photograph of an astronaut riding a horse";
  p.width = p.height = size;
  p.steps = steps;
  p.sampler = DIFFUSION_SAMPLER_EULER_A;
  p.user_data = &timing;
  p.progress = [](int32_t step, int32_t total, void* user) {
    auto* t = static_cast<Timing*>(user);
    t->step_ends.push_back(since(t->start));
    std::printf("  step %d/%d done at %.2f s\n", step, total, t->step_ends.back());
    std::fflush(stdout);
    return true;
  };
  std::vector<uint8_t> rgb(static_cast<size_t>(size) * size * 3);
  timing.start = Clock::now();
  if (diffusion_generate(model, &p, rgb.data(), message, sizeof message) != DIFFUSION_OK) {
    std::fprintf(stderr, "generate failed: %s\n", message);
    return 1;
  }
  const double total = since(timing.start);
  // Step 1 also includes the two text encodings; later steps are the UNet alone.
  double per_step = timing.step_ends[0];
  if (timing.step_ends.size() > 1) {
    per_step = (timing.step_ends.back() - timing.step_ends[0]) / (timing.step_ends.size() - 1);
  }
  std::printf("%dx%d, cfg (UNet batch 2), euler_a:\n", size, size);
  std::printf("  seconds per sampling step: %.2f\n", per_step);
  std::printf("  first step incl. text encoding: %.2f s\n", timing.step_ends[0]);
  std::printf("  VAE decode: %.2f s\n", total - timing.step_ends.back());
  std::printf("  total: %.2f s\n", total);
  diffusion_model_free(model);
  return 0;
}
