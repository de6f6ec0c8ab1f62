// safetensors.cpp with its layers on a device, against the same model on the CPU, for every
// architecture; diffusion.cpp's networks likewise. The device is ggml's RPC backend serving this
// process's CPU over loopback: ggml counts it a GPU and its buffers are not host memory, so the
// offload paths all run without a GPU — weights uploaded into device buffers, the KV cache on the
// device (its prefix copies through a staging copy), the scheduler splitting each graph between the
// device and the CPU (the token embeddings stay on the CPU). The arithmetic is the CPU's on both
// sides, so the logits must agree to rounding.
//
// With ALLM_TEST_DEVICE=NAME (a ggml GPU, e.g. CUDA0) the same tests run on that device instead,
// within a GPU's tolerances (bench/gpu_check.sh runs them so on a lent GPU machine).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "base/rpc_workers.h"
#include "demo/tiny_sd.h"
#include "diffusion.h"
#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "hf_fixture/hf_fixture.h"
#include "parity/architectures.h"
#include "parity/feed.h"
#include "safetensors/checkpoint.h"
#include "safetensors/weight_store.h"
#include "text/backend.h"

namespace fs = std::filesystem;
using namespace allm;
using fixture::Arch;
using testing_util::all_architectures;
using testing_util::ArchitectureCase;
using testing_util::compare_greedy;
using testing_util::feed;
using testing_util::max_logprob_diff;
using testing_util::prompt_tokens;

