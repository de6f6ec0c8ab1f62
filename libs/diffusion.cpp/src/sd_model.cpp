#include "sd_model.h"

#include <filesystem>
#include <thread>

#include "safetensors/device.h"
#include "vae_tiles.h"

namespace dcpp {

namespace fs = std::filesystem;

namespace {

// Where the CLIP tokenizer files may lie for a single-file checkpoint.
std::string find_tokenizer_dir(const std::string& path) {
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

// SDXL's UNet takes the pooled text and six size numbers; the refiner five (with the aesthetic
// score); anything else is not a model this library knows.
Failure check_added_conditioning(const Model& m) {
  const bool sdxl = !m.clip2.layers.empty();
  if (!sdxl && m.unet.adm_in == 0) return {};
  if (!sdxl) {
    return fail(DIFFUSION_UNSUPPORTED,
                "the UNet has added conditioning (label_emb) but the checkpoint has no second "
                "text encoder: not SD 1.x/2.x nor SDXL base");
  }
  if (!m.clip2.projection) {
    return fail(DIFFUSION_MODEL_CORRUPT, "SDXL's second text encoder has no text_projection");
  }
  const int64_t sizes = m.unet.adm_in - m.clip2.pooled_dim;
  if (sizes == (kSizeNumbers - 1) * kSizeEmbeddingDim) {
    return fail(DIFFUSION_UNSUPPORTED,
                "an SDXL refiner (added conditioning with the aesthetic score); only SDXL base is "
                "supported");
  }
  if (sizes != kSizeNumbers * kSizeEmbeddingDim) {
    return fail(DIFFUSION_MODEL_CORRUPT,
                "the UNet's added conditioning takes " + std::to_string(m.unet.adm_in) +
                    " values, not SDXL's pooled text (" + std::to_string(m.clip2.pooled_dim) +
                    ") and six size embeddings");
  }
  return {};
}

Failure check_fit(const Model& m) {
  const int64_t text_width = m.clip.hidden + m.clip2.hidden;
  if (text_width != m.unet.context_dim) {
    return fail(DIFFUSION_MODEL_CORRUPT, "the text encoders' width (" + std::to_string(text_width) +
                                             ") is not the UNet's context width (" +
                                             std::to_string(m.unet.context_dim) + ")");
  }
  if (Failure f = check_added_conditioning(m)) return f;
  if ((m.unet.in_channels != m.vae.latent_channels && !m.inpainting()) ||
      m.unet.out_channels != m.vae.latent_channels) {
    return fail(DIFFUSION_MODEL_CORRUPT, "the UNet's and the VAE's latent channels differ");
  }
  if (!m.encoder.levels.empty() && m.encoder.latent_channels != m.vae.latent_channels) {
    return fail(DIFFUSION_MODEL_CORRUPT, "the VAE encoder's and decoder's latent channels differ");
  }
  if (m.tokenizer->max_id() >= m.clip.vocab ||
      (!m.clip2.layers.empty() && m.tokenizer->max_id() >= m.clip2.vocab)) {
    return fail(DIFFUSION_LOAD_FAILED,
                "the tokenizer's vocabulary is larger than the text "
                "encoder's embedding table");
  }
  return {};
}

// Families this library does not run, by the tensor names that mark them.
Failure refuse_other_families(const Weights& w) {
  const std::pair<const char*, const char*> marks[] = {
      {"model.diffusion_model.joint_blocks.", "Stable Diffusion 3 (MMDiT)"},
      {"joint_blocks.", "Stable Diffusion 3 (MMDiT)"},
      {"model.diffusion_model.double_blocks.", "Flux"},
      {"double_blocks.", "Flux"},
      {"conditioner.embedders.0.model.", "an SDXL refiner (OpenCLIP ViT-bigG alone)"}};
  for (const auto& [prefix, family] : marks) {
    if (w.has_prefix(prefix)) {
      return fail(DIFFUSION_UNSUPPORTED, std::string("the checkpoint is ") + family +
                                             "; SD 1.x, SD 2.x and SDXL base are supported");
    }
  }
  return {};
}

void apply_text_config(int heads, int quick_gelu, ClipTextModel* clip) {
  if (heads > 0) clip->heads = heads;
  if (quick_gelu >= 0) clip->quick_gelu = quick_gelu == 1;
}

Failure load_networks(Model& m) {
  Weights& w = m.files.weights;
  const FileConfig& config = m.files.config;
  if (Failure f = refuse_other_families(w)) return f;
  // SDXL: a second text encoder; its VAE overflows F16 activations.
  const bool sdxl = w.has_prefix("cond_stage_model_2.");
  if (sdxl) w.convert_to_f32("first_stage_model.");
  Failure failure;
  if (!load_clip(w, "cond_stage_model", sdxl, &m.clip, &failure)) return failure;
  if (sdxl && !load_clip(w, "cond_stage_model_2", true, &m.clip2, &failure)) return failure;
  if (!load_unet(w, &m.unet, &failure)) return failure;
  if (!load_vae_decoder(w, &m.vae, &failure)) return failure;
  if (!load_vae_encoder(w, &m.encoder, &failure) && failure) return failure;
  if ((failure = w.finish())) return failure;
  apply_text_config(config.clip_heads, config.quick_gelu, &m.clip);
  apply_text_config(config.clip_heads_2, config.quick_gelu_2, &m.clip2);
  if (m.clip.hidden % m.clip.heads != 0 || (sdxl && m.clip2.hidden % m.clip2.heads != 0)) {
    return fail(DIFFUSION_MODEL_CORRUPT, "the text encoder's width is not a multiple of its heads");
  }
  set_attention_heads(&m.unet, config.unet_heads);
  if (sdxl) m.vae.scale_factor = 0.13025f;  // SDXL's VAE, as its sgm config and diffusers say
  if (config.vae_scale > 0) m.vae.scale_factor = config.vae_scale;
  m.vae_factor = 1;
  for (const VaeUpLevel& level : m.vae.levels) {
    if (level.upsample.w) m.vae_factor *= 2;
  }
  m.architecture = sdxl ? "sdxl" : m.clip.quick_gelu ? "sd1" : "sd2";
  m.zeros_for_empty_negative = sdxl && config.zeros_for_empty_prompt != 0;
  return {};
}

// AUTOMATIC1111's and stable-diffusion.cpp's test for SD 2.x single files: at t = 999 on a
// constant latent of 0.5 and a constant context, a v model's output lies far below its input.
Failure probe_v_prediction(Model& m, bool* v) {
  const int side = 8, tokens = 2;
  const std::vector<float> x(static_cast<size_t>(side) * side * m.unet.in_channels, 0.5f);
  std::vector<float> out;
  const std::vector<float> context(static_cast<size_t>(tokens) * m.unet.context_dim, 0.5f);
  if (Failure f = unet_eval(m, x, side, side, 1, {999.0f}, context, tokens, {}, &out)) return f;
  double diff = 0;
  for (size_t i = 0; i < out.size(); ++i) diff += out[i] - x[i];
  *v = diff / static_cast<double>(out.size()) < -1.0;
  return {};
}

Failure choose_prediction(Model& m, diffusion_prediction asked) {
  m.prediction = asked != DIFFUSION_PREDICTION_AUTO ? asked : m.files.config.prediction;
  if (m.prediction == DIFFUSION_PREDICTION_AUTO) {
    bool v = false;
    if (m.architecture == "sd2") {
      if (Failure f = probe_v_prediction(m, &v)) return f;
    }
    m.prediction = v ? DIFFUSION_PREDICTION_V : DIFFUSION_PREDICTION_EPS;
  }
  // The latent side the model was trained at (sample_size), else SD 2.x v models' 768, SDXL's
  // 1024.
  const int sample = m.files.config.sample_size;
  m.default_size = sample > 0                               ? sample * m.vae_factor
                   : m.prediction == DIFFUSION_PREDICTION_V ? 768
                   : m.architecture == "sdxl"               ? 1024
                                                            : 512;
  return {};
}

}  // namespace

Failure load_model(const std::string& path, const diffusion_model_params& params,
                   std::unique_ptr<Model>* out) {
  auto m = std::make_unique<Model>();
  const std::string device = params.device ? params.device : "";
  if (device != "none") {
    std::vector<ggml_backend_dev_t> gpus;
    stcpp::Failure f = stcpp::find_gpus(device, &gpus);
    if (f) return fail(static_cast<diffusion_status>(f.status), f.message);
    if (!gpus.empty()) m->device = gpus.front();  // one model, one device
  }
  if (m->device) m->files.weights.place_on(ggml_backend_dev_buffer_type(m->device));
  if (Failure f = m->executor.start(m->device)) return f;
  const bool diffusers = is_diffusers_folder(path);
  if (Failure f = diffusers ? open_diffusers(path, &m->files) : open_single_file(path, &m->files)) {
    return f;
  }
  if (Failure f = load_networks(*m)) return f;
  const FileConfig& config = m->files.config;
  Failure failure;
  const std::string tokenizer_dir = params.tokenizer_path && *params.tokenizer_path
                                        ? params.tokenizer_path
                                    : diffusers ? config.tokenizer_dir
                                                : find_tokenizer_dir(path);
  m->tokenizer = ClipTokenizer::load(tokenizer_dir, &failure);
  if (!m->tokenizer) return failure;
  if (Failure f = check_fit(*m)) return f;
  // The tokenizer's own pad token where it names one; else OpenAI CLIP pads with the end token,
  // OpenCLIP with id 0.
  const int32_t named_pad = m->tokenizer->id_of(config.pad_token);
  m->pad_token = named_pad >= 0 ? named_pad : m->clip.quick_gelu ? m->tokenizer->end_token() : 0;
  // SDXL's second encoder reads the same vocabulary (tokenizer_2/ is a copy of tokenizer/ but
  // for the pad token: "!", id 0, as open_clip pads).
  const int32_t named_pad_2 = m->tokenizer->id_of(config.pad_token_2);
  m->pad_token_2 = named_pad_2 >= 0 ? named_pad_2 : 0;
  m->threads = params.n_threads > 0
                   ? params.n_threads
                   : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  m->executor.set_threads(m->threads);
  m->vae_tiling = params.vae_tiling;
  if (params.vae_tile_size > 0) m->vae_tile = params.vae_tile_size;
  m->attention = params.attention;
  if (Failure f = choose_prediction(*m, params.prediction)) return f;
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

Failure encode_prompt(Model& m, const std::string& text, int clip_skip, std::vector<float>* context,
                      std::vector<float>* pooled) {
  const int tokens = static_cast<int>(m.clip.context);
  const std::vector<int32_t> ids = m.tokenizer->encode_padded(text, tokens, m.pad_token);
  pooled->clear();
  if (m.clip2.layers.empty()) return encode_text(m, ids, clip_skip, context);
  if (m.clip2.context != tokens) {
    return fail(DIFFUSION_MODEL_CORRUPT, "SDXL's two text encoders have different context lengths");
  }
  // One graph: [context (2048 x 77) | pooled], split here.
  const std::vector<int32_t> ids_2 = m.tokenizer->encode_padded(text, tokens, m.pad_token_2);
  GraphRun run(m.executor);
  ggml_context* ctx = run.ctx();
  ggml_tensor* pooled_t = nullptr;
  ggml_tensor* both = ggml_concat(ctx, build_clip(run, m.clip, ids, clip_skip),
                                  build_clip(run, m.clip2, ids_2, clip_skip, &pooled_t), 0);
  ggml_tensor* out = ggml_concat(ctx, ggml_reshape_1d(ctx, both, ggml_nelements(both)),
                                 ggml_reshape_1d(ctx, pooled_t, ggml_nelements(pooled_t)), 0);
  std::vector<float> values;
  if (Failure f = run.compute(out, &values)) return f;
  const size_t n_context = static_cast<size_t>(ggml_nelements(both));
  context->assign(values.begin(), values.begin() + n_context);
  pooled->assign(values.begin() + n_context, values.end());
  return {};
}

Failure unet_eval(Model& m, const std::vector<float>& x, int w, int h, int n,
                  const std::vector<float>& timesteps, const std::vector<float>& context, int n_ctx,
                  const AddedConditioning& added, std::vector<float>* out) {
  const int64_t c = m.unet.in_channels, d = m.unet.context_dim, p = m.clip2.pooled_dim;
  const bool sdxl = m.unet.adm_in > 0;
  if (sdxl && (added.pooled.size() != static_cast<size_t>(p * n) ||
               added.sizes.size() != static_cast<size_t>(kSizeNumbers * n))) {
    return fail(DIFFUSION_INVALID_ARGUMENT, "SDXL's UNet needs the pooled text and the sizes");
  }
  UnetGraph& g = m.unet_graph;
  if (g.fits(w, h, n, n_ctx) && g.run->laid_out()) {
    g.run->set_input(g.x, x);
    g.run->set_input(g.timesteps, timesteps);
    g.run->set_input(g.context, context);
    if (sdxl) {
      g.run->set_input(g.pooled, added.pooled);
      g.run->set_input(g.sizes, added.sizes);
    }
    return g.run->compute(g.out, out);
  }
  g = UnetGraph{};
  g.run = std::make_unique<GraphRun>(m.executor);
  GraphRun& run = *g.run;
  g.x = run.input_f32(x, w, h, c, n);
  g.timesteps = run.input_f32(timesteps, n);
  g.context = run.input_f32(context, d, n_ctx, n);
  g.pooled = sdxl ? run.input_f32(added.pooled, p, n) : nullptr;
  g.sizes = sdxl ? run.input_f32(added.sizes, kSizeNumbers, n) : nullptr;
  const bool score_matrix = m.attention == DIFFUSION_ATTENTION_SCORE_MATRIX ||
                            (m.attention == DIFFUSION_ATTENTION_AUTO && !m.executor.on_device());
  const AttentionKernel attention =
      score_matrix ? AttentionKernel::score_matrix_when_small : AttentionKernel::flash;
  g.out = build_unet(run.ctx(), m.unet, g.x, g.timesteps, g.context, g.pooled, g.sizes, attention);
  g.w = w;
  g.h = h;
  g.n = n;
  g.n_ctx = n_ctx;
  return run.compute(g.out, out);
}

namespace {

Failure decode_latent(Model& m, const std::vector<float>& latent, int w, int h,
                      std::vector<float>* out) {
  GraphRun run(m.executor);
  ggml_tensor* z = run.input_f32(latent, w, h, m.vae.latent_channels, 1);
  return run.compute(build_vae_decoder(run.ctx(), m.vae, z), out);
}

// Whether decoding a w x h latent at once fits in the memory the model's device has free (the
// graph measured, not run).
bool whole_decode_fits(Model& m, int w, int h) {
  if (!m.device) return true;
  GraphRun run(m.executor);
  ggml_tensor* z = run.input_f32({}, w, h, m.vae.latent_channels, 1);
  return run.fits_on_device(build_vae_decoder(run.ctx(), m.vae, z));
}

}  // namespace

Failure vae_decode(Model& m, const std::vector<float>& latent, int w, int h,
                   std::vector<float>* out) {
  const bool larger_than_tile = w > m.vae_tile || h > m.vae_tile;
  const bool tiled = larger_than_tile &&
                     (m.vae_tiling == DIFFUSION_VAE_TILING_ON ||
                      (m.vae_tiling == DIFFUSION_VAE_TILING_AUTO && !whole_decode_fits(m, w, h)));
  if (!tiled) return decode_latent(m, latent, w, h, out);
  const DecodeLatent decode = [&m](const std::vector<float>& tile, int tw, int th,
                                   std::vector<float>* image) {
    return decode_latent(m, tile, tw, th, image);
  };
  return decode_in_tiles(latent, m.vae.latent_channels, w, h, m.vae_factor, m.vae_tile, decode,
                         out);
}

Failure vae_encode(Model& m, const std::vector<float>& image, int w, int h,
                   std::vector<float>* out) {
  if (m.encoder.levels.empty()) {
    return fail(DIFFUSION_UNSUPPORTED, "the checkpoint has no VAE encoder");
  }
  GraphRun run(m.executor);
  ggml_tensor* x = run.input_f32(image, w * m.vae_factor, h * m.vae_factor, 3, 1);
  ggml_tensor* z = build_vae_encoder(run.ctx(), m.encoder, x);
  return run.compute(ggml_scale(run.ctx(), z, m.vae.scale_factor), out);
}

}  // namespace dcpp
