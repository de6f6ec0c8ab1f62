#include "layout.h"

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "nlohmann/json.hpp"

namespace dcpp {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Failure open_checkpoint(const std::string& path, ModelFiles* files) {
  stcpp::Failure f;
  auto checkpoint = stcpp::Checkpoint::open(path, &f);
  if (!checkpoint) return fail(static_cast<diffusion_status>(f.status), f.message);
  files->checkpoints.push_back(std::move(checkpoint));
  return {};
}

// A component folder's config.json (an object; empty when absent or unreadable).
json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return json::object();
  json j = json::parse(in, nullptr, false);
  return j.is_object() ? j : json::object();
}

// The component's weights file: diffusers' name, transformers' name, then their fp16 variants.
std::string weights_file(const fs::path& dir) {
  for (const char* name : {"diffusion_pytorch_model.safetensors", "model.safetensors",
                           "diffusion_pytorch_model.fp16.safetensors", "model.fp16.safetensors"}) {
    std::error_code ec;
    if (fs::exists(dir / name, ec)) return (dir / name).string();
  }
  return "";
}

// Integers of a number or a list of numbers.
std::vector<int> ints(const json& j) {
  std::vector<int> out;
  if (j.is_number_integer()) out.push_back(j.get<int>());
  if (j.is_array()) {
    for (const json& v : j) {
      if (v.is_number_integer()) out.push_back(v.get<int>());
    }
  }
  return out;
}

// UNet heads: diffusers' attention_head_dim is (by a historical misnomer) the number of heads
// per down block level; num_attention_heads, where present, says the same under its right name.
void read_unet_config(const json& c, FileConfig* config) {
  std::vector<int> heads = ints(c.value("num_attention_heads", json()));
  if (heads.empty()) heads = ints(c.value("attention_head_dim", json()));
  const std::vector<int> channels = ints(c.value("block_out_channels", json()));
  for (size_t i = 0; i < channels.size() && !heads.empty(); ++i) {
    config->unet_heads[channels[i]] = heads[std::min(i, heads.size() - 1)];
  }
  const std::vector<int> size = ints(c.value("sample_size", json()));
  if (!size.empty()) config->sample_size = size[0];
}

void read_scheduler_config(const json& c, FileConfig* config) {
  const std::string type = c.value("prediction_type", std::string());
  if (type == "v_prediction") config->prediction = DIFFUSION_PREDICTION_V;
  if (type == "epsilon") config->prediction = DIFFUSION_PREDICTION_EPS;
}

std::string pad_token(const fs::path& tokenizer) {
  for (const char* file : {"special_tokens_map.json", "tokenizer_config.json"}) {
    const json j = read_json(tokenizer / file);
    const json pad = j.value("pad_token", json());
    if (pad.is_string()) return pad.get<std::string>();
    if (pad.is_object() && pad.value("content", json()).is_string()) return pad["content"];
  }
  return "";
}

// A text encoder's config.json: its heads and activation (left as they are when absent).
Failure read_text_config(const fs::path& root, const std::string& part, int* heads,
                         int* quick_gelu) {
  const json text = read_json(root / part / "config.json");
  if (text.empty()) return {};
  if (text.value("num_attention_heads", json()).is_number_integer()) {
    *heads = text["num_attention_heads"].get<int>();
  }
  const std::string act = text.value("hidden_act", std::string("quick_gelu"));
  if (act != "quick_gelu" && act != "gelu") {
    return fail(DIFFUSION_UNSUPPORTED, part + "/config.json: hidden_act '" + act +
                                           "' (quick_gelu and gelu are supported)");
  }
  *quick_gelu = act == "quick_gelu" ? 1 : 0;
  return {};
}

}  // namespace

bool is_diffusers_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / "model_index.json", ec);
}

Failure open_single_file(const std::string& path, ModelFiles* files) {
  if (Failure f = open_checkpoint(path, files)) return f;
  files->weights.add(*files->checkpoints.back(), single_file_name);
  std::ifstream yaml(fs::path(path).replace_extension(".yaml"));
  if (yaml) {
    std::stringstream text;
    text << yaml.rdbuf();
    static const std::regex v("parameterization:\\s*[\"']?v[\"']?\\s*(\n|$)");
    if (std::regex_search(text.str(), v)) files->config.prediction = DIFFUSION_PREDICTION_V;
  }
  return {};
}

