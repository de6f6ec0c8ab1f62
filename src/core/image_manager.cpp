#include "core/image_manager.h"

#include <algorithm>
#include <random>

#include "base/compute_thread.h"
#include "base/log.h"
#include "core/cpu_threads.h"
#include "core/memory_estimate.h"
#include "diffusion.h"

namespace allm {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(100);

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

uint64_t random_seed() {
  std::random_device device;
  return (uint64_t(device()) << 32 | device()) & ((uint64_t(1) << 53) - 1);  // exact in JSON
}

}  // namespace

// One loaded checkpoint.
class ImageModel {
 public:
  explicit ImageModel(diffusion_model* model) : model_(model) {}
  ~ImageModel() { diffusion_model_free(model_); }
  diffusion_model* get() { return model_; }

 private:
  diffusion_model* model_;
};

ImageManager::ImageManager(ModelRegistry& registry, ModelLifecycle& lifecycle,
                           ImageManagerConfig config)
    : registry_(registry),
      config_(config),
      models_(lifecycle, Modality::IMAGE),
      slots_(config.parallel, config.queue,
             {"image generations", "--image-parallel, --image-queue",
              std::to_string(config.timeout_seconds) + " s, --image-timeout"}) {}

ImageManager::~ImageManager() = default;

bool ImageManager::known_sampler(const std::string& name) {
  diffusion_sampler sampler;
  return diffusion_sampler_from_name(name.c_str(), &sampler);
}

Error ImageManager::preload(const std::string& model_id) {
  Error error;
  acquire(model_id, &error);
  return error;
}

ModelLease<ImageModel> ImageManager::acquire(const std::string& model_id, Error* error) {
  std::optional<ModelEntry> entry = registry_.find(model_id);
  if (!entry) {
    *error = request_error("The model '" + quote_excerpt(model_id) + "' does not exist", "model",
                           "model_not_found");
    return {};
  }
  if (entry->modality != Modality::IMAGE) {
    *error = wrong_modality_error(model_id, entry->modality, Modality::IMAGE);
    return {};
  }
  return models_.acquire(
      model_id,
      [&](MemoryEstimate* estimate) {
        *estimate = estimate_diffusion_model(entry->path, config_.max_side);
        return Error{};
      },
      [&](Error* load_error, uint64_t*) -> std::shared_ptr<ImageModel> {
        const auto started = Clock::now();
        ALLM_LOG_INFO("loading image model '%s' from %s", model_id.c_str(), entry->path.c_str());
        diffusion_model_params params = diffusion_model_default_params();
        params.n_threads = threads_per_job();
        diffusion_status status;
        char message[1024];
        diffusion_model* model =
            diffusion_model_load(entry->path.c_str(), params, &status, message, sizeof message);
        if (!model) {
          ALLM_LOG_ERROR("image model '%s' failed to load: %s", model_id.c_str(), message);
          *load_error = make_error(error_code_of(status), "model '" + model_id + "': " + message);
          return nullptr;
        }
        ALLM_LOG_INFO("image model '%s' (%s) loaded in %.2f s", model_id.c_str(),
                      diffusion_model_architecture(model),
                      std::chrono::duration<double>(Clock::now() - started).count());
        return std::make_shared<ImageModel>(model);
      },
      error);
}

Error ImageManager::check_size(const ImageRequest& r, int default_size) const {
  const int w = r.width ? r.width : default_size, h = r.height ? r.height : default_size;
  if (w % 8 || h % 8 || w < config_.min_side || h < config_.min_side || w > config_.max_side ||
      h > config_.max_side) {
    return request_error("size must be WIDTHxHEIGHT with both sides multiples of 8 between " +
                             std::to_string(config_.min_side) + " and " +
                             std::to_string(config_.max_side) + " (--image-max-size)",
                         "size");
  }
  return {};
}

int ImageManager::threads_per_job() const {
  // The server's rule (core/cpu_threads.h); `allm serve` passes its result in config_.threads.
  return plan_threads(count_cpus(), config_.threads, 1, config_.parallel).image_per_job;
}

namespace {

// What the library's callbacks see: the deadline, the client, shutdown, the model for the log.
struct RunWatch {
  std::chrono::steady_clock::time_point deadline;
  const std::function<bool()>* client_gone;
  const std::atomic<bool>* cancelling;
  std::chrono::steady_clock::time_point last_poll;
  std::string model;
  bool timed_out = false, cancelled = false;

  bool should_stop() {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) timed_out = true;
    if (!timed_out && *client_gone && now - last_poll >= kPollInterval) {
      last_poll = now;
      cancelled = (*client_gone)();
    }
    if (*cancelling) cancelled = true;
    return timed_out || cancelled;
  }
};

}  // namespace

