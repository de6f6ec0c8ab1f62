// The files of a random Stable Diffusion model: the CLIP tokenizer, the weights (one
// safetensors file, or one per diffusers component), the diffusers configs.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include "demo/tiny_sd.h"
#include "ggml.h"
#include "nlohmann/json.hpp"

namespace allm {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// --- the tokenizer: CLIP's byte alphabet, each byte also as a word end, a few merges.

std::string utf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// In CLIP's vocab.json order: the printable bytes as themselves ("!" is id 0), then the others
// as 256, 257, ...
std::vector<std::string> byte_alphabet() {
  std::vector<std::string> out;
  for (int b = 0; b < 256; ++b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) out.push_back(utf8(b));
  }
  for (int next = 256; out.size() < 256; ++next) out.push_back(utf8(next));
  return out;
}

const std::vector<std::pair<std::string, std::string>> kMerges = {
    {"t", "h"}, {"th", "e</w>"}, {"a", "n"}, {"an", "d</w>"}, {"c", "a"},       {"ca", "t</w>"},
    {"d", "o"}, {"do", "g</w>"}, {"r", "e"}, {"e", "d</w>"},  {"o", "f</w>"},   {"i", "n"},
    {"s", "t"}, {"p", "h"},      {"o", "t"}, {"ph", "ot"},    {"phot", "o</w>"}};

// --- the weights

int64_t elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool reduced(const SdTensor& t, SdWeightType type) {
  return type != SdWeightType::F32 && t.shape.size() >= 2 && t.init != SdInit::EMBEDDING &&
         t.init != SdInit::POSITION_IDS;
}

std::vector<float> random_values(const SdTensor& t, std::mt19937_64& rng) {
  std::vector<float> v(elements(t.shape));
  if (t.init == SdInit::POSITION_IDS) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
    return v;
  }
  const int64_t fan_in = t.shape.size() >= 2 ? elements(t.shape) / t.shape[0] : 1;
  const double bound = t.init == SdInit::WEIGHT      ? std::sqrt(3.0 / fan_in)
                       : t.init == SdInit::EMBEDDING ? 0.5
                                                     : 0.1;
  std::uniform_real_distribution<double> u(-bound, bound);
  for (float& x : v) x = static_cast<float>(u(rng) + (t.init == SdInit::NORM ? 1.0 : 0.0));
  return v;
}

// One stored tensor: a name, a shape and a slice of a plan tensor's values.
struct Piece {
  size_t tensor, file;
  std::string name;
  std::vector<int64_t> shape;
  int64_t first, count;  // elements
  const char* dtype;
  size_t bytes;
};

std::vector<Piece> pieces(const std::vector<SdTensor>& plan, const TinySdSpec& s) {
  std::vector<Piece> out;
  const bool diffusers = s.layout == SdLayout::DIFFUSERS;
  for (size_t i = 0; i < plan.size(); ++i) {
    const SdTensor& t = plan[i];
    const char* dtype = t.init == SdInit::POSITION_IDS   ? "I64"
                        : !reduced(t, s.weights)         ? "F32"
                        : s.weights == SdWeightType::F16 ? "F16"
                                                         : "BF16";
    if (!diffusers) {
      out.push_back({i, 0, t.name, t.shape, 0, elements(t.shape), dtype, 0});
      continue;
    }
    const size_t n = t.hf.size();
    for (size_t k = 0; k < n; ++k) {
      std::vector<int64_t> shape = t.hf_shape.empty() ? t.shape : t.hf_shape;
      shape[0] /= static_cast<int64_t>(n);
      const int64_t count = elements(shape);
      out.push_back({i, static_cast<size_t>(t.part), t.hf[k], shape,
                     static_cast<int64_t>(k) * count, count, dtype, 0});
    }
  }
  for (Piece& p : out) p.bytes = p.count * (p.dtype[0] == 'I' ? 8 : p.dtype[1] == '3' ? 4 : 2);
  return out;
}

std::string header(const std::vector<Piece>& all, size_t file) {
  ordered_json h = ordered_json::object();
  size_t offset = 0;
  for (const Piece& p : all) {
    if (p.file != file) continue;
    h[p.name] = {
        {"dtype", p.dtype}, {"shape", p.shape}, {"data_offsets", {offset, offset + p.bytes}}};
    offset += p.bytes;
  }
  std::string text = h.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

// A row-major [rows, cols] matrix's values as [cols, rows].
std::vector<float> transposed(const std::vector<float>& v, const std::vector<int64_t>& shape) {
  const int64_t rows = shape[0], cols = shape[1];
  std::vector<float> out(v.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = v[r * cols + c];
  }
  return out;
}

bool write_bytes(FILE* f, const void* data, size_t n) {
  return std::fwrite(data, 1, n, f) == n;
}

bool write_values(FILE* f, const float* v, const Piece& p) {
  if (p.dtype[0] == 'I') {
    const std::vector<int64_t> ids(v, v + p.count);
    return write_bytes(f, ids.data(), ids.size() * 8);
  }
  if (p.dtype[1] == '3') return write_bytes(f, v, p.count * 4);
  if (p.dtype[0] == 'F') {
    std::vector<ggml_fp16_t> half(p.count);
    ggml_fp32_to_fp16_row(v, half.data(), p.count);
    return write_bytes(f, half.data(), half.size() * 2);
  }
  std::vector<ggml_bf16_t> half(p.count);
  ggml_fp32_to_bf16_row_ref(v, half.data(), p.count);  // round to nearest even
  return write_bytes(f, half.data(), half.size() * 2);
}

bool write_json(const fs::path& path, const ordered_json& j, std::string* error) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path);
  out << j.dump(2) << '\n';
  if (!out) *error = "cannot write " + path.string();
  return static_cast<bool>(out);
}

}  // namespace

