// diffusion.cpp's model files: diffusers folders against single files with the same random
// weights (same images, byte for byte), diffusers' tensor names against the pairs diffusers'
// own conversion scripts list, F16 and BF16 weights against F32, and the text encoder against
// outputs computed by Hugging Face transformers (tests/hf_reference/data/clip-*).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "demo/tiny_sd.h"
#include "diffusion.h"
#include "diffusion_test_support.h"
#include "layout.h"
#include "nlohmann/json.hpp"
#include "safetensors/checkpoint.h"

namespace {

namespace fs = std::filesystem;
using allm::testing::ModelPtr;

std::string temp_dir(const std::string& name) {
  return allm::testing::sd_temp_dir(name);
}

// Loads a single file or a diffusers folder; on failure null, with *status and *message set.
ModelPtr open(const std::string& path, diffusion_prediction prediction = DIFFUSION_PREDICTION_AUTO,
              diffusion_status* status = nullptr, std::string* message = nullptr) {
  diffusion_model_params params = diffusion_model_default_params();
  params.prediction = prediction;
  char text[512] = "";
  diffusion_status s;
  ModelPtr m(diffusion_model_load(path.c_str(), params, &s, text, sizeof text),
             diffusion_model_free);
  if (status) *status = s;
  if (message) *message = text;
  if (!status) EXPECT_NE(m, nullptr) << text;
  return m;
}

// Writes the model and loads it.
ModelPtr load(const std::string& dir, const allm::TinySdSpec& spec,
              diffusion_prediction prediction = DIFFUSION_PREDICTION_AUTO) {
  std::string error;
  EXPECT_TRUE(allm::write_tiny_sd(dir, spec, &error)) << error;
  return open(spec.layout == allm::SdLayout::DIFFUSERS ? dir : dir + "/model.safetensors",
              prediction);
}

std::vector<uint8_t> generate(diffusion_model* m, diffusion_sampler sampler, uint64_t seed) {
  diffusion_generate_params p = diffusion_generate_default_params();
  p.prompt = "a photo of the cat";
  p.negative_prompt = "dog";
  p.width = 32;
  p.height = 24;
  p.steps = 3;
  p.seed = seed;
  p.sampler = sampler;
  return allm::testing::generate_rgb(m, p);
}

// max |a - b| / max(1, max |b|)
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return diff / scale;
}

// The three networks on fixed inputs: text (the model's own clip skip: a single SD 2.x file's
// penultimate layer is the diffusers text encoder's last), one UNet call, the VAE decode.
struct Outputs {
  std::vector<float> text, unet, vae;
};

Outputs components(diffusion_model* m) {
  Outputs o;
  const int ctx = diffusion_text_context_length(m), dim = diffusion_text_embedding_dim(m);
  std::vector<int32_t> tokens(ctx);
  EXPECT_EQ(diffusion_tokenize(m, "the cat and the dog", tokens.data(), ctx), ctx);
  o.text.resize(static_cast<size_t>(ctx) * dim);
  EXPECT_EQ(diffusion_encode_tokens(m, tokens.data(), ctx, 0, o.text.data()), DIFFUSION_OK);
  const int w = 8, h = 6, c = diffusion_latent_channels(m);
  std::vector<float> x(static_cast<size_t>(c) * w * h);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * i);
  o.unet.resize(x.size());
  EXPECT_EQ(diffusion_unet_eval(m, x.data(), w, h, 500.0f, o.text.data(), ctx, o.unet.data()),
            DIFFUSION_OK);
  o.vae.resize(static_cast<size_t>(3) * 64 * w * h);
  EXPECT_EQ(diffusion_vae_decode(m, x.data(), w, h, o.vae.data()), DIFFUSION_OK);
  return o;
}

class Layouts : public ::testing::TestWithParam<bool> {};  // SD 2.x?

