// The C API: opaque handles over dcpp::Model.
#include <cstdlib>
#include <cstring>

#include "png.h"
#include "sd_model.h"

struct diffusion_model {
  std::unique_ptr<dcpp::Model> impl;
};

namespace {

void write_message(const std::string& text, char* message, size_t size) {
  if (!message || size == 0) return;
  const size_t n = std::min(text.size(), size - 1);
  std::memcpy(message, text.data(), n);
  message[n] = '\0';
}

diffusion_status report(const dcpp::Failure& failure, char* message, size_t size) {
  write_message(failure.message, message, size);
  return failure.status;
}

const char* const kSamplerNames[] = {"euler_a", "euler", "dpm++2m", "ddim"};

}  // namespace

extern "C" {

diffusion_model_params diffusion_model_default_params(void) {
  diffusion_model_params p{};
  p.n_threads = 0;
  p.tokenizer_path = nullptr;
  p.prediction = DIFFUSION_PREDICTION_AUTO;
  p.device = nullptr;
  p.vae_tiling = DIFFUSION_VAE_TILING_AUTO;
  p.vae_tile_size = 0;
  p.attention = DIFFUSION_ATTENTION_AUTO;
  return p;
}

diffusion_generate_params diffusion_generate_default_params(void) {
  diffusion_generate_params p{};
  p.prompt = "";
  p.negative_prompt = "";
  p.width = p.height = 512;
  p.steps = 20;
  p.cfg_scale = 7.0f;
  p.seed = 42;
  p.sampler = DIFFUSION_SAMPLER_EULER_A;
  p.strength = 0.8f;  // diffusers' image-to-image default
  return p;
}

diffusion_model* diffusion_model_load(const char* path, diffusion_model_params params,
                                      diffusion_status* status, char* message,
                                      size_t message_size) {
  std::unique_ptr<dcpp::Model> impl;
  dcpp::Failure failure = dcpp::load_model(path ? path : "", params, &impl);
  if (status) *status = failure.status;
  if (failure) {
    report(failure, message, message_size);
    return nullptr;
  }
  return new diffusion_model{std::move(impl)};
}

void diffusion_model_free(diffusion_model* model) {
  delete model;
}

const char* diffusion_model_architecture(const diffusion_model* model) {
  return model->impl->architecture.c_str();
}

const char* diffusion_model_device(const diffusion_model* model) {
  return model->impl->device ? ggml_backend_dev_name(model->impl->device) : "CPU";
}

int32_t diffusion_model_default_size(const diffusion_model* model) {
  return model->impl->default_size;
}

size_t diffusion_model_size_bytes(const diffusion_model* model) {
  return model->impl->files.weights.bytes();
}

bool diffusion_model_is_inpainting(const diffusion_model* model) {
  return model->impl->inpainting();
}

bool diffusion_model_can_encode(const diffusion_model* model) {
  return !model->impl->encoder.levels.empty();
}

diffusion_prediction diffusion_model_prediction(const diffusion_model* model) {
  return model->impl->prediction;
}

const char* diffusion_sampler_name(diffusion_sampler sampler) {
  const int i = static_cast<int>(sampler);
  return i >= 0 && i < 4 ? kSamplerNames[i] : "unknown";
}

bool diffusion_sampler_from_name(const char* name, diffusion_sampler* sampler) {
  for (int i = 0; i < 4; ++i) {
    if (name && std::strcmp(name, kSamplerNames[i]) == 0) {
      *sampler = static_cast<diffusion_sampler>(i);
      return true;
    }
  }
  return false;
}

diffusion_status diffusion_generate(diffusion_model* model, const diffusion_generate_params* params,
                                    uint8_t* rgb, char* message, size_t message_size) {
  return report(dcpp::generate(*model->impl, *params, rgb), message, message_size);
}

uint8_t* diffusion_png_encode(const uint8_t* rgb, int32_t width, int32_t height, size_t* size) {
  const std::string png = dcpp::encode_png(rgb, width, height);
  if (png.empty()) return nullptr;
  auto* out = static_cast<uint8_t*>(std::malloc(png.size()));
  if (!out) return nullptr;
  std::memcpy(out, png.data(), png.size());
  *size = png.size();
  return out;
}

void diffusion_free(void* buffer) {
  std::free(buffer);
}

int32_t diffusion_tokenize(const diffusion_model* model, const char* text, int32_t* tokens,
                           int32_t max_tokens) {
  const dcpp::Model& m = *model->impl;
  const std::vector<int32_t> ids =
      m.tokenizer->encode_padded(text ? text : "", static_cast<int>(m.clip.context), m.pad_token);
  const int32_t n = static_cast<int32_t>(ids.size());
  if (n > max_tokens) return -n;
  std::copy(ids.begin(), ids.end(), tokens);
  return n;
}

int32_t diffusion_text_context_length(const diffusion_model* model) {
  return static_cast<int32_t>(model->impl->clip.context);
}

int32_t diffusion_text_embedding_dim(const diffusion_model* model) {
  return static_cast<int32_t>(model->impl->unet.context_dim);
}

int32_t diffusion_text_pooled_dim(const diffusion_model* model) {
  return static_cast<int32_t>(model->impl->clip2.pooled_dim);
}

int32_t diffusion_latent_channels(const diffusion_model* model) {
  return static_cast<int32_t>(model->impl->vae.latent_channels);
}

float diffusion_vae_scale_factor(const diffusion_model* model) {
  return model->impl->vae.scale_factor;
}

diffusion_status diffusion_encode_tokens(diffusion_model* model, const int32_t* tokens,
                                         int32_t n_tokens, int32_t clip_skip, float* out) {
  dcpp::Model& m = *model->impl;
  if (!m.clip2.layers.empty()) return DIFFUSION_UNSUPPORTED;
  std::lock_guard<std::mutex> lock(m.mutex);
  std::vector<float> result;
  dcpp::Failure f =
      dcpp::encode_text(m, std::vector<int32_t>(tokens, tokens + n_tokens), clip_skip, &result);
  if (!f) std::copy(result.begin(), result.end(), out);
  return f.status;
}

diffusion_status diffusion_encode_prompt(diffusion_model* model, const char* text,
                                         int32_t clip_skip, float* context, float* pooled) {
  dcpp::Model& m = *model->impl;
  std::lock_guard<std::mutex> lock(m.mutex);
  std::vector<float> c, p;
  dcpp::Failure f = dcpp::encode_prompt(m, text ? text : "", clip_skip, &c, &p);
  if (f) return f.status;
  std::copy(c.begin(), c.end(), context);
  if (pooled) std::copy(p.begin(), p.end(), pooled);
  return DIFFUSION_OK;
}

diffusion_status diffusion_unet_eval(diffusion_model* model, const float* x, int32_t latent_w,
                                     int32_t latent_h, float timestep, const float* context,
                                     int32_t n_ctx, float* out) {
  return diffusion_unet_eval_sdxl(model, x, latent_w, latent_h, timestep, context, n_ctx, nullptr,
                                  nullptr, out);
}

diffusion_status diffusion_unet_eval_sdxl(diffusion_model* model, const float* x, int32_t latent_w,
                                          int32_t latent_h, float timestep, const float* context,
                                          int32_t n_ctx, const float* pooled, const float sizes[6],
                                          float* out) {
  dcpp::Model& m = *model->impl;
  std::lock_guard<std::mutex> lock(m.mutex);
  const size_t nx = static_cast<size_t>(latent_w) * latent_h * m.unet.in_channels;
  const size_t nc = static_cast<size_t>(n_ctx) * m.unet.context_dim;
  dcpp::AddedConditioning added;
  if (pooled && sizes) {
    added.pooled.assign(pooled, pooled + m.clip2.pooled_dim);
    added.sizes.assign(sizes, sizes + dcpp::kSizeNumbers);
  }
  std::vector<float> result;
  dcpp::Failure f =
      dcpp::unet_eval(m, std::vector<float>(x, x + nx), latent_w, latent_h, 1, {timestep},
                      std::vector<float>(context, context + nc), n_ctx, added, &result);
  if (!f) std::copy(result.begin(), result.end(), out);
  return f.status;
}

diffusion_status diffusion_vae_decode(diffusion_model* model, const float* latent, int32_t latent_w,
                                      int32_t latent_h, float* out) {
  dcpp::Model& m = *model->impl;
  std::lock_guard<std::mutex> lock(m.mutex);
  const size_t n = static_cast<size_t>(latent_w) * latent_h * m.vae.latent_channels;
  std::vector<float> result;
  dcpp::Failure f =
      dcpp::vae_decode(m, std::vector<float>(latent, latent + n), latent_w, latent_h, &result);
  if (!f) std::copy(result.begin(), result.end(), out);
  return f.status;
}

diffusion_status diffusion_vae_encode(diffusion_model* model, const float* image, int32_t latent_w,
                                      int32_t latent_h, float* out) {
  dcpp::Model& m = *model->impl;
  std::lock_guard<std::mutex> lock(m.mutex);
  const size_t n = static_cast<size_t>(latent_w) * latent_h * 3 * m.vae_factor * m.vae_factor;
  std::vector<float> result;
  dcpp::Failure f =
      dcpp::vae_encode(m, std::vector<float>(image, image + n), latent_w, latent_h, &result);
  if (!f) std::copy(result.begin(), result.end(), out);
  return f.status;
}

}  // extern "C"