bool write_sd_tokenizer(const std::string& dir, bool pad_with_0, int* vocab_size,
                        std::string* error) {
  ordered_json vocab = ordered_json::object();
  const std::vector<std::string> alphabet = byte_alphabet();
  for (const std::string& c : alphabet) vocab[c] = static_cast<int>(vocab.size());
  for (const std::string& c : alphabet) vocab[c + "</w>"] = static_cast<int>(vocab.size());
  std::ofstream merges(fs::path(dir) / "merges.txt");
  merges << "#version: 0.2\n";
  for (const auto& [a, b] : kMerges) {
    merges << a << ' ' << b << '\n';
    if (!vocab.contains(a + b)) vocab[a + b] = static_cast<int>(vocab.size());
  }
  vocab["<|startoftext|>"] = static_cast<int>(vocab.size());
  vocab["<|endoftext|>"] = static_cast<int>(vocab.size());
  std::ofstream vocab_file(fs::path(dir) / "vocab.json");
  vocab_file << vocab.dump();
  *vocab_size = static_cast<int>(vocab.size());
  // OpenAI CLIP (SD 1.x) pads with the end token; SD 2.x's tokenizer and SDXL's tokenizer_2 with
  // "!" (id 0).
  const ordered_json special = {{"bos_token", "<|startoftext|>"},
                                {"eos_token", "<|endoftext|>"},
                                {"unk_token", "<|endoftext|>"},
                                {"pad_token", pad_with_0 ? "!" : "<|endoftext|>"}};
  std::ofstream special_file(fs::path(dir) / "special_tokens_map.json");
  special_file << special.dump(2);
  if (!merges || !vocab_file || !special_file) {
    *error = "cannot write the tokenizer files in " + dir;
    return false;
  }
  return true;
}

bool write_sd_weights(const std::string& dir, const std::vector<SdTensor>& plan,
                      const TinySdSpec& s, std::string* error) {
  const std::vector<Piece> all = pieces(plan, s);
  const bool diffusers = s.layout == SdLayout::DIFFUSERS;
  const fs::path root(dir);
  // Indexed by SdPart.
  std::vector<fs::path> paths =
      diffusers ? std::vector<fs::path>{root / "unet" / "diffusion_pytorch_model.safetensors",
                                        root / "vae" / "diffusion_pytorch_model.safetensors",
                                        root / "text_encoder" / "model.safetensors"}
                : std::vector<fs::path>{root / "model.safetensors"};
  if (diffusers && s.sdxl) paths.push_back(root / "text_encoder_2" / "model.safetensors");
  std::vector<std::unique_ptr<FILE, int (*)(FILE*)>> files;
  bool ok = true;
  for (size_t i = 0; i < paths.size(); ++i) {
    std::error_code ec;
    fs::create_directories(paths[i].parent_path(), ec);
    files.emplace_back(std::fopen(paths[i].c_str(), "wb"), &std::fclose);
    if (!files.back()) {
      *error = "cannot create " + paths[i].string();
      return false;
    }
    const std::string text = header(all, i);
    const uint64_t length = text.size();
    ok = ok && write_bytes(files[i].get(), &length, 8) &&
         write_bytes(files[i].get(), text.data(), text.size());
  }
  std::mt19937_64 rng(s.seed);
  size_t next = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    std::vector<float> values = random_values(plan[i], rng);  // drawn in either layout
    if (diffusers && plan[i].hf_transposed) values = transposed(values, plan[i].shape);
    for (; next < all.size() && all[next].tensor == i; ++next) {
      const Piece& p = all[next];
      ok = ok && write_values(files[p.file].get(), values.data() + p.first, p);
    }
  }
  if (!ok) *error = "cannot write the weights in " + dir;
  return ok;
}