TEST_P(Layouts, DiffusersFolderGivesTheSingleFilesImages) {
  allm::TinySdSpec spec = GetParam() ? allm::tiny_sd2() : allm::TinySdSpec{};
  spec.v_prediction = GetParam();  // SD 2.x as 768-v: scheduler_config.json / model.yaml
  // SD 1.x as SD 1.5: no attention at the deepest level, so diffusers' up_blocks.0 has none and
  // its upsampler is the second layer of its LDM block, not the third.
  if (!GetParam()) spec.attention = {true, false};
  const std::string single_dir = temp_dir("single"), diffusers_dir = temp_dir("diffusers");
  ModelPtr single = load(single_dir, spec);
  spec.layout = allm::SdLayout::DIFFUSERS;
  ModelPtr diffusers = load(diffusers_dir, spec);
  ASSERT_TRUE(single && diffusers);
  const char* arch = GetParam() ? "sd2" : "sd1";
  EXPECT_STREQ(diffusion_model_architecture(single.get()), arch);
  EXPECT_STREQ(diffusion_model_architecture(diffusers.get()), arch);
  const diffusion_prediction want = GetParam() ? DIFFUSION_PREDICTION_V : DIFFUSION_PREDICTION_EPS;
  EXPECT_EQ(diffusion_model_prediction(single.get()), want);
  EXPECT_EQ(diffusion_model_prediction(diffusers.get()), want);
  const int size = GetParam() ? 768 : 512;  // sample_size 96 / 64 x 8; single file: by prediction
  EXPECT_EQ(diffusion_model_default_size(single.get()), size);
  EXPECT_EQ(diffusion_model_default_size(diffusers.get()), size);
  std::vector<int32_t> a(77), b(77);
  diffusion_tokenize(single.get(), "the cat", a.data(), 77);
  diffusion_tokenize(diffusers.get(), "the cat", b.data(), 77);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.back(), GetParam() ? 0 : a[3]);  // OpenCLIP pads with "!" (0), CLIP with the end
  for (auto sampler : {DIFFUSION_SAMPLER_EULER_A, DIFFUSION_SAMPLER_DPMPP_2M}) {
    EXPECT_EQ(generate(single.get(), sampler, 3), generate(diffusers.get(), sampler, 3))
        << diffusion_sampler_name(sampler);
  }
  const Outputs x = components(single.get()), y = components(diffusers.get());
  EXPECT_EQ(x.text, y.text);
  EXPECT_EQ(x.unet, y.unet);
  EXPECT_EQ(x.vae, y.vae);
  fs::remove_all(single_dir);
  fs::remove_all(diffusers_dir);
}

INSTANTIATE_TEST_SUITE_P(Diffusion, Layouts, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "sd2" : "sd1"; });

