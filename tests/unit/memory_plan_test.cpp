// What fits where: --max-memory parsing, where an estimate lands (RAM or GPU memory), which idle
// models are unloaded to make room and the OOM_RAM / OOM_VRAM refusals; the whisper and
// diffusion estimates read from the model files' headers.
#include "core/memory_plan.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "audio/whisper_memory.h"
#include "demo/tiny_gguf.h"
#include "demo/tiny_sd.h"
#include "demo/tiny_whisper.h"
#include "image/diffusion_memory.h"
#include "nlohmann/json.hpp"
#include "text/text_memory.h"

namespace allm {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t GiB = 1ull << 30;
constexpr uint64_t MiB = 1ull << 20;

TEST(MemoryLimits, ParsesRamAloneOrBothBudgets) {
  MemoryLimits l;
  std::string problem;
  ASSERT_TRUE(parse_memory_limits("16G", &l, &problem)) << problem;
  EXPECT_EQ(l.ram, 16 * GiB);
  EXPECT_EQ(l.vram, 0u);
  ASSERT_TRUE(parse_memory_limits("ram=16G,vram=8G", &l, &problem)) << problem;
  EXPECT_EQ(l.ram, 16 * GiB);
  EXPECT_EQ(l.vram, 8 * GiB);
  ASSERT_TRUE(parse_memory_limits("vram=512M", &l, &problem)) << problem;
  EXPECT_EQ(l.ram, 0u);
  EXPECT_EQ(l.vram, 512 * MiB);
  for (const char* bad : {"", "gpu=1G", "1G,2G", "ram=x", "ram=1G,", "=1G", "vram"}) {
    EXPECT_FALSE(parse_memory_limits(bad, &l, &problem)) << bad;
    EXPECT_NE(problem.find("ram=16G,vram=8G"), std::string::npos) << problem;
  }
}

TEST(MemoryPlan, EstimatesLandOnTheGpuOnlyForEnginesThatUseOne) {
  MemoryEstimate e;
  e.weights = 3 * GiB;
  e.kv_cache = GiB;
  e.gpu = GpuUse::ALL_GPUS;
  EXPECT_EQ(place_estimate(e, true).vram, 4 * GiB);
  EXPECT_EQ(place_estimate(e, true).ram, 0u);
  EXPECT_EQ(place_estimate(e, false).ram, 4 * GiB);           // no GPU backend: all in RAM
  EXPECT_EQ(place_estimate(e, true, 5 * GiB).vram, 5 * GiB);  // measured after loading
  e.gpu = GpuUse::NONE;
  EXPECT_EQ(place_estimate(e, true).ram, 4 * GiB);

  const std::vector<GpuMemory> gpus = {{"A", 6 * GiB, 8 * GiB}, {"B", 2 * GiB, 8 * GiB}};
  EXPECT_EQ(usable_vram(GpuUse::ALL_GPUS, gpus), 8 * GiB);
  EXPECT_EQ(usable_vram(GpuUse::FIRST_GPU, gpus), 6 * GiB);
  EXPECT_FALSE(usable_vram(GpuUse::NONE, gpus));
  EXPECT_FALSE(usable_vram(GpuUse::ALL_GPUS, {}));
}

ResidentModel resident(const char* id, uint64_t ram, uint64_t vram, bool idle, int64_t used) {
  return {id, {ram, vram}, idle, used};
}

TEST(MemoryPlan, FitsWithoutUnloadingWhenThereIsRoom) {
  MemoryNow now;
  now.limits.ram = 10 * GiB;
  now.ram = 32 * GiB;
  const RoomPlan plan =
      plan_room({"m", {4 * GiB, 0}, "weights 4 GiB"}, {resident("a", 4 * GiB, 0, true, 1)}, now);
  EXPECT_FALSE(plan.error);
  EXPECT_TRUE(plan.evict.empty());
}

TEST(MemoryPlan, UnloadsIdleModelsLeastRecentlyUsedFirstAndNeverBusyOnes) {
  MemoryNow now;
  now.limits.ram = 10 * GiB;
  const std::vector<ResidentModel> loaded = {resident("newer", 3 * GiB, 0, true, 30),
                                             resident("busy", 3 * GiB, 0, false, 10),
                                             resident("oldest", 3 * GiB, 0, true, 20)};
  // 9 GiB loaded, 4 more needed: one idle model must go, the least recently used one.
  RoomPlan plan = plan_room({"m", {4 * GiB, 0}, "x"}, loaded, now);
  ASSERT_FALSE(plan.error) << plan.error.message;
  EXPECT_EQ(plan.evict, std::vector<size_t>({2}));
  // 7 GiB needed: both idle ones.
  plan = plan_room({"m", {7 * GiB, 0}, "x"}, loaded, now);
  ASSERT_FALSE(plan.error);
  EXPECT_EQ(plan.evict, std::vector<size_t>({2, 0}));
  // 8 GiB would need the busy one too: refused, and nothing is unloaded for nothing.
  plan = plan_room({"m", {8 * GiB, 0}, "x"}, loaded, now);
  EXPECT_EQ(plan.error.code, ErrorCode::OOM_RAM);
  EXPECT_NE(plan.error.message.find("held by models that are busy"), std::string::npos);
  EXPECT_TRUE(plan.evict.empty());
  // Loads in progress count as loaded.
  now.reserved.ram = 3 * GiB;
  plan = plan_room({"m", {4 * GiB, 0}, "x"}, loaded, now);
  EXPECT_EQ(plan.evict, std::vector<size_t>({2, 0}));
}

TEST(MemoryPlan, RefusesWhatExceedsTheBudgetOrTheFreeRam) {
  MemoryNow now;
  now.limits.ram = 2 * GiB;
  RoomPlan plan = plan_room({"big", {3 * GiB, 0}, "weights 3.00 GiB"}, {}, now);
  EXPECT_EQ(plan.error.code, ErrorCode::OOM_RAM);
  EXPECT_EQ(plan.error.message,
            "model 'big' needs about 3.00 GiB (weights 3.00 GiB), more than the memory budget of "
            "2.00 GiB (--max-memory)");
  now.limits = {};
  now.ram = GiB;
  plan = plan_room({"big", {3 * GiB, 0}, "weights 3.00 GiB"},
                   {resident("a", GiB, 0, true, 1), resident("b", 512 * MiB, 0, true, 2)}, now);
  EXPECT_EQ(plan.error.code, ErrorCode::OOM_RAM);
  EXPECT_NE(plan.error.message.find("but only 1.00 GiB of RAM is available"), std::string::npos);
  // Unloading both idle models frees enough.
  plan = plan_room({"big", {2 * GiB + 512 * MiB, 0}, "x"},
                   {resident("a", GiB, 0, true, 1), resident("b", 512 * MiB, 0, true, 2)}, now);
  ASSERT_FALSE(plan.error) << plan.error.message;
  EXPECT_EQ(plan.evict.size(), 2u);
}

TEST(MemoryPlan, GpuMemoryIsPlannedApartAndRefusedWithOomVram) {
  MemoryNow now;
  now.vram = 6 * GiB;  // free on the GPU
  now.ram = 64 * GiB;
  const std::vector<ResidentModel> loaded = {resident("cpu-model", 8 * GiB, 0, true, 1),
                                             resident("gpu-model", 0, 5 * GiB, true, 2)};
  // 8 GiB on the GPU: unloading the idle GPU model frees enough; the CPU model stays.
  RoomPlan plan = plan_room({"llm", {0, 8 * GiB}, "x"}, loaded, now);
  ASSERT_FALSE(plan.error) << plan.error.message;
  EXPECT_EQ(plan.evict, std::vector<size_t>({1}));
  // 12 GiB cannot fit even then.
  plan = plan_room({"llm", {0, 12 * GiB}, "weights 11.00 GiB, KV cache 1.00 GiB"}, loaded, now);
  EXPECT_EQ(plan.error.code, ErrorCode::OOM_VRAM);
  EXPECT_EQ(plan.error.message,
            "model 'llm' needs about 12.00 GiB of GPU memory (weights 11.00 GiB, KV cache 1.00 "
            "GiB) but only 6.00 GiB is free on the GPU");
  EXPECT_TRUE(plan.evict.empty());
  // The VRAM part of --max-memory.
  now.limits.vram = 4 * GiB;
  plan = plan_room({"llm", {0, 5 * GiB}, "x"}, {}, now);
  EXPECT_EQ(plan.error.code, ErrorCode::OOM_VRAM);
  EXPECT_NE(plan.error.message.find("more than the GPU memory budget of 4.00 GiB (--max-memory "
                                    "vram=)"),
            std::string::npos);
  // A RAM budget does not limit what lives on the GPU.
  now.limits = {GiB, 0};
  plan = plan_room({"llm", {0, 5 * GiB}, "x"}, {}, now);
  EXPECT_FALSE(plan.error) << plan.error.message;
}

// --- estimates from model files

fs::path temp_dir(const char* name) {
  const fs::path dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(MemoryEstimate, WhisperWeightsPlusOneStatePerConcurrentTranscription) {
  const fs::path dir = temp_dir("allm-whisper-estimate-test");
  const fs::path bin = dir / "w.bin";
  TinyWhisperSpec spec;
  std::string error;
  ASSERT_TRUE(write_tiny_whisper_bin(bin.string(), spec, &error)) << error;
  const auto shape = read_whisper_shape(bin);
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->vocab, spec.n_vocab);
  EXPECT_EQ(shape->audio_ctx, spec.n_audio_ctx);
  EXPECT_EQ(shape->text_ctx, spec.n_text_ctx);
  EXPECT_EQ(shape->text_layers, spec.n_text_layer);
  EXPECT_EQ(shape->mels, spec.n_mels);
  EXPECT_EQ(shape->ftype, 1);
  // F16 caches: self-attention 7 x pad256(128) cells, cross-attention and kv_pad pad256(1500).
  const WhisperStateBytes state = whisper_state_bytes(*shape);
  EXPECT_EQ(state.caches, 2ull * 2 * (64 * 1 * (7 * 256 + 1536) + 64 * 1536));
  EXPECT_GT(state.buffers, 2ull * 4 * spec.n_vocab * spec.n_text_ctx);  // two windows of logits

  const MemoryEstimate one = estimate_whisper_model(bin, 1);
  const MemoryEstimate three = estimate_whisper_model(bin, 3);
  EXPECT_EQ(one.weights, fs::file_size(bin));
  EXPECT_EQ(three.weights, one.weights);
  EXPECT_EQ(three.kv_cache, 3 * state.caches);
  EXPECT_EQ(three.compute, 3 * state.buffers);
  EXPECT_EQ(one.gpu, GpuUse::FIRST_GPU);
  EXPECT_NE(three.breakdown().find("for 3 transcriptions at once"), std::string::npos);

  std::ofstream(dir / "bad.bin") << "not whisper";
  const MemoryEstimate bad = estimate_whisper_model(dir / "bad.bin", 2);
  EXPECT_EQ(bad.total(), 11u);  // the file alone: the load reports what is wrong
  fs::remove_all(dir);
}

// The widest convolutions read from a checkpoint: at the image's resolution and in the UNet.
void expect_shape(const std::optional<DiffusionShape>& shape, int64_t vae_in, int column_bytes,
                  int64_t unet_in) {
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->vae_full_resolution.in_channels, vae_in);
  EXPECT_EQ(shape->vae_full_resolution.column_bytes, column_bytes);
  EXPECT_EQ(shape->vae_factor, 8);
  EXPECT_EQ(shape->unet_widest.in_channels, unet_in);
}

