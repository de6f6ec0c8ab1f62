#include "samplers.h"

#include <algorithm>
#include <cmath>

namespace dcpp {

namespace {

constexpr int kTrainSteps = 1000;
constexpr double kBetaStart = 0.00085, kBetaEnd = 0.012;

std::vector<float> with_final_zero(std::vector<float> sigmas) {
  sigmas.push_back(0.0f);
  return sigmas;
}

}  // namespace

NoiseSchedule::NoiseSchedule() {
  double cumprod = 1.0;
  const double lo = std::sqrt(kBetaStart), hi = std::sqrt(kBetaEnd);
  for (int t = 0; t < kTrainSteps; ++t) {
    const double root = lo + (hi - lo) * t / (kTrainSteps - 1);
    cumprod *= 1.0 - root * root;
    sigmas_.push_back(static_cast<float>(std::sqrt((1.0 - cumprod) / cumprod)));
  }
}

float NoiseSchedule::timestep(float sigma) const {
  const double log_sigma = std::log(std::max(sigma, 1e-10f));
  int low = 0;  // the last table entry at or below sigma
  for (int t = 0; t < kTrainSteps; ++t) {
    if (std::log(sigmas_[t]) <= log_sigma) low = t;
  }
  low = std::min(low, kTrainSteps - 2);
  const double l0 = std::log(sigmas_[low]), l1 = std::log(sigmas_[low + 1]);
  const double w = std::clamp((l0 - log_sigma) / (l0 - l1), 0.0, 1.0);
  return static_cast<float>((1.0 - w) * low + w * (low + 1));
}

float NoiseSchedule::sigma_at(float timestep) const {
  const float t = std::clamp(timestep, 0.0f, static_cast<float>(kTrainSteps - 1));
  const int low = static_cast<int>(std::floor(t)), high = static_cast<int>(std::ceil(t));
  const double w = t - low;
  return static_cast<float>(
      std::exp((1.0 - w) * std::log(sigmas_[low]) + w * std::log(sigmas_[high])));
}

std::vector<float> NoiseSchedule::discrete(int steps) const {
  std::vector<float> sigmas;
  for (int i = 0; i < steps; ++i) {
    const double t = steps == 1 ? kTrainSteps - 1
                                : (kTrainSteps - 1) * (1.0 - static_cast<double>(i) / (steps - 1));
    sigmas.push_back(sigma_at(static_cast<float>(t)));
  }
  return with_final_zero(sigmas);
}

std::vector<float> NoiseSchedule::karras(int steps, float rho) const {
  const double min_inv = std::pow(sigmas_.front(), 1.0 / rho);
  const double max_inv = std::pow(sigmas_.back(), 1.0 / rho);
  std::vector<float> sigmas;
  for (int i = 0; i < steps; ++i) {
    const double ramp = steps == 1 ? 0.0 : static_cast<double>(i) / (steps - 1);
    sigmas.push_back(static_cast<float>(std::pow(max_inv + ramp * (min_inv - max_inv), rho)));
  }
  return with_final_zero(sigmas);
}

std::vector<float> NoiseSchedule::ddim(int steps) const {
  const int ratio = std::max(1, kTrainSteps / steps);
  std::vector<float> sigmas;
  for (int i = steps - 1; i >= 0; --i) {
    sigmas.push_back(sigmas_[std::min(kTrainSteps - 1, i * ratio + 1)]);
  }
  return with_final_zero(sigmas);
}

std::vector<float> NoiseSchedule::for_sampler(diffusion_sampler sampler, int steps) const {
  switch (sampler) {
    case DIFFUSION_SAMPLER_DPMPP_2M: return karras(steps);
    case DIFFUSION_SAMPLER_DDIM: return ddim(steps);
    default: return discrete(steps);
  }
}

Scalings scalings(diffusion_prediction prediction, float sigma) {
  const double s2 = double(sigma) * sigma, c_in = 1.0 / std::sqrt(s2 + 1.0);
  if (prediction == DIFFUSION_PREDICTION_V) return {1.0 / (s2 + 1.0), -sigma * c_in, c_in};
  return {1.0, -double(sigma), c_in};
}

void euler_step(Latent& x, const Latent& denoised, float sigma, float sigma_next) {
  for (size_t i = 0; i < x.size(); ++i) {
    const float d = (x[i] - denoised[i]) / sigma;
    x[i] += d * (sigma_next - sigma);
  }
}

void euler_ancestral_step(Latent& x, const Latent& denoised, float sigma, float sigma_next,
                          const Latent& noise) {
  const double s2 = double(sigma) * sigma, n2 = double(sigma_next) * sigma_next;
  const double sigma_up = std::min<double>(sigma_next, std::sqrt(n2 * (s2 - n2) / s2));
  const double sigma_down = std::sqrt(std::max(0.0, n2 - sigma_up * sigma_up));
  for (size_t i = 0; i < x.size(); ++i) {
    const float d = (x[i] - denoised[i]) / sigma;
    x[i] += d * static_cast<float>(sigma_down - sigma);
    if (sigma_next > 0) x[i] += noise[i] * static_cast<float>(sigma_up);
  }
}

void dpmpp_2m_step(Latent& x, const Latent& denoised, const Latent& old_denoised, float sigma_prev,
                   float sigma, float sigma_next) {
  if (sigma_next == 0.0f) {  // the last step lands on the estimate
    x = denoised;
    return;
  }
  const double t = -std::log(sigma), t_next = -std::log(sigma_next);
  const double h = t_next - t;
  const double ratio = sigma_next / double(sigma), coef = -std::expm1(-h);
  if (old_denoised.empty()) {
    for (size_t i = 0; i < x.size(); ++i) x[i] = ratio * x[i] + coef * denoised[i];
    return;
  }
  const double r = (t - (-std::log(sigma_prev))) / h;
  const double a = 1.0 + 1.0 / (2.0 * r), b = 1.0 / (2.0 * r);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = ratio * x[i] + coef * (a * denoised[i] - b * old_denoised[i]);
  }
}