Failure open_diffusers(const std::string& dir, ModelFiles* files) {
  const fs::path root(dir);
  // Pipelines this library does not run lack parts it needs: say what they are instead.
  const json index = read_json(root / "model_index.json");
  if (index.value("requires_aesthetics_score", false)) {
    return fail(DIFFUSION_UNSUPPORTED,
                "the diffusers folder " + dir +
                    " is an SDXL refiner (requires_aesthetics_score); only SDXL base is supported");
  }
  if (index.contains("transformer") && !index.contains("unet")) {  // SD 3, Flux, PixArt, ...
    return fail(DIFFUSION_UNSUPPORTED,
                "the diffusers folder " + dir + " is a " +
                    index.value("_class_name", std::string("pipeline")) +
                    " (a transformer denoiser, not a UNet); SD 1.x, SD 2.x and SDXL base are "
                    "supported");
  }
  for (const char* part : {"unet", "vae", "text_encoder"}) {
    if (weights_file(root / part).empty()) {
      return fail(DIFFUSION_LOAD_FAILED,
                  "the diffusers folder " + dir + " has no " + part +
                      "/diffusion_pytorch_model.safetensors (or model.safetensors); only "
                      "safetensors weights are read");
    }
  }
  // UNet: resnets per down block, and which up blocks have attentions.
  if (Failure f = open_checkpoint(weights_file(root / "unet"), files)) return f;
  const stcpp::Checkpoint& unet = *files->checkpoints.back();
  int layers = 0;
  while (unet.find("down_blocks.0.resnets." + std::to_string(layers) + ".conv1.weight")) ++layers;
  std::vector<bool> up_attention;
  for (int i = 0; unet.find("up_blocks." + std::to_string(i) + ".resnets.0.conv1.weight"); ++i) {
    up_attention.push_back(
        unet.find("up_blocks." + std::to_string(i) + ".attentions.0.proj_in.weight") != nullptr);
  }
  files->weights.add(unet,
                     [&](const std::string& n) { return unet_name(n, layers, up_attention); });
  // VAE: diffusers numbers the decoder's up blocks from the deepest.
  if (Failure f = open_checkpoint(weights_file(root / "vae"), files)) return f;
  const stcpp::Checkpoint& vae = *files->checkpoints.back();
  int up_blocks = 0;
  while (vae.find("decoder.up_blocks." + std::to_string(up_blocks) + ".resnets.0.conv1.weight")) {
    ++up_blocks;
  }
  files->weights.add(vae, [&](const std::string& n) { return vae_name(n, up_blocks); });
  if (Failure f = open_checkpoint(weights_file(root / "text_encoder"), files)) return f;
  files->weights.add(*files->checkpoints.back(),
                     [](const std::string& n) { return text_encoder_name(n, "cond_stage_model"); });
  if (!weights_file(root / "text_encoder_2").empty()) {  // SDXL
    if (Failure f = open_checkpoint(weights_file(root / "text_encoder_2"), files)) return f;
    files->weights.add(*files->checkpoints.back(), [](const std::string& n) {
      return text_encoder_name(n, "cond_stage_model_2");
    });
  }

  FileConfig& config = files->config;
  read_unet_config(read_json(root / "unet" / "config.json"), &config);
  const json vae_config = read_json(root / "vae" / "config.json");
  if (vae_config.value("scaling_factor", json()).is_number()) {
    config.vae_scale = vae_config["scaling_factor"].get<float>();
  }
  if (Failure f = read_text_config(root, "text_encoder", &config.clip_heads, &config.quick_gelu)) {
    return f;
  }
  if (Failure f =
          read_text_config(root, "text_encoder_2", &config.clip_heads_2, &config.quick_gelu_2)) {
    return f;
  }
  read_scheduler_config(read_json(root / "scheduler" / "scheduler_config.json"), &config);
  config.tokenizer_dir = (root / "tokenizer").string();
  config.pad_token = pad_token(root / "tokenizer");
  config.pad_token_2 = pad_token(root / "tokenizer_2");
  if (index.value("force_zeros_for_empty_prompt", json()).is_boolean()) {
    config.zeros_for_empty_prompt = index["force_zeros_for_empty_prompt"].get<bool>() ? 1 : 0;
  }
  return {};
}

}  // namespace dcpp