TEST(MemoryEstimate, DiffusionActivationsFromTheCheckpointsShapes) {
  const fs::path dir = temp_dir("allm-sd-estimate-test");
  TinySdSpec spec;
  std::string error;
  ASSERT_TRUE(write_tiny_sd((dir / "f32").string(), spec, &error)) << error;
  spec.weights = SdWeightType::F16;
  ASSERT_TRUE(write_tiny_sd((dir / "f16").string(), spec, &error)) << error;
  spec.layout = SdLayout::DIFFUSERS;
  ASSERT_TRUE(write_tiny_sd((dir / "diffusers").string(), spec, &error)) << error;
  const fs::path f32 = dir / "f32" / "model.safetensors";
  const auto shape = read_diffusion_shape(f32);
  // The decoder's full-resolution level: vae_channels x vae_mult[0], fed by level 1's upsampler
  // (vae_channels x vae_mult[1]); the UNet's widest: its last level's output blocks, which take
  // the skip connection beside the level's channels (2 x 32 x 2).
  expect_shape(shape, 32, 4, 128);
  expect_shape(read_diffusion_shape(dir / "f16" / "model.safetensors"), 32, 2, 128);
  // The same networks in a diffusers folder (up blocks in reverse order) read the same.
  expect_shape(read_diffusion_shape(dir / "diffusers"), 32, 2, 128);
  // P x c x (9 x 4 + 12) at the image's size, plus 64 MiB.
  EXPECT_EQ(diffusion_activation_bytes(*shape, 1024, 1024), (1ull << 20) * 32 * 48 + 64 * MiB);
  const MemoryEstimate e = estimate_diffusion_model(f32, 512);
  EXPECT_EQ(e.weights, fs::file_size(f32));
  EXPECT_EQ(e.compute, diffusion_activation_bytes(*shape, 512, 512));
  EXPECT_EQ(e.gpu, GpuUse::FIRST_GPU);  // the GPU when there is one
  EXPECT_EQ(estimate_diffusion_model(f32, 512, /*offload=*/false).gpu, GpuUse::NONE);
  EXPECT_NE(e.breakdown().find("at 512x512 (--image-max-size)"), std::string::npos);
  fs::remove_all(dir);
}