void ddim_step(Latent& x, const Latent& denoised, float sigma, float sigma_next) {
  // alpha_bar of each sigma; the latent here is x_ddpm / sqrt(alpha_bar).
  const double a = 1.0 / (1.0 + double(sigma) * sigma);
  const double a_next = 1.0 / (1.0 + double(sigma_next) * sigma_next);
  for (size_t i = 0; i < x.size(); ++i) {
    const double x_t = x[i] * std::sqrt(a);
    const double x0 = denoised[i];
    const double eps = (x_t - std::sqrt(a) * x0) / std::sqrt(1.0 - a);
    const double x_prev = std::sqrt(a_next) * x0 + std::sqrt(1.0 - a_next) * eps;
    x[i] = static_cast<float>(x_prev / std::sqrt(a_next));
  }
}

bool sample(diffusion_sampler sampler, const std::vector<float>& sigmas, Latent& x, NormalRng& rng,
            const Denoiser& denoise, const StepDone& step_done) {
  Latent denoised, old_denoised;
  const int steps = static_cast<int>(sigmas.size()) - 1;
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i], next = sigmas[i + 1];
    if (!denoise(x, sigma, &denoised)) return false;
    switch (sampler) {
      case DIFFUSION_SAMPLER_EULER_A:
        euler_ancestral_step(x, denoised, sigma, next, next > 0 ? rng.normal(x.size()) : Latent());
        break;
      case DIFFUSION_SAMPLER_EULER: euler_step(x, denoised, sigma, next); break;
      case DIFFUSION_SAMPLER_DPMPP_2M:
        dpmpp_2m_step(x, denoised, old_denoised, i > 0 ? sigmas[i - 1] : 0.0f, sigma, next);
        old_denoised = denoised;
        break;
      case DIFFUSION_SAMPLER_DDIM: ddim_step(x, denoised, sigma, next); break;
    }
    if (step_done && !step_done(i + 1)) return false;
  }
  return true;
}

}  // namespace dcpp
