#include "core/image_manager.h"

#include <functional>
#include <random>

#include "base/log.h"
#include "base/rpc_workers.h"
#include "core/cpu_threads.h"
#include "image/diffusion_memory.h"

namespace allm {

namespace {

uint64_t random_seed() {
  std::random_device device;
  return (uint64_t(device()) << 32 | device()) & ((uint64_t(1) << 53) - 1);  // exact in JSON
}

// An edit needs a model that can encode the image, and an image (and mask) at the request's size.
Error check_edit(const DiffusionModel& model, const ImageRequest& r, int width, int height) {
  if (r.init_rgb.empty()) return {};
  if (!model.can_encode()) {
    return unsupported_error("model '" + r.model +
                                 "' has no VAE encoder, so it cannot edit images (its checkpoint "
                                 "holds only the decoder)",
                             "image");
  }
  const size_t pixels = static_cast<size_t>(width) * height;
  if (r.init_rgb.size() != pixels * 3 || (!r.mask.empty() && r.mask.size() != pixels)) {
    return make_error(ErrorCode::INTERNAL, "the image to edit is not at the requested size");
  }
  return {};
}

}  // namespace

ImageManager::ImageManager(ModelRegistry& registry, ModelLifecycle& lifecycle,
                           ImageManagerConfig config)
    : config_(config),
      models_(registry, lifecycle, Modality::IMAGE,
              [this](const ModelEntry& entry) { return loader_for(entry); }),
      slots_(config.parallel, config.queue,
             {"image generations", "--image-parallel, --image-queue",
              std::to_string(config.timeout_seconds) + " s, --image-timeout"}),
      files_(config.file_ttl_seconds) {}

ImageManager::~ImageManager() = default;

ModelLoader<DiffusionModel> ImageManager::loader_for(const ModelEntry& entry) {
  return {[this, entry](MemoryEstimate* estimate) {
            *estimate =
                estimate_diffusion_model(entry.path, config_.max_side, config_.device != "none");
            return Error{};
          },
          [this, entry](Error* load_error, uint64_t*) -> std::shared_ptr<DiffusionModel> {
            const auto started = Clock::now();
            ALLM_LOG_INFO("loading image model '%s' from %s", entry.id.c_str(), entry.path.c_str());
            Error error = config_.device == "none" ? Error{} : check_rpc_workers();
            std::shared_ptr<DiffusionModel> model =
                error ? nullptr
                      : DiffusionModel::load(entry.path.string(),
                                             threads_per_job(config_.threads, config_.parallel),
                                             config_.device, config_.vae_tiling, &error);
            if (!model) {
              ALLM_LOG_ERROR("image model '%s' failed to load: %s", entry.id.c_str(),
                             error.message.c_str());
              *load_error = make_error(error.code, "model '" + entry.id + "': " + error.message);
              return nullptr;
            }
            ALLM_LOG_INFO("image model '%s' (%s) loaded in %.2f s, on %s, VAE tiling %s",
                          entry.id.c_str(), model->architecture(),
                          std::chrono::duration<double>(Clock::now() - started).count(),
                          model->device(), vae_tiling_name(config_.vae_tiling));
            return model;
          },
          [](const DiffusionModel& model) { return model.healthy(); }};
}

Error ImageManager::check_size(int w, int h) const {
  if (w % 8 || h % 8 || w < config_.min_side || h < config_.min_side || w > config_.max_side ||
      h > config_.max_side) {
    return request_error("size must be WIDTHxHEIGHT with both sides multiples of 8 between " +
                             std::to_string(config_.min_side) + " and " +
                             std::to_string(config_.max_side) + " (--image-max-size)",
                         "size");
  }
  return {};
}

Error ImageManager::generate_one(DiffusionModel& model, const ImageRequest& r, int width,
                                 int height, uint64_t seed, Clock::time_point deadline,
                                 GeneratedImage* out) {
  ImageJob job;
  job.prompt = r.prompt;
  job.negative_prompt = r.negative_prompt;
  job.width = width;
  job.height = height;
  job.steps = r.steps;
  job.cfg_scale = r.cfg_scale;
  job.seed = seed;
  job.sampler = r.sampler;
  job.threads = threads_per_job(config_.threads, config_.parallel);
  if (!r.init_rgb.empty()) {
    job.init_rgb = &r.init_rgb;
    job.strength = r.strength;
    if (!r.mask.empty()) job.mask = &r.mask;
  }
  JobStopCheck should_stop(deadline, r.client_gone, cancelling_);
  const auto on_step = [&](int step, int steps) {
    ALLM_LOG_INFO("model '%s': step %d/%d", r.model.c_str(), step, steps);
  };
  const Error error = model.generate(job, std::ref(should_stop), on_step, &out->png);
  if (should_stop.timed_out()) {
    return make_error(ErrorCode::TIMEOUT, "the generation ran past the time limit (" +
                                              std::to_string(config_.timeout_seconds) +
                                              " s, --image-timeout)");
  }
  if (error.code == ErrorCode::CANCELLED) {
    return make_error(ErrorCode::CANCELLED,
                      cancelling_ ? "the server is shutting down" : "the client disconnected");
  }
  if (error) return error;
  out->seed = seed;
  return {};
}

Error ImageManager::generate(const ImageRequest& r, std::vector<GeneratedImage>* out) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(config_.timeout_seconds));
  if (!known_sampler(r.sampler)) {
    return request_error("unknown sampler '" + r.sampler + "' (" + sampler_names() + ")",
                         "sampler");
  }
  if (r.steps < 1 || r.steps > config_.max_steps) {
    return request_error("steps must be between 1 and " + std::to_string(config_.max_steps),
                         "steps");
  }
  Error error;
  ModelLease<DiffusionModel> model = models_.acquire(r.model, &error);
  if (!model) return error;
  const int default_size = model->default_size();
  const int width = r.width ? r.width : default_size, height = r.height ? r.height : default_size;
  if ((error = check_size(width, height)) || (error = check_edit(*model, r, width, height)))
    return error;
  const auto gone_or_cancelling = [&] { return (r.client_gone && r.client_gone()) || cancelling_; };
  if ((error = slots_.acquire(deadline, gone_or_cancelling))) return error;
  JobSlotHold slot(slots_);
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

}  // namespace allm
