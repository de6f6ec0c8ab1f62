// Noise schedules and samplers, in k-diffusion's formulation: the latent is x = x0 + sigma * eps
// and a denoiser D(x, sigma) estimates x0. The DDPM training schedule is SD's "scaled_linear"
// (beta from 0.00085 to 0.012 over 1000 steps).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "diffusion.h"
#include "rng.h"

namespace dcpp {

using Latent = std::vector<float>;

class NoiseSchedule {
 public:
  NoiseSchedule();
  const std::vector<float>& train_sigmas() const { return sigmas_; }  // index = timestep
  // The (fractional) timestep of a sigma, interpolating log sigma in the table.
  float timestep(float sigma) const;
  float sigma_at(float timestep) const;

  // `steps` sigmas from high to low plus a final 0.
  std::vector<float> discrete(int steps) const;  // timesteps evenly spaced from 999 to 0
  std::vector<float> karras(int steps, float rho = 7.0f) const;
  // DDIM's "leading" timesteps (as SD's scheduler config: steps_offset 1), ending at 0.
  std::vector<float> ddim(int steps) const;
  std::vector<float> for_sampler(diffusion_sampler sampler, int steps) const;

 private:
  std::vector<float> sigmas_;
};

// k-diffusion's scalings for a UNet that predicts the noise (eps) or v (Salimans & Ho, 2022), with
// sigma_data = 1: the UNet sees c_in * x; the denoised estimate is c_skip * x + c_out * output.
// eps: c_skip = 1, c_out = -sigma. v: c_skip = 1 / (sigma^2 + 1), c_out = -sigma / sqrt(sigma^2 +
// 1). Both: c_in = 1 / sqrt(sigma^2 + 1).
struct Scalings {
  double c_skip, c_out, c_in;
};
Scalings scalings(diffusion_prediction prediction, float sigma);

// The model: x0 estimated from x at sigma. Returns false to stop (cancelled or failed).
using Denoiser = std::function<bool(const Latent& x, float sigma, Latent* denoised)>;
// Called after each step with the step just done (1-based).
using StepDone = std::function<bool(int step)>;

// The update of one step from x at sigmas[i] to sigmas[i+1], given the denoised estimate
// (exposed one by one so tests can check them against their formulas).
void euler_step(Latent& x, const Latent& denoised, float sigma, float sigma_next);
void euler_ancestral_step(Latent& x, const Latent& denoised, float sigma, float sigma_next,
                          const Latent& noise);
// old_denoised: the previous step's estimate, empty on the first step; sigma_prev its sigma.
void dpmpp_2m_step(Latent& x, const Latent& denoised, const Latent& old_denoised, float sigma_prev,
                   float sigma, float sigma_next);
// DDIM with eta = 0 (deterministic), written with the schedule's alphas.
void ddim_step(Latent& x, const Latent& denoised, float sigma, float sigma_next);

// Runs the sampling loop from x at noise level sigmas[0] (text to image: noise * sigmas[0]).
// False when stopped.
bool sample(diffusion_sampler sampler, const std::vector<float>& sigmas, Latent& x, NormalRng& rng,
            const Denoiser& denoise, const StepDone& step_done);

}  // namespace dcpp