// SDXL: diffusion.cpp decodes with its VAE in F32 (F16 overflows), whatever the file stores, and
// a diffusers folder's weights include text_encoder_2/.
TEST(MemoryEstimate, SdxlVaeColumnsAreF32AndTheSecondTextEncoderCounts) {
  const fs::path dir = temp_dir("allm-sdxl-estimate-test");
  TinySdSpec spec = tiny_sdxl();
  spec.weights = SdWeightType::F16;
  std::string error;
  ASSERT_TRUE(write_tiny_sd((dir / "single").string(), spec, &error)) << error;
  spec.layout = SdLayout::DIFFUSERS;
  ASSERT_TRUE(write_tiny_sd((dir / "diffusers").string(), spec, &error)) << error;
  // The UNet's widest: its last level's output blocks, 2 x 64 x 2 (skip and level channels).
  expect_shape(read_diffusion_shape(dir / "single" / "model.safetensors"), 32, 4, 256);
  expect_shape(read_diffusion_shape(dir / "diffusers"), 32, 4, 256);
  const fs::path d = dir / "diffusers";
  const uint64_t files = fs::file_size(d / "unet" / "diffusion_pytorch_model.safetensors") +
                         fs::file_size(d / "vae" / "diffusion_pytorch_model.safetensors") +
                         fs::file_size(d / "text_encoder" / "model.safetensors") +
                         fs::file_size(d / "text_encoder_2" / "model.safetensors");
  EXPECT_EQ(estimate_diffusion_model(d, 512).weights, files);
  fs::remove_all(dir);
}

