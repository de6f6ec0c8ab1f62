#include "model.h"

#include <filesystem>
#include <thread>

namespace dcpp {

namespace fs = std::filesystem;

namespace {

// Where the CLIP tokenizer files may lie for a single-file checkpoint.
std::string find_tokenizer_dir(const std::string& path, const char* configured) {
  if (configured && *configured) return configured;
  const fs::path dir = fs::path(path).parent_path();
  const fs::path stem_dir = dir / (fs::path(path).stem().string() + ".tokenizer");
  for (const fs::path& candidate : {stem_dir, dir / "tokenizer", dir}) {
    std::error_code ec;
    if (fs::exists(candidate / "vocab.json", ec) && fs::exists(candidate / "merges.txt", ec)) {
      return candidate.string();
    }
  }
  return (dir / "tokenizer").string();  // named in the failure message
}

Failure check_fit(const Model& m) {
  if (m.clip.hidden != m.unet.context_dim) {
    return fail(DIFFUSION_MODEL_CORRUPT, "the text encoder's width (" +
                                             std::to_string(m.clip.hidden) +
                                             ") is not the UNet's context width (" +
                                             std::to_string(m.unet.context_dim) + ")");
  }
  if (m.unet.in_channels != m.vae.latent_channels || m.unet.out_channels != m.vae.latent_channels) {
    return fail(DIFFUSION_MODEL_CORRUPT, "the UNet's and the VAE's latent channels differ");
  }
  if (m.tokenizer->max_id() >= m.clip.vocab) {
    return fail(DIFFUSION_LOAD_FAILED,
                "the tokenizer's vocabulary is larger than the text "
                "encoder's embedding table");
  }
  return {};
}

Failure load_networks(Model& m) {
  m.weights = std::make_unique<Weights>(*m.checkpoint);
  Failure failure;
  if (!load_clip(*m.weights, &m.clip, &failure)) return failure;
  if (!load_unet(*m.weights, &m.unet, &failure)) return failure;
  if (!load_vae_decoder(*m.weights, &m.vae, &failure)) return failure;
  if ((failure = m.weights->finish())) return failure;
  m.vae_factor = 1;
  for (const VaeUpLevel& level : m.vae.levels) {
    if (level.upsample.w) m.vae_factor *= 2;
  }
  m.architecture = m.clip.quick_gelu ? "sd1" : "sd2";
  return {};
}

}  // namespace

Failure load_model(const std::string& path, const diffusion_model_params& params,
                   std::unique_ptr<Model>* out) {
  auto m = std::make_unique<Model>();
  stcpp::Failure read_failure;
  m->checkpoint = stcpp::Checkpoint::open(path, &read_failure);
  if (!m->checkpoint) {
    return fail(static_cast<diffusion_status>(read_failure.status), read_failure.message);
  }
  if (Failure f = load_networks(*m)) return f;
  Failure failure;
  m->tokenizer = ClipTokenizer::load(find_tokenizer_dir(path, params.tokenizer_path), &failure);
  if (!m->tokenizer) return failure;
  if (Failure f = check_fit(*m)) return f;
  // OpenAI CLIP pads with the end token, OpenCLIP with id 0.
  m->pad_token = m->clip.quick_gelu ? m->tokenizer->end_token() : 0;
  m->threads = params.n_threads > 0
                   ? params.n_threads
                   : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  m->executor.set_threads(m->threads);
  *out = std::move(m);
  return {};
}

Failure encode_text(Model& m, const std::vector<int32_t>& ids, int clip_skip,
                    std::vector<float>* out) {
  if (ids.empty() || static_cast<int64_t>(ids.size()) > m.clip.context) {
    return fail(DIFFUSION_INVALID_ARGUMENT,
                "between 1 and " + std::to_string(m.clip.context) + " tokens are needed");
  }
  for (int32_t id : ids) {
    if (id < 0 || id >= m.clip.vocab) {
      return fail(DIFFUSION_INVALID_ARGUMENT,
                  "token id " + std::to_string(id) + " is out of range");
    }
  }
  GraphRun run(m.executor);
  return run.compute(build_clip(run, m.clip, ids, clip_skip), out);
}

Failure unet_eval(Model& m, const std::vector<float>& x, int w, int h, int n,
                  const std::vector<float>& timesteps, const std::vector<float>& context, int n_ctx,
                  std::vector<float>* out) {
  const int64_t c = m.unet.in_channels, d = m.unet.context_dim;
  GraphRun run(m.executor);
  ggml_tensor* xt = run.input_f32(x, w, h, c, n);
  ggml_tensor* tt = run.input_f32(timesteps, n);
  ggml_tensor* ct = run.input_f32(context, d, n_ctx, n);
  return run.compute(build_unet(run.ctx(), m.unet, xt, tt, ct), out);
}

Failure vae_decode(Model& m, const std::vector<float>& latent, int w, int h,
                   std::vector<float>* out) {
  GraphRun run(m.executor);
  ggml_tensor* z = run.input_f32(latent, w, h, m.vae.latent_channels, 1);
  return run.compute(build_vae_decoder(run.ctx(), m.vae, z), out);
}

}  // namespace dcpp
