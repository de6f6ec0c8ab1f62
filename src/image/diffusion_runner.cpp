#include "image/diffusion_runner.h"

#include <vector>

#include "base/compute_thread.h"
#include "diffusion.h"

namespace allm {

namespace {

ErrorCode error_code_of(diffusion_status status) {
  switch (status) {
    case DIFFUSION_OK: return ErrorCode::OK;
    case DIFFUSION_OOM_VRAM: return ErrorCode::OOM_VRAM;
    case DIFFUSION_OOM_RAM: return ErrorCode::OOM_RAM;
    case DIFFUSION_MODEL_CORRUPT: return ErrorCode::MODEL_CORRUPT;
    case DIFFUSION_CANCELLED: return ErrorCode::CANCELLED;
    case DIFFUSION_UNSUPPORTED: return ErrorCode::UNSUPPORTED;
    case DIFFUSION_LOAD_FAILED: return ErrorCode::LOAD_FAILED;
    default: return ErrorCode::INTERNAL;
  }
}

// What the library's callbacks see.
struct StepWatch {
  const std::function<bool()>& should_stop;
  const std::function<void(int, int)>& on_step;
};

}  // namespace

const std::string& sampler_names() {
  static const std::string names = [] {
    std::string out;
    for (int i = DIFFUSION_SAMPLER_EULER_A; i <= DIFFUSION_SAMPLER_DDIM; ++i) {
      if (!out.empty()) out += ", ";
      out += diffusion_sampler_name(static_cast<diffusion_sampler>(i));
    }
    return out;
  }();
  return names;
}

bool known_sampler(const std::string& name) {
  diffusion_sampler sampler;
  return diffusion_sampler_from_name(name.c_str(), &sampler);
}

std::optional<VaeTiling> parse_vae_tiling(const std::string& name) {
  if (name == "auto") return VaeTiling::AUTO;
  if (name == "off") return VaeTiling::OFF;
  if (name == "on") return VaeTiling::ON;
  return std::nullopt;
}

const char* vae_tiling_name(VaeTiling tiling) {
  switch (tiling) {
    case VaeTiling::OFF: return "off";
    case VaeTiling::ON: return "on";
    default: return "auto";
  }
}

std::unique_ptr<DiffusionModel> DiffusionModel::load(const std::string& path, int threads,
                                                     const std::string& device,
                                                     VaeTiling vae_tiling, Error* error) {
  diffusion_model_params params = diffusion_model_default_params();
  params.n_threads = threads;
  params.device = device.c_str();
  params.vae_tiling = vae_tiling == VaeTiling::ON    ? DIFFUSION_VAE_TILING_ON
                      : vae_tiling == VaeTiling::OFF ? DIFFUSION_VAE_TILING_OFF
                                                     : DIFFUSION_VAE_TILING_AUTO;
  diffusion_status status;
  char message[1024];
  diffusion_model* model =
      diffusion_model_load(path.c_str(), params, &status, message, sizeof message);
  if (!model) {
    *error = make_error(error_code_of(status), message);
    return nullptr;
  }
  return std::unique_ptr<DiffusionModel>(new DiffusionModel(model));
}

DiffusionModel::DiffusionModel(diffusion_model* model)
    : model_(model), worker_(std::vector<std::string>{diffusion_model_device(model)}) {}

DiffusionModel::~DiffusionModel() {
  diffusion_model_free(model_);
}

const char* DiffusionModel::architecture() const {
  return diffusion_model_architecture(model_);
}

const char* DiffusionModel::device() const {
  return diffusion_model_device(model_);
}

int DiffusionModel::default_size() const {
  return diffusion_model_default_size(model_);
}

bool DiffusionModel::can_encode() const {
  return diffusion_model_can_encode(model_);
}

bool DiffusionModel::inpainting() const {
  return diffusion_model_is_inpainting(model_);
}

Error DiffusionModel::generate(const ImageJob& job, const std::function<bool()>& should_stop,
                               const std::function<void(int, int)>& on_step, std::string* png) {
  diffusion_generate_params p = diffusion_generate_default_params();
  p.prompt = job.prompt.c_str();
  p.negative_prompt = job.negative_prompt.c_str();
  p.width = job.width;
  p.height = job.height;
  p.steps = job.steps;
  p.cfg_scale = job.cfg_scale;
  p.seed = job.seed;
  diffusion_sampler_from_name(job.sampler.c_str(), &p.sampler);
  p.n_threads = job.threads;
  p.init_image = job.init_rgb ? job.init_rgb->data() : nullptr;
  p.strength = job.strength;
  p.mask = job.mask ? job.mask->data() : nullptr;
  StepWatch watch{should_stop, on_step};
  p.user_data = &watch;
  p.should_abort = [](void* user) { return static_cast<StepWatch*>(user)->should_stop(); };
  p.progress = [](int32_t step, int32_t steps, void* user) {
    auto* w = static_cast<StepWatch*>(user);
    w->on_step(step, steps);
    return !w->should_stop();
  };
  std::vector<uint8_t> rgb(static_cast<size_t>(job.width) * job.height * 3);
  char message[512] = "";
  diffusion_status status = DIFFUSION_OK;
  run_on_compute_thread(
      [&] { status = diffusion_generate(model_, &p, rgb.data(), message, sizeof message); });
  // A lost worker's part of the compute gave nothing (or failed): that is the error.
  if (Error lost = worker_.check()) return lost;
  if (status != DIFFUSION_OK) return make_error(error_code_of(status), message);
  size_t size = 0;
  uint8_t* encoded = diffusion_png_encode(rgb.data(), job.width, job.height, &size);
  if (!encoded) return make_error(ErrorCode::INTERNAL, "cannot encode the PNG");
  png->assign(reinterpret_cast<char*>(encoded), size);
  diffusion_free(encoded);
  return {};
}

}  // namespace allm
