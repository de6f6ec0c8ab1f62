// allm-bench-sd [DIR] [--arch sd15|sdxl] [--size N] [--steps N] [--threads N]
//               [--device NAME|none] [--attention auto|flash|scores]:
// seconds per sampling step (with classifier-free guidance: the UNet on a batch of 2) and the VAE
// decode time, on a random-weight checkpoint with SD 1.5's (default) or SDXL base's full
// dimensions in F16 (written to DIR, default /tmp/allm-bench-ARCH, on first use: about 2 GB or
// 7 GB), at the model's default size (512 or 1024) unless --size, on the first GPU if there is
// one (or the --device named; none: the CPU). --attention: the UNet's attention kernel
// (diffusion_attention; auto by default).
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
  std::string arch = "sd15";             // or sdxl
  std::string dir;                       // "": /tmp/allm-bench-ARCH
  std::string device;                    // "": the first GPU if there is one
  std::string attention = "auto";        // auto, flash or scores
  int size = 0, steps = 2, threads = 0;  // size 0: the model's default
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
    else if (!std::strcmp(argv[i], "--arch") && has_value)
      arch = argv[++i];
    else if (!std::strcmp(argv[i], "--attention") && has_value)
      attention = argv[++i];
    else
      dir = argv[i];
  }
  if (arch != "sd15" && arch != "sdxl") {
    std::fprintf(stderr, "--arch: sd15 or sdxl\n");
    return 2;
  }
  if (dir.empty()) dir = "/tmp/allm-bench-" + arch;
  const std::string path = dir + "/model.safetensors";
  if (!std::filesystem::exists(path)) {
    std::printf("writing an %s-sized random checkpoint to %s ...\n", arch.c_str(), path.c_str());
    std::string error;
    const allm::TinySdSpec spec =
        arch == "sdxl" ? allm::sdxl_dimensions() : allm::sd15_dimensions();
    if (!allm::write_tiny_sd(dir, spec, &error)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
  }
  diffusion_model_params mp = diffusion_model_default_params();
  mp.n_threads = threads;
  mp.device = device.empty() ? nullptr : device.c_str();
  mp.attention = attention == "flash"    ? DIFFUSION_ATTENTION_FLASH
                 : attention == "scores" ? DIFFUSION_ATTENTION_SCORE_MATRIX
                                         : DIFFUSION_ATTENTION_AUTO;
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

  if (size <= 0) size = diffusion_model_default_size(model);
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
