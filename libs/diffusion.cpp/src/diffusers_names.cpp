// diffusers' tensor names onto the single-file (CompVis / LDM) names, as diffusers' own
// conversion scripts pair them: UNet down_blocks.i.resnets.j -> input_blocks.(L+1)i+j+1.0,
// attentions -> .1, downsamplers -> input_blocks.(L+1)(i+1).0.op, mid_block -> middle_block.0-2,
// up_blocks.i (L+1 resnets) -> output_blocks.(L+1)i+j; the VAE's up blocks in reverse order.
#include <cstdlib>

#include "layout.h"

namespace dcpp {

namespace {

std::vector<std::string> split(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1) {
    parts.push_back(name.substr(start, dot - start));
  }
  parts.push_back(name.substr(start));
  return parts;
}

// parts[from..] joined with dots.
std::string rest(const std::vector<std::string>& parts, size_t from) {
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) out += (out.empty() ? "" : ".") + parts[i];
  return out;
}

bool number(const std::string& s, int* out) {
  if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  *out = std::atoi(s.c_str());
  return true;
}

// `rest` (a layer's own names) with its first component renamed by `pairs` {diffusers, ldm}.
std::string rename_first(const std::string& r,
                         std::initializer_list<std::pair<const char*, const char*>> pairs) {
  for (const auto& [from, to] : pairs) {
    const std::string f = std::string(from) + ".";
    if (r.compare(0, f.size(), f) == 0) return std::string(to) + "." + r.substr(f.size());
  }
  return r;
}

std::string unet_resnet(const std::string& r) {
  return rename_first(r, {{"norm1", "in_layers.0"},
                          {"conv1", "in_layers.2"},
                          {"time_emb_proj", "emb_layers.1"},
                          {"norm2", "out_layers.0"},
                          {"conv2", "out_layers.3"},
                          {"conv_shortcut", "skip_connection"}});
}

std::string vae_resnet(const std::string& r) {
  return rename_first(r, {{"conv_shortcut", "nin_shortcut"}});
}

// Old (query/key/value/proj_attn) and new (to_q/to_k/to_v/to_out.0) attention names.
std::string vae_attention(const std::string& r) {
  return rename_first(r, {{"group_norm", "norm"},
                          {"query", "q"},
                          {"to_q", "q"},
                          {"key", "k"},
                          {"to_k", "k"},
                          {"value", "v"},
                          {"to_v", "v"},
                          {"proj_attn", "proj_out"},
                          {"to_out.0", "proj_out"}});
}

}  // namespace

std::string unet_name(const std::string& name, int layers_per_block,
                      const std::vector<bool>& up_attention) {
  const std::string p = "model.diffusion_model.";
  const auto parts = split(name);
  const int per = layers_per_block + 1;  // LDM blocks per level
  int i = 0, j = 0;
  if (parts.size() < 2) return "";
  if (parts[0] == "add_embedding") {  // SDXL's added conditioning
    if (parts[1] == "linear_1") return p + "label_emb.0.0." + rest(parts, 2);
    if (parts[1] == "linear_2") return p + "label_emb.0.2." + rest(parts, 2);
    return "";
  }
  if (parts[0] == "time_embedding") {
    if (parts[1] == "linear_1") return p + "time_embed.0." + rest(parts, 2);
    if (parts[1] == "linear_2") return p + "time_embed.2." + rest(parts, 2);
    return "";
  }
  if (parts[0] == "conv_in") return p + "input_blocks.0.0." + rest(parts, 1);
  if (parts[0] == "conv_norm_out") return p + "out.0." + rest(parts, 1);
  if (parts[0] == "conv_out") return p + "out.2." + rest(parts, 1);
  if (parts.size() < 4) return "";
  if (parts[0] == "mid_block" && number(parts[2], &j)) {
    if (parts[1] == "resnets")
      return p + "middle_block." + std::to_string(2 * j) + "." + unet_resnet(rest(parts, 3));
    if (parts[1] == "attentions") return p + "middle_block.1." + rest(parts, 3);
    return "";
  }
  if (parts.size() < 5 || !number(parts[1], &i) || !number(parts[3], &j)) return "";
  const std::string r = rest(parts, 4);
  if (parts[0] == "down_blocks") {
    const std::string block = p + "input_blocks." + std::to_string(per * i + j + 1);
    if (parts[2] == "resnets") return block + ".0." + unet_resnet(r);
    if (parts[2] == "attentions") return block + ".1." + r;
    if (parts[2] == "downsamplers" && parts[4] == "conv") {
      return p + "input_blocks." + std::to_string(per * (i + 1)) + ".0.op." + rest(parts, 5);
    }
  } else if (parts[0] == "up_blocks") {
    const std::string block = p + "output_blocks." + std::to_string(per * i + j);
    if (parts[2] == "resnets") return block + ".0." + unet_resnet(r);
    if (parts[2] == "attentions") return block + ".1." + r;
    if (parts[2] == "upsamplers") {
      const bool attention = i < static_cast<int>(up_attention.size()) && up_attention[i];
      return p + "output_blocks." + std::to_string(per * i + layers_per_block) +
             (attention ? ".2." : ".1.") + r;
    }
  }
  return "";
}

