// Text to image: encode the prompts, sample the latent with classifier-free guidance, decode.
#include <algorithm>
#include <cmath>

#include "sd_model.h"

namespace dcpp {

namespace {

struct Conditioning {
  std::vector<float> context, pooled;
};

// The guided denoiser D(x, sigma) = c_skip * x + c_out * output, the output from one UNet call on
// the batch [prompt, negative prompt] (or the prompt alone without guidance), guided as
// uncond + cfg * (cond - uncond).
class GuidedDenoiser {
 public:
  // `cond`, `uncond`: the prompts' context then (SDXL) pooled text.
  GuidedDenoiser(Model& m, const diffusion_generate_params& p, const Conditioning& cond,
                 const Conditioning& uncond, int w, int h)
      : m_(m), cfg_(p.cfg_scale), w_(w), h_(h) {
    const int n = guided() ? 2 : 1;
    for (const Conditioning* c : {&cond, &uncond}) {
      if (c == &uncond && !guided()) break;
      context_.insert(context_.end(), c->context.begin(), c->context.end());
      added_.pooled.insert(added_.pooled.end(), c->pooled.begin(), c->pooled.end());
    }
    // SDXL's size conditioning as diffusers sets it: original size = target size = the image's,
    // no crop (height before width).
    if (!cond.pooled.empty()) {
      for (int i = 0; i < n; ++i) {
        added_.sizes.insert(added_.sizes.end(),
                            {static_cast<float>(p.height), static_cast<float>(p.width), 0.0f, 0.0f,
                             static_cast<float>(p.height), static_cast<float>(p.width)});
      }
    }
  }
  bool guided() const { return cfg_ > 1.0f; }

  bool operator()(const Latent& x, float sigma, Latent* denoised) {
    const int n = guided() ? 2 : 1;
    const Scalings k = scalings(m_.prediction, sigma);
    const float c_in = static_cast<float>(k.c_in);
    Latent input;
    for (int i = 0; i < n; ++i) {
      for (float v : x) input.push_back(v * c_in);
    }
    const float t = m_.schedule.timestep(sigma);
    std::vector<float> out;
    failure = unet_eval(m_, input, w_, h_, n, std::vector<float>(n, t), context_,
                        static_cast<int>(m_.clip.context), added_, &out);
    if (failure) return false;
    denoised->resize(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const float e = guided() ? out[x.size() + i] + cfg_ * (out[i] - out[x.size() + i]) : out[i];
      (*denoised)[i] = static_cast<float>(k.c_skip * x[i] + k.c_out * e);
    }
    return true;
  }

  Failure failure;

 private:
  Model& m_;
  float cfg_;
  int w_, h_;
  std::vector<float> context_;
  AddedConditioning added_;
};

void to_rgb(const std::vector<float>& image, int w, int h, uint8_t* rgb) {
  const size_t plane = static_cast<size_t>(w) * h;
  for (size_t p = 0; p < plane; ++p) {
    for (int c = 0; c < 3; ++c) {
      const float v = std::clamp((image[c * plane + p] + 1.0f) * 0.5f, 0.0f, 1.0f);
      rgb[p * 3 + c] = static_cast<uint8_t>(std::lround(v * 255.0f));
    }
  }
}

Failure encode(Model& m, const char* text, int clip_skip, Conditioning* out) {
  return encode_prompt(m, text ? text : "", clip_skip, &out->context, &out->pooled);
}

// The negative prompt's conditioning: zeros for an empty one where the model asks for them
// (SDXL base, as diffusers' force_zeros_for_empty_prompt).
Failure encode_negative(Model& m, const diffusion_generate_params& p, const Conditioning& cond,
                        Conditioning* out) {
  if (m.zeros_for_empty_negative && (!p.negative_prompt || !*p.negative_prompt)) {
    out->context.assign(cond.context.size(), 0.0f);
    out->pooled.assign(cond.pooled.size(), 0.0f);
    return {};
  }
  return encode(m, p.negative_prompt, p.clip_skip, out);
}

Failure check_params(const Model& m, const diffusion_generate_params& p) {
  if (!p.prompt) return fail(DIFFUSION_INVALID_ARGUMENT, "prompt is missing");
  if (p.width <= 0 || p.height <= 0 || p.width % m.vae_factor || p.height % m.vae_factor) {
    return fail(DIFFUSION_INVALID_ARGUMENT,
                "width and height must be positive multiples of " + std::to_string(m.vae_factor));
  }
  if (p.steps < 1 || p.steps > 1000) {
    return fail(DIFFUSION_INVALID_ARGUMENT, "steps must be between 1 and 1000");
  }
  if (p.sampler < DIFFUSION_SAMPLER_EULER_A || p.sampler > DIFFUSION_SAMPLER_DDIM) {
    return fail(DIFFUSION_INVALID_ARGUMENT, "unknown sampler");
  }
  return {};
}

}  // namespace

Failure generate(Model& m, const diffusion_generate_params& p, uint8_t* rgb) {
  if (Failure f = check_params(m, p)) return f;
  std::lock_guard<std::mutex> lock(m.mutex);
  m.executor.set_threads(p.n_threads > 0 ? p.n_threads : m.threads);
  m.executor.set_abort(p.should_abort
                           ? std::function<bool()>([&p] { return p.should_abort(p.user_data); })
                           : std::function<bool()>());
  Conditioning cond, uncond;
  if (Failure f = encode(m, p.prompt, p.clip_skip, &cond)) return f;
  if (p.cfg_scale > 1.0f) {
    if (Failure f = encode_negative(m, p, cond, &uncond)) return f;
  }
  const int w = p.width / m.vae_factor, h = p.height / m.vae_factor;
  NormalRng rng(p.seed);
  Latent x = rng.normal(static_cast<size_t>(w) * h * m.unet.in_channels);
  GuidedDenoiser denoiser(m, p, cond, uncond, w, h);
  const std::vector<float> sigmas = m.schedule.for_sampler(p.sampler, p.steps);
  bool cancelled = false;
  const bool done = sample(
      p.sampler, sigmas, x, rng,
      [&](const Latent& in, float sigma, Latent* out) { return denoiser(in, sigma, out); },
      [&](int step) {
        if (p.progress && !p.progress(step, p.steps, p.user_data)) cancelled = true;
        return !cancelled;
      });
  if (!done) {
    if (denoiser.failure) return denoiser.failure;
    return fail(DIFFUSION_CANCELLED, "cancelled");
  }
  for (float& v : x) v /= m.vae.scale_factor;
  std::vector<float> image;
  if (Failure f = vae_decode(m, x, w, h, &image)) return f;
  to_rgb(image, p.width, p.height, rgb);
  return {};
}

}  // namespace dcpp