namespace {

constexpr int kPrompt = 40;
constexpr int kSteps = 8;

// The GPU named by ALLM_TEST_DEVICE, or "" for the RPC device.
std::string gpu_under_test() {
  const char* name = std::getenv("ALLM_TEST_DEVICE");
  return name ? name : "";
}

// On the RPC device, measured 0 on every architecture (the RPC server runs ggml-cpu's kernels with
// the same thread count, so the splits change only where results are stored); the bound leaves
// room for an ulp moving one of gpt-oss's Q8_0 activation roundings. On a GPU the matrix products
// take F16/BF16 operands and sum in another order: logprobs move by up to about 1e-2.
double tolerance() {
  return gpu_under_test().empty() ? 1e-4 : 5e-2;
}

// A free loopback port: bound, read back, released.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// An RPC device serving this process's CPU: its server started on a free port (it serves until
// the process ends), its ggml name returned.
std::string start_rpc_device() {
  const int port = free_port();
  const std::string endpoint = "127.0.0.1:" + std::to_string(port);
  std::thread([endpoint] {
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    ggml_backend_rpc_start_server(endpoint.c_str(), nullptr, 2, 1, &cpu);
  }).detach();
  for (int i = 0; i < 500 && !rpc_worker_reachable(endpoint, 100); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ggml_backend_reg_t server = ggml_backend_rpc_add_server(endpoint.c_str());
  ggml_backend_register(server);
  return ggml_backend_reg_dev_count(server) > 0
             ? std::string(ggml_backend_dev_name(ggml_backend_reg_dev_get(server, 0)))
             : std::string();
}

// Two RPC devices, started on first use.
const std::vector<std::string>& rpc_devices() {
  static const std::vector<std::string> names = {start_rpc_device(), start_rpc_device()};
  return names;
}

// The device the tests offload to: the GPU under test, else the first RPC device.
const std::string& test_device() {
  static const std::string name =
      gpu_under_test().empty() ? rpc_devices().front() : gpu_under_test();
  return name;
}

// A fixture of `arch` written afresh into the temp dir under `name`; empty, with a failure
// added, when it cannot be written.
fs::path fresh_fixture(const std::string& name, Arch arch) {
  const fs::path dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  fixture::FixtureOptions options;
  options.arch = arch;
  options.out_dir = dir.string();
  std::string problem;
  if (!fixture::write_hf_fixture(options, &problem)) {
    ADD_FAILURE() << problem;
    return {};
  }
  return dir;
}

class DeviceOffload : public ::testing::TestWithParam<ArchitectureCase> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(test_device().empty()) << "the RPC device did not register";
    dir_ = fresh_fixture("allm-device-offload-" + std::string(GetParam().name), GetParam().arch);
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<TextBackend> open(int gpu_layers, int sequences = 1,
                                    const std::string& device = test_device()) {
    BackendParams params;
    params.ctx_per_sequence = 128;
    params.sequences = sequences;
    params.threads = 2;
    params.f32_cache = true;
    params.gpu_layers = gpu_layers;
    params.device = gpu_layers == 0 ? "" : device;
    Error error;
    auto backend = open_safetensors_backend(dir_.string(), params, &error);
    EXPECT_TRUE(backend) << error.message;
    return backend;
  }

  fs::path dir_;
};

// Every layer and the output head on the device: the same greedy tokens as on the CPU.
TEST_P(DeviceOffload, AllLayersMatchTheCpu) {
  auto cpu = open(0), device = open(-1);
  ASSERT_TRUE(cpu && device);
  EXPECT_EQ(cpu->placement(), "on the CPU");
  EXPECT_NE(device->placement().find("on " + test_device()), std::string::npos)
      << device->placement();
  const double worst =
      compare_greedy(*cpu, *device, prompt_tokens(kPrompt, cpu->vocab_size(), 0), kSteps);
  std::printf("[ device   ] %s: max |logprob diff| device vs CPU %.3g (%s)\n", GetParam().name,
              worst, device->placement().c_str());
  EXPECT_LE(worst, tolerance());
}

INSTANTIATE_TEST_SUITE_P(Architectures, DeviceOffload, ::testing::ValuesIn(all_architectures()),
                         [](const ::testing::TestParamInfo<ArchitectureCase>& info) {
                           return std::string(info.param.name);
                         });

class PartialOffload : public DeviceOffload {};

// One layer on the device, the rest on the CPU (the graph crosses between them twice per token);
// and a prefix copied between sequences whose cache is on the device.
TEST_P(PartialOffload, SplitModelAndDevicePrefixCopy) {
  auto cpu = open(0, 2), split = open(1, 2);
  ASSERT_TRUE(cpu && split);
  EXPECT_NE(split->placement().find(": 1 layers"), std::string::npos) << split->placement();
  const std::vector<Token> prompt = prompt_tokens(kPrompt, cpu->vocab_size(), 0);
  EXPECT_LE(compare_greedy(*cpu, *split, prompt, kSteps), tolerance());

  // Sequence 1 gets sequence 0's first 24 positions, then both continue the same way.
  const int kept = 24;
  const std::vector<Token> rest(prompt.begin() + kept, prompt.end());
  ASSERT_TRUE(split->copy_prefix(0, 1, kept));
  const float* copied = feed(*split, rest, kept, 1);
  ASSERT_TRUE(copied);
  const std::vector<float> from_copy(copied, copied + split->vocab_size());
  cpu->clear_sequence(1);
  const float* fresh = feed(*cpu, prompt, 0, 1);
  ASSERT_TRUE(fresh);
  EXPECT_LE(max_logprob_diff(fresh, from_copy.data(), cpu->vocab_size()), tolerance());
}

INSTANTIATE_TEST_SUITE_P(Llama, PartialOffload,
                         ::testing::Values(ArchitectureCase{"llama_split", Arch::Llama}),
                         [](const ::testing::TestParamInfo<ArchitectureCase>& info) {
                           return std::string(info.param.name);
                         });

// The layers split over two devices in order (equal free memory: one each), the output head on
// the second, as llama.cpp's split mode "layer" places them.
TEST_P(PartialOffload, SplitOverTwoDevices) {
  if (!gpu_under_test().empty()) GTEST_SKIP() << "needs two devices of equal free memory";
  ASSERT_FALSE(rpc_devices()[1].empty());
  const std::string both = rpc_devices()[0] + "," + rpc_devices()[1];
  auto cpu = open(0), split = open(-1, 1, both);
  ASSERT_TRUE(cpu && split);
  EXPECT_NE(split->placement().find("on " + both + ": 2 layers"), std::string::npos)
      << split->placement();
  EXPECT_LE(compare_greedy(*cpu, *split, prompt_tokens(kPrompt, cpu->vocab_size(), 0), kSteps),
            tolerance());
}

// Mean and largest |difference| between two images' bytes.
std::pair<double, int> image_difference(const std::vector<uint8_t>& a,
                                        const std::vector<uint8_t>& b) {
  double sum = 0;
  int largest = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int d = std::abs(int(a[i]) - int(b[i]));
    sum += d;
    largest = std::max(largest, d);
  }
  return {sum / a.size(), largest};
}