std::string vae_name(const std::string& name, int up_blocks) {
  const std::string p = "first_stage_model.";
  const auto parts = split(name);
  if (parts.size() < 2) return "";
  if (parts[0] == "quant_conv" || parts[0] == "post_quant_conv") return p + name;
  if (parts[0] != "encoder" && parts[0] != "decoder") return "";
  const std::string coder = p + parts[0] + ".";
  if (parts[1] == "conv_in" || parts[1] == "conv_out") return coder + rest(parts, 1);
  if (parts[1] == "conv_norm_out") return coder + "norm_out." + rest(parts, 2);
  int i = 0, j = 0;
  if (parts[1] == "mid_block") {
    if (parts.size() < 5 || !number(parts[3], &j)) return "";
    if (parts[2] == "resnets") {
      return coder + "mid.block_" + std::to_string(j + 1) + "." + vae_resnet(rest(parts, 4));
    }
    if (parts[2] == "attentions") return coder + "mid.attn_1." + vae_attention(rest(parts, 4));
    return "";
  }
  if (parts.size() < 6 || !number(parts[2], &i) || !number(parts[4], &j)) return "";
  const std::string r = rest(parts, 5);
  if (parts[1] == "down_blocks") {
    const std::string level = coder + "down." + std::to_string(i) + ".";
    if (parts[3] == "resnets") return level + "block." + parts[4] + "." + vae_resnet(r);
    if (parts[3] == "downsamplers") return level + "downsample." + r;
  } else if (parts[1] == "up_blocks") {
    const std::string level = coder + "up." + std::to_string(up_blocks - 1 - i) + ".";
    if (parts[3] == "resnets") return level + "block." + parts[4] + "." + vae_resnet(r);
    if (parts[3] == "upsamplers") return level + "upsample." + r;
  }
  return "";
}

std::string text_encoder_name(const std::string& name, const std::string& prefix) {
  // CLIPTextModelWithProjection's projection (SDXL's second encoder).
  if (name == "text_projection.weight") return prefix + ".transformer." + name;
  // transformers 4 saves CLIPTextModel under text_model.*, transformers 5 without it.
  const std::string stripped = name.rfind("text_model.", 0) == 0 ? name.substr(11) : name;
  if (stripped.rfind("embeddings.", 0) != 0 && stripped.rfind("encoder.", 0) != 0 &&
      stripped.rfind("final_layer_norm.", 0) != 0) {
    return "";
  }
  return prefix + ".transformer.text_model." + stripped;
}

std::string single_file_name(const std::string& name) {
  for (const auto& [from, to] :
       {std::pair<std::string, std::string>{"conditioner.embedders.0.transformer.",
                                            "cond_stage_model.transformer."},
        {"conditioner.embedders.1.model.", "cond_stage_model_2.model."}}) {
    if (name.compare(0, from.size(), from) == 0) return to + name.substr(from.size());
  }
  return name;
}

}  // namespace dcpp