Error ImageManager::generate_one(ImageModel& model, const ImageRequest& r, int width, int height,
                                 uint64_t seed, Clock::time_point deadline, GeneratedImage* out) {
  diffusion_generate_params p = diffusion_generate_default_params();
  p.prompt = r.prompt.c_str();
  p.negative_prompt = r.negative_prompt.c_str();
  p.width = width;
  p.height = height;
  p.steps = r.steps;
  p.cfg_scale = r.cfg_scale;
  p.seed = seed;
  diffusion_sampler_from_name(r.sampler.c_str(), &p.sampler);
  p.n_threads = threads_per_job();
  RunWatch watch{deadline, &r.client_gone, &cancelling_, Clock::now(), r.model};
  p.user_data = &watch;
  p.should_abort = [](void* user) { return static_cast<RunWatch*>(user)->should_stop(); };
  p.progress = [](int32_t step, int32_t steps, void* user) {
    auto* w = static_cast<RunWatch*>(user);
    ALLM_LOG_INFO("model '%s': step %d/%d", w->model.c_str(), step, steps);
    return !w->should_stop();
  };
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3);
  char message[512] = "";
  diffusion_status status = DIFFUSION_OK;
  run_on_compute_thread(
      [&] { status = diffusion_generate(model.get(), &p, rgb.data(), message, sizeof message); });
  if (watch.timed_out) {
    return make_error(ErrorCode::TIMEOUT, "the generation ran past the time limit (" +
                                              std::to_string(config_.timeout_seconds) +
                                              " s, --image-timeout)");
  }
  if (status == DIFFUSION_CANCELLED) {
    return make_error(ErrorCode::CANCELLED,
                      cancelling_ ? "the server is shutting down" : "the client disconnected");
  }
  if (status != DIFFUSION_OK) return make_error(error_code_of(status), message);
  size_t size = 0;
  uint8_t* png = diffusion_png_encode(rgb.data(), width, height, &size);
  if (!png) return make_error(ErrorCode::INTERNAL, "cannot encode the PNG");
  out->png.assign(reinterpret_cast<char*>(png), size);
  out->seed = seed;
  diffusion_free(png);
  return {};
}

Error ImageManager::generate(const ImageRequest& r, std::vector<GeneratedImage>* out) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(config_.timeout_seconds));
  if (!known_sampler(r.sampler)) {
    return request_error("unknown sampler '" + r.sampler + "' (euler_a, euler, dpm++2m, ddim)",
                         "sampler");
  }
  if (r.steps < 1 || r.steps > config_.max_steps) {
    return request_error("steps must be between 1 and " + std::to_string(config_.max_steps),
                         "steps");
  }
  Error error;
  ModelLease<ImageModel> model = acquire(r.model, &error);
  if (!model) return error;
  const int default_size = diffusion_model_default_size(model->get());
  if ((error = check_size(r, default_size))) return error;
  const auto gone_or_cancelling = [&] { return (r.client_gone && r.client_gone()) || cancelling_; };
  if ((error = slots_.acquire(deadline, gone_or_cancelling))) return error;
  JobSlotHold slot(slots_);
  const int width = r.width ? r.width : default_size, height = r.height ? r.height : default_size;
  const uint64_t seed = r.seed ? *r.seed : random_seed();
  const auto started = Clock::now();
  for (int i = 0; i < r.n; ++i) {
    GeneratedImage image;
    if ((error = generate_one(*model, r, width, height, seed + i, deadline, &image))) {
      if (error.code == ErrorCode::CANCELLED) {
        ALLM_LOG_INFO("model '%s': generation cancelled (%s)", r.model.c_str(),
                      error.message.c_str());
      }
      return error;
    }
    out->push_back(std::move(image));
  }
  ALLM_LOG_INFO("model '%s': %d image(s) %dx%d, %d steps (%s) in %.2f s", r.model.c_str(), r.n,
                width, height, r.steps, r.sampler.c_str(),
                std::chrono::duration<double>(Clock::now() - started).count());
  return {};
}

std::string ImageManager::store_file(std::string png) {
  std::random_device device;
  char id[33];
  std::snprintf(id, sizeof id, "img_%08x%08x%08x", device(), device(), device());
  std::lock_guard<std::mutex> lock(files_mutex_);
  const auto now = Clock::now();
  for (auto it = files_.begin(); it != files_.end();) {  // forget the expired ones
    it = it->second.first <= now ? files_.erase(it) : std::next(it);
  }
  files_[id] = {now + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(config_.file_ttl_seconds)),
                std::move(png)};
  return id;
}

std::optional<std::string> ImageManager::find_file(const std::string& id) {
  std::lock_guard<std::mutex> lock(files_mutex_);
  auto it = files_.find(id);
  if (it == files_.end() || it->second.first <= Clock::now()) return std::nullopt;
  return it->second.second;
}

}  // namespace allm