TEST(Layouts, DiffusersNamesAreTheConversionScriptsPairs) {
  // SD 1.5: 2 resnets per down block; up block 0 has no attentions.
  const std::vector<bool> up = {false, true, true, true};
  const std::string u = "model.diffusion_model.";
  const std::vector<std::pair<const char*, std::string>> unet = {
      {"time_embedding.linear_1.weight", u + "time_embed.0.weight"},
      {"time_embedding.linear_2.bias", u + "time_embed.2.bias"},
      {"conv_in.weight", u + "input_blocks.0.0.weight"},
      {"conv_norm_out.bias", u + "out.0.bias"},
      {"conv_out.weight", u + "out.2.weight"},
      {"down_blocks.0.resnets.1.norm1.weight", u + "input_blocks.2.0.in_layers.0.weight"},
      {"down_blocks.1.resnets.0.conv_shortcut.weight",
       u + "input_blocks.4.0.skip_connection.weight"},
      {"down_blocks.2.resnets.1.time_emb_proj.bias", u + "input_blocks.8.0.emb_layers.1.bias"},
      {"down_blocks.1.attentions.1.transformer_blocks.0.attn2.to_k.weight",
       u + "input_blocks.5.1.transformer_blocks.0.attn2.to_k.weight"},
      {"down_blocks.2.downsamplers.0.conv.weight", u + "input_blocks.9.0.op.weight"},
      {"down_blocks.3.resnets.1.conv2.weight", u + "input_blocks.11.0.out_layers.3.weight"},
      {"mid_block.resnets.1.norm2.bias", u + "middle_block.2.out_layers.0.bias"},
      {"mid_block.attentions.0.proj_in.weight", u + "middle_block.1.proj_in.weight"},
      {"up_blocks.0.resnets.2.conv1.weight", u + "output_blocks.2.0.in_layers.2.weight"},
      {"up_blocks.0.upsamplers.0.conv.weight", u + "output_blocks.2.1.conv.weight"},
      {"up_blocks.1.attentions.2.norm.weight", u + "output_blocks.5.1.norm.weight"},
      {"up_blocks.2.upsamplers.0.conv.bias", u + "output_blocks.8.2.conv.bias"},
      {"up_blocks.3.resnets.0.conv_shortcut.weight",
       u + "output_blocks.9.0.skip_connection.weight"},
      {"class_embedding.linear_1.weight", ""}};
  for (const auto& [hf, ldm] : unet) EXPECT_EQ(dcpp::unet_name(hf, 2, up), ldm) << hf;
  const std::string v = "first_stage_model.";
  const std::vector<std::pair<const char*, std::string>> vae = {
      {"encoder.conv_in.weight", v + "encoder.conv_in.weight"},
      {"encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
       v + "encoder.down.1.block.0.nin_shortcut.weight"},
      {"encoder.down_blocks.2.downsamplers.0.conv.weight",
       v + "encoder.down.2.downsample.conv.weight"},
      {"encoder.mid_block.attentions.0.query.weight", v + "encoder.mid.attn_1.q.weight"},
      {"encoder.conv_norm_out.bias", v + "encoder.norm_out.bias"},
      {"quant_conv.weight", v + "quant_conv.weight"},
      {"post_quant_conv.bias", v + "post_quant_conv.bias"},
      {"decoder.mid_block.resnets.1.norm1.weight", v + "decoder.mid.block_2.norm1.weight"},
      {"decoder.mid_block.attentions.0.group_norm.bias", v + "decoder.mid.attn_1.norm.bias"},
      {"decoder.mid_block.attentions.0.to_out.0.weight", v + "decoder.mid.attn_1.proj_out.weight"},
      {"decoder.mid_block.attentions.0.proj_attn.bias", v + "decoder.mid.attn_1.proj_out.bias"},
      {"decoder.mid_block.attentions.0.to_v.weight", v + "decoder.mid.attn_1.v.weight"},
      {"decoder.up_blocks.0.resnets.2.conv1.weight", v + "decoder.up.3.block.2.conv1.weight"},
      {"decoder.up_blocks.1.upsamplers.0.conv.weight", v + "decoder.up.2.upsample.conv.weight"},
      {"decoder.up_blocks.3.resnets.0.conv_shortcut.bias",
       v + "decoder.up.0.block.0.nin_shortcut.bias"},
      {"decoder.conv_out.weight", v + "decoder.conv_out.weight"}};
  for (const auto& [hf, ldm] : vae) EXPECT_EQ(dcpp::vae_name(hf, 4), ldm) << hf;
  const std::string t = "cond_stage_model.transformer.text_model.";
  EXPECT_EQ(
      dcpp::text_encoder_name("text_model.encoder.layers.3.mlp.fc1.weight", "cond_stage_model"),
      t + "encoder.layers.3.mlp.fc1.weight");
  EXPECT_EQ(dcpp::text_encoder_name("final_layer_norm.bias", "cond_stage_model"),
            t + "final_layer_norm.bias");
  EXPECT_EQ(dcpp::text_encoder_name("logit_scale", "cond_stage_model"), "");
  // SDXL: text_encoder_2/ (CLIPTextModelWithProjection) and the single file's conditioner.
  EXPECT_EQ(dcpp::text_encoder_name("text_projection.weight", "cond_stage_model_2"),
            "cond_stage_model_2.transformer.text_projection.weight");
  EXPECT_EQ(
      dcpp::text_encoder_name("text_model.embeddings.token_embedding.weight", "cond_stage_model_2"),
      "cond_stage_model_2.transformer.text_model.embeddings.token_embedding.weight");
  EXPECT_EQ(dcpp::unet_name("add_embedding.linear_1.weight", 2, up),
            "model.diffusion_model.label_emb.0.0.weight");
  EXPECT_EQ(dcpp::unet_name("add_embedding.linear_2.bias", 2, up),
            "model.diffusion_model.label_emb.0.2.bias");
  EXPECT_EQ(dcpp::single_file_name("conditioner.embedders.0.transformer.text_model.final_layer_"
                                   "norm.weight"),
            t + "final_layer_norm.weight");
  EXPECT_EQ(dcpp::single_file_name("conditioner.embedders.1.model.ln_final.bias"),
            "cond_stage_model_2.model.ln_final.bias");
  EXPECT_EQ(dcpp::single_file_name("model.diffusion_model.out.2.bias"),
            "model.diffusion_model.out.2.bias");
}