bool write_sd_configs(const std::string& dir, const TinySdSpec& s, int vocab, std::string* error) {
  const fs::path root(dir);
  if (s.layout == SdLayout::SINGLE_FILE) {
    if (!s.v_prediction) return true;
    std::ofstream yaml(root / "model.yaml");  // the part of v2-inference-v.yaml that matters
    yaml << "model:\n  target: ldm.models.diffusion.ddpm.LatentDiffusion\n  params:\n"
            "    parameterization: \"v\"\n";
    if (!yaml) *error = "cannot write " + (root / "model.yaml").string();
    return static_cast<bool>(yaml);
  }
  std::vector<int> channels, heads, vae_channels;
  const bool linear_proj = s.sd2 || s.sdxl;
  for (int m : s.channel_mult) {
    channels.push_back(s.model_channels * m);
    heads.push_back(linear_proj ? std::max(1, s.model_channels * m / 64) : 8);
  }
  for (int m : s.vae_mult) vae_channels.push_back(s.vae_channels * m);
  const int latent_side = s.sdxl ? 128 : s.v_prediction ? 96 : 64;
  ordered_json index = {{"_class_name", "StableDiffusionPipeline"},
                        {"_diffusers_version", "0.30.0"},
                        {"scheduler", {"diffusers", "PNDMScheduler"}},
                        {"text_encoder", {"transformers", "CLIPTextModel"}},
                        {"tokenizer", {"transformers", "CLIPTokenizer"}},
                        {"unet", {"diffusers", "UNet2DConditionModel"}},
                        {"vae", {"diffusers", "AutoencoderKL"}}};
  ordered_json unet = {{"_class_name", "UNet2DConditionModel"},
                       {"sample_size", latent_side},
                       {"in_channels", s.inpainting ? 9 : 4},
                       {"out_channels", 4},
                       {"block_out_channels", channels},
                       {"layers_per_block", s.res_blocks},
                       {"attention_head_dim", linear_proj ? json(heads) : json(8)},
                       {"cross_attention_dim", s.clip_hidden + (s.sdxl ? s.clip2_hidden : 0)},
                       {"use_linear_projection", linear_proj}};
  const ordered_json vae = {
      {"_class_name", "AutoencoderKL"}, {"block_out_channels", vae_channels},
      {"latent_channels", 4},           {"layers_per_block", s.vae_res_blocks},
      {"sample_size", latent_side * 8}, {"scaling_factor", s.sdxl ? 0.13025 : 0.18215}};
  const ordered_json text = {{"architectures", {"CLIPTextModel"}},
                             {"model_type", "clip_text_model"},
                             {"hidden_act", s.sd2 ? "gelu" : "quick_gelu"},
                             {"hidden_size", s.clip_hidden},
                             {"intermediate_size", s.clip_ff},
                             {"num_attention_heads", std::max(1, s.clip_hidden / 64)},
                             {"num_hidden_layers", s.sd2 ? s.clip_layers - 1 : s.clip_layers},
                             {"max_position_embeddings", 77},
                             {"layer_norm_eps", 1e-5},
                             {"vocab_size", vocab}};
  if (s.sdxl) {
    index["_class_name"] = "StableDiffusionXLPipeline";
    index["force_zeros_for_empty_prompt"] = true;
    index["text_encoder_2"] = {"transformers", "CLIPTextModelWithProjection"};
    index["tokenizer_2"] = {"transformers", "CLIPTokenizer"};
    unet["addition_embed_type"] = "text_time";
    unet["addition_time_embed_dim"] = 256;
    unet["projection_class_embeddings_input_dim"] = s.clip2_projection + 6 * 256;
    unet["transformer_layers_per_block"] = s.transformer_depth;
    const ordered_json text_2 = {{"architectures", {"CLIPTextModelWithProjection"}},
                                 {"model_type", "clip_text_model"},
                                 {"hidden_act", "gelu"},
                                 {"hidden_size", s.clip2_hidden},
                                 {"intermediate_size", s.clip2_ff},
                                 {"num_attention_heads", std::max(1, s.clip2_hidden / 64)},
                                 {"num_hidden_layers", s.clip2_layers},
                                 {"projection_dim", s.clip2_projection},
                                 {"max_position_embeddings", 77},
                                 {"layer_norm_eps", 1e-5},
                                 {"vocab_size", vocab}};
    if (!write_json(root / "text_encoder_2" / "config.json", text_2, error)) return false;
  }
  const ordered_json scheduler = {{"_class_name", "PNDMScheduler"},
                                  {"beta_start", 0.00085},
                                  {"beta_end", 0.012},
                                  {"beta_schedule", "scaled_linear"},
                                  {"num_train_timesteps", 1000},
                                  {"prediction_type", s.v_prediction ? "v_prediction" : "epsilon"},
                                  {"set_alpha_to_one", false},
                                  {"skip_prk_steps", true},
                                  {"steps_offset", 1}};
  return write_json(root / "model_index.json", index, error) &&
         write_json(root / "unet" / "config.json", unet, error) &&
         write_json(root / "vae" / "config.json", vae, error) &&
         write_json(root / "text_encoder" / "config.json", text, error) &&
         write_json(root / "scheduler" / "scheduler_config.json", scheduler, error);
}

}  // namespace allm
