// Text to image and image to image: encode the prompts, sample the latent with classifier-free
// guidance (from noise, or from an image's noised latent, kept wherever a mask keeps it), decode.
#include <algorithm>
#include <cmath>

#include "sd_model.h"

namespace dcpp {

namespace {

struct Conditioning {
  std::vector<float> context, pooled;
};

// What an image to image generation adds, in latent space ([C, H, W]; masks [H, W]).
struct EditLatents {
  Latent image;                  // the starting image's scaled latent; empty: text to image
  std::vector<float> keep_mask;  // 1 = keep the image's latent, 0 = repaint; empty: repaint all
  // An inpainting UNet's extra input: the mask (1 = repaint) and the latent of the image with
  // the repainted part gray.
  std::vector<float> unet_mask;
  Latent masked_image;

  void keep_unmasked(Latent* x) const {
    if (keep_mask.empty()) return;
    const size_t plane = keep_mask.size();
    for (size_t i = 0; i < x->size(); ++i) {
      if (keep_mask[i % plane] != 0.0f) (*x)[i] = image[i];
    }
  }
};

// The guided denoiser D(x, sigma) = c_skip * x + c_out * output, the output from one UNet call on
// the batch [prompt, negative prompt] (or the prompt alone without guidance), guided as
// uncond + cfg * (cond - uncond).
class GuidedDenoiser {
 public:
  // `cond`, `uncond`: the prompts' context then (SDXL) pooled text.
  GuidedDenoiser(Model& m, const diffusion_generate_params& p, const Conditioning& cond,
                 const Conditioning& uncond, const EditLatents& edit, int w, int h)
      : m_(m), edit_(edit), cfg_(p.cfg_scale), w_(w), h_(h) {
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
      if (m_.inpainting()) {
        input.insert(input.end(), edit_.unet_mask.begin(), edit_.unet_mask.end());
        input.insert(input.end(), edit_.masked_image.begin(), edit_.masked_image.end());
      }
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
    edit_.keep_unmasked(denoised);
    return true;
  }

  Failure failure;

 private:
  Model& m_;
  const EditLatents& edit_;
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

// RGB bytes -> [3, H, W] in [-1, 1]; `repaint` (may be null) pixels gray (0).
std::vector<float> to_planes(const uint8_t* rgb, const uint8_t* repaint, int w, int h) {
  const size_t plane = static_cast<size_t>(w) * h;
  std::vector<float> out(3 * plane, 0.0f);
  for (size_t p = 0; p < plane; ++p) {
    if (repaint && repaint[p]) continue;
    for (int c = 0; c < 3; ++c) out[c * plane + p] = rgb[p * 3 + c] / 127.5f - 1.0f;
  }
  return out;
}

// The pixel mask at latent resolution: 1 where a latent pixel keeps the image (none of its
// factor x factor image pixels is repainted), else 0.
std::vector<float> latent_keep_mask(const uint8_t* repaint, int w, int h, int factor) {
  const int lw = w / factor, lh = h / factor;
  std::vector<float> keep(static_cast<size_t>(lw) * lh, 1.0f);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      if (repaint[static_cast<size_t>(y) * w + x]) keep[(y / factor) * lw + x / factor] = 0.0f;
    }
  }
  return keep;
}

Failure prepare_edit(Model& m, const diffusion_generate_params& p, EditLatents* e) {
  if (!p.init_image && !m.inpainting()) return {};
  if (m.encoder.levels.empty()) {
    return fail(DIFFUSION_UNSUPPORTED, "the checkpoint has no VAE encoder (image to image)");
  }
  const int w = p.width / m.vae_factor, h = p.height / m.vae_factor;
  if (p.init_image) {
    const std::vector<float> image = to_planes(p.init_image, nullptr, p.width, p.height);
    if (Failure f = vae_encode(m, image, w, h, &e->image)) return f;
    if (p.mask) e->keep_mask = latent_keep_mask(p.mask, p.width, p.height, m.vae_factor);
  }
  if (!m.inpainting()) return {};
  // Without an image (text to image) or a mask, everything is repainted over a gray image.
  const bool masked = p.init_image && p.mask;
  e->unet_mask.assign(static_cast<size_t>(w) * h, 1.0f);
  if (masked) {
    for (size_t i = 0; i < e->unet_mask.size(); ++i) e->unet_mask[i] = 1.0f - e->keep_mask[i];
  }
  const std::vector<float> masked_image =
      masked ? to_planes(p.init_image, p.mask, p.width, p.height)
             : std::vector<float>(3 * static_cast<size_t>(p.width) * p.height, 0.0f);
  return vae_encode(m, masked_image, w, h, &e->masked_image);
}

// The sigmas that run: all of them, or for image to image the last floor(steps * strength)
// (diffusers' rule), ending at 0.
std::vector<float> sigmas_to_run(const Model& m, const diffusion_generate_params& p) {
  std::vector<float> sigmas = m.schedule.for_sampler(p.sampler, p.steps);
  if (!p.init_image) return sigmas;
  const int run = std::min(static_cast<int>(static_cast<double>(p.strength) * p.steps), p.steps);
  sigmas.erase(sigmas.begin(), sigmas.begin() + (p.steps - run));
  return sigmas;
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
  if (p.init_image && !(p.strength >= 0.0f && p.strength <= 1.0f)) {
    return fail(DIFFUSION_INVALID_ARGUMENT, "strength must be between 0 and 1");
  }
  if (p.mask && !p.init_image) {
    return fail(DIFFUSION_INVALID_ARGUMENT, "a mask needs an image to edit");
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
  EditLatents edit;
  if (Failure f = prepare_edit(m, p, &edit)) return f;
  const int w = p.width / m.vae_factor, h = p.height / m.vae_factor;
  const std::vector<float> sigmas = sigmas_to_run(m, p);
  NormalRng rng(p.seed);
  Latent x = rng.normal(static_cast<size_t>(w) * h * m.vae.latent_channels);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = x[i] * sigmas[0] + (edit.image.empty() ? 0.0f : edit.image[i]);
  }
  GuidedDenoiser denoiser(m, p, cond, uncond, edit, w, h);
  const int steps = static_cast<int>(sigmas.size()) - 1;
  bool cancelled = false;
  const bool done = sample(
      p.sampler, sigmas, x, rng,
      [&](const Latent& in, float sigma, Latent* out) { return denoiser(in, sigma, out); },
      [&](int step) {
        if (p.progress && !p.progress(step, steps, p.user_data)) cancelled = true;
        return !cancelled;
      });
  if (!done) {
    if (denoiser.failure) return denoiser.failure;
    return fail(DIFFUSION_CANCELLED, "cancelled");
  }
  edit.keep_unmasked(&x);  // exact, whatever the sampler's last step computed
  for (float& v : x) v /= m.vae.scale_factor;
  std::vector<float> image;
  if (Failure f = vae_decode(m, x, w, h, &image)) return f;
  to_rgb(image, p.width, p.height, rgb);
  return {};
}

}  // namespace dcpp