TEST(Layouts, ConfigsSetScaleFactorAndPrediction) {
  const std::string dir = temp_dir("configs");
  allm::TinySdSpec spec;
  spec.layout = allm::SdLayout::DIFFUSERS;
  std::string error;
  ASSERT_TRUE(allm::write_tiny_sd(dir, spec, &error)) << error;
  nlohmann::json vae;
  std::ifstream(dir + "/vae/config.json") >> vae;
  vae["scaling_factor"] = 0.13025;
  std::ofstream(dir + "/vae/config.json") << vae.dump();
  nlohmann::json scheduler;
  std::ifstream(dir + "/scheduler/scheduler_config.json") >> scheduler;
  scheduler["prediction_type"] = "v_prediction";
  std::ofstream(dir + "/scheduler/scheduler_config.json") << scheduler.dump();
  ModelPtr m = open(dir);
  ASSERT_TRUE(m);
  EXPECT_FLOAT_EQ(diffusion_vae_scale_factor(m.get()), 0.13025f);
  EXPECT_EQ(diffusion_model_prediction(m.get()), DIFFUSION_PREDICTION_V);
  fs::remove_all(dir + "/unet");
  diffusion_status status;
  std::string message;
  EXPECT_EQ(open(dir, DIFFUSION_PREDICTION_AUTO, &status, &message), nullptr);
  EXPECT_EQ(status, DIFFUSION_LOAD_FAILED);
  EXPECT_NE(message.find("unet/"), std::string::npos) << message;
  fs::remove_all(dir);
}

// SD 2.x single files without a yaml: stable-diffusion.cpp's probe decides (v when the mean of
// output - input at t = 999 on constant inputs is below -1); an explicit choice wins.
TEST(Layouts, SingleFileSd2PredictionIsProbedUnlessGiven) {
  const std::string dir = temp_dir("probe");
  ModelPtr m = load(dir, allm::tiny_sd2());
  ASSERT_TRUE(m);
  std::vector<float> x(4 * 8 * 8, 0.5f), context(2 * diffusion_text_embedding_dim(m.get()), 0.5f),
      out(x.size());
  ASSERT_EQ(diffusion_unet_eval(m.get(), x.data(), 8, 8, 999.0f, context.data(), 2, out.data()),
            DIFFUSION_OK);
  double mean = 0;
  for (size_t i = 0; i < x.size(); ++i) mean += (out[i] - x[i]) / x.size();
  EXPECT_EQ(diffusion_model_prediction(m.get()),
            mean < -1 ? DIFFUSION_PREDICTION_V : DIFFUSION_PREDICTION_EPS)
      << mean;
  ModelPtr v = open(dir + "/model.safetensors", DIFFUSION_PREDICTION_V);
  ASSERT_TRUE(v);
  EXPECT_EQ(diffusion_model_prediction(v.get()), DIFFUSION_PREDICTION_V);
  EXPECT_NE(generate(m.get(), DIFFUSION_SAMPLER_EULER, 1) ==
                generate(v.get(), DIFFUSION_SAMPLER_EULER, 1),
            diffusion_model_prediction(m.get()) != DIFFUSION_PREDICTION_V);
  fs::remove_all(dir);
}

// Reduced-precision weights: the same random values rounded, so the outputs stay near F32's.
// Measured (this fixture, max |diff| / max(1, max |F32|)): F16 text 5.4e-4, UNet 3.4e-3, VAE
// 2.0e-3 (tolerance 5e-3); BF16 (diffusers layout) text 4.0e-3, UNet 1.1e-2, VAE 8.1e-3
// (tolerance 3e-2).
TEST(WeightTypes, F16AndBf16StayCloseToF32) {
  const std::string dir = temp_dir("dtype");
  allm::TinySdSpec spec;
  ModelPtr f32 = load(dir + "-f32", spec);
  spec.weights = allm::SdWeightType::F16;
  ModelPtr f16 = load(dir + "-f16", spec);
  spec.weights = allm::SdWeightType::BF16;
  spec.layout = allm::SdLayout::DIFFUSERS;
  ModelPtr bf16 = load(dir + "-bf16", spec);
  ASSERT_TRUE(f32 && f16 && bf16);
  const Outputs ref = components(f32.get());
  for (const auto& [name, model, tolerance] :
       {std::tuple{"f16", f16.get(), 5e-3}, std::tuple{"bf16", bf16.get(), 3e-2}}) {
    const Outputs o = components(model);
    const double text = relative_error(o.text, ref.text), unet = relative_error(o.unet, ref.unet),
                 vae = relative_error(o.vae, ref.vae);
    std::printf("%s: text %.1e unet %.1e vae %.1e\n", name, text, unet, vae);
    EXPECT_LT(text, tolerance) << name;
    EXPECT_LT(unet, tolerance) << name;
    EXPECT_LT(vae, tolerance) << name;
  }
  for (const char* suffix : {"-f32", "-f16", "-bf16"}) fs::remove_all(dir + suffix);
}