// diffusion.cpp with every network on the device: the same image as on the CPU (on a GPU, within
// a few levels: its F16 products round differently through two sampling steps and the VAE), and
// the weights on the device.
TEST(DiffusionOffload, SameImageAsTheCpu) {
  ASSERT_FALSE(test_device().empty());
  const fs::path dir = fs::temp_directory_path() / "allm-device-diffusion";
  fs::remove_all(dir);
  std::string problem;
  ASSERT_TRUE(write_tiny_sd(dir.string(), TinySdSpec{}, &problem)) << problem;
  std::vector<std::vector<uint8_t>> images;
  for (const std::string& device : {std::string("none"), test_device()}) {
    diffusion_model_params params = diffusion_model_default_params();
    params.n_threads = 2;
    params.device = device.c_str();
    // Tiles smaller than the latent: AUTO measures the whole decode on the device, finds that it
    // fits and decodes whole (tiling would change the image).
    params.vae_tile_size = 2;
    // One attention kernel on both (on its own, the CPU would take the score matrix).
    params.attention = DIFFUSION_ATTENTION_FLASH;
    char message[256];
    diffusion_status status;
    diffusion_model* model = diffusion_model_load((dir / "model.safetensors").c_str(), params,
                                                  &status, message, sizeof message);
    ASSERT_NE(model, nullptr) << message;
    EXPECT_STREQ(diffusion_model_device(model), device == "none" ? "CPU" : device.c_str());
    diffusion_generate_params p = diffusion_generate_default_params();
    p.prompt = "a photo of the cat";
    p.width = 32;
    p.height = 24;
    p.steps = 2;
    p.seed = 7;
    std::vector<uint8_t> rgb(p.width * p.height * 3);
    EXPECT_EQ(diffusion_generate(model, &p, rgb.data(), message, sizeof message), DIFFUSION_OK)
        << message;
    images.push_back(std::move(rgb));
    diffusion_model_free(model);
  }
  ASSERT_EQ(images[0].size(), images[1].size());
  const auto [mean, largest] = image_difference(images[0], images[1]);
  std::printf("[ device   ] diffusion: image device vs CPU, mean |diff| %.3f, max %d (of 255)\n",
              mean, largest);
  if (gpu_under_test().empty()) {
    EXPECT_EQ(images[0], images[1]);
  } else {
    EXPECT_LE(mean, 2.0);
    EXPECT_LE(largest, 48);
  }
  fs::remove_all(dir);
}

TEST(DeviceChoice, AnUnknownDeviceIsRefusedNamingTheDevicesThereAre) {
  ASSERT_FALSE(test_device().empty());
  const fs::path dir = fresh_fixture("allm-device-choice", Arch::Llama);
  ASSERT_FALSE(dir.empty());
  BackendParams params;
  params.ctx_per_sequence = 64;
  params.device = "Vulkan7";
  Error error;
  EXPECT_FALSE(open_safetensors_backend(dir.string(), params, &error));
  EXPECT_EQ(error.code, ErrorCode::UNSUPPORTED);
  EXPECT_NE(error.message.find("Vulkan7"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find(test_device()), std::string::npos) << error.message;
  fs::remove_all(dir);
}

// Weights on the host, mapped from the file or converted at load, are marked as weights: ggml's
// scheduler then runs an op on them where they lie. Unmarked, the token embeddings' lookup went
// to the GPU with the whole embedding matrix copied there for every batch (a 1B model decoded at
// a twentieth of llama.cpp's speed on an H200).
TEST(WeightBuffers, HostWeightsAreMarkedAsWeights) {
  const fs::path dir = fresh_fixture("allm-weight-buffers", Arch::Llama);
  ASSERT_FALSE(dir.empty());
  stcpp::Failure failure;
  auto checkpoint = stcpp::Checkpoint::open(dir.string(), &failure);
  ASSERT_TRUE(checkpoint) << failure.message;
  stcpp::WeightStore store(*checkpoint, checkpoint->tensors().size());
  const char* embeddings = "model.embed_tokens.weight";
  const char* norm = "model.norm.weight";
  ggml_tensor* mapped = store.embeddings(embeddings, checkpoint->find(embeddings)->shape);
  ggml_tensor* converted = store.vector_f32(norm, checkpoint->find(norm)->shape);
  ASSERT_TRUE(mapped && converted);
  ASSERT_FALSE(store.finish()) << store.failure().message;
  EXPECT_EQ(ggml_backend_buffer_get_usage(mapped->buffer), GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
  EXPECT_EQ(ggml_backend_buffer_get_usage(converted->buffer), GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
  fs::remove_all(dir);
}

// In the sanitizer build: the leak check at the end of the tests rather than at exit. ggml's RPC
// backend keeps its servers and buffer types in function-local statics for the life of the
// process, which exit destroys before LeakSanitizer would look.
class LeakCheckBeforeExit : public ::testing::Environment {
 public:
  void TearDown() override {
#if defined(__SANITIZE_ADDRESS__)
    __lsan_do_leak_check();
#endif
  }
};
const ::testing::Environment* const kLeakCheck =
    ::testing::AddGlobalTestEnvironment(new LeakCheckBeforeExit);

}  // namespace