// A .safetensors file of F16 / F32 tensors that lie one after the other, each its shape's size:
// only the header is written (the estimate reads nothing else), the data is sparse zeros.
void write_header_only(const fs::path& file, nlohmann::json tensors) {
  fs::create_directories(file.parent_path());
  uint64_t offset = 0;
  for (auto& [name, tensor] : tensors.items()) {
    uint64_t bytes = tensor["dtype"] == "F16" ? 2 : 4;
    for (const auto& dim : tensor["shape"]) bytes *= dim.get<uint64_t>();
    tensor["data_offsets"] = {offset, offset + bytes};
    offset += bytes;
  }
  const std::string header = tensors.dump();
  const uint64_t size = header.size();
  {
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(&size), sizeof size);
    out << header;
  }
  fs::resize_file(file, sizeof size + size + offset);
}

TEST(MemoryEstimate, DiffusionActivationsOfADiffusersFolder) {
  const fs::path dir = temp_dir("allm-diffusers-estimate-test");
  auto conv = [](int out, int in, const char* dtype) {
    return nlohmann::json{{"dtype", dtype}, {"shape", {out, in, 3, 3}}, {"data_offsets", {0, 0}}};
  };
  // SD's VAE decoder in diffusers' order: up_blocks.3 works at the image's resolution.
  write_header_only(dir / "vae" / "diffusion_pytorch_model.safetensors",
                    {{"decoder.up_blocks.0.resnets.0.conv1.weight", conv(512, 512, "F16")},
                     {"decoder.up_blocks.1.resnets.0.conv1.weight", conv(512, 512, "F16")},
                     {"decoder.up_blocks.2.resnets.0.conv1.weight", conv(256, 512, "F16")},
                     {"decoder.up_blocks.2.upsamplers.0.conv.weight", conv(256, 256, "F16")},
                     {"decoder.up_blocks.3.resnets.0.conv1.weight", conv(128, 256, "F16")},
                     {"decoder.up_blocks.3.resnets.1.conv1.weight", conv(128, 128, "F16")}});
  write_header_only(dir / "unet" / "diffusion_pytorch_model.safetensors",
                    {{"conv_in.weight", conv(320, 4, "F16")},
                     {"up_blocks.0.resnets.0.conv1.weight", conv(1280, 2560, "F16")}});
  expect_shape(read_diffusion_shape(dir), 256, 2, 2560);
  // 512x512: the VAE's 262144 pixels x 256 x 30 bytes outweigh the UNet's 2 x 4096 x 2560 x 30.
  EXPECT_EQ(estimate_diffusion_model(dir, 512).compute, 262144ull * 256 * 30 + 64 * MiB);
  fs::remove_all(dir);
}

// GGUF and safetensors models spread over every GPU; with offload off (--device none,
// --gpu-layers 0) both stay on the CPU.
TEST(MemoryEstimate, TextModelsGoToTheGpusUnlessOffloadIsOff) {
  const fs::path dir = temp_dir("allm-text-gpu-estimate-test");
  std::string error;
  ASSERT_TRUE(write_tiny_llama_gguf((dir / "m.gguf").string(), TinyLlamaSpec{}, &error)) << error;
  EXPECT_EQ(estimate_text_model(ModelFormat::GGUF, dir / "m.gguf", 64, 1, 2).gpu, GpuUse::ALL_GPUS);
  EXPECT_EQ(estimate_text_model(ModelFormat::SAFETENSORS, dir, 64, 1, 2).gpu, GpuUse::ALL_GPUS);
  const Quantization none = Quantization::NONE;
  EXPECT_EQ(estimate_text_model(ModelFormat::GGUF, dir / "m.gguf", 64, 1, 2, none, false).gpu,
            GpuUse::NONE);
  EXPECT_EQ(estimate_text_model(ModelFormat::SAFETENSORS, dir, 64, 1, 2, none, false).gpu,
            GpuUse::NONE);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace allm