// --- the text encoder against Hugging Face transformers' CLIPTextModel.

std::vector<float> read_floats(const std::string& path, size_t n) {
  std::vector<float> v(n);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(v.data()), n * sizeof(float));
  EXPECT_EQ(in.gcount(), static_cast<std::streamsize>(n * sizeof(float))) << path;
  return v;
}

// transformers' final_layer_norm (eps 1e-5) over each row, with the saved weights.
std::vector<float> final_layer_norm(const std::vector<float>& x, const std::string& weights,
                                    int d) {
  stcpp::Failure failure;
  auto checkpoint = stcpp::Checkpoint::open(weights, &failure);
  EXPECT_TRUE(checkpoint) << failure.message;
  auto values = [&](const std::string& name) {
    const stcpp::TensorInfo* t = checkpoint->find(name);
    if (!t) t = checkpoint->find("text_model." + name);
    const float* p = reinterpret_cast<const float*>(t->data());
    return std::vector<float>(p, p + d);
  };
  const std::vector<float> w = values("final_layer_norm.weight"),
                           b = values("final_layer_norm.bias");
  std::vector<float> out(x.size());
  for (size_t row = 0; row < x.size() / d; ++row) {
    double mean = 0, var = 0;
    for (int i = 0; i < d; ++i) mean += x[row * d + i] / d;
    for (int i = 0; i < d; ++i) var += (x[row * d + i] - mean) * (x[row * d + i] - mean) / d;
    for (int i = 0; i < d; ++i) {
      out[row * d + i] =
          static_cast<float>((x[row * d + i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i]);
    }
  }
  return out;
}

class HfClip : public ::testing::TestWithParam<const char*> {};

// The saved CLIPTextModel as the text_encoder/ of a diffusers folder whose other parts are
// tiny random ones of its width. Tolerance 1e-4 of max(1, max |x|) (measured: 3e-7 to 4e-7).
TEST_P(HfClip, LastAndPenultimateLayersMatchTransformers) {
  const std::string variant = GetParam();
  const std::string data =
      std::string(ALLM_SOURCE_DIR) + "/tests/hf_reference/data/clip-" + variant;
  nlohmann::json meta;
  std::ifstream(data + ".json") >> meta;
  const std::vector<int32_t> tokens = meta["tokens"].get<std::vector<int32_t>>();
  const int d = meta["shape"][1].get<int>(), n = static_cast<int>(tokens.size());
  allm::TinySdSpec spec;
  spec.layout = allm::SdLayout::DIFFUSERS;
  spec.clip_hidden = d;  // the UNet's context width
  spec.vae_encoder = false;
  const std::string dir = temp_dir("hf-" + variant);
  std::string error;
  ASSERT_TRUE(allm::write_tiny_sd(dir, spec, &error)) << error;
  fs::remove_all(dir + "/text_encoder");
  fs::create_directories(dir + "/text_encoder");
  for (const char* file : {"config.json", "model.safetensors"}) {
    fs::copy_file(data + "/" + file, dir + "/text_encoder/" + file);
  }
  ModelPtr m = open(dir);
  ASSERT_TRUE(m);
  EXPECT_STREQ(diffusion_model_architecture(m.get()), variant == "sd1" ? "sd1" : "sd2");
  std::vector<float> last(static_cast<size_t>(n) * d), skip2(last.size());
  ASSERT_EQ(diffusion_encode_tokens(m.get(), tokens.data(), n, 1, last.data()), DIFFUSION_OK);
  ASSERT_EQ(diffusion_encode_tokens(m.get(), tokens.data(), n, 2, skip2.data()), DIFFUSION_OK);
  const std::vector<float> want_last = read_floats(data + ".last.f32", last.size());
  // clip_skip 2 is hidden_states[-2] with the final layer norm applied (SD 2.x's conditioning).
  const std::vector<float> want_skip2 = final_layer_norm(
      read_floats(data + ".penultimate.f32", last.size()), data + "/model.safetensors", d);
  const double e_last = relative_error(last, want_last),
               e_skip2 = relative_error(skip2, want_skip2);
  std::printf("clip-%s: last %.1e penultimate+ln_final %.1e\n", variant.c_str(), e_last, e_skip2);
  EXPECT_LT(e_last, 1e-4);
  EXPECT_LT(e_skip2, 1e-4);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Diffusion, HfClip, ::testing::Values("sd1", "sd2"));

}  // namespace
